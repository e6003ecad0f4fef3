// payloadfs SRC MNT [options]: parses the command line, checks it, mounts, serves.

#include <fuse_lowlevel.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/vfs.h>
#include <syslog.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <chrono>
#include <climits>
#include <cmath>
#include <cstdarg>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include "core/json_text.hpp"
#include "core/registry.hpp"
#include "core/source_root.hpp"
#include "fs/filesystem.hpp"
#include "fs/format_loading.hpp"
#include "fs/inspect.hpp"
#include "fs/log.hpp"
#include "fs/ops.hpp"
#include "fs/spin_loop.hpp"
#include "fs/stop_signals.hpp"
#include "payloadfs/version.hpp"

namespace {

using payloadfs::MountOptions;

constexpr double kUnset = std::numeric_limits<double>::quiet_NaN();

// Filled by fuse_opt_parse, so plain fields only.
struct CliConfig {
  double entry_timeout = kUnset;
  double attr_timeout = kUnset;
  double negative_timeout = kUnset;
  int inotify = -1;
  int pread = -1;
  unsigned cache_entries = 4096;
  unsigned read_ahead_kb = 2048;
  unsigned range_nodes = 16384;
  const char* formats = nullptr;
  unsigned cache_memory_mb = 4;
  const char* log_level = nullptr;
  const char* refs_prefix = nullptr;
  unsigned spin_us = 0;
  int help = 0;
  int version = 0;
  const char* source = nullptr;
  const char* mountpoint = nullptr;  // as given (libfuse resolves it)
  int positional = 0;
};

enum { kKeyHelp, kKeyVersion, kKeyWholeNumber, kKeyLibfuseWholeNumber };

// libfuse's FUSE_OPT_KEY stores -1U in an unsigned long, which clang's -Wconversion flags.
#if defined(__clang__)
#pragma clang diagnostic push
#pragma clang diagnostic ignored "-Wimplicit-int-conversion"
#endif
const fuse_opt kOptions[] = {
    // fuse_opt's %u takes "-1" (as 4294967295), "12abc" (as 12) and overflows (as UINT_MAX):
    // every option matching its value is checked here first (kKeyWholeNumber), then stored by
    // its %u entry below. libfuse's own are checked and passed on (kKeyLibfuseWholeNumber).
    FUSE_OPT_KEY("cache_entries=", kKeyWholeNumber),
    FUSE_OPT_KEY("read_ahead_kb=", kKeyWholeNumber),
    FUSE_OPT_KEY("cache_memory=", kKeyWholeNumber),
    FUSE_OPT_KEY("range_nodes=", kKeyWholeNumber),
    FUSE_OPT_KEY("spin_us=", kKeyWholeNumber),
    FUSE_OPT_KEY("max_threads=", kKeyLibfuseWholeNumber),
    FUSE_OPT_KEY("max_idle_threads=", kKeyLibfuseWholeNumber),
    {"entry_timeout=%lf", offsetof(CliConfig, entry_timeout), 0},
    {"attr_timeout=%lf", offsetof(CliConfig, attr_timeout), 0},
    {"negative_timeout=%lf", offsetof(CliConfig, negative_timeout), 0},
    {"cache_entries=%u", offsetof(CliConfig, cache_entries), 0},
    {"inotify=%d", offsetof(CliConfig, inotify), 0},
    {"pread=%d", offsetof(CliConfig, pread), 0},
    {"formats=%s", offsetof(CliConfig, formats), 0},
    {"read_ahead_kb=%u", offsetof(CliConfig, read_ahead_kb), 0},
    {"cache_memory=%u", offsetof(CliConfig, cache_memory_mb), 0},
    {"range_nodes=%u", offsetof(CliConfig, range_nodes), 0},
    {"log_level=%s", offsetof(CliConfig, log_level), 0},
    {"refs_prefix=%s", offsetof(CliConfig, refs_prefix), 0},
    {"spin_us=%u", offsetof(CliConfig, spin_us), 0},
    FUSE_OPT_KEY("-h", kKeyHelp),
    FUSE_OPT_KEY("--help", kKeyHelp),
    FUSE_OPT_KEY("-V", kKeyVersion),
    FUSE_OPT_KEY("--version", kKeyVersion),
    // fstab's own options, and atime policies that mean nothing on a read-only mount: accepted
    // and dropped so an fstab line or a unit's Options= passed on as they are does not fail.
    // x-* options are dropped in on_option.
    FUSE_OPT_KEY("defaults", FUSE_OPT_KEY_DISCARD),
    FUSE_OPT_KEY("auto", FUSE_OPT_KEY_DISCARD),
    FUSE_OPT_KEY("noauto", FUSE_OPT_KEY_DISCARD),
    FUSE_OPT_KEY("nofail", FUSE_OPT_KEY_DISCARD),
    FUSE_OPT_KEY("_netdev", FUSE_OPT_KEY_DISCARD),
    FUSE_OPT_KEY("user", FUSE_OPT_KEY_DISCARD),
    FUSE_OPT_KEY("nouser", FUSE_OPT_KEY_DISCARD),
    FUSE_OPT_KEY("users", FUSE_OPT_KEY_DISCARD),
    FUSE_OPT_KEY("owner", FUSE_OPT_KEY_DISCARD),
    FUSE_OPT_KEY("group", FUSE_OPT_KEY_DISCARD),
    FUSE_OPT_KEY("comment=", FUSE_OPT_KEY_DISCARD),
    FUSE_OPT_KEY("relatime", FUSE_OPT_KEY_DISCARD),
    FUSE_OPT_KEY("norelatime", FUSE_OPT_KEY_DISCARD),
    FUSE_OPT_KEY("strictatime", FUSE_OPT_KEY_DISCARD),
    FUSE_OPT_KEY("nostrictatime", FUSE_OPT_KEY_DISCARD),
    FUSE_OPT_KEY("lazytime", FUSE_OPT_KEY_DISCARD),
    FUSE_OPT_KEY("nolazytime", FUSE_OPT_KEY_DISCARD),
    FUSE_OPT_KEY("diratime", FUSE_OPT_KEY_DISCARD),
    FUSE_OPT_KEY("nodiratime", FUSE_OPT_KEY_DISCARD),
    FUSE_OPT_END,
};
#if defined(__clang__)
#pragma clang diagnostic pop
#endif

// "name=N" with N a decimal whole number from 0 to UINT_MAX: no sign, blank or suffix.
bool whole_number_option(std::string_view option) {
  const std::string_view value = option.substr(option.find('=') + 1);
  unsigned parsed = 0;
  const auto [end, error] = std::from_chars(value.data(), value.data() + value.size(), parsed);
  return !value.empty() && error == std::errc() && end == value.data() + value.size();
}

int on_option(void* data, const char* arg, int key, fuse_args*) {
  auto* config = static_cast<CliConfig*>(data);
  switch (key) {
    case kKeyWholeNumber:
    case kKeyLibfuseWholeNumber: {
      const std::string_view option(arg);
      if (!whole_number_option(option)) {
        const std::string_view name = option.substr(0, option.find('='));
        std::fprintf(stderr, "payloadfs: bad %.*s '%s' (a whole number from 0 to %u)\n",
                     static_cast<int>(name.size()), name.data(), arg + name.size() + 1, UINT_MAX);
        return -1;
      }
      return key == kKeyLibfuseWholeNumber ? 1 : 0;  // ours: stored by the %u entry
    }
    case kKeyHelp:
      config->help = 1;
      return 0;
    case kKeyVersion:
      config->version = 1;
      return 0;
    case FUSE_OPT_KEY_NONOPT:
      if (config->positional++ == 0) {
        config->source = arg;
        return 0;  // SRC is ours; MNT goes on to fuse_parse_cmdline
      }
      if (config->positional == 2) {
        config->mountpoint = arg;
        return 1;
      }
      std::fprintf(stderr,
                   "payloadfs: unexpected argument '%s' (usage: payloadfs [options] SRC MNT)\n",
                   arg);
      return -1;
    case FUSE_OPT_KEY_OPT:
      // x-systemd.automount, x-mount.mkdir, ...: for mount(8) and systemd, not for us.
      return std::string_view(arg).starts_with("x-") ? 0 : 1;
    default:
      return 1;
  }
}

void print_help() {
  std::printf(
      "usage: payloadfs [options] SRC MNT\n"
      "       payloadfs --inspect [--slices] [--pretty|--compact] FILE|DIR...\n"
      "       payloadfs --check-format DESCRIPTOR.json [FILE...]\n"
      "\n"
      "Mounts SRC read-only at MNT; each file F of SRC becomes a directory MNT/F/ with\n"
      "header.json, slices.json, magic, raw/<slice> and range/<start>-<end>.\n"
      "\n"
      "payloadfs options:\n"
      "    -h, --help             print this help\n"
      "    -V, --version          print the version\n"
      "    --inspect FILE|DIR...  print each file's header.json without mounting (DIRs\n"
      "                           recursively, sorted; one JSON object per line, pretty\n"
      "                           when stdout is a terminal)\n"
      "    --slices               with --inspect: slices.json instead (several files:\n"
      "                           {\"path\", \"slices\"} per line)\n"
      "    --pretty, --compact    with --inspect: force indented or one-line JSON\n"
      "    -o entry_timeout=S     seconds names are cached by the kernel\n"
      "    -o attr_timeout=S      seconds attributes are cached by the kernel\n"
      "    -o negative_timeout=S  seconds missing names are cached\n"
      "                           (defaults: 86400 where SRC is watched with inotify, which\n"
      "                           invalidates what changes; 1 where it is not)\n"
      "    -o inotify=0|1         watch SRC for changes (default 1; 0 on network filesystems)\n"
      "    -o pread=0|1           read payload bytes with pread on I/O threads instead of\n"
      "                           serving them from a mapping, and parse payloads on\n"
      "                           metadata threads (default 1 on FUSE and network sources:\n"
      "                           a stalled source then holds no request thread, and\n"
      "                           direct_io FUSE sources can be read; 0 elsewhere)\n"
      "    -o formats=DIR         load format descriptors (*.json) from DIR, before\n"
      "                           ~/.config/payloadfs/formats and /etc/payloadfs/formats\n"
      "    -o cache_entries=N     parsed payloads (with the mappings of those whose bytes\n"
      "                           were read) kept (default 4096)\n"
      "    -o cache_memory=MiB    and at most about this much memory for them (default 4)\n"
      "    -o range_nodes=N       range/ names kept looked up at once; past N the oldest\n"
      "                           are dropped from the kernel's cache (default 16384;\n"
      "                           0: no limit)\n"
      "    -o read_ahead_kb=N     the mount's readahead window (default 2048; 0 leaves the\n"
      "                           kernel's 128; needs root)\n"
      "    -o log_level=L         error, warn, info or debug (default info; debug with -d);\n"
      "                           stderr with -f/-d, else syslog (LOG_DAEMON)\n"
      "    -o refs_prefix=URL     refs.json points at URL/<path in SRC> instead of the\n"
      "                           source's absolute path (e.g. s3://bucket/data/)\n"
      "    -o spin_us=N           an idle worker polls for the next request for N us before\n"
      "                           it sleeps (default 0: sleep at once); trades CPU for\n"
      "                           latency where waking a thread is slow (VMs)\n"
      "\n");
  fuse_cmdline_help();
  fuse_lowlevel_help();
}

struct ArgsDeleter {
  void operator()(fuse_args* args) const { fuse_opt_free_args(args); }
};
struct SessionDeleter {
  void operator()(fuse_session* se) const { fuse_session_destroy(se); }
};
struct LoopConfigDeleter {
  void operator()(fuse_loop_config* cfg) const { fuse_loop_cfg_destroy(cfg); }
};
struct MountpointDeleter {
  void operator()(char* p) const { std::free(p); }
};

bool is_remote_filesystem(const char* path) {
  struct statfs fs {};
  if (::statfs(path, &fs) != 0) return false;
  switch (static_cast<unsigned long>(fs.f_type)) {
    case 0x6969:      // NFS
    case 0xFF534D42:  // CIFS
    case 0xFE534D42:  // SMB2
    case 0x517B:      // SMB
    case 0x65735546:  // FUSE
    case 0x01021997:  // 9P
    case 0x00C36400:  // Ceph
    case 0x47504653:  // GPFS
    case 0x0BD00BD0:  // Lustre
      return true;
    default:
      return false;
  }
}

// Every open file of the mount holds a descriptor of its source: allow as many as the hard
// limit does (the soft limit is often 1024). Cached payloads hold mappings, not descriptors.
void raise_descriptor_limit() {
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    (void)::setrlimit(RLIMIT_NOFILE, &limit);
  }
}

bool check_mountpoint(const char* mountpoint) {
  struct stat st {};
  if (::stat(mountpoint, &st) != 0) {
    const int err = errno;
    if (err == ENOTCONN) {
      std::fprintf(stderr,
                   "payloadfs: mountpoint '%s' is a dead FUSE mount (%s); clear it with "
                   "'fusermount3 -u %s'\n",
                   mountpoint, std::strerror(err), mountpoint);
    } else {
      std::fprintf(stderr, "payloadfs: mountpoint '%s': %s\n", mountpoint, std::strerror(err));
    }
    return false;
  }
  if (!S_ISDIR(st.st_mode)) {
    std::fprintf(stderr, "payloadfs: mountpoint '%s' is not a directory\n", mountpoint);
    return false;
  }
  return true;
}

int run(int argc, char** argv) {
  fuse_args raw = FUSE_ARGS_INIT(argc, argv);
  std::unique_ptr<fuse_args, ArgsDeleter> args(&raw);
  CliConfig config;
  if (fuse_opt_parse(args.get(), &config, kOptions, on_option) != 0) return 2;
  // fuse_opt allocates %s values with strdup.
  const std::unique_ptr<char, MountpointDeleter> formats_owner(const_cast<char*>(config.formats));
  const std::unique_ptr<char, MountpointDeleter> log_level_owner(
      const_cast<char*>(config.log_level));
  const std::unique_ptr<char, MountpointDeleter> refs_prefix_owner(
      const_cast<char*>(config.refs_prefix));
  if (config.help) {
    print_help();
    return 0;
  }
  if (config.version) {
    std::printf("payloadfs %s\nlibfuse %s\n", payloadfs::kVersion, fuse_pkgversion());
    return 0;
  }
  if (config.positional < 2) {
    std::fprintf(stderr, "payloadfs: %s (usage: payloadfs [options] SRC MNT; see --help)\n",
                 config.positional == 0 ? "missing SRC and MNT" : "missing MNT");
    return 2;
  }
  std::optional<payloadfs::LogLevel> log_level;
  if (config.log_level != nullptr) {
    log_level = payloadfs::parse_log_level(config.log_level);
    if (!log_level) {
      std::fprintf(stderr, "payloadfs: bad log_level '%s' (error, warn, info or debug)\n",
                   config.log_level);
      return 2;
    }
  }
  const auto bad_timeout = [](double t) { return t < 0; };  // false for NaN (unset)
  if (bad_timeout(config.entry_timeout) || bad_timeout(config.attr_timeout) ||
      bad_timeout(config.negative_timeout)) {
    std::fprintf(stderr, "payloadfs: timeouts must not be negative\n");
    return 2;
  }

  char resolved[PATH_MAX];
  if (::realpath(config.source, resolved) == nullptr) {
    std::fprintf(stderr, "payloadfs: source '%s': %s\n", config.source, std::strerror(errno));
    return 1;
  }
  auto root = payloadfs::SourceRoot::open(resolved);
  if (auto* err = std::get_if<payloadfs::SourceRoot::OpenError>(&root)) {
    std::fprintf(stderr, "payloadfs: %s\n", err->message.c_str());
    return 1;
  }
  // Before libfuse sees MNT: a missing one would be its "bad mount point", exit status 2, where
  // the man page says 1 (the mount cannot be made).
  if (!check_mountpoint(config.mountpoint)) return 1;

  // Defaults first so the user's -o can override them; read-only and kernel permission
  // checks last so nothing can.
  const std::string fsname = "-ofsname=" + std::string(resolved);
  fuse_opt_insert_arg(args.get(), 1, "-omax_threads=4");
  fuse_opt_insert_arg(args.get(), 1, "-osubtype=payloadfs");
  if (fuse_opt_insert_arg(args.get(), 1, fsname.c_str()) != 0) return 1;
  fuse_opt_add_arg(args.get(), "-oro,default_permissions");

  fuse_cmdline_opts cmdline{};
  if (fuse_parse_cmdline(args.get(), &cmdline) != 0) return 2;
  std::unique_ptr<char, MountpointDeleter> mountpoint(cmdline.mountpoint);
  if (!mountpoint) {
    std::fprintf(stderr, "payloadfs: missing MNT\n");
    return 2;
  }
  if (::access("/dev/fuse", R_OK | W_OK) != 0) {
    std::fprintf(stderr, "payloadfs: FUSE is unavailable: /dev/fuse: %s\n", std::strerror(errno));
    return 1;
  }
  // Anything else there (/dev/null bound over it in a container, a plain file) would fail the
  // mount with libfuse's message and ours: two lines, and a vaguer one.
  struct stat fuse_device {};
  if (::stat("/dev/fuse", &fuse_device) != 0 || !S_ISCHR(fuse_device.st_mode) ||
      fuse_device.st_rdev != makedev(10, 229)) {  // the misc device FUSE_MINOR
    std::fprintf(stderr, "payloadfs: FUSE is unavailable: /dev/fuse is not the FUSE device\n");
    return 1;
  }
  // -d shows libfuse's request trace, which is logged at debug.
  const payloadfs::LogLevel level =
      log_level.value_or(cmdline.debug ? payloadfs::LogLevel::debug : payloadfs::LogLevel::info);
  payloadfs::log_to_stderr(level);

  MountOptions options;
  const auto set = [](double t) { return std::isnan(t) ? std::nullopt : std::optional<double>(t); };
  options.entry_timeout = set(config.entry_timeout);
  options.attr_timeout = set(config.attr_timeout);
  options.negative_timeout = set(config.negative_timeout);
  options.cache_entries = config.cache_entries;
  options.read_ahead_kb = config.read_ahead_kb;
  options.range_nodes = config.range_nodes;
  options.cache_memory = static_cast<size_t>(config.cache_memory_mb) << 20;
  if (config.refs_prefix != nullptr && *config.refs_prefix != '\0') {
    options.refs_prefix = config.refs_prefix;
    if (payloadfs::utf8_or_escaped(options.refs_prefix) != options.refs_prefix) {
      std::fprintf(stderr, "payloadfs: refs_prefix must be UTF-8\n");
      return 2;
    }
    if (options.refs_prefix.back() != '/') options.refs_prefix += '/';
  }
  char mount_resolved[PATH_MAX];
  if (::realpath(mountpoint.get(), mount_resolved) != nullptr) options.mountpoint = mount_resolved;
  // inotify sees local changes only: on network and FUSE sources, rely on short timeouts.
  // Their bytes are read with pread, off the request workers (see fs/source_io_pool.hpp).
  const bool remote = is_remote_filesystem(resolved);
  options.watch_sources = config.inotify == -1 ? !remote : config.inotify != 0;
  options.pread_sources = config.pread == -1 ? remote : config.pread != 0;
  std::optional<std::string> formats_dir;
  if (config.formats != nullptr) {
    struct stat st {};
    if (::stat(config.formats, &st) != 0 || !S_ISDIR(st.st_mode)) {
      std::fprintf(stderr, "payloadfs: formats directory '%s' is not a directory\n",
                   config.formats);
      return 1;
    }
    formats_dir = config.formats;
  }
  // A bad descriptor stops the mount here, with the file, the JSON path and the problem.
  auto registry = payloadfs::load_registry(payloadfs::descriptor_dirs(formats_dir));
  if (const auto* err = std::get_if<std::string>(&registry)) {
    std::fprintf(stderr, "payloadfs: %s\n", err->c_str());
    return 1;
  }
  std::string format_names;  // for the start-up line
  for (const payloadfs::Format* format : std::get<payloadfs::Registry>(registry).formats())
    format_names += (format_names.empty() ? "" : " ") + std::string(format->name());
  raise_descriptor_limit();
  payloadfs::Filesystem filesystem(std::get<payloadfs::SourceRoot>(std::move(root)),
                                   std::get<payloadfs::Registry>(std::move(registry)), options);

  const fuse_lowlevel_ops ops = payloadfs::make_operations();
  std::unique_ptr<fuse_session, SessionDeleter> session(
      fuse_session_new(args.get(), &ops, sizeof ops, &filesystem));
  if (!session) return 1;  // libfuse said why (unknown option, ...)
  auto stop_signals = payloadfs::StopSignals::install(session.get());
  if (!stop_signals) {
    std::fprintf(stderr, "payloadfs: cannot set up signal handling: %s\n", std::strerror(errno));
    return 1;
  }
  if (fuse_session_mount(session.get(), mountpoint.get()) != 0) {
    std::fprintf(stderr, "payloadfs: cannot mount on '%s'\n", mountpoint.get());
    return 1;
  }
  // The mount exists before we detach: a caller's next command finds it (the kernel queues
  // requests until the loop below answers them).
  if (!cmdline.foreground) payloadfs::log_to_syslog();
  fuse_daemonize(cmdline.foreground);
  payloadfs::log(
      payloadfs::LogLevel::info,
      "serving %s on %s: formats %s%s, inotify %s%s, cache %zu "
      "payloads / %zu MiB, %u threads%s%s, log_level %s",
      resolved, options.mountpoint.empty() ? mountpoint.get() : options.mountpoint.c_str(),
      format_names.c_str(), formats_dir ? (" (descriptors from " + *formats_dir + ")").c_str() : "",
      options.watch_sources ? "on" : "off", options.pread_sources ? ", bytes read with pread" : "",
      options.cache_entries, options.cache_memory >> 20,
      cmdline.singlethread ? 1U : cmdline.max_threads, cmdline.clone_fd ? " (clone_fd)" : "",
      config.spin_us > 0 ? (", spinning " + std::to_string(config.spin_us) + " us").c_str() : "",
      std::string(payloadfs::log_level_name(level)).c_str());
  filesystem.attach(session.get());  // after daemonizing: its thread must live in the daemon
  stop_signals->start([&filesystem] { filesystem.quiesce(); });

  int status = 0;
  if (config.spin_us > 0) {
    status = payloadfs::run_spin_loop(session.get(), cmdline.singlethread ? 1 : cmdline.max_threads,
                                      std::chrono::microseconds(config.spin_us));
    if (status < 0)
      payloadfs::log(payloadfs::LogLevel::error, "reading /dev/fuse: %s", std::strerror(-status));
  } else if (cmdline.singlethread) {
    status = fuse_session_loop(session.get());
  } else {
    std::unique_ptr<fuse_loop_config, LoopConfigDeleter> loop(fuse_loop_cfg_create());
    fuse_loop_cfg_set_clone_fd(loop.get(), static_cast<unsigned>(cmdline.clone_fd));
    fuse_loop_cfg_set_max_threads(loop.get(), cmdline.max_threads);
    if (cmdline.max_idle_threads != UINT_MAX)  // UINT_MAX: not given; keep libfuse's default
      fuse_loop_cfg_set_idle_threads(loop.get(), cmdline.max_idle_threads);
    status = fuse_session_loop_mt(session.get(), loop.get());
  }
  stop_signals.reset();  // its thread may be quiescing: done before detach()
  filesystem.detach();
  fuse_session_unmount(session.get());
  // The loop reports the signal that ended it (SIGTERM, SIGINT, SIGHUP): a clean exit.
  return status >= 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    if (std::string_view(argv[i]) == "--inspect") return payloadfs::run_inspect(argc, argv);
    if (std::string_view(argv[i]) == "--check-format")
      return payloadfs::run_check_format(argc, argv);
  }
  return run(argc, argv);
}

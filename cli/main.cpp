// payloadfs SRC MNT [options]: parses the command line, checks it, mounts, serves.

#include <fuse_lowlevel.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <variant>

#include "cli/command_line.hpp"
#include "cli/format_loading.hpp"
#include "cli/inspect.hpp"
#include "core/io/source_root.hpp"
#include "core/model/registry.hpp"
#include "fs/filesystem.hpp"
#include "fs/log.hpp"
#include "fs/loop_status.hpp"
#include "fs/ops.hpp"
#include "fs/spin_loop.hpp"
#include "fs/stop_signals.hpp"
#include "payloadfs/version.hpp"

namespace {

using payloadfs::MountOptions;
using payloadfs::Registry;
using payloadfs::cli::CommandLine;
using payloadfs::cli::log_level_of;
using payloadfs::cli::mount_options;
using payloadfs::cli::MountSetup;
using payloadfs::cli::parse_command_line;
using payloadfs::cli::print_help;

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

// The loop libfuse runs the session with: single-threaded (-s), spinning (-o spin_us), or
// multi-threaded with -o clone_fd, max_threads and max_idle_threads. Its status: 0 or a
// signal number when a signal ended it, negative on an error.
int run_loop(fuse_session* session, const fuse_cmdline_opts& cmdline, unsigned spin_us) {
  const unsigned threads = cmdline.singlethread ? 1 : cmdline.max_threads;
  if (spin_us > 0) {
    const int status =
        payloadfs::run_spin_loop(session, threads, std::chrono::microseconds(spin_us));
    if (status < 0 && !payloadfs::connection_ended(status))
      payloadfs::log(payloadfs::LogLevel::error, "reading /dev/fuse: %s", std::strerror(-status));
    return status;
  }
  if (cmdline.singlethread) return fuse_session_loop(session);
  std::unique_ptr<fuse_loop_config, LoopConfigDeleter> loop(fuse_loop_cfg_create());
  fuse_loop_cfg_set_clone_fd(loop.get(), static_cast<unsigned>(cmdline.clone_fd));
  fuse_loop_cfg_set_max_threads(loop.get(), cmdline.max_threads);
  if (cmdline.max_idle_threads != UINT_MAX)  // UINT_MAX: not given; keep libfuse's default
    fuse_loop_cfg_set_idle_threads(loop.get(), cmdline.max_idle_threads);
  return fuse_session_loop_mt(session, loop.get());
}

// run_loop's status, with a connection the kernel ended while a request was being read
// counted as the unmount it is (libfuse has printed "reading device" already).
int serve(fuse_session* session, const fuse_cmdline_opts& cmdline, unsigned spin_us) {
  const int status = run_loop(session, cmdline, spin_us);
  if (!payloadfs::connection_ended(status)) return status;
  payloadfs::log(payloadfs::LogLevel::info,
                 "the kernel closed the connection while a request was being read: unmounted");
  return 0;
}

// /dev/fuse is there and is the FUSE device; else a one-line message.
bool check_fuse_device() {
  if (::access("/dev/fuse", R_OK | W_OK) != 0) {
    std::fprintf(stderr, "payloadfs: FUSE is unavailable: /dev/fuse: %s\n", std::strerror(errno));
    return false;
  }
  // Anything else there (/dev/null bound over it in a container, a plain file) would fail the
  // mount with libfuse's message and ours: two lines, and a vaguer one.
  struct stat fuse_device {};
  if (::stat("/dev/fuse", &fuse_device) != 0 || !S_ISCHR(fuse_device.st_mode) ||
      fuse_device.st_rdev != makedev(10, 229)) {  // the misc device FUSE_MINOR
    std::fprintf(stderr, "payloadfs: FUSE is unavailable: /dev/fuse is not the FUSE device\n");
    return false;
  }
  return true;
}

// SRC resolved and opened, or the exit status after a message.
payloadfs::Result<payloadfs::SourceRoot> open_source(const char* source, std::string* resolved) {
  char path[PATH_MAX];
  if (::realpath(source, path) == nullptr) {
    std::fprintf(stderr, "payloadfs: source '%s': %s\n", source, std::strerror(errno));
    return 1;
  }
  *resolved = path;
  auto root = payloadfs::SourceRoot::open(path);
  if (auto* err = std::get_if<payloadfs::SourceRoot::OpenError>(&root)) {
    std::fprintf(stderr, "payloadfs: %s\n", err->message.c_str());
    return 1;
  }
  return std::get<payloadfs::SourceRoot>(std::move(root));
}

std::string format_names(const Registry& registry) {
  std::string names;
  for (const payloadfs::Format* format : registry.formats())
    names += (names.empty() ? "" : " ") + std::string(format->name());
  return names;
}

// The start-up line: what is served where, and how.
void log_start(const std::string& source, const char* mountpoint, const std::string& formats,
               const MountSetup& setup, const fuse_cmdline_opts& cmdline, unsigned spin_us,
               payloadfs::LogLevel level) {
  const MountOptions& options = setup.options;
  const std::string descriptors =
      setup.formats_dir ? " (descriptors from " + *setup.formats_dir + ")" : "";
  const std::string spinning =
      spin_us > 0 ? ", spinning " + std::to_string(spin_us) + " us" : std::string();
  payloadfs::log(payloadfs::LogLevel::info,
                 "serving %s on %s: formats %s%s, inotify %s%s, cache %zu "
                 "payloads / %zu MiB, %u threads%s%s, log_level %s",
                 source.c_str(),
                 options.mountpoint.empty() ? mountpoint : options.mountpoint.c_str(),
                 formats.c_str(), descriptors.c_str(), options.watch_sources ? "on" : "off",
                 options.pread_sources ? ", bytes read with pread" : "", options.cache_entries,
                 options.cache_memory >> 20, cmdline.singlethread ? 1U : cmdline.max_threads,
                 cmdline.clone_fd ? " (clone_fd)" : "", spinning.c_str(),
                 std::string(payloadfs::log_level_name(level)).c_str());
}

// Mounts and serves until unmounted or stopped by a signal; the exit status.
int mount_and_serve(fuse_args* args, const fuse_cmdline_opts& cmdline, const CommandLine& line,
                    payloadfs::Filesystem& filesystem, const std::function<void()>& log_started) {
  const fuse_lowlevel_ops ops = payloadfs::make_operations();
  std::unique_ptr<fuse_session, SessionDeleter> session(
      fuse_session_new(args, &ops, sizeof ops, &filesystem));
  if (!session) return 1;  // libfuse said why (unknown option, ...)
  auto stop_signals = payloadfs::StopSignals::install(session.get());
  if (!stop_signals) {
    std::fprintf(stderr, "payloadfs: cannot set up signal handling: %s\n", std::strerror(errno));
    return 1;
  }
  if (fuse_session_mount(session.get(), cmdline.mountpoint) != 0) {
    std::fprintf(stderr, "payloadfs: cannot mount on '%s'\n", cmdline.mountpoint);
    return 1;
  }
  // The mount exists before we detach: a caller's next command finds it (the kernel queues
  // requests until the loop below answers them).
  if (!cmdline.foreground) payloadfs::log_to_syslog();
  fuse_daemonize(cmdline.foreground);
  log_started();
  filesystem.attach(session.get());  // after daemonizing: its thread must live in the daemon
  stop_signals->start([&filesystem] { filesystem.quiesce(); });
  const int status = serve(session.get(), cmdline, line.spin_us);
  stop_signals.reset();  // its thread may be quiescing: done before detach()
  filesystem.detach();
  fuse_session_unmount(session.get());
  // The loop reports the signal that ended it (SIGTERM, SIGINT, SIGHUP): a clean exit.
  return status >= 0 ? 0 : 1;
}

int run(int argc, char** argv) {
  fuse_args raw = FUSE_ARGS_INIT(argc, argv);
  std::unique_ptr<fuse_args, ArgsDeleter> args(&raw);
  CommandLine line;
  if (const auto status = parse_command_line(args.get(), &line)) return *status;
  if (line.help) {
    print_help();
    return 0;
  }
  if (line.version) {
    std::printf("payloadfs %s\nlibfuse %s\n", payloadfs::kVersion, fuse_pkgversion());
    return 0;
  }
  std::string resolved;
  auto root = open_source(line.source, &resolved);
  if (const int* status = payloadfs::error_of(root)) return *status;
  // Before libfuse sees MNT: a missing one would be its "bad mount point", exit status 2, where
  // the man page says 1 (the mount cannot be made).
  if (!check_mountpoint(line.mountpoint)) return 1;

  // Defaults first so the user's -o can override them; read-only and kernel permission
  // checks last so nothing can.
  const std::string fsname = "-ofsname=" + resolved;
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
  if (!check_fuse_device()) return 1;
  // -d shows libfuse's request trace, which is logged at debug.
  const payloadfs::LogLevel level =
      log_level_of(line, cmdline.debug ? payloadfs::LogLevel::debug : payloadfs::LogLevel::info);
  payloadfs::log_to_stderr(level);

  MountSetup setup;
  if (const auto status = mount_options(line, resolved.c_str(), mountpoint.get(), &setup))
    return *status;
  // A bad descriptor stops the mount here, with the file, the JSON path and the problem.
  auto registry = payloadfs::load_registry(payloadfs::descriptor_dirs(setup.formats_dir));
  if (const auto* err = std::get_if<std::string>(&registry)) {
    std::fprintf(stderr, "payloadfs: %s\n", err->c_str());
    return 1;
  }
  const std::string formats = format_names(std::get<Registry>(registry));
  raise_descriptor_limit();
  payloadfs::Filesystem filesystem(std::move(payloadfs::value_of(root)),
                                   std::get<Registry>(std::move(registry)), setup.options);
  return mount_and_serve(args.get(), cmdline, line, filesystem, [&] {
    log_start(resolved, mountpoint.get(), formats, setup, cmdline, line.spin_us, level);
  });
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

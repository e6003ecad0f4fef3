#include "cli/command_line.hpp"

#include <sys/stat.h>
#include <sys/vfs.h>

#include <charconv>
#include <climits>
#include <cmath>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <string_view>

#include "core/render/json_text.hpp"

namespace payloadfs::cli {

CommandLine::~CommandLine() {
  // fuse_opt allocates %s values with strdup.
  std::free(formats);
  std::free(log_level);
  std::free(refs_prefix);
}

namespace {

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
    FUSE_OPT_KEY("nest_depth=", kKeyWholeNumber),
    FUSE_OPT_KEY("spin_us=", kKeyWholeNumber),
    FUSE_OPT_KEY("max_threads=", kKeyLibfuseWholeNumber),
    FUSE_OPT_KEY("max_idle_threads=", kKeyLibfuseWholeNumber),
    {"entry_timeout=%lf", offsetof(CommandLine, entry_timeout), 0},
    {"attr_timeout=%lf", offsetof(CommandLine, attr_timeout), 0},
    {"negative_timeout=%lf", offsetof(CommandLine, negative_timeout), 0},
    {"cache_entries=%u", offsetof(CommandLine, cache_entries), 0},
    {"inotify=%d", offsetof(CommandLine, inotify), 0},
    {"pread=%d", offsetof(CommandLine, pread), 0},
    {"formats=%s", offsetof(CommandLine, formats), 0},
    {"read_ahead_kb=%u", offsetof(CommandLine, read_ahead_kb), 0},
    {"cache_memory=%u", offsetof(CommandLine, cache_memory_mb), 0},
    {"range_nodes=%u", offsetof(CommandLine, range_nodes), 0},
    {"nest_depth=%u", offsetof(CommandLine, nest_depth), 0},
    {"log_level=%s", offsetof(CommandLine, log_level), 0},
    {"refs_prefix=%s", offsetof(CommandLine, refs_prefix), 0},
    {"spin_us=%u", offsetof(CommandLine, spin_us), 0},
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
  auto* config = static_cast<CommandLine*>(data);
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

}  // namespace

std::optional<int> parse_command_line(fuse_args* args, CommandLine* line) {
  if (fuse_opt_parse(args, line, kOptions, on_option) != 0) return 2;
  if (line->help || line->version) return std::nullopt;
  if (line->positional < 2) {
    std::fprintf(stderr, "payloadfs: %s (usage: payloadfs [options] SRC MNT; see --help)\n",
                 line->positional == 0 ? "missing SRC and MNT" : "missing MNT");
    return 2;
  }
  if (line->log_level != nullptr && !parse_log_level(line->log_level)) {
    std::fprintf(stderr, "payloadfs: bad log_level '%s' (error, warn, info or debug)\n",
                 line->log_level);
    return 2;
  }
  const auto bad_timeout = [](double t) { return t < 0; };  // false for NaN (unset)
  if (bad_timeout(line->entry_timeout) || bad_timeout(line->attr_timeout) ||
      bad_timeout(line->negative_timeout)) {
    std::fprintf(stderr, "payloadfs: timeouts must not be negative\n");
    return 2;
  }
  if (line->nest_depth > MountOptions::kMaxNestDepth) {
    std::fprintf(stderr, "payloadfs: nest_depth must be at most %u\n", MountOptions::kMaxNestDepth);
    return 2;
  }
  return std::nullopt;
}

LogLevel log_level_of(const CommandLine& line, LogLevel fallback) {
  if (line.log_level == nullptr) return fallback;
  return parse_log_level(line.log_level).value_or(fallback);
}

std::optional<int> mount_options(const CommandLine& line, const char* source,
                                 const char* mountpoint, MountSetup* setup) {
  MountOptions& options = setup->options;
  const auto set = [](double t) { return std::isnan(t) ? std::nullopt : std::optional<double>(t); };
  options.entry_timeout = set(line.entry_timeout);
  options.attr_timeout = set(line.attr_timeout);
  options.negative_timeout = set(line.negative_timeout);
  options.cache_entries = line.cache_entries;
  options.read_ahead_kb = line.read_ahead_kb;
  options.range_nodes = line.range_nodes;
  options.nest_depth = line.nest_depth;
  options.cache_memory = static_cast<size_t>(line.cache_memory_mb) << 20;
  if (line.refs_prefix != nullptr && *line.refs_prefix != '\0') {
    options.refs_prefix = line.refs_prefix;
    if (utf8_or_escaped(options.refs_prefix) != options.refs_prefix) {
      std::fprintf(stderr, "payloadfs: refs_prefix must be UTF-8\n");
      return 2;
    }
    if (options.refs_prefix.back() != '/') options.refs_prefix += '/';
  }
  char mount_resolved[PATH_MAX];
  if (::realpath(mountpoint, mount_resolved) != nullptr) options.mountpoint = mount_resolved;
  // inotify sees local changes only: on network and FUSE sources, rely on short timeouts.
  // Their bytes are read with pread, off the request workers (see fs/source_io_pool.hpp).
  const bool remote = is_remote_filesystem(source);
  options.watch_sources = line.inotify == -1 ? !remote : line.inotify != 0;
  options.pread_sources = line.pread == -1 ? remote : line.pread != 0;
  if (line.formats != nullptr) {
    struct stat st {};
    if (::stat(line.formats, &st) != 0 || !S_ISDIR(st.st_mode)) {
      std::fprintf(stderr, "payloadfs: formats directory '%s' is not a directory\n", line.formats);
      return 1;
    }
    setup->formats_dir = line.formats;
  }
  return std::nullopt;
}

void print_help() {
  // The defaults are MountOptions' (fs/options.hpp), written there only.
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
      "                           were read) kept (default %zu)\n"
      "    -o cache_memory=MiB    and at most about this much memory for them (default %zu)\n"
      "    -o range_nodes=N       range/ names kept looked up at once; past N the oldest\n"
      "                           are dropped from the kernel's cache (default %u;\n"
      "                           0: no limit)\n"
      "    -o nest_depth=N        levels of nested/ (payloads in a container's stored\n"
      "                           members) shown (default %u; 0: none; at most %u)\n"
      "    -o read_ahead_kb=N     the mount's readahead window (default %u; 0 leaves the\n"
      "                           kernel's 128; needs root)\n"
      "    -o log_level=L         error, warn, info or debug (default info; debug with -d);\n"
      "                           stderr with -f/-d, else syslog (LOG_DAEMON)\n"
      "    -o refs_prefix=URL     refs.json points at URL/<path in SRC> instead of the\n"
      "                           source's absolute path (e.g. s3://bucket/data/)\n"
      "    -o spin_us=N           an idle worker polls for the next request for N us before\n"
      "                           it sleeps (default 0: sleep at once); trades CPU for\n"
      "                           latency where waking a thread is slow (VMs)\n"
      "\n",
      MountOptions::kDefaultCacheEntries, MountOptions::kDefaultCacheMemory >> 20,
      MountOptions::kDefaultRangeNodes, MountOptions::kDefaultNestDepth,
      MountOptions::kMaxNestDepth, MountOptions::kDefaultReadAheadKb);
  fuse_cmdline_help();
  fuse_lowlevel_help();
}

}  // namespace payloadfs::cli

#pragma once
// The mount's command line: payloadfs's own -o options, SRC and MNT, taken out of the
// arguments before libfuse reads the rest (its -o options, -f, -d, -s, MNT).

#include <fuse_lowlevel.h>

#include <limits>
#include <optional>
#include <string>

#include "fs/log.hpp"
#include "fs/options.hpp"

namespace payloadfs::cli {

// Filled by fuse_opt_parse (plain fields, at offsets the option table names); the defaults
// are MountOptions'. Owns the strings fuse_opt allocates.
struct CommandLine {
  static constexpr double kUnset = std::numeric_limits<double>::quiet_NaN();

  double entry_timeout = kUnset;
  double attr_timeout = kUnset;
  double negative_timeout = kUnset;
  int inotify = -1;  // -1: not given (on unless SRC is remote)
  int pread = -1;    // -1: not given (on when SRC is remote)
  unsigned cache_entries = MountOptions::kDefaultCacheEntries;
  unsigned read_ahead_kb = MountOptions::kDefaultReadAheadKb;
  unsigned range_nodes = MountOptions::kDefaultRangeNodes;
  unsigned nest_depth = MountOptions::kDefaultNestDepth;
  char* formats = nullptr;
  unsigned cache_memory_mb = MountOptions::kDefaultCacheMemory >> 20;
  char* log_level = nullptr;
  char* refs_prefix = nullptr;
  unsigned spin_us = 0;
  int help = 0;
  int version = 0;
  const char* source = nullptr;
  const char* mountpoint = nullptr;  // as given (libfuse resolves it)
  int positional = 0;

  CommandLine() = default;
  CommandLine(const CommandLine&) = delete;
  CommandLine& operator=(const CommandLine&) = delete;
  ~CommandLine();
};

// Takes payloadfs's options and SRC out of `args` into `line` and checks what needs no file
// system: whole numbers, the log level, timeouts. Returns the exit status for a bad command
// line (2, after a one-line message on stderr), or nothing to go on. With -h or -V it returns
// nothing too: the caller prints help or the version (libfuse's need `args` parsed first).
[[nodiscard]] std::optional<int> parse_command_line(fuse_args* args, CommandLine* line);

// The level -o log_level asks for (parse_command_line checked it), else `fallback`.
[[nodiscard]] LogLevel log_level_of(const CommandLine& line, LogLevel fallback);

// MountOptions from the command line, for SRC at `source` (resolved) and MNT at `mountpoint`
// (as libfuse resolved it). On a bad value: a one-line message and the exit status.
struct MountSetup {
  MountOptions options;
  std::optional<std::string> formats_dir;  // -o formats=DIR
};
[[nodiscard]] std::optional<int> mount_options(const CommandLine& line, const char* source,
                                               const char* mountpoint, MountSetup* setup);

void print_help();

}  // namespace payloadfs::cli

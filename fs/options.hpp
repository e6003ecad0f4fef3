#pragma once
// payloadfs's own mount options (-o name=value); the rest go to libfuse.

#include <cstddef>
#include <optional>
#include <string>

#include "core/payload_cache.hpp"

namespace payloadfs {

struct MountOptions {
  // Seconds the kernel may cache names, attributes and "no such name" answers. Unset means:
  // kWatchedTimeout where SRC's changes are watched (inotify invalidates exactly what
  // changed), kUnwatchedTimeout elsewhere (changes show when the cache expires).
  std::optional<double> entry_timeout;
  std::optional<double> attr_timeout;
  std::optional<double> negative_timeout;
  bool watch_sources = true;  // -o inotify=0 turns it off
  // Serve payload bytes with pread on a pool of I/O threads instead of from a mapping
  // (default on FUSE and network sources; -o pread=0|1): see fs/source_io_pool.hpp.
  bool pread_sources = false;
  // The defaults of the options below, written here only (the command line and its help
  // text take them from here).
  static constexpr size_t kDefaultCacheEntries = PayloadCache::kDefaultCapacity;
  static constexpr size_t kDefaultCacheMemory = PayloadCache::kDefaultMemoryBudget;
  // The default costs the kernel about 16 MB of inodes and dentries at most, and us 3 MB.
  static constexpr unsigned kDefaultRangeNodes = 16384;
  static constexpr unsigned kDefaultReadAheadKb = 2048;
  // Levels of nested/ (core/nesting.hpp): 0 shows none.
  static constexpr unsigned kDefaultNestDepth = NestLimits::kDefaultDepth;
  static constexpr unsigned kMaxNestDepth = NestLimits::kMaxDepth;

  size_t cache_entries = kDefaultCacheEntries;  // payloads (mappings + parsed layouts) kept
  size_t cache_memory = kDefaultCacheMemory;    // and about this many bytes of them
  // range/ nodes kept live (fs/range_node_limit.hpp); 0: no limit.
  size_t range_nodes = kDefaultRangeNodes;
  unsigned read_ahead_kb = kDefaultReadAheadKb;  // the mount's readahead window; 0: the kernel's
  unsigned nest_depth = kDefaultNestDepth;       // levels of nested/ shown
  std::string mountpoint;                        // resolved, to find the mount's bdi
  // refs.json's references are this followed by the file's path in SRC; empty: SRC's
  // absolute path and '/'. Ends with '/' when set.
  std::string refs_prefix;

  static constexpr double kWatchedTimeout = 86400.0;
  static constexpr double kUnwatchedTimeout = 1.0;
};

}  // namespace payloadfs

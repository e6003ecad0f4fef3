#pragma once
// Payloads by source path, bounded (least recently used goes first). A lookup revalidates the
// source's identity (dev, ino, size, mtime, ctime) and rebuilds the payload when it changed;
// a payload whose source failed to read while it was built is returned but not kept. Evicting drops
// the cache's reference only: open files keep their payload alive. The memory budget counts each
// payload's memory_estimate(), which is counted from what it holds.
//
// Nested payloads (nested/, see core/nesting.hpp) are cached here too, keyed by the file's path
// and the chain of slice paths leading to them, and checked against the identity of the file
// they lie in: a changed file misses every nested entry of it exactly as it misses its own.

#include <atomic>
#include <chrono>
#include <cstddef>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "core/io/source_root.hpp"
#include "core/model/registry.hpp"
#include "core/payload.hpp"

namespace payloadfs {

class PayloadCache {
 public:
  struct FormatCounts {
    uint64_t parsed = 0;
    uint64_t with_errors = 0;
  };
  struct Counters {
    uint64_t hits = 0;
    uint64_t misses = 0;  // lookups of a regular file that found no current entry
    uint64_t builds = 0;
    uint64_t builds_with_errors = 0;
    uint64_t uncached_builds = 0;  // builds whose source failed to read (not kept)
    uint64_t evictions = 0;
    size_t cached = 0;
    size_t memory = 0;  // estimated bytes held by cached payloads
    size_t capacity = 0;
    size_t memory_budget = 0;
    std::map<std::string, FormatCounts, std::less<>> formats;  // builds by format name
  };
  // Whether a get() built the payload it returned (a miss), and how long parsing took.
  struct Built {
    bool fresh = false;
    std::chrono::steady_clock::duration took{};
  };

  // Keeps at most `capacity` payloads and about `memory_budget` bytes of them (the most
  // recently used one is kept whatever its size).
  PayloadCache(const SourceRoot& root, const Registry& registry, size_t capacity,
               size_t memory_budget = kDefaultMemoryBudget,
               unsigned nest_depth = NestLimits::kDefaultDepth);
  // A mount's defaults (-o cache_entries, cache_memory).
  static constexpr size_t kDefaultCapacity = 4096;
  static constexpr size_t kDefaultMemoryBudget = size_t{4} << 20;

  // The current payload of the regular file at `rel`, or an errno value.
  [[nodiscard]] Result<std::shared_ptr<const Payload>> get(const std::string& rel,
                                                           Built* built = nullptr);
  // The current payload nested at `chain` (slice paths joined by '\0', see Nesting) in the
  // regular file at `rel`; `chain` empty is get(rel). ENOENT when a link of the chain is not
  // a nestable slice of the current version, or is deeper than nest_depth().
  [[nodiscard]] Result<std::shared_ptr<const Payload>> get_nested(const std::string& rel,
                                                                  const std::string& chain,
                                                                  Built* built = nullptr);
  // How many levels of nested/ a mount shows (-o nest_depth; 0: none).
  [[nodiscard]] unsigned nest_depth() const noexcept { return nest_depth_; }
  [[nodiscard]] const Registry& registry() const noexcept { return registry_; }
  [[nodiscard]] Counters counters() const;

 private:
  struct Entry {
    std::shared_ptr<const Payload> payload;
    std::list<std::string>::iterator recency;
  };
  // The cached payload of `rel` if it is that version (counting a hit), else null (counting
  // a miss if `count_miss`).
  [[nodiscard]] std::shared_ptr<const Payload> cached(const std::string& rel,
                                                      const SourceIdentity& identity,
                                                      bool count_miss);
  // Counts a build of `payload` and keeps it under `key` (unless its source failed).
  void keep(const std::string& key, const std::shared_ptr<const Payload>& payload);

  const SourceRoot& root_;
  const Registry& registry_;
  const size_t capacity_;
  const size_t memory_budget_;
  const unsigned nest_depth_;

  // Guards everything below; never held while building a payload.
  mutable std::mutex mutex_;
  std::unordered_map<std::string, Entry> entries_;
  std::list<std::string> recency_;  // front = most recently used
  Counters counters_;
  size_t memory_ = 0;
};

}  // namespace payloadfs

#include "core/payload_cache.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <vector>

namespace payloadfs {

PayloadCache::PayloadCache(const SourceRoot& root, const Registry& registry, size_t capacity,
                           size_t memory_budget, unsigned nest_depth)
    : root_(root),
      registry_(registry),
      capacity_(capacity == 0 ? 1 : capacity),
      memory_budget_(memory_budget),
      nest_depth_(std::min(nest_depth, NestLimits::kMaxDepth)) {}

Result<std::shared_ptr<const Payload>> PayloadCache::get(const std::string& rel, Built* built) {
  if (built != nullptr) *built = Built{};
  // Revalidated by a stat of the name, not an open: opening a file of a FUSE source can wait
  // for a read under way on it, and a cache hit needs no descriptor.
  auto now = root_.stat(rel);
  if (const int* err = error_of(now)) return *err;
  if (!S_ISREG(value_of(now).st_mode)) return ENOENT;
  if (auto hit = cached(rel, SourceIdentity::of(value_of(now)), true)) return hit;
  auto opened = root_.open_file(rel);
  if (const int* err = error_of(opened)) return *err;
  const UniqueFd fd = std::move(value_of(opened));
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return errno;
  if (!S_ISREG(st.st_mode)) return ENOENT;
  if (auto hit = cached(rel, SourceIdentity::of(st), false)) return hit;  // built meanwhile
  const auto started = std::chrono::steady_clock::now();
  auto payload = Payload::build(rel, fd.get(), st, registry_);
  if (built != nullptr) *built = Built{true, std::chrono::steady_clock::now() - started};
  keep(rel, payload);
  return payload;
}

Result<std::shared_ptr<const Payload>> PayloadCache::get_nested(const std::string& rel,
                                                                const std::string& chain,
                                                                Built* built) {
  if (chain.empty()) return get(rel, built);
  if (built != nullptr) *built = Built{};
  const size_t level = 1 + static_cast<size_t>(std::count(chain.begin(), chain.end(), '\0'));
  if (level > nest_depth_) return ENOENT;
  auto file = get(rel);
  if (const int* err = error_of(file)) return *err;
  // A path of SRC holds no NUL: the key cannot be another file's.
  const std::string key = rel + '\0' + chain;
  if (auto hit = cached(key, value_of(file)->identity(), true)) return hit;
  const size_t last = chain.rfind('\0');
  const std::string slice_path = last == std::string::npos ? chain : chain.substr(last + 1);
  auto got_container =
      last == std::string::npos ? std::move(file) : get_nested(rel, chain.substr(0, last));
  if (const int* err = error_of(got_container)) return *err;
  const auto container = std::move(value_of(got_container));
  auto opened = root_.open_file(rel);
  if (const int* err = error_of(opened)) return *err;
  const UniqueFd fd = std::move(value_of(opened));
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return errno;
  if (!(SourceIdentity::of(st) == container->identity())) return ESTALE;  // changed meanwhile
  const auto entry = container->tree().find(slice_path);
  if (!entry || entry->kind != SliceTree::Entry::Kind::slice) return ENOENT;
  const size_t slice = container->tree().node(entry->node).slice;
  const FdSource source(fd.get(), container->size());
  if (!container->nested_members(registry_, source).holds_slice(slice)) return ENOENT;
  if (auto hit = cached(key, container->identity(), false)) return hit;  // built meanwhile
  const auto started = std::chrono::steady_clock::now();
  auto payload = Payload::build_nested(*container, slice_path, container->slices()[slice].range,
                                       fd.get(), registry_);
  if (built != nullptr) *built = Built{true, std::chrono::steady_clock::now() - started};
  keep(key, payload);
  return payload;
}

void PayloadCache::keep(const std::string& key, const std::shared_ptr<const Payload>& payload) {
  // Payloads replaced or evicted here are destroyed after the lock is released (declared before
  // it): freeing a large one takes time, and trims the heap (see Payload::kTrimBytes).
  std::vector<std::shared_ptr<const Payload>> dropped;
  const std::lock_guard lock(mutex_);
  ++counters_.builds;
  const bool with_errors = !payload->errors().empty();
  if (with_errors) ++counters_.builds_with_errors;
  auto format = counters_.formats.find(payload->format());
  if (format == counters_.formats.end())
    format = counters_.formats.emplace(std::string(payload->format()), FormatCounts{}).first;
  ++format->second.parsed;
  if (with_errors) ++format->second.with_errors;
  // Reading the source failed: served as built (its errors say so), parsed again next time.
  if (payload->source_failed()) {
    ++counters_.uncached_builds;
    return;
  }
  auto [it, inserted] = entries_.try_emplace(key);
  if (inserted) {
    recency_.push_front(key);
    it->second.recency = recency_.begin();
  } else {
    memory_ -= it->second.payload->memory_estimate();
    recency_.splice(recency_.begin(), recency_, it->second.recency);
    dropped.push_back(std::move(it->second.payload));
  }
  it->second.payload = payload;
  memory_ += payload->memory_estimate();
  while (entries_.size() > capacity_ || (memory_ > memory_budget_ && entries_.size() > 1)) {
    const auto victim = entries_.find(recency_.back());
    memory_ -= victim->second.payload->memory_estimate();
    dropped.push_back(std::move(victim->second.payload));
    entries_.erase(victim);
    recency_.pop_back();
    ++counters_.evictions;
  }
}

std::shared_ptr<const Payload> PayloadCache::cached(const std::string& rel,
                                                    const SourceIdentity& identity,
                                                    bool count_miss) {
  const std::lock_guard lock(mutex_);
  const auto it = entries_.find(rel);
  if (it == entries_.end() || !(it->second.payload->identity() == identity)) {
    if (count_miss) ++counters_.misses;
    return nullptr;
  }
  recency_.splice(recency_.begin(), recency_, it->second.recency);
  ++counters_.hits;
  return it->second.payload;
}

PayloadCache::Counters PayloadCache::counters() const {
  const std::lock_guard lock(mutex_);
  Counters out = counters_;
  out.cached = entries_.size();
  out.memory = memory_;
  out.capacity = capacity_;
  out.memory_budget = memory_budget_;
  return out;
}

}  // namespace payloadfs

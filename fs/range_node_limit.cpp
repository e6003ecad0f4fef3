#include "fs/range_node_limit.hpp"

#include <algorithm>
#include <chrono>
#include <utility>

namespace payloadfs {
namespace {

// The kernel sends FORGET for a pruned node some time after the notification (when its
// dentry is gone and nobody holds the file): the next batch waits this long for them to land
// so it does not prune again what is already on its way out.
constexpr auto kForgetGrace = std::chrono::milliseconds(50);

}  // namespace

RangeNodeLimit::RangeNodeLimit(size_t limit, LiveCount live_count, IsLive is_live, Prune prune)
    : limit_(limit),
      low_water_(limit - limit / 8),
      live_count_(std::move(live_count)),
      is_live_(std::move(is_live)),
      prune_(std::move(prune)),
      compact_at_(2 * limit),
      thread_([this] { run(); }) {}

RangeNodeLimit::~RangeNodeLimit() {
  stop();
}

void RangeNodeLimit::stop() {
  {
    const std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

uint64_t RangeNodeLimit::pruned() const {
  const std::lock_guard lock(mutex_);
  return pruned_;
}

size_t RangeNodeLimit::queued() const {
  const std::lock_guard lock(mutex_);
  return oldest_first_.size();
}

void RangeNodeLimit::looked_up(fuse_ino_t parent, fuse_ino_t child, std::string_view name) {
  bool over = false;
  {
    const std::lock_guard lock(mutex_);
    if (stopping_) return;
    if (queued_.insert(child).second) oldest_first_.push_back({parent, child, std::string(name)});
    compact();
    over = live_count_() > limit_;
  }
  if (over) wake_.notify_one();
}

void RangeNodeLimit::compact() {
  if (oldest_first_.size() <= compact_at_) return;
  std::deque<Candidate> kept;
  for (auto& candidate : oldest_first_) {
    if (is_live_(candidate.child))
      kept.push_back(std::move(candidate));
    else
      queued_.erase(candidate.child);
  }
  oldest_first_ = std::move(kept);
  // Live nodes the kernel would not let go of stay queued: compact again only at twice as
  // many, so that a queue of them costs amortised O(1) a lookup.
  compact_at_ = std::max(2 * limit_, 2 * oldest_first_.size());
}

void RangeNodeLimit::run() {
  std::unique_lock lock(mutex_);
  while (true) {
    wake_.wait(lock,
               [this] { return stopping_ || (live_count_() > limit_ && !oldest_first_.empty()); });
    if (stopping_) return;
    // Read again: FORGETs may have brought it under the low water since the wait ended.
    const size_t now = live_count_();
    size_t excess = now > low_water_ ? now - low_water_ : 0;
    while (excess > 0 && !oldest_first_.empty() && !stopping_) {
      Candidate oldest = std::move(oldest_first_.front());
      oldest_first_.pop_front();
      queued_.erase(oldest.child);
      lock.unlock();
      const bool live = is_live_(oldest.child);
      if (live) prune_(oldest.parent, oldest.child, oldest.name);
      lock.lock();
      if (live) {
        ++pruned_;
        --excess;
      }
    }
    wake_.wait_for(lock, kForgetGrace, [this] { return stopping_; });
  }
}

}  // namespace payloadfs

#include "fs/range_node_limit.hpp"

#include <utility>

namespace payloadfs {

RangeNodeLimit::RangeNodeLimit(size_t limit, IsLive is_live, Prune prune)
    : limit_(limit),
      low_water_(limit - limit / 8),
      is_live_(std::move(is_live)),
      prune_(std::move(prune)),
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

std::string RangeNodeLimit::key_of(fuse_ino_t child, std::string_view name) {
  std::string key = std::to_string(child);
  key += '/';
  key += name;
  return key;
}

void RangeNodeLimit::looked_up(fuse_ino_t parent, fuse_ino_t child, std::string_view name) {
  bool over = false;
  {
    const std::lock_guard lock(mutex_);
    if (stopping_ || !queued_.insert(key_of(child, name)).second) return;
    oldest_first_.push_back({parent, child, std::string(name)});
    over = oldest_first_.size() > limit_;
  }
  if (over) wake_.notify_one();
}

void RangeNodeLimit::run() {
  std::unique_lock lock(mutex_);
  while (true) {
    wake_.wait(lock, [this] { return stopping_ || oldest_first_.size() > limit_; });
    if (stopping_) return;
    while (oldest_first_.size() > low_water_ && !stopping_) {
      Name oldest = std::move(oldest_first_.front());
      oldest_first_.pop_front();
      queued_.erase(key_of(oldest.child, oldest.name));
      lock.unlock();
      // A node the kernel forgot by itself has no name left to drop.
      const bool dropped =
          is_live_(oldest.child) && prune_(oldest.parent, oldest.child, oldest.name);
      lock.lock();
      if (dropped) ++pruned_;
    }
  }
}

}  // namespace payloadfs

#pragma once
// Directory listings between the READDIR requests of one pass over a directory. The kernel
// opens directories itself (FUSE_CAP_NO_OPENDIR_SUPPORT), so READDIR carries no handle: a
// pass starts at offset 0, which lists afresh, and the pass's later requests continue that
// listing. The kernel caches what it read (FOPEN_CACHE_DIR), so a directory is listed once
// until it changes; a listing is dropped at its end, or when too many passes are under way
// (a pass that then continues lists again: slower, never wrong).

#include <fuse_lowlevel.h>

#include <cstddef>
#include <memory>
#include <mutex>
#include <unordered_map>

#include "fs/open_handles.hpp"

namespace payloadfs {

class DirListings {
 public:
  [[nodiscard]] std::shared_ptr<const OpenDir> find(fuse_ino_t ino) const {
    const std::lock_guard lock(mutex_);
    const auto it = by_ino_.find(ino);
    return it == by_ino_.end() ? nullptr : it->second;
  }
  void keep(fuse_ino_t ino, std::shared_ptr<const OpenDir> listing) {
    std::shared_ptr<const OpenDir> evicted;  // freed outside the lock
    const std::lock_guard lock(mutex_);
    if (by_ino_.size() >= kMaxListings && by_ino_.find(ino) == by_ino_.end()) {
      evicted = std::move(by_ino_.begin()->second);
      by_ino_.erase(by_ino_.begin());
    }
    by_ino_[ino] = std::move(listing);
  }
  // The pass over `listing` reached its end: drop it, unless a newer pass replaced it.
  void done(fuse_ino_t ino, const OpenDir* listing) {
    std::shared_ptr<const OpenDir> doomed;
    const std::lock_guard lock(mutex_);
    if (auto it = by_ino_.find(ino); it != by_ino_.end() && it->second.get() == listing) {
      doomed = std::move(it->second);
      by_ino_.erase(it);
    }
  }
  [[nodiscard]] size_t size() const {
    const std::lock_guard lock(mutex_);
    return by_ino_.size();
  }

 private:
  static constexpr size_t kMaxListings = 64;
  mutable std::mutex mutex_;
  std::unordered_map<fuse_ino_t, std::shared_ptr<const OpenDir>> by_ino_;
};

}  // namespace payloadfs

#pragma once
// Owns the objects behind fuse_file_info::fh. The kernel gets the object's address (so a read
// finds its handle without a lock or a lookup); the table keeps ownership, so handles the kernel
// never released (unmount with files open) are still freed when the filesystem goes away.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <unordered_map>

namespace payloadfs {

template <typename T>
class HandleTable {
 public:
  [[nodiscard]] uint64_t adopt(std::unique_ptr<T> object) {
    const auto fh = static_cast<uint64_t>(reinterpret_cast<uintptr_t>(object.get()));
    const std::lock_guard lock(mutex_);
    owned_.emplace(fh, std::move(object));
    return fh;
  }
  // Valid from adopt() until drop() of the same fh; the kernel never uses an fh after release.
  [[nodiscard]] static T& get(uint64_t fh) {
    return *reinterpret_cast<T*>(static_cast<uintptr_t>(fh));
  }
  void drop(uint64_t fh) {
    std::unique_ptr<T> doomed;  // destroyed outside the lock
    const std::lock_guard lock(mutex_);
    if (auto it = owned_.find(fh); it != owned_.end()) {
      doomed = std::move(it->second);
      owned_.erase(it);
    }
  }
  [[nodiscard]] size_t size() const {
    const std::lock_guard lock(mutex_);
    return owned_.size();
  }

 private:
  mutable std::mutex mutex_;
  std::unordered_map<uint64_t, std::unique_ptr<T>> owned_;
};

}  // namespace payloadfs

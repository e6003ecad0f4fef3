#pragma once
// Bounds the range/ names a mount holds. Any reader can look up any number of distinct
// range/ names of one file, and the kernel keeps each: a dentry, and for each distinct range
// an inode that our inode table mirrors (about 200 bytes), until memory pressure makes the
// kernel forget it. So the names looked up are queued oldest first, and past `limit` the
// oldest are pruned: the kernel is told the name was deleted (FUSE_NOTIFY_DELETE), which
// drops the dentry and clears the inode's link count, so the inode goes (and its FORGET
// arrives) once no other name and no open file holds it. A reader holding a pruned file open
// keeps reading it (its st_nlink reads 0, as for a deleted file); the next lookup of the name
// makes a new node.
//
// The queue holds names, not nodes: "0+100" and "0-100" are one node under two names, and
// each name is a dentry of its own that must go before the node can.
//
// Notifications run on this class's own thread, never inside a request: the kernel takes
// the range/ directory's lock for them, which a LOOKUP in that directory holds until it is
// answered. stop() must run while requests are still answered (see Filesystem::quiesce).

#include <fuse_lowlevel.h>

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_set>

namespace payloadfs {

class RangeNodeLimit {
 public:
  // Whether `child` is still a range node of the table (a queued one may be forgotten).
  using IsLive = std::function<bool(fuse_ino_t child)>;
  // Tells the kernel `name` in `parent` (the node `child`) is gone; true when it was known.
  using Prune = std::function<bool(fuse_ino_t parent, fuse_ino_t child, const std::string& name)>;

  // `limit` > 0.
  RangeNodeLimit(size_t limit, IsLive is_live, Prune prune);
  ~RangeNodeLimit();
  RangeNodeLimit(const RangeNodeLimit&) = delete;
  RangeNodeLimit& operator=(const RangeNodeLimit&) = delete;

  // A lookup of range/`name` in `parent` answered with the node `child`.
  void looked_up(fuse_ino_t parent, fuse_ino_t child, std::string_view name);
  // Ends pruning; waits for a notification in progress. Idempotent.
  void stop();

  [[nodiscard]] size_t limit() const { return limit_; }
  [[nodiscard]] uint64_t pruned() const;  // names the kernel had and was told to drop
  [[nodiscard]] size_t queued() const;

 private:
  struct Name {
    fuse_ino_t parent;
    fuse_ino_t child;
    std::string name;
  };

  void run();
  [[nodiscard]] static std::string key_of(fuse_ino_t child, std::string_view name);

  const size_t limit_;
  const size_t low_water_;  // pruning goes down to this many, so it runs in batches
  const IsLive is_live_;
  const Prune prune_;

  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<Name> oldest_first_;
  std::unordered_set<std::string> queued_;  // key_of() of each name in oldest_first_
  uint64_t pruned_ = 0;
  bool stopping_ = false;
  std::thread thread_;  // last: starts once the rest is ready
};

}  // namespace payloadfs

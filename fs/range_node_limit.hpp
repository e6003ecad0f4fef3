#pragma once
// Bounds the range/ nodes a mount holds. Any reader can look up any number of distinct
// range/ names of one file; each makes a node the kernel keeps (with its own inode and
// dentry) and our inode table mirrors (about 200 bytes), until memory pressure makes the
// kernel forget it. Past `limit` live range nodes, the oldest are pruned: the kernel is told
// the name was deleted (FUSE_NOTIFY_DELETE), which drops the dentry and, since the notify
// clears the inode's link count, the inode as soon as nobody holds it open, so its FORGET
// arrives and the table lets go. A reader holding a pruned file open keeps reading it; the
// next lookup of the name makes a new node.
//
// Notifications run on this class's own thread, never inside a request: the kernel takes
// the range/ directory's lock for them, which a LOOKUP in that directory holds until one of
// our workers replies. stop() must run while the workers still answer (see
// Filesystem::quiesce).

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
  // How many range nodes are live now (the inode table's count).
  using LiveCount = std::function<size_t()>;
  // Whether `child` is still a range node of the table (a queued one may be forgotten).
  using IsLive = std::function<bool(fuse_ino_t child)>;
  // Tells the kernel `name` in `parent` (the node `child`) is gone.
  using Prune = std::function<void(fuse_ino_t parent, fuse_ino_t child, const std::string& name)>;

  // `limit` > 0.
  RangeNodeLimit(size_t limit, LiveCount live_count, IsLive is_live, Prune prune);
  ~RangeNodeLimit();
  RangeNodeLimit(const RangeNodeLimit&) = delete;
  RangeNodeLimit& operator=(const RangeNodeLimit&) = delete;

  // A lookup of range/`name` in `parent` answered with the node `child`.
  void looked_up(fuse_ino_t parent, fuse_ino_t child, std::string_view name);
  // Ends pruning; waits for a notification in progress. Idempotent.
  void stop();

  [[nodiscard]] size_t limit() const { return limit_; }
  [[nodiscard]] uint64_t pruned() const;
  [[nodiscard]] size_t queued() const;

 private:
  struct Candidate {
    fuse_ino_t parent;
    fuse_ino_t child;
    std::string name;
  };

  void run();
  // Drops forgotten nodes from the queue once it is long (compact_at_). mutex_ held.
  void compact();

  const size_t limit_;
  const size_t low_water_;  // pruning goes down to this many, so it runs in batches
  const LiveCount live_count_;
  const IsLive is_live_;
  const Prune prune_;

  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<Candidate> oldest_first_;
  std::unordered_set<fuse_ino_t> queued_;
  size_t compact_at_;
  uint64_t pruned_ = 0;
  bool stopping_ = false;
  std::thread thread_;  // last: starts once the rest is ready
};

}  // namespace payloadfs

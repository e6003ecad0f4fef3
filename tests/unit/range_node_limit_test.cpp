#include "fs/range_node_limit.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace payloadfs {
namespace {

// The kernel and the inode table, as the limit sees them: each node has the names it was
// looked up by; a pruned name goes, and a node without names is forgotten (at once here;
// later in a mount). The test may also forget nodes itself (memory pressure).
//
// The pruner runs beside the lookups, so where it stops between the low water and the
// limit depends on when it was scheduled. A test that needs one outcome holds the pruner
// at its first question (is_live) until every lookup is queued.
class FakeKernel {
 public:
  void hold_pruner() {
    const std::lock_guard lock(mutex_);
    held_ = true;
  }
  void release_pruner() {
    {
      const std::lock_guard lock(mutex_);
      held_ = false;
    }
    released_.notify_all();
  }
  void look_up(RangeNodeLimit& limit, fuse_ino_t child, const std::string& name) {
    {
      const std::lock_guard lock(mutex_);
      names_[child].insert(name);
    }
    limit.looked_up(7, child, name);
  }
  void forget(fuse_ino_t child) {
    const std::lock_guard lock(mutex_);
    names_.erase(child);
  }
  bool is_live(fuse_ino_t child) const {
    std::unique_lock lock(mutex_);
    released_.wait(lock, [this] { return !held_; });
    return names_.contains(child);
  }
  bool prune(fuse_ino_t parent, fuse_ino_t child, const std::string& name) {
    const std::lock_guard lock(mutex_);
    EXPECT_EQ(parent, 7U);
    const auto node = names_.find(child);
    if (node == names_.end() || node->second.erase(name) == 0) return false;  // ENOENT
    pruned_.emplace_back(child, name);
    if (node->second.empty()) names_.erase(node);
    return true;
  }
  size_t live_nodes() const {
    const std::lock_guard lock(mutex_);
    return names_.size();
  }
  std::vector<std::pair<fuse_ino_t, std::string>> pruned() const {
    const std::lock_guard lock(mutex_);
    return pruned_;
  }

 private:
  mutable std::mutex mutex_;
  mutable std::condition_variable released_;
  bool held_ = false;
  std::map<fuse_ino_t, std::set<std::string>> names_;
  std::vector<std::pair<fuse_ino_t, std::string>> pruned_;
};

RangeNodeLimit limit_of(FakeKernel& kernel, size_t limit) {
  return RangeNodeLimit(
      limit, [&kernel](fuse_ino_t ino) { return kernel.is_live(ino); },
      [&kernel](fuse_ino_t parent, fuse_ino_t child, const std::string& name) {
        return kernel.prune(parent, child, name);
      });
}

std::string name_of(fuse_ino_t ino) {
  return std::to_string(ino) + "+1";
}

template <typename Predicate>
bool eventually(Predicate done) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

TEST(RangeNodeLimit, NothingIsPrunedUpToTheLimit) {
  FakeKernel kernel;
  auto limit = limit_of(kernel, 64);
  for (fuse_ino_t ino = 100; ino < 164; ++ino) kernel.look_up(limit, ino, name_of(ino));
  limit.stop();
  EXPECT_TRUE(kernel.pruned().empty());
  EXPECT_EQ(kernel.live_nodes(), 64U);
  EXPECT_EQ(limit.queued(), 64U);
}

TEST(RangeNodeLimit, PastTheLimitTheOldestGoFirstDownToTheLowWater) {
  FakeKernel kernel;
  auto limit = limit_of(kernel, 64);
  for (fuse_ino_t ino = 100; ino < 165; ++ino) kernel.look_up(limit, ino, name_of(ino));
  ASSERT_TRUE(eventually([&] { return limit.queued() <= 56; }));  // 64 - 64/8
  limit.stop();
  const auto pruned = kernel.pruned();
  ASSERT_EQ(pruned.size(), 9U);
  for (size_t i = 0; i < pruned.size(); ++i) EXPECT_EQ(pruned[i].first, 100 + i);
  EXPECT_EQ(limit.pruned(), 9U);
  EXPECT_EQ(kernel.live_nodes(), 56U);
}

TEST(RangeNodeLimit, NamesOfForgottenNodesAreDroppedWithoutANotification) {
  FakeKernel kernel;
  auto limit = limit_of(kernel, 16);
  for (fuse_ino_t ino = 100; ino < 116; ++ino) kernel.look_up(limit, ino, name_of(ino));
  for (fuse_ino_t ino = 100; ino < 108; ++ino) kernel.forget(ino);  // memory pressure
  kernel.hold_pruner();
  for (fuse_ino_t ino = 116; ino < 125; ++ino) kernel.look_up(limit, ino, name_of(ino));
  kernel.release_pruner();
  ASSERT_TRUE(eventually([&] { return limit.queued() <= 14; }));  // 25 queued, 16 - 16/8
  limit.stop();
  // The 11 oldest left the queue: 8 forgotten already, 3 pruned.
  const auto pruned = kernel.pruned();
  ASSERT_EQ(pruned.size(), 3U);
  EXPECT_EQ(pruned[0].first, 108U);
  EXPECT_EQ(pruned[2].first, 110U);
  EXPECT_EQ(limit.pruned(), 3U);
}

TEST(RangeNodeLimit, ANameLookedUpAgainIsQueuedOnce) {
  FakeKernel kernel;
  auto limit = limit_of(kernel, 8);
  for (int round = 0; round < 100; ++round)
    for (fuse_ino_t ino = 100; ino < 108; ++ino) kernel.look_up(limit, ino, name_of(ino));
  EXPECT_EQ(limit.queued(), 8U);
  kernel.look_up(limit, 200, name_of(200));
  ASSERT_TRUE(eventually([&] { return limit.queued() <= 7; }));
  limit.stop();
  EXPECT_EQ(limit.queued(), 7U);
  const auto pruned = kernel.pruned();
  ASSERT_EQ(pruned.size(), 2U);
  EXPECT_EQ(pruned[0].first, 100U);
  EXPECT_EQ(pruned[1].first, 101U);
}

TEST(RangeNodeLimit, EveryNameOfOneNodeCountsAndGoes) {
  // "0+100", "0-100" and "0x0+0x64" are one node: each name is a dentry that holds it.
  FakeKernel kernel;
  auto limit = limit_of(kernel, 8);
  kernel.hold_pruner();
  for (int i = 0; i < 24; ++i) kernel.look_up(limit, 100, "0+" + std::string(i, '0') + "100");
  kernel.release_pruner();
  ASSERT_TRUE(eventually([&] { return limit.queued() <= 7; }));
  limit.stop();
  EXPECT_EQ(kernel.pruned().size(), 17U);
  EXPECT_TRUE(kernel.is_live(100));  // 7 names still hold it
}

TEST(RangeNodeLimit, StopIsIdempotentAndEndsLookups) {
  FakeKernel kernel;
  auto limit = limit_of(kernel, 2);
  limit.stop();
  limit.stop();
  for (fuse_ino_t ino = 100; ino < 110; ++ino) kernel.look_up(limit, ino, name_of(ino));
  EXPECT_TRUE(kernel.pruned().empty());
  EXPECT_EQ(limit.queued(), 0U);
}

}  // namespace
}  // namespace payloadfs

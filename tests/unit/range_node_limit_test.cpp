#include "fs/range_node_limit.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace payloadfs {
namespace {

// The inode table and the kernel, as the limit sees them: a prune makes the kernel forget the
// node (at once here; later in a mount), and the test may forget nodes itself.
class FakeKernel {
 public:
  void add(fuse_ino_t ino) {
    const std::lock_guard lock(mutex_);
    live_.insert(ino);
  }
  void forget(fuse_ino_t ino) {
    const std::lock_guard lock(mutex_);
    live_.erase(ino);
  }
  size_t live_count() const {
    const std::lock_guard lock(mutex_);
    return live_.size();
  }
  bool is_live(fuse_ino_t ino) const {
    const std::lock_guard lock(mutex_);
    return live_.contains(ino);
  }
  void prune(fuse_ino_t parent, fuse_ino_t child, const std::string& name) {
    const std::lock_guard lock(mutex_);
    EXPECT_EQ(parent, 7U);
    EXPECT_EQ(name, std::to_string(child) + "+1");
    pruned_.push_back(child);
    if (forget_when_pruned_) live_.erase(child);
  }
  std::vector<fuse_ino_t> pruned() const {
    const std::lock_guard lock(mutex_);
    return pruned_;
  }
  void set_forget_when_pruned(bool on) {
    const std::lock_guard lock(mutex_);
    forget_when_pruned_ = on;
  }

 private:
  mutable std::mutex mutex_;
  std::set<fuse_ino_t> live_;
  std::vector<fuse_ino_t> pruned_;
  bool forget_when_pruned_ = true;
};

RangeNodeLimit limit_of(FakeKernel& kernel, size_t limit) {
  return RangeNodeLimit(
      limit, [&kernel] { return kernel.live_count(); },
      [&kernel](fuse_ino_t ino) { return kernel.is_live(ino); },
      [&kernel](fuse_ino_t parent, fuse_ino_t child, const std::string& name) {
        kernel.prune(parent, child, name);
      });
}

void look_up(FakeKernel& kernel, RangeNodeLimit& limit, fuse_ino_t ino) {
  kernel.add(ino);
  limit.looked_up(7, ino, std::to_string(ino) + "+1");
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
  for (fuse_ino_t ino = 100; ino < 164; ++ino) look_up(kernel, limit, ino);
  limit.stop();
  EXPECT_TRUE(kernel.pruned().empty());
  EXPECT_EQ(kernel.live_count(), 64U);
}

TEST(RangeNodeLimit, PastTheLimitTheOldestGoFirstDownToTheLowWater) {
  FakeKernel kernel;
  auto limit = limit_of(kernel, 64);
  for (fuse_ino_t ino = 100; ino < 165; ++ino) look_up(kernel, limit, ino);  // one over
  ASSERT_TRUE(eventually([&] { return kernel.live_count() <= 56; }));        // 64 - 64/8
  limit.stop();
  const auto pruned = kernel.pruned();
  ASSERT_EQ(pruned.size(), 9U);
  for (size_t i = 0; i < pruned.size(); ++i) EXPECT_EQ(pruned[i], 100 + i);
  EXPECT_EQ(limit.pruned(), 9U);
}

TEST(RangeNodeLimit, NodesTheKernelForgotAreNotPruned) {
  FakeKernel kernel;
  auto limit = limit_of(kernel, 16);
  for (fuse_ino_t ino = 100; ino < 116; ++ino) look_up(kernel, limit, ino);
  for (fuse_ino_t ino = 100; ino < 108; ++ino) kernel.forget(ino);           // memory pressure
  for (fuse_ino_t ino = 116; ino < 125; ++ino) look_up(kernel, limit, ino);  // 17 live
  ASSERT_TRUE(eventually([&] { return kernel.live_count() <= 14; }));
  limit.stop();
  for (const fuse_ino_t ino : kernel.pruned()) EXPECT_GE(ino, 108U);
  EXPECT_EQ(kernel.pruned().front(), 108U);
}

TEST(RangeNodeLimit, ALookupOfAQueuedNodeDoesNotQueueItTwice) {
  FakeKernel kernel;
  auto limit = limit_of(kernel, 8);
  for (int round = 0; round < 100; ++round)
    for (fuse_ino_t ino = 100; ino < 108; ++ino) look_up(kernel, limit, ino);
  look_up(kernel, limit, 200);
  ASSERT_TRUE(eventually([&] { return kernel.live_count() <= 7; }));
  limit.stop();
  EXPECT_EQ(kernel.pruned(), (std::vector<fuse_ino_t>{100, 101}));
}

TEST(RangeNodeLimit, NodesTheKernelKeepsDoNotGrowTheQueueWithoutBound) {
  // Notifications that do not make the kernel forget (a dentry already gone): pruning goes on
  // through the queue, and the queue of forgotten candidates is compacted.
  FakeKernel kernel;
  kernel.set_forget_when_pruned(false);
  auto limit = limit_of(kernel, 4);
  for (fuse_ino_t ino = 100; ino < 2100; ++ino) {
    look_up(kernel, limit, ino);
    if (ino >= 104) kernel.forget(ino - 4);  // the kernel lets go later, by itself
    ASSERT_LE(limit.queued(), 2 * 5 + 1);    // twice the live nodes (5 at a compaction), +1
  }
  limit.stop();
  EXPECT_EQ(kernel.live_count(), 4U);
}

TEST(RangeNodeLimit, StopIsIdempotentAndEndsLookups) {
  FakeKernel kernel;
  auto limit = limit_of(kernel, 2);
  limit.stop();
  limit.stop();
  for (fuse_ino_t ino = 100; ino < 110; ++ino) look_up(kernel, limit, ino);
  EXPECT_TRUE(kernel.pruned().empty());
}

}  // namespace
}  // namespace payloadfs

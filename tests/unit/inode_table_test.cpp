#include "fs/inode_table.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <vector>

namespace payloadfs {
namespace {

NodeKey payload_key(const std::string& path, ino_t ino, NodeKind kind = NodeKind::payload_dir) {
  return NodeKey{kind, 1, ino, path, "", 0, 0, "", {}};
}

NodeKey root_key() {
  return NodeKey{NodeKind::source_dir, 1, 2, "", "", 0, 0, "", {}};
}

// Every key hashes to the same number: each later key must probe.
fuse_ino_t constant_hash(const NodeKey&) {
  return 100;
}

TEST(InodeTable, SameKeySameNumber) {
  InodeTable table(root_key());
  const fuse_ino_t a = table.acquire(payload_key("d/a.npy", 10));
  EXPECT_EQ(a, InodeTable::preferred(payload_key("d/a.npy", 10)));
  EXPECT_EQ(table.acquire(payload_key("d/a.npy", 10)), a);
  EXPECT_NE(table.acquire(payload_key("d/a.npy", 10, NodeKind::header_json)), a);
  EXPECT_EQ(table.size(), 3U);  // the root, the payload and its header.json
}

TEST(InodeTable, LivesUntilEveryLookupIsForgotten) {
  InodeTable table(root_key());
  const NodeKey key = payload_key("a.npy", 10);
  const fuse_ino_t ino = table.acquire(key);
  ASSERT_EQ(table.acquire(key), ino);
  table.forget(ino, 1);
  ASSERT_TRUE(table.find(ino).has_value());
  table.forget(ino, 1);
  EXPECT_FALSE(table.find(ino).has_value());
  EXPECT_TRUE(table.nodes_of("a.npy").empty());
  table.forget(FUSE_ROOT_ID, 5);  // the root is permanent
  EXPECT_TRUE(table.find(FUSE_ROOT_ID).has_value());
  EXPECT_EQ(table.acquire(root_key()), FUSE_ROOT_ID);
}

TEST(InodeTable, CollidingKeysGetDistinctStableNumbers) {
  InodeTable table(root_key(), &constant_hash);
  const fuse_ino_t a = table.acquire(payload_key("a", 10));
  const fuse_ino_t b = table.acquire(payload_key("b", 11));
  const fuse_ino_t c = table.acquire(payload_key("c", 12));
  EXPECT_EQ(a, 100U);
  EXPECT_NE(b, a);
  EXPECT_NE(c, a);
  EXPECT_NE(c, b);
  EXPECT_EQ(table.acquire(payload_key("b", 11)), b);
  EXPECT_EQ(table.acquire(payload_key("c", 12)), c);
  EXPECT_EQ(table.find(b)->path, "b");

  // The key at the hashed number goes: the displaced keys keep their numbers, and a new
  // key takes the freed one.
  table.forget(a, 1);
  EXPECT_EQ(table.acquire(payload_key("b", 11)), b);
  EXPECT_EQ(table.acquire(payload_key("c", 12)), c);
  EXPECT_EQ(table.acquire(payload_key("d", 13)), 100U);
  table.forget(b, 3);
  EXPECT_FALSE(table.find(b).has_value());
  EXPECT_EQ(table.acquire(payload_key("c", 12)), c);
  // A key forgotten and looked up again may get a new number, but never one in use.
  const fuse_ino_t b2 = table.acquire(payload_key("b", 11));
  EXPECT_NE(b2, c);
  EXPECT_NE(b2, 100U);
  EXPECT_EQ(table.size(), 4U);
}

TEST(InodeTable, NodesOfAPathAreItsEntriesOnly) {
  InodeTable table(root_key());
  const fuse_ino_t dir = table.acquire(payload_key("x/a.npy", 10));
  const fuse_ino_t header = table.acquire(payload_key("x/a.npy", 10, NodeKind::header_json));
  (void)table.acquire(payload_key("x/b.npy", 11));
  auto nodes = table.nodes_of("x/a.npy");
  std::sort(nodes.begin(), nodes.end());
  std::vector<std::pair<fuse_ino_t, NodeKind>> expected{{dir, NodeKind::payload_dir},
                                                        {header, NodeKind::header_json}};
  std::sort(expected.begin(), expected.end());
  EXPECT_EQ(nodes, expected);
  ASSERT_EQ(table.nodes_of("").size(), 1U);
  EXPECT_EQ(table.nodes_of("")[0].first, FUSE_ROOT_ID);
}

// Many nodes of one path (range/ names of one file): forgetting them in any order unlinks
// each from the path's list and leaves the others listed.
TEST(InodeTable, ForgettingNodesOfOnePathKeepsTheRestListed) {
  InodeTable table(root_key());
  constexpr uint64_t kRanges = 2000;
  std::vector<fuse_ino_t> ranges;
  for (uint64_t i = 0; i < kRanges; ++i)
    ranges.push_back(
        table.acquire(NodeKey{NodeKind::range_file, 1, 10, "f.bin", "", i, 1, "", {}}));
  const fuse_ino_t dir = table.acquire(payload_key("f.bin", 10));
  (void)table.acquire(payload_key("g.bin", 11));
  // Forget the first, the last, then every other one: head, tail and middle of the list.
  table.forget(ranges.front(), 1);
  table.forget(ranges.back(), 1);
  for (size_t i = 1; i + 1 < ranges.size(); i += 2) table.forget(ranges[i], 1);
  std::vector<fuse_ino_t> expected{dir};
  for (size_t i = 2; i + 1 < ranges.size(); i += 2) expected.push_back(ranges[i]);
  std::vector<fuse_ino_t> listed;
  for (const auto& [ino, kind] : table.nodes_of("f.bin")) listed.push_back(ino);
  std::sort(listed.begin(), listed.end());
  std::sort(expected.begin(), expected.end());
  EXPECT_EQ(listed, expected);
  for (const fuse_ino_t ino : expected) table.forget(ino, 1);
  EXPECT_TRUE(table.nodes_of("f.bin").empty());
  ASSERT_EQ(table.nodes_of("g.bin").size(), 1U);
  EXPECT_EQ(table.size(), 2U);  // the root and g.bin
}

TEST(InodeTable, KeepCacheOnlyForTheVersionLastOpened) {
  InodeTable table(root_key());
  const fuse_ino_t ino = table.acquire(payload_key("a", 10, NodeKind::magic));
  const SourceIdentity v1{1, 10, 100, 1, 1};
  const SourceIdentity v2{1, 10, 200, 2, 2};
  EXPECT_FALSE(table.same_version_as_last_open(ino, v1));
  EXPECT_TRUE(table.same_version_as_last_open(ino, v1));
  EXPECT_FALSE(table.same_version_as_last_open(ino, v2));
  EXPECT_FALSE(table.same_version_as_last_open(12345, v2));  // unknown number
}

}  // namespace
}  // namespace payloadfs

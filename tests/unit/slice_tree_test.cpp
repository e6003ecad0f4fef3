#include "core/vfs/slice_tree.hpp"

#include <gtest/gtest.h>

#include <vector>

namespace payloadfs {
namespace {

std::vector<Slice> named(std::initializer_list<std::string> names) {
  std::vector<Slice> out;
  for (const auto& n : names) out.push_back(Slice{n, {0, 1}, Json::object()});
  return out;
}

TEST(SliceTree, NestsAtSlashes) {
  const auto slices = named({"a/b/c", "a/d", "e"});
  SliceTree tree(slices, {});
  EXPECT_EQ(tree.slice_path(0), "a/b/c");
  EXPECT_EQ(tree.slice_path(1), "a/d");
  EXPECT_EQ(tree.slice_path(2), "e");
  const auto a = tree.find("a");
  ASSERT_TRUE(a);
  EXPECT_TRUE(a->is_dir());
  EXPECT_EQ(tree.node(a->node).children.size(), 2u);
  EXPECT_EQ(tree.child(*a, "d")->node, tree.find("a/d")->node);
  EXPECT_EQ(tree.find("a/d")->kind, SliceTree::Entry::Kind::slice);
  EXPECT_FALSE(tree.child(*a, "zz"));
  EXPECT_EQ(tree.node(tree.find("a/b/c")->node).slice, 0u);
}

TEST(SliceTree, DuplicatesGetSuffixesInOrder) {
  const auto slices = named({"IDAT", "IHDR", "IDAT", "IDAT", "IDAT~1"});
  SliceTree tree(slices, {});
  EXPECT_EQ(tree.slice_path(0), "IDAT");
  EXPECT_EQ(tree.slice_path(2), "IDAT~1");
  EXPECT_EQ(tree.slice_path(3), "IDAT~2");
  EXPECT_EQ(tree.slice_path(4), "IDAT~1~1");  // the literal name was taken by a suffix
}

TEST(SliceTree, EscapesUnsafeComponents) {
  const auto slices =
      named({"", ".", "..", "../etc/passwd", "a//b", "/abs", std::string("n\0ul", 4)});
  SliceTree tree(slices, {});
  EXPECT_EQ(tree.slice_path(0), "(empty)");
  EXPECT_EQ(tree.slice_path(1), "(dot)");
  EXPECT_EQ(tree.slice_path(2), "(dotdot)");
  EXPECT_EQ(tree.slice_path(3), "(dotdot)~1/etc/passwd");  // "(dotdot)" is a file already
  EXPECT_EQ(tree.slice_path(4), "a/(empty)/b");
  EXPECT_EQ(tree.slice_path(5), "(empty)~1/abs");
  EXPECT_EQ(tree.slice_path(6), "n%00ul");
}

TEST(SliceTree, FileAndDirectoryWithTheSameName) {
  const auto slices = named({"w", "w/x", "w/y"});
  SliceTree tree(slices, {});
  EXPECT_EQ(tree.slice_path(0), "w");
  EXPECT_EQ(tree.slice_path(1), "w~1/x");
  EXPECT_EQ(tree.slice_path(2), "w~1/y");  // the same directory both times
}

TEST(SliceTree, LongNamesFitNameMax) {
  const std::string longname(1000, 'x');
  const auto slices = named({longname, longname});
  SliceTree tree(slices, {});
  EXPECT_LE(tree.slice_path(0).size(), SliceTree::kMaxNameBytes);
  EXPECT_LE(tree.slice_path(1).size(), SliceTree::kMaxNameBytes);
  EXPECT_NE(tree.slice_path(0), tree.slice_path(1));
  // A multi-byte UTF-8 character is never cut in half.
  std::string accents;
  for (int i = 0; i < 300; ++i) accents += "\xC3\xA9";
  const std::string cut = SliceTree::safe_component(accents);
  EXPECT_EQ(cut.size() % 2, 0u);
}

TEST(SliceTree, RecordTablesAreComputedDirectories) {
  const auto slices = named({"packet", "meta/info"});
  std::vector<RecordTable> tables(2);
  tables[0].dir = "packet";
  tables[0].records.resize(1234);
  tables[1].dir = "message//camera/image";
  tables[1].records.resize(7);
  SliceTree tree(slices, tables);
  EXPECT_EQ(tree.table_path(0), "packet~1");  // the slice named "packet" came first
  EXPECT_EQ(tree.table_path(1), "message/(empty)/camera/image");
  const auto dir = tree.find("packet~1");
  ASSERT_TRUE(dir && dir->is_dir());
  EXPECT_EQ(tree.record_count(dir->node), 1234u);
  EXPECT_TRUE(tree.node(dir->node).children.empty());  // nothing stored per record
  const auto rec = tree.child(*dir, "0042");
  ASSERT_TRUE(rec);
  EXPECT_EQ(rec->kind, SliceTree::Entry::Kind::record);
  EXPECT_EQ(rec->record, 42u);
  EXPECT_EQ(tree.path_of(*rec), "packet~1/0042");
  EXPECT_EQ(tree.find("packet~1/1233")->record, 1233u);
  for (const char* bad : {"42", "00042", "1234", "9999", "-001", "004a", ""})
    EXPECT_FALSE(tree.child(*dir, bad)) << bad;
  EXPECT_EQ(tree.find("message/(empty)/camera/image/6")->record, 6u);
  EXPECT_EQ(SliceTree::record_name(7, 1000), "007");
  EXPECT_EQ(SliceTree::record_name(0, 1), "0");
  EXPECT_EQ(SliceTree::record_name(9, 10), "9");
  EXPECT_EQ(SliceTree::record_name(10, 11), "10");
}

TEST(SliceTree, GridTablesNameRecordsByChunkCoordinates) {
  // A 3 x 4 grid with chunks 0.0, 0.3, 1.2 and 2.3 allocated (tags 0, 3, 6, 11).
  std::vector<RecordTable> tables(2);
  tables[0].dir = "temperature";
  tables[0].grid = {3, 4};
  for (const uint32_t tag : {0u, 3u, 6u, 11u}) tables[0].records.push_back({tag * 10u, 10, tag});
  tables[1].dir = "packets";  // numbered, as before
  tables[1].records.resize(12);
  const SliceTree tree({}, tables);
  EXPECT_EQ(tree.name_of_record(0, 0), "0.0");
  EXPECT_EQ(tree.name_of_record(0, 1), "0.3");
  EXPECT_EQ(tree.name_of_record(0, 2), "1.2");
  EXPECT_EQ(tree.name_of_record(0, 3), "2.3");
  EXPECT_EQ(tree.name_of_record(1, 3), "03");
  EXPECT_EQ(tree.find("temperature/1.2")->record, 2u);
  EXPECT_EQ(tree.path_of(*tree.find("temperature/2.3")), "temperature/2.3");
  EXPECT_EQ(tree.find("packets/11")->record, 11u);
  // Unallocated chunks, cells outside the grid and non-canonical spellings resolve to nothing.
  for (const char* bad : {"0.1", "3.0", "0.4", "00.0", "0.00", "0", "0.0.0", "1.", ".1", "1..2",
                          "a.b", "", "18446744073709551616.0"})
    EXPECT_FALSE(tree.find(std::string("temperature/") + bad)) << bad;
  // Tags out of order or outside the grid: the records are numbered instead.
  std::vector<RecordTable> unsorted(1);
  unsorted[0].dir = "t";
  unsorted[0].grid = {2};
  unsorted[0].records = {{0, 1, 1}, {1, 1, 0}};
  const SliceTree fallback({}, unsorted);
  EXPECT_EQ(fallback.name_of_record(0, 1), "1");
  EXPECT_TRUE(fallback.find("t/0"));
}

TEST(SliceTree, DeepNamesCostTheirLengthNotTheirLengthSquared) {
  // A 64 KiB name of 32,768 nested directories: each node's path is a view of the slice's one
  // stored path, so the tree holds a few hundred bytes a directory, not 32 KiB.
  std::string deep;
  for (int i = 0; i < 32767; ++i) deep += "a/";
  deep += "leaf";
  const auto slices = named({deep, deep, "a/b"});
  const SliceTree tree(slices, {});
  EXPECT_EQ(tree.slice_path(0), deep);
  EXPECT_EQ(tree.slice_path(1), deep.substr(0, deep.size() - 4) + "leaf~1");
  EXPECT_EQ(tree.slice_path(2), "a/b");
  EXPECT_LT(tree.memory_estimate(), size_t{16} << 20);
  const auto leaf = tree.find(deep);
  ASSERT_TRUE(leaf.has_value());
  EXPECT_EQ(leaf->kind, SliceTree::Entry::Kind::slice);
  EXPECT_EQ(tree.node(leaf->node).path, deep);
  EXPECT_EQ(tree.path_of(*leaf), deep);
  // Every directory on the way knows its own path, a prefix of the leaf's.
  const auto mid = tree.find(deep.substr(0, 2 * 1000 - 1));
  ASSERT_TRUE(mid && mid->is_dir());
  EXPECT_EQ(tree.node(mid->node).path, deep.substr(0, 2 * 1000 - 1));
  EXPECT_EQ(tree.node(mid->node).name, "a");
  EXPECT_FALSE(tree.find(deep + "/more").has_value());
  EXPECT_FALSE(tree.find("a//b").has_value());
  EXPECT_FALSE(tree.find("a/b/").has_value());
}

TEST(SliceTree, PathsSurviveMovingTheTree) {
  // Short paths live inside their strings (no heap): they must not move either.
  std::vector<Slice> slices;
  for (int i = 0; i < 500; ++i)
    slices.push_back(
        Slice{"d" + std::to_string(i % 7) + "/s" + std::to_string(i), {0, 1}, Json::object()});
  SliceTree built(slices, {});
  const SliceTree tree = std::move(built);
  for (size_t i = 0; i < slices.size(); ++i) {
    const auto entry = tree.find(slices[i].name);
    ASSERT_TRUE(entry.has_value()) << slices[i].name;
    EXPECT_EQ(tree.node(entry->node).path, slices[i].name);
    EXPECT_EQ(tree.node(tree.find(slices[i].name.substr(0, 2))->node).path,
              slices[i].name.substr(0, 2));
  }
}

}  // namespace
}  // namespace payloadfs

// HDF5 chunk indexes built by hand from the File Format Specification 3.0: version 1 and 2
// B-trees, single chunk, implicit, fixed array and extensible array indexes, well formed and
// malformed.

#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <vector>

#include "core/formats/support/hdf5_btree2.hpp"
#include "core/formats/support/hdf5_chunks.hpp"
#include "core/io/endian.hpp"
#include "unit/test_support.hpp"

namespace payloadfs::formats::hdf5 {
namespace {

using testing::Bytes;

constexpr uint64_t kUndef = ~uint64_t{0};

// Appends the lookup3 checksum of the bytes from `start` to the end.
Bytes& checksum_from(Bytes& b, size_t start) {
  const auto& d = b.data();
  const uint32_t sum =
      lookup3_checksum(std::span<const std::byte>(d.data() + start, d.size() - start));
  return b.le(sum, 4);
}

uint32_t lookup3_text(std::string_view text) {
  return lookup3_checksum(std::as_bytes(std::span<const char>(text.data(), text.size())));
}

TEST(Hdf5Lookup3, KnownVectors) {
  // Bob Jenkins' lookup3.c driver5: hashlittle("", 0, 0) and the "Four score" sentence.
  EXPECT_EQ(lookup3_text(""), 0xdeadbeefu);
  EXPECT_EQ(lookup3_text("Four score and seven years ago"), 0x17770551u);
}

TEST(Hdf5Lookup3, EveryTailLengthDiffers) {
  // Lengths 1 to 25 take every branch of the tail; no two of them may collide here.
  const std::string text = "abcdefghijklmnopqrstuvwxy";
  std::vector<uint32_t> seen;
  for (size_t n = 1; n <= text.size(); ++n) {
    const uint32_t sum = lookup3_text(std::string_view(text).substr(0, n));
    for (uint32_t other : seen) EXPECT_NE(sum, other) << n;
    seen.push_back(sum);
  }
}

// ---- Version 2 B-trees --------------------------------------------------------------------

// A B-tree of chunk records (type 10, one dimension): address then one scaled offset.
// Node size 64: leaves hold 3 records, internal nodes 1; counts are 1 byte wide, and the
// "total records" field of a child of a depth-2 node is 1 byte (libhdf5's cum_max_nrec 7).
struct Btree2Builder {
  Bytes b;
  uint32_t node_size = 64;
  uint8_t type = 10;

  void record(uint64_t chunk) { b.le(0x10000 + chunk * 0x100, 8).le(chunk, 8); }
  uint64_t leaf(std::vector<uint64_t> chunks) {
    const uint64_t at = b.size();
    b.raw("BTLF").u8(0).u8(type);
    for (uint64_t c : chunks) record(c);
    checksum_from(b, at);
    b.zeros(at + node_size - b.size());
    return at;
  }
  struct Child {
    uint64_t address, records, total;
  };
  uint64_t internal(std::vector<uint64_t> chunks, std::vector<Child> children, bool totals) {
    const uint64_t at = b.size();
    b.raw("BTIN").u8(0).u8(type);
    for (uint64_t c : chunks) record(c);
    for (const Child& c : children) {
      b.le(c.address, 8).u8(c.records);
      if (totals) b.u8(c.total);
    }
    checksum_from(b, at);
    if (b.size() < at + node_size) b.zeros(at + node_size - b.size());
    return at;
  }
  uint64_t header(uint16_t depth, uint64_t root, uint16_t root_records, uint64_t total) {
    const uint64_t at = b.size();
    b.raw("BTHD").u8(0).u8(type).le(node_size, 4).le(16, 2).le(depth, 2).u8(100).u8(40);
    b.le(root, 8).le(root_records, 2).le(total, 8);
    checksum_from(b, at);
    return at;
  }
  // Depth 2, 11 records (chunks 0 to 10), in key order through every kind of node.
  uint64_t depth_two() {
    b.zeros(16);
    const uint64_t l0 = leaf({0, 1}), l1 = leaf({3, 4}), l2 = leaf({6, 7}), l3 = leaf({9, 10});
    const uint64_t i0 = internal({2}, {{l0, 2, 2}, {l1, 2, 2}}, false);
    const uint64_t i1 = internal({8}, {{l2, 2, 2}, {l3, 2, 2}}, false);
    const uint64_t root = internal({5}, {{i0, 1, 5}, {i1, 1, 5}}, true);
    return header(2, root, 1, 11);
  }
};

std::vector<uint64_t> walk_chunks(const std::vector<std::byte>& file, uint64_t header,
                                  std::vector<std::string>& errors, uint8_t type = 10) {
  MemorySource source(file);
  std::vector<uint64_t> chunks;
  walk_btree2(
      source, Sizes{}, header, type,
      [&](ByteRange r) {
        EXPECT_EQ(r.length, 16u);
        chunks.push_back(read_le<uint64_t>(file.data() + r.offset + 8));
        EXPECT_EQ(read_le<uint64_t>(file.data() + r.offset), 0x10000 + chunks.back() * 0x100);
        return true;
      },
      errors);
  return chunks;
}

TEST(Hdf5Btree2, DepthTwoInKeyOrder) {
  Btree2Builder t;
  const uint64_t header = t.depth_two();
  std::vector<std::string> errors;
  const auto chunks = walk_chunks(t.b.data(), header, errors);
  EXPECT_EQ(chunks, (std::vector<uint64_t>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10}));
  EXPECT_TRUE(errors.empty()) << errors.front();
}

TEST(Hdf5Btree2, HeaderFieldsAndStop) {
  Btree2Builder t;
  const uint64_t header_at = t.depth_two();
  MemorySource source(t.b.data());
  std::vector<std::string> errors;
  int seen = 0;
  const auto header = walk_btree2(
      source, Sizes{}, header_at, 10, [&](ByteRange) { return ++seen < 4; }, errors);
  ASSERT_TRUE(header.has_value());
  EXPECT_EQ(header->depth, 2);
  EXPECT_EQ(header->node_size, 64u);
  EXPECT_EQ(header->record_size, 16);
  EXPECT_EQ(header->total_records, 11u);
  EXPECT_EQ(seen, 4);
  EXPECT_TRUE(errors.empty());
}

TEST(Hdf5Btree2, WrongTypeIsAnError) {
  Btree2Builder t;
  const uint64_t header = t.depth_two();
  std::vector<std::string> errors;
  EXPECT_TRUE(walk_chunks(t.b.data(), header, errors, 11).empty());
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_NE(errors[0].find("record type 10"), std::string::npos) << errors[0];
}

TEST(Hdf5Btree2, BadLeafChecksumKeepsTheRest) {
  Btree2Builder t;
  const uint64_t header = t.depth_two();
  auto file = t.b.data();
  file[16 + 64 + 8] ^= std::byte{1};  // inside the second leaf's first record
  std::vector<std::string> errors;
  const auto chunks = walk_chunks(file, header, errors);
  EXPECT_EQ(chunks, (std::vector<uint64_t>{0, 1, 2, 5, 6, 7, 8, 9, 10}));
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_NE(errors[0].find("checksum"), std::string::npos) << errors[0];
}

TEST(Hdf5Btree2, SelfLoopAndPastTheEnd) {
  Btree2Builder t;
  t.b.zeros(16);
  const uint64_t root_at = t.b.size();
  // An internal node of depth 1 whose first child is itself and whose second is past the end.
  t.internal({4}, {{root_at, 1, 0}, {1u << 30, 1, 0}}, false);
  const uint64_t header = t.header(1, root_at, 1, 3);
  std::vector<std::string> errors;
  const auto chunks = walk_chunks(t.b.data(), header, errors);
  EXPECT_EQ(chunks, (std::vector<uint64_t>{4}));
  EXPECT_EQ(errors.size(), 2u);
}

TEST(Hdf5Btree2, CountPastTheNodeLimit) {
  Btree2Builder t;
  t.b.zeros(16);
  const uint64_t leaf = t.leaf({1, 2, 3});
  const uint64_t header = t.header(0, leaf, 4, 4);  // a leaf holds 3 records at most
  std::vector<std::string> errors;
  EXPECT_TRUE(walk_chunks(t.b.data(), header, errors).empty());
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_NE(errors[0].find("limit"), std::string::npos) << errors[0];
}

TEST(Hdf5Btree2, DepthPastTheLimit) {
  Btree2Builder t;
  t.b.zeros(16);
  const uint64_t header = t.header(kMaxBtree2Depth + 1, 16, 1, 1);
  std::vector<std::string> errors;
  EXPECT_TRUE(walk_chunks(t.b.data(), header, errors).empty());
  EXPECT_EQ(errors.size(), 1u);
}

// ---- list_chunks ----------------------------------------------------------------------------

// Files are padded to this size, so that every chunk address below lies inside them.
constexpr size_t kFileSize = 0x11000;
// Chunk data addresses: chunk element e at kData + e * 0x10.
constexpr uint64_t kData = 0x10000;

struct Listing {
  std::vector<Chunk> chunks;
  std::vector<std::string> errors;
};

Listing list(Bytes b, const ChunkIndex& index) {
  if (b.size() < kFileSize) b.zeros(kFileSize - b.size());
  MemorySource source(b.data());
  Listing out;
  const auto start = std::chrono::steady_clock::now();
  list_chunks(source, Sizes{}, index, out.chunks, out.errors);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
  return out;
}

std::vector<uint64_t> indexes(const Listing& l) {
  std::vector<uint64_t> out;
  for (const Chunk& c : l.chunks) out.push_back(c.index);
  return out;
}

std::string first_error(const Listing& l) {
  return l.errors.empty() ? "" : l.errors.front();
}

ChunkIndex make_index(ChunkIndexType type, uint64_t address, std::vector<uint64_t> dims,
                      std::vector<uint64_t> max_dims, std::vector<uint64_t> chunk_dims,
                      uint64_t element_size) {
  ChunkIndex index;
  index.type = type;
  index.address = address;
  index.dims = std::move(dims);
  index.max_dims = std::move(max_dims);
  index.chunk_dims = std::move(chunk_dims);
  index.element_size = element_size;
  return index;
}

TEST(Hdf5Chunks, SingleChunkUnfilteredAndFiltered) {
  auto index = make_index(ChunkIndexType::single, kData, {3, 5}, {3, 5}, {3, 5}, 8);
  Listing l = list(Bytes{}, index);
  ASSERT_EQ(l.chunks.size(), 1u) << first_error(l);
  EXPECT_EQ(l.chunks[0].offset, kData);
  EXPECT_EQ(l.chunks[0].size, 120u);
  EXPECT_EQ(l.chunks[0].index, 0u);
  index.layout_flags = 0x02;
  index.filtered = true;
  index.single_filtered_size = 77;
  index.single_filter_mask = 2;
  l = list(Bytes{}, index);
  ASSERT_EQ(l.chunks.size(), 1u);
  EXPECT_EQ(l.chunks[0].size, 77u);
  EXPECT_EQ(l.chunks[0].filter_mask, 2u);
  EXPECT_TRUE(l.errors.empty());
}

TEST(Hdf5Chunks, SingleChunkPastTheEnd) {
  const auto index = make_index(ChunkIndexType::single, kFileSize - 10, {4}, {4}, {4}, 4);
  const Listing l = list(Bytes{}, index);
  EXPECT_TRUE(l.chunks.empty());
  EXPECT_NE(first_error(l).find("past the end"), std::string::npos) << first_error(l);
}

TEST(Hdf5Chunks, ImplicitFollowsTheMaxDimsGrid) {
  // Chunks 2x2 of 2-byte elements (8 bytes); max grid 2x4, current grid 2x2.
  const auto index = make_index(ChunkIndexType::implicit, kData, {4, 3}, {4, 8}, {2, 2}, 2);
  const Listing l = list(Bytes{}, index);
  ASSERT_EQ(indexes(l), (std::vector<uint64_t>{0, 1, 2, 3})) << first_error(l);
  EXPECT_EQ(l.chunks[1].offset, kData + 8);      // (0, 1): element 1
  EXPECT_EQ(l.chunks[2].offset, kData + 4 * 8);  // (1, 0): element 4 of the max grid
  EXPECT_EQ(l.chunks[3].offset, kData + 5 * 8);
  EXPECT_EQ(l.chunks[3].size, 8u);
  EXPECT_TRUE(l.errors.empty());
}

TEST(Hdf5Chunks, ImplicitCountIsBounded) {
  // 2^40 one-byte chunks, all past the end of the file: errors, and it stops in time.
  const auto index =
      make_index(ChunkIndexType::implicit, kData, {uint64_t{1} << 40}, {uint64_t{1} << 40}, {1}, 1);
  const Listing l = list(Bytes{}, index);
  EXPECT_EQ(l.chunks.size(), kFileSize - kData);
  EXPECT_FALSE(l.errors.empty());
}

// ---- Version 1 B-tree ------------------------------------------------------------------------

// A chunk node of a 2-D dataset: keys of 4 + 4 + 3 * 8 bytes around the children.
struct Btree1Key {
  uint32_t size;
  uint32_t mask;
  uint64_t row, column;
};

uint64_t btree1_node(Bytes& b, uint8_t level, const std::vector<Btree1Key>& keys,
                     const std::vector<uint64_t>& children) {
  const uint64_t at = b.size();
  b.raw("TREE").u8(1).u8(level).le(children.size(), 2).le(kUndef, 8).le(kUndef, 8);
  for (size_t i = 0; i < keys.size(); ++i) {
    b.le(keys[i].size, 4).le(keys[i].mask, 4).le(keys[i].row, 8).le(keys[i].column, 8).le(0, 8);
    if (i < children.size()) b.le(children[i], 8);
  }
  return at;
}

TEST(Hdf5Chunks, Btree1DepthTwo) {
  Bytes b;
  b.zeros(8);
  // Chunks of 2x2 in a 4x4 dataset; the keys hold element offsets.
  const uint64_t leaf0 =
      btree1_node(b, 0, {{30, 0, 0, 0}, {31, 1, 0, 2}, {0, 0, 2, 0}}, {kData + 0x10, kData + 0x20});
  const uint64_t leaf1 =
      btree1_node(b, 0, {{32, 0, 2, 0}, {33, 0, 2, 2}, {0, 0, 4, 0}}, {kData + 0x30, kData + 0x40});
  const uint64_t root =
      btree1_node(b, 1, {{0, 0, 0, 0}, {0, 0, 2, 0}, {0, 0, 4, 0}}, {leaf1, leaf0});
  const auto index = make_index(ChunkIndexType::btree1, root, {4, 4}, {4, 4}, {2, 2}, 1);
  const Listing l = list(b, index);
  ASSERT_EQ(indexes(l), (std::vector<uint64_t>{0, 1, 2, 3})) << first_error(l);
  EXPECT_EQ(l.chunks[0].offset, kData + 0x10);
  EXPECT_EQ(l.chunks[1].size, 31u);
  EXPECT_EQ(l.chunks[1].filter_mask, 1u);
  EXPECT_EQ(l.chunks[3].offset, kData + 0x40);
  EXPECT_TRUE(l.errors.empty()) << first_error(l);
}

TEST(Hdf5Chunks, Btree1LoopAndDepthLimit) {
  Bytes b;
  b.zeros(8);
  const uint64_t self = b.size();
  btree1_node(b, 1, {{0, 0, 0, 0}, {0, 0, 4, 0}}, {self});
  auto index = make_index(ChunkIndexType::btree1, self, {4, 4}, {4, 4}, {2, 2}, 1);
  Listing l = list(b, index);
  EXPECT_TRUE(l.chunks.empty());
  EXPECT_NE(first_error(l).find("loop"), std::string::npos) << first_error(l);
  // A chain of 100 levels, each node pointing at the next.
  Bytes chain;
  const size_t node_bytes = 8 + 16 + 2 * 32 + 8;
  for (int level = 100; level >= 0; --level)
    btree1_node(chain, static_cast<uint8_t>(level), {{1, 0, 0, 0}, {0, 0, 4, 0}},
                {level == 0 ? kData : chain.size() + node_bytes});
  index.address = 0;
  l = list(chain, index);
  EXPECT_TRUE(l.chunks.empty());
  EXPECT_NE(first_error(l).find("limit"), std::string::npos) << first_error(l);
}

// ---- Version 2 B-tree of chunks ----------------------------------------------------------------

TEST(Hdf5Chunks, Btree2FilteredRecords) {
  // 1-D, chunks of 4 bytes: a filtered record is address, 2-byte size, mask, scaled offset.
  Bytes b;
  b.zeros(8);
  const uint64_t leaf = b.size();
  b.raw("BTLF").u8(0).u8(11);
  for (uint64_t c : {1, 3, 7}) b.le(kData + c * 0x10, 8).le(4 + c, 2).le(c & 1, 4).le(c, 8);
  checksum_from(b, leaf);
  const uint64_t header = b.size();
  b.raw("BTHD").u8(0).u8(11).le(512, 4).le(22, 2).le(0, 2).u8(100).u8(40);
  b.le(leaf, 8).le(3, 2).le(3, 8);
  checksum_from(b, header);
  auto index = make_index(ChunkIndexType::btree2, header, {5}, {kUnlimited}, {1}, 4);
  index.filtered = true;
  const Listing l = list(b, index);
  ASSERT_EQ(indexes(l), (std::vector<uint64_t>{1, 3})) << first_error(l);  // 7 is past dims
  EXPECT_EQ(l.chunks[1].offset, kData + 0x30);
  EXPECT_EQ(l.chunks[1].size, 7u);
  EXPECT_EQ(l.chunks[1].filter_mask, 1u);
  EXPECT_TRUE(l.errors.empty()) << first_error(l);
}

TEST(Hdf5Chunks, Btree2UnfilteredDepthTwo) {
  Btree2Builder t;
  const uint64_t header = t.depth_two();
  // Record addresses are 0x10000 + chunk * 0x100: chunks of 16 bytes fit in the file.
  const auto index = make_index(ChunkIndexType::btree2, header, {10}, {kUnlimited}, {4}, 4);
  const Listing l = list(t.b, index);
  ASSERT_EQ(indexes(l), (std::vector<uint64_t>{0, 1, 2})) << first_error(l);
  EXPECT_EQ(l.chunks[2].offset, 0x10200u);
  EXPECT_EQ(l.chunks[2].size, 16u);
}

// ---- Fixed arrays -----------------------------------------------------------------------------

uint64_t fixed_array_header(Bytes& b, uint8_t client, uint8_t entry, uint8_t page_bits,
                            uint64_t entries, uint64_t data_block) {
  const uint64_t at = b.size();
  b.raw("FAHD").u8(0).u8(client).u8(entry).u8(page_bits).le(entries, 8).le(data_block, 8);
  checksum_from(b, at);
  return at;
}

TEST(Hdf5Chunks, FixedArrayUnpagedMaxGrid) {
  // Max grid 2x4, current grid 2x2: element 2 is (0, 2), outside; element 4 is (1, 0).
  Bytes b;
  b.zeros(8);
  const uint64_t header = 8;
  const uint64_t block = header + 28;
  fixed_array_header(b, 0, 8, 10, 8, block);
  b.raw("FADB").u8(0).u8(0).le(header, 8);
  for (uint64_t e = 0; e < 8; ++e) b.le(e == 5 ? kUndef : kData + e * 0x10, 8);
  checksum_from(b, block);
  const auto index = make_index(ChunkIndexType::fixed_array, header, {4, 3}, {4, 8}, {2, 2}, 1);
  const Listing l = list(b, index);
  ASSERT_EQ(indexes(l), (std::vector<uint64_t>{0, 1, 2})) << first_error(l);
  EXPECT_EQ(l.chunks[1].offset, kData + 0x10);
  EXPECT_EQ(l.chunks[2].offset, kData + 0x40);
  EXPECT_EQ(l.chunks[2].size, 4u);
  EXPECT_TRUE(l.errors.empty()) << first_error(l);
}

// 10 filtered entries (address, 2-byte size, mask) in pages of 4; pages 0 and 2 written.
Bytes paged_fixed_array(uint64_t& header) {
  Bytes b;
  b.zeros(8);
  header = 8;
  const uint64_t block = header + 28;
  fixed_array_header(b, 1, 14, 2, 10, block);
  b.raw("FADB").u8(0).u8(1).le(header, 8).u8(0xA0);
  checksum_from(b, block);
  for (uint64_t page = 0; page < 3; ++page) {
    const uint64_t at = b.size();
    const uint64_t count = page == 2 ? 2 : 4;
    for (uint64_t e = page * 4; e < page * 4 + count; ++e)
      b.le(kData + e * 0x10, 8).le(100 + e, 2).le(e % 3, 4);
    checksum_from(b, at);
    if (count < 4) b.zeros((4 - count) * 14);
  }
  return b;
}

TEST(Hdf5Chunks, FixedArrayPagedFiltered) {
  uint64_t header = 0;
  Bytes b = paged_fixed_array(header);
  auto index = make_index(ChunkIndexType::fixed_array, header, {10}, {10}, {1}, 4);
  index.filtered = true;
  const Listing l = list(b, index);
  ASSERT_EQ(indexes(l), (std::vector<uint64_t>{0, 1, 2, 3, 8, 9})) << first_error(l);
  EXPECT_EQ(l.chunks[4].offset, kData + 0x80);
  EXPECT_EQ(l.chunks[4].size, 108u);
  EXPECT_EQ(l.chunks[4].filter_mask, 2u);
  EXPECT_TRUE(l.errors.empty()) << first_error(l);
}

TEST(Hdf5Chunks, FixedArrayBadPageChecksumKeepsTheOthers) {
  uint64_t header = 0;
  Bytes b = paged_fixed_array(header);
  b.data()[8 + 28 + 19 + 3] ^= std::byte{0x40};  // inside page 0's first address
  auto index = make_index(ChunkIndexType::fixed_array, header, {10}, {10}, {1}, 4);
  index.filtered = true;
  const Listing l = list(b, index);
  EXPECT_EQ(indexes(l), (std::vector<uint64_t>{8, 9}));
  EXPECT_NE(first_error(l).find("checksum"), std::string::npos) << first_error(l);
}

TEST(Hdf5Chunks, FixedArrayMalformedHeaders) {
  Bytes b;
  b.zeros(8);
  fixed_array_header(b, 0, 8, 0, uint64_t{1} << 40, 64);  // a page bitmap of 2^37 bytes
  auto index = make_index(ChunkIndexType::fixed_array, 8, {10}, {10}, {1}, 4);
  Listing l = list(b, index);
  EXPECT_TRUE(l.chunks.empty());
  EXPECT_FALSE(l.errors.empty());
  b.data()[12] = std::byte{1};  // the version: the checksum no longer matches
  l = list(b, index);
  EXPECT_NE(first_error(l).find("checksum"), std::string::npos) << first_error(l);
  index.address = kFileSize + 100;
  l = list(b, index);
  EXPECT_NE(first_error(l).find("past the end"), std::string::npos) << first_error(l);
}

// ---- Extensible arrays ------------------------------------------------------------------------

// An extensible array of unfiltered chunk addresses: 2 elements in the index block, data
// blocks of at least 2 elements, 2 data block pointers in the index block, 8 bits of elements
// (8 super blocks, 1 byte array offsets), pages of 4 elements.
struct ExtensibleArrayBuilder {
  Bytes b;
  uint64_t header = 8;
  uint8_t index_elements = 2;

  uint64_t address_of(uint64_t element) const { return kData + element * 0x10; }
  void entries(uint64_t first, uint64_t count) {
    for (uint64_t e = first; e < first + count; ++e) b.le(address_of(e), 8);
  }
  void write_header(uint64_t max_index_set, uint64_t index_block) {
    b.zeros(header - b.size());
    b.raw("EAHD").u8(0).u8(0).u8(8).u8(8).u8(index_elements).u8(2).u8(2).u8(2);
    b.le(0, 8).le(0, 8).le(0, 8).le(0, 8).le(max_index_set, 8).le(max_index_set, 8);
    b.le(index_block, 8);
    checksum_from(b, header);
  }
  uint64_t index_block(std::vector<uint64_t> data_blocks, std::vector<uint64_t> super_blocks) {
    const uint64_t at = b.size();
    b.raw("EAIB").u8(0).u8(0).le(header, 8);
    entries(0, index_elements);
    for (uint64_t a : data_blocks) b.le(a, 8);
    for (uint64_t a : super_blocks) b.le(a, 8);
    checksum_from(b, at);
    return at;
  }
  // A data block of `count` elements from `first` (index block elements included).
  uint64_t data_block(uint64_t first, uint64_t count, bool paged) {
    const uint64_t at = b.size();
    b.raw("EADB").u8(0).u8(0).le(header, 8).u8(first - index_elements);
    if (!paged) entries(first, count);
    checksum_from(b, at);
    for (uint64_t page = 0; paged && page < count / 4; ++page) {
      const uint64_t page_at = b.size();
      entries(first + page * 4, 4);
      checksum_from(b, page_at);
    }
    return at;
  }
  uint64_t super_block(uint64_t offset, std::vector<uint8_t> bitmap,
                       std::vector<uint64_t> data_blocks) {
    const uint64_t at = b.size();
    b.raw("EASB").u8(0).u8(0).le(header, 8).u8(offset);
    for (uint8_t byte : bitmap) b.u8(byte);
    for (uint64_t a : data_blocks) b.le(a, 8);
    checksum_from(b, at);
    return at;
  }
};

// 32 elements: the index block's 2, super block 0 (1 block of 2) and 1 (1 of 4) from the
// index block, super block 2 (2 blocks of 4; the second not allocated) and super block 3 (2
// paged blocks of 8; the second's second page not written).
Bytes extensible_array_with_super_blocks(uint64_t& header) {
  ExtensibleArrayBuilder a;
  a.b.zeros(0x200);  // the header goes at 8, once the index block's address is known
  const uint64_t d0 = a.data_block(2, 2, false);
  const uint64_t d1 = a.data_block(4, 4, false);
  const uint64_t d2 = a.data_block(8, 4, false);
  const uint64_t d3 = a.data_block(16, 8, true);
  const uint64_t d4 = a.data_block(24, 8, true);
  const uint64_t s2 = a.super_block(6, {}, {d2, kUndef});
  const uint64_t s3 = a.super_block(14, {0xE0, 0x00}, {d3, d4});
  const uint64_t iblock = a.index_block({d0, d1}, {s2, s3, kUndef, kUndef, kUndef, kUndef});
  Bytes head;
  a.header = 8;
  std::swap(head, a.b);
  a.write_header(32, iblock);
  std::copy(a.b.data().begin(), a.b.data().end(), head.data().begin());
  header = 8;
  return head;
}

TEST(Hdf5Chunks, ExtensibleArrayReachesSuperBlocks) {
  uint64_t header = 0;
  const Bytes b = extensible_array_with_super_blocks(header);
  const auto index =
      make_index(ChunkIndexType::extensible_array, header, {32}, {kUnlimited}, {1}, 2);
  const Listing l = list(b, index);
  std::vector<uint64_t> expected;
  for (uint64_t e = 0; e < 28; ++e)
    if (e < 12 || e >= 16) expected.push_back(e);
  ASSERT_EQ(indexes(l), expected) << first_error(l);
  for (const Chunk& c : l.chunks) EXPECT_EQ(c.offset, kData + c.index * 0x10) << c.index;
  EXPECT_EQ(l.chunks[0].size, 2u);
  EXPECT_TRUE(l.errors.empty()) << first_error(l);
}

TEST(Hdf5Chunks, ExtensibleArrayStopsAtMaxIndexSetAndDims) {
  uint64_t header = 0;
  const Bytes b = extensible_array_with_super_blocks(header);
  const auto index =
      make_index(ChunkIndexType::extensible_array, header, {10}, {kUnlimited}, {1}, 2);
  const Listing l = list(b, index);
  EXPECT_EQ(indexes(l), (std::vector<uint64_t>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}));
}

TEST(Hdf5Chunks, ExtensibleArraySwizzlesTheUnlimitedDimension) {
  // 4 x unlimited, chunks 2x2: elements number (column chunk, row chunk), rows fastest.
  ExtensibleArrayBuilder a;
  a.index_elements = 4;
  a.b.zeros(0x100);
  const uint64_t iblock = a.index_block({kUndef, kUndef}, std::vector<uint64_t>(6, kUndef));
  Bytes body;
  std::swap(body, a.b);
  a.write_header(4, iblock);
  std::copy(a.b.data().begin(), a.b.data().end(), body.data().begin());
  const auto index =
      make_index(ChunkIndexType::extensible_array, 8, {4, 6}, {4, kUnlimited}, {2, 2}, 1);
  const Listing l = list(body, index);
  // Element e is chunk (e % 2, e / 2) of the 2x3 grid: 0 -> 0, 1 -> 3, 2 -> 1, 3 -> 4.
  ASSERT_EQ(indexes(l), (std::vector<uint64_t>{0, 1, 3, 4})) << first_error(l);
  EXPECT_EQ(l.chunks[1].offset, kData + 2 * 0x10);
  EXPECT_EQ(l.chunks[2].offset, kData + 1 * 0x10);
}

TEST(Hdf5Chunks, ExtensibleArrayMalformedBlocks) {
  uint64_t header = 0;
  Bytes b = extensible_array_with_super_blocks(header);
  const auto index =
      make_index(ChunkIndexType::extensible_array, header, {32}, {kUnlimited}, {1}, 2);
  // A flipped bit in the first data block: its checksum fails, its 2 chunks are dropped.
  Bytes bad = b;
  const Listing clean = list(b, index);
  bad.data()[0x200 + 20 + 8] ^= std::byte{1};  // the first data block's first entry
  const Listing l = list(bad, index);
  EXPECT_EQ(l.chunks.size(), clean.chunks.size() - 2);
  EXPECT_NE(first_error(l).find("checksum"), std::string::npos) << first_error(l);
}

}  // namespace
}  // namespace payloadfs::formats::hdf5

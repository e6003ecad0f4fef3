// HDF5 object header messages of real files: h5py (libhdf5) writes them with libver earliest,
// v108 and latest and says what each object is (tests/fixtures/gen_hdf5_messages.py); the
// messages are found from the object header address H5Oget_info gives, by a minimal walk of
// version 1 and version 2 object headers, and each parser's result is compared with h5py's.

#include <gtest/gtest.h>

#include <cstdio>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "core/formats/support/hdf5_messages.hpp"
#include "core/io/binary_reader.hpp"
#include "unit/test_support.hpp"

namespace payloadfs::formats::hdf5 {
namespace {

using MessageMap = std::multimap<uint16_t, ByteRange>;

// Version 1 object header: 16-byte prefix, then messages (type 2, size 2, flags 1, reserved 3);
// continuation blocks hold messages only.
void walk_v1(BinaryReader& r, uint64_t address, MessageMap& out) {
  r.seek(address);
  r.skip(2);
  const uint16_t count = r.u16();
  r.skip(4);
  std::vector<ByteRange> blocks{{address + 16, r.u32()}};
  unsigned seen = 0;
  for (size_t b = 0; b < blocks.size() && b < 64 && r.ok(); ++b) {
    r.seek(blocks[b].offset);
    while (r.ok() && r.tell() + 8 <= blocks[b].offset + blocks[b].length && seen < count) {
      const uint16_t type = r.u16();
      const uint16_t size = r.u16();
      r.skip(4);
      out.emplace(type, ByteRange{r.tell(), size});
      ++seen;
      if (type == 0x10) {
        const uint64_t at = r.u64();
        blocks.push_back({at, r.u64()});
        r.skip(size - 16);
      } else {
        r.skip(size);
      }
    }
  }
}

// Version 2: "OHDR" prefix, chunk 0, then "OCHK" continuation blocks; each block ends with a
// 4-byte checksum.
void walk_v2(BinaryReader& r, uint64_t address, MessageMap& out) {
  r.seek(address + 5);
  const uint8_t flags = r.u8();
  if (flags & 0x20) r.skip(16);
  if (flags & 0x10) r.skip(4);
  uint64_t size = 0;
  const unsigned width = 1u << (flags & 3);
  for (unsigned i = 0; i < width; ++i) size |= uint64_t{r.u8()} << (8 * i);
  std::vector<ByteRange> blocks{{r.tell(), size}};
  const uint64_t header = (flags & 4) ? 6 : 4;
  for (size_t b = 0; b < blocks.size() && b < 64 && r.ok(); ++b) {
    r.seek(blocks[b].offset);
    const uint64_t end = blocks[b].offset + blocks[b].length;
    while (r.ok() && r.tell() + header <= end) {
      const uint8_t type = r.u8();
      const uint16_t length = r.u16();
      r.skip(header - 3);
      out.emplace(type, ByteRange{r.tell(), length});
      if (type == 0x10) {
        const uint64_t at = r.u64();
        const uint64_t block_length = r.u64();
        blocks.push_back({at + 4, block_length - 8});  // "OCHK" ... checksum
        r.skip(length - 16);
      } else {
        r.skip(length);
      }
    }
  }
}

MessageMap messages_at(const ByteSource& file, uint64_t address) {
  BinaryReader r(file);
  r.seek(address);
  MessageMap out;
  if (r.text(4) == "OHDR")
    walk_v2(r, address, out);
  else
    walk_v1(r, address, out);
  EXPECT_TRUE(r.ok()) << r.error().value_or("");
  return out;
}

std::optional<ByteRange> only(const MessageMap& messages, uint16_t type) {
  auto it = messages.find(type);
  if (it == messages.end()) return std::nullopt;
  return it->second;
}

// Message versions seen in the real files, to show which versions were checked.
std::map<std::string, std::set<int>>& versions_seen() {
  static std::map<std::string, std::set<int>> seen;
  return seen;
}
void note_version(const ByteSource& file, const std::string& what, ByteRange body) {
  std::byte b{};
  if (file.read_exact(body.offset, std::span(&b, 1)))
    versions_seen()[what].insert(what == "datatype" ? static_cast<int>(b) >> 4
                                                    : static_cast<int>(b));
}

void check_attributes(const ByteSource& file, const MessageMap& messages, const Json& expected) {
  size_t found = 0;
  for (auto [it, end] = messages.equal_range(0x0C); it != end; ++it) {
    std::string error;
    note_version(file, "attribute", it->second);
    auto a = parse_attribute(file, Sizes{}, it->second, error);
    ASSERT_TRUE(a) << error;
    ASSERT_TRUE(expected.contains(a->name)) << a->name;
    EXPECT_EQ(a->value, expected[a->name]) << a->name;
    ++found;
  }
  EXPECT_EQ(found, expected.size());
}

void check_filters(const ByteSource& file, const MessageMap& messages, const Json& expected,
                   uint64_t element_size) {
  std::vector<Filter> filters;
  if (auto body = only(messages, 0x0B)) {
    std::string error;
    auto parsed = parse_filter_pipeline(file, *body, error);
    ASSERT_TRUE(parsed) << error;
    filters = *parsed;
    note_version(file, "filter pipeline", *body);
  }
  ASSERT_EQ(filters.size(), expected["filters"].size());
  for (size_t i = 0; i < filters.size(); ++i) {
    EXPECT_EQ(filters[i].id, expected["filters"][i]["id"]);
    EXPECT_EQ(filters[i].name, expected["filters"][i]["name"]);
    EXPECT_EQ(Json(filters[i].client_data), expected["filters"][i]["client_data"]);
  }
  auto codecs = zarr_codecs(filters, element_size);
  if (expected["zarr"].is_null()) {
    EXPECT_FALSE(codecs);
  } else {
    ASSERT_TRUE(codecs);
    EXPECT_EQ(codecs->compressor, expected["zarr"]["compressor"]);
    EXPECT_EQ(codecs->filters, expected["zarr"]["filters"]);
  }
}

// The chunk index libhdf5 picks for layout version 4 (H5Dlayout.c: a single chunk when it
// covers the fixed dimensions, a fixed array for fixed dimensions, an extensible array for one
// unlimited dimension, a version 2 B-tree for more); version 3 always has a version 1 B-tree.
ChunkIndexType expected_index(const Json& expected, uint8_t layout_version) {
  if (layout_version < 4) return ChunkIndexType::btree1;
  int unlimited = 0;
  for (const Json& m : expected["maxshape"]) unlimited += m == -1 ? 1 : 0;
  if (unlimited > 1) return ChunkIndexType::btree2;
  if (unlimited == 1) return ChunkIndexType::extensible_array;
  return expected["chunks"] == expected["shape"] ? ChunkIndexType::single
                                                 : ChunkIndexType::fixed_array;
}

void check_layout(const ByteSource& file, const MessageMap& messages, const Json& expected,
                  const Datatype& type) {
  auto body = only(messages, 0x08);
  ASSERT_TRUE(body);
  std::string error;
  auto layout = parse_layout(file, Sizes{}, *body, error);
  ASSERT_TRUE(layout) << error;
  note_version(file, "layout", *body);
  std::byte version{};
  ASSERT_TRUE(file.read_exact(body->offset, std::span(&version, 1)));
  const std::string kind = expected["layout"];
  if (kind == "contiguous") {
    EXPECT_EQ(layout->layout_class, DataLayout::Class::contiguous);
    EXPECT_EQ(layout->contiguous_address, expected["contiguous_offset"]);
    uint64_t bytes = type.size;
    for (const Json& d : expected["shape"]) bytes *= d.get<uint64_t>();
    EXPECT_EQ(layout->contiguous_size, bytes);
  } else if (kind == "compact") {
    EXPECT_EQ(layout->layout_class, DataLayout::Class::compact);
    EXPECT_GT(layout->compact_data.length, 0u);
  } else {
    EXPECT_EQ(layout->layout_class, DataLayout::Class::chunked);
    EXPECT_EQ(Json(layout->chunk_index.chunk_dims), expected["chunks"]);
    EXPECT_EQ(layout->chunk_index.element_size, type.size);
    EXPECT_NE(layout->chunk_index.address, kUndefinedAddress);
    EXPECT_EQ(layout->chunk_index.type, expected_index(expected, static_cast<uint8_t>(version)));
  }
}

void check_dataset(const ByteSource& file, const MessageMap& messages, const Json& expected) {
  std::string error;
  auto type_body = only(messages, 0x03);
  ASSERT_TRUE(type_body);
  note_version(file, "datatype", *type_body);
  auto type = parse_datatype(file, *type_body, error);
  ASSERT_TRUE(type) << error;
  EXPECT_EQ(type->dtype, expected["dtype"]);
  if (!expected["hdf5_class"].is_null()) {
    EXPECT_EQ(type->hdf5_class, expected["hdf5_class"]);
  }
  auto space_body = only(messages, 0x01);
  ASSERT_TRUE(space_body);
  note_version(file, "dataspace", *space_body);
  auto space = parse_dataspace(file, Sizes{}, *space_body, error);
  ASSERT_TRUE(space) << error;
  EXPECT_EQ(Json(space->dims), expected["shape"]);
  Json max_dims = Json::array();
  for (uint64_t m : space->max_dims) max_dims.push_back(m == kUnlimited ? Json(-1) : Json(m));
  EXPECT_EQ(max_dims, expected["maxshape"]);
  const auto fill_new = only(messages, 0x05);
  const auto fill_body = fill_new ? fill_new : only(messages, 0x04);
  ASSERT_TRUE(fill_body);
  note_version(file, fill_new ? "fill value" : "old fill value", *fill_body);
  Json fill = parse_fill_value(file, *fill_body, !fill_new, *type, error);
  EXPECT_EQ(fill, expected["fill_value"]) << error;
  check_filters(file, messages, expected, type->size);
  check_layout(file, messages, expected, *type);
}

TEST(Hdf5MessagesRealFiles, WhatH5pySays) {
  const std::string dir = testing::fixtures_dir() + "/hdf5_messages";
  const Json expected = testing::read_fixture_json(dir + "/expected.json");
  ASSERT_EQ(expected["files"].size(), 3u);
  for (const Json& f : expected["files"]) {
    const auto bytes = testing::read_file(dir + "/" + f["file"].get<std::string>());
    MemorySource file(bytes);
    ASSERT_GT(f["objects"].size(), 15u);
    for (const Json& object : f["objects"]) {
      SCOPED_TRACE(f["file"].get<std::string>() + ":" + object["path"].get<std::string>());
      const MessageMap messages = messages_at(file, object["header_address"].get<uint64_t>());
      check_attributes(file, messages, object["attrs"]);
      if (object["dataset"] == true) check_dataset(file, messages, object);
    }
  }
  // The old and the new versions of each message were among those checked.
  auto& seen = versions_seen();
  EXPECT_EQ(seen["layout"], (std::set<int>{3, 4}));
  EXPECT_EQ(seen["attribute"], (std::set<int>{1, 3}));
  EXPECT_EQ(seen["dataspace"], (std::set<int>{1, 2}));
  EXPECT_EQ(seen["filter pipeline"], (std::set<int>{1, 2}));
  for (const auto& [what, versions] : seen) {
    std::string list;
    for (int v : versions) list += " " + std::to_string(v);
    std::printf("%s message versions checked:%s\n", what.c_str(), list.c_str());
  }
}

// Every byte of every real message flipped in turn: each parser gives a result or an error
// (the sanitizer builds check that nothing else happens).
TEST(Hdf5MessagesRealFiles, FlippedBytesNeverCrash) {
  const std::string dir = testing::fixtures_dir() + "/hdf5_messages";
  const Json expected = testing::read_fixture_json(dir + "/expected.json");
  const auto bytes = testing::read_file(dir + "/latest.h5");
  ASSERT_FALSE(bytes.empty());
  const Datatype i4{"integer", 4, "<i4", {{"class", "integer"}, {"size", 4}, {"signed", true}}};
  size_t parsed = 0;
  for (const Json& object : expected["files"][2]["objects"]) {
    MemorySource original(bytes);
    for (const auto& [type, body] :
         messages_at(original, object["header_address"].get<uint64_t>())) {
      for (uint64_t i = 0; i < body.length; ++i) {
        auto mutated = bytes;
        mutated[body.offset + i] ^= std::byte{0xFF};
        MemorySource source(mutated);
        std::string error;
        (void)parse_datatype(source, body, error);
        (void)parse_dataspace(source, Sizes{}, body, error);
        (void)parse_filter_pipeline(source, body, error);
        (void)parse_layout(source, Sizes{}, body, error);
        (void)parse_fill_value(source, body, false, i4, error);
        (void)parse_attribute(source, Sizes{}, body, error);
        ++parsed;
      }
    }
  }
  EXPECT_GT(parsed, 1000u);
}

}  // namespace
}  // namespace payloadfs::formats::hdf5

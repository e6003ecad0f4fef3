// HDF5 object header messages: message bodies hand-built from the File Format Specification 3.0
// (IV.A.2) for every parser and version, and malformed ones (cut short, counts past the limits,
// global heap IDs past the end or naming missing objects, nested type depth bombs).

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "core/formats/support/hdf5_messages.hpp"
#include "unit/bytes.hpp"

namespace payloadfs::formats::hdf5 {
namespace {

using testing::Bytes;

// A datatype message header: class and version, three bytes of class bits, the size.
Bytes type_header(unsigned cls, unsigned version, uint32_t bits, uint32_t size) {
  Bytes b;
  b.u8((version << 4) | cls).le(bits, 3).le(size, 4);
  return b;
}
Bytes int_type(uint32_t size, bool is_signed, bool big = false, unsigned version = 1) {
  return type_header(0, version, (big ? 1 : 0) | (is_signed ? 8 : 0), size)
      .le(0, 2)
      .le(size * 8, 2);
}
Bytes ieee_type(uint32_t size, bool big = false) {
  const uint8_t exp_loc = size == 2 ? 10 : size == 4 ? 23 : 52;
  const uint8_t exp_size = size == 2 ? 5 : size == 4 ? 8 : 11;
  const uint32_t bias = size == 2 ? 15 : size == 4 ? 127 : 1023;
  const uint32_t bits = (big ? 1 : 0) | (2 << 4) | ((size * 8 - 1) << 8);
  return type_header(1, 1, bits, size)
      .le(0, 2)
      .le(size * 8, 2)
      .u8(exp_loc)
      .u8(exp_size)
      .u8(0)
      .u8(exp_loc)
      .le(bias, 4);
}
Bytes string_type(uint32_t size, unsigned padding, unsigned charset) {
  return type_header(3, 1, padding | (charset << 4), size);
}
Bytes vlen_string_type(unsigned charset = 1) {
  return type_header(9, 1, 1 | (charset << 8), 16).append(int_type(1, false).data());
}

struct File {
  std::vector<std::byte> bytes;
  MemorySource source{bytes};
  explicit File(std::vector<std::byte> b) : bytes(std::move(b)), source(bytes) {}
  ByteRange all() const { return {0, bytes.size()}; }
};

std::optional<Datatype> datatype(const Bytes& b, std::string& error) {
  File f(b.data());
  return parse_datatype(f.source, f.all(), error);
}
Json dtype_of(const Bytes& b) {
  std::string error;
  auto t = datatype(b, error);
  EXPECT_TRUE(t.has_value()) << error;
  return t ? t->dtype : Json("parse failed");
}

TEST(Hdf5Datatype, FixedPointAndFloats) {
  EXPECT_EQ(dtype_of(int_type(4, true)), "<i4");
  EXPECT_EQ(dtype_of(int_type(2, false, true)), ">u2");
  EXPECT_EQ(dtype_of(int_type(1, true)), "|i1");
  EXPECT_EQ(dtype_of(int_type(8, false, false, 3)), "<u8");
  EXPECT_EQ(dtype_of(int_type(3, true)), nullptr);  // NumPy has no 3-byte integer
  EXPECT_EQ(dtype_of(ieee_type(2)), "<f2");
  EXPECT_EQ(dtype_of(ieee_type(4, true)), ">f4");
  EXPECT_EQ(dtype_of(ieee_type(8)), "<f8");
  // A 4-byte float with a 7-bit exponent is not IEEE.
  Bytes odd = type_header(1, 1, (2 << 4) | (31 << 8), 4).le(0, 2).le(32, 2);
  odd.u8(24).u8(7).u8(0).u8(24).le(63, 4);
  std::string error;
  auto t = datatype(odd, error);
  ASSERT_TRUE(t) << error;
  EXPECT_EQ(t->dtype, nullptr);
  EXPECT_EQ(t->description["ieee"], false);
}

TEST(Hdf5Datatype, StringsOpaqueBitfieldReferenceTime) {
  EXPECT_EQ(dtype_of(string_type(10, 1, 0)), "|S10");
  Bytes opaque = type_header(5, 1, 5, 4).raw("hello").zeros(3);
  std::string error;
  auto t = datatype(opaque, error);
  ASSERT_TRUE(t) << error;
  EXPECT_EQ(t->dtype, "|V4");
  EXPECT_EQ(t->description["tag"], "hello");
  auto bitfield = type_header(4, 1, 0, 2).le(0, 2).le(16, 2);
  t = datatype(bitfield, error);
  ASSERT_TRUE(t) << error;
  EXPECT_EQ(t->hdf5_class, "bitfield");
  EXPECT_EQ(t->dtype, "<u2");
  t = datatype(type_header(7, 1, 0, 8), error);
  ASSERT_TRUE(t) << error;
  EXPECT_EQ(t->hdf5_class, "reference");
  EXPECT_EQ(t->dtype, nullptr);
  EXPECT_EQ(t->description["kind"], "object");
  t = datatype(type_header(2, 1, 0, 4).le(32, 2), error);
  ASSERT_TRUE(t) << error;
  EXPECT_EQ(t->hdf5_class, "time");
}

// Version 1 compound: names padded to 8, 4-byte offsets, array dimensions per member.
TEST(Hdf5Datatype, CompoundVersion1WithGapsAndArrayMember) {
  Bytes b = type_header(6, 1, 2, 24);
  b.raw("a").zeros(7).le(0, 4).u8(0).zeros(3).le(0, 4).zeros(4).zeros(16).append(
      int_type(2, true).data());
  b.raw("b").zeros(7).le(8, 4).u8(1).zeros(3).le(0, 4).zeros(4).le(3, 4).zeros(12).append(
      ieee_type(4).data());
  const Json expected = Json::parse(R"([["a","<i2"],["","|V6"],["b","<f4",[3]],["","|V4"]])");
  EXPECT_EQ(dtype_of(b), expected);
}

// Version 3 compound: unpadded names, offsets in as few bytes as the size needs (1 here).
TEST(Hdf5Datatype, CompoundVersion3InOffsetOrder) {
  Bytes b = type_header(6, 3, 2, 12);
  b.raw("y").u8(0).u8(4).append(ieee_type(8).data());
  b.raw("x").u8(0).u8(0).append(int_type(4, true).data());
  EXPECT_EQ(dtype_of(b), Json::parse(R"([["x","<i4"],["y","<f8"]])"));
}

TEST(Hdf5Datatype, EnumsArraysVlens) {
  Bytes boolean = type_header(8, 3, 2, 1).append(int_type(1, true).data());
  boolean.raw("FALSE").u8(0).raw("TRUE").u8(0).u8(0).u8(1);
  EXPECT_EQ(dtype_of(boolean), "|b1");
  Bytes colors = type_header(8, 1, 2, 2).append(int_type(2, true).data());
  colors.raw("RED").zeros(5).raw("GREEN").zeros(3).le(0, 2).le(0xFFFF, 2);
  std::string error;
  auto t = datatype(colors, error);
  ASSERT_TRUE(t) << error;
  EXPECT_EQ(t->dtype, "<i2");
  EXPECT_EQ(t->description["members"][1]["value"], -1);
  Bytes array = type_header(10, 3, 0, 24).u8(2).le(2, 4).le(3, 4).append(ieee_type(4).data());
  t = datatype(array, error);
  ASSERT_TRUE(t) << error;
  EXPECT_EQ(t->dtype, "<f4");
  EXPECT_EQ(t->description["dims"], Json::parse("[2,3]"));
  Bytes array_v2 = type_header(10, 2, 0, 8).u8(1).zeros(3).le(4, 4).le(0, 4);
  array_v2.append(int_type(2, false).data());
  EXPECT_EQ(dtype_of(array_v2), "<u2");
  t = datatype(vlen_string_type(), error);
  ASSERT_TRUE(t) << error;
  EXPECT_EQ(t->hdf5_class, "vlen-string");
  EXPECT_EQ(t->dtype, nullptr);
  EXPECT_EQ(t->description["charset"], "utf-8");
  t = datatype(type_header(9, 1, 0, 16).append(int_type(4, true).data()), error);
  ASSERT_TRUE(t) << error;
  EXPECT_EQ(t->hdf5_class, "vlen");
}

TEST(Hdf5Datatype, MalformedGiveErrors) {
  std::string error;
  EXPECT_FALSE(datatype(Bytes().u8(0x10).u8(8), error));
  EXPECT_FALSE(error.empty());
  Bytes cut = int_type(4, true);
  cut.data().pop_back();
  error.clear();
  EXPECT_FALSE(datatype(cut, error));
  EXPECT_NE(error.find("datatype"), std::string::npos) << error;
  error.clear();
  EXPECT_FALSE(datatype(type_header(11, 1, 0, 4), error));  // no class 11
  EXPECT_NE(error.find("class 11"), std::string::npos) << error;
  error.clear();
  EXPECT_FALSE(datatype(type_header(6, 3, 5000, 8), error));  // members past the limit
  EXPECT_NE(error.find("limit"), std::string::npos) << error;
  // Arrays of arrays of ... 40 levels deep: refused at kMaxTypeDepth.
  Bytes bomb;
  for (int i = 0; i < 40; ++i) bomb.append(type_header(10, 3, 0, 4).u8(1).le(1, 4).data());
  bomb.append(int_type(4, true).data());
  error.clear();
  EXPECT_FALSE(datatype(bomb, error));
  EXPECT_NE(error.find("deeper"), std::string::npos) << error;
  // A compound member past the compound's size.
  Bytes outside = type_header(6, 3, 1, 4);
  outside.raw("x").u8(0).u8(2).append(int_type(4, true).data());
  error.clear();
  EXPECT_FALSE(datatype(outside, error));
}

std::optional<Dataspace> dataspace(const Bytes& b, std::string& error, Sizes sizes = {}) {
  File f(b.data());
  return parse_dataspace(f.source, sizes, f.all(), error);
}

TEST(Hdf5Dataspace, Versions) {
  std::string error;
  auto s = dataspace(Bytes().u8(1).u8(0).u8(0).zeros(5), error);
  ASSERT_TRUE(s) << error;
  EXPECT_TRUE(s->scalar);
  Bytes v1 = Bytes().u8(1).u8(2).u8(1).zeros(5).le(10, 8).le(4, 8).le(~0ULL, 8).le(4, 8);
  s = dataspace(v1, error);
  ASSERT_TRUE(s) << error;
  EXPECT_EQ(s->dims, (std::vector<uint64_t>{10, 4}));
  EXPECT_EQ(s->max_dims, (std::vector<uint64_t>{kUnlimited, 4}));
  s = dataspace(Bytes().u8(2).u8(0).u8(0).u8(2), error);
  ASSERT_TRUE(s) << error;
  EXPECT_TRUE(s->null);
  Sizes small{8, 4, 0};
  s = dataspace(Bytes().u8(2).u8(1).u8(0).u8(1).le(7, 4), error, small);
  ASSERT_TRUE(s) << error;
  EXPECT_EQ(s->dims, std::vector<uint64_t>{7});
  EXPECT_EQ(s->max_dims, std::vector<uint64_t>{7});
  s = dataspace(Bytes().u8(2).u8(1).u8(1).u8(1).le(7, 4).le(0xFFFFFFFF, 4), error, small);
  ASSERT_TRUE(s) << error;
  EXPECT_EQ(s->max_dims, std::vector<uint64_t>{kUnlimited});
}

TEST(Hdf5Dataspace, Malformed) {
  std::string error;
  EXPECT_FALSE(dataspace(Bytes().u8(2).u8(40).u8(0).u8(1), error));
  EXPECT_NE(error.find("rank"), std::string::npos) << error;
  error.clear();
  EXPECT_FALSE(dataspace(Bytes().u8(2).u8(2).u8(0).u8(1).le(3, 8), error));
  EXPECT_FALSE(error.empty());
  error.clear();
  EXPECT_FALSE(dataspace(Bytes().u8(3).u8(0).u8(0).u8(0), error));
  EXPECT_NE(error.find("version"), std::string::npos) << error;
}

std::optional<std::vector<Filter>> pipeline(const Bytes& b, std::string& error) {
  File f(b.data());
  return parse_filter_pipeline(f.source, f.all(), error);
}

TEST(Hdf5Filters, Version1And2AndZarrCodecs) {
  Bytes v1 = Bytes().u8(1).u8(2).zeros(6);
  v1.le(2, 2).le(8, 2).le(1, 2).le(1, 2).raw("shuffle").u8(0).le(4, 4).zeros(4);
  v1.le(1, 2).le(8, 2).le(0, 2).le(1, 2).raw("deflate").u8(0).le(4, 4).zeros(4);
  std::string error;
  auto p = pipeline(v1, error);
  ASSERT_TRUE(p) << error;
  ASSERT_EQ(p->size(), 2u);
  EXPECT_EQ((*p)[0].name, "shuffle");
  EXPECT_TRUE((*p)[0].optional);
  EXPECT_EQ((*p)[1].client_data, std::vector<uint32_t>{4});
  auto codecs = zarr_codecs(*p, 8);
  ASSERT_TRUE(codecs);
  EXPECT_EQ(codecs->compressor, Json::parse(R"({"id":"zlib","level":4})"));
  EXPECT_EQ(codecs->filters, Json::parse(R"([{"id":"shuffle","elementsize":8}])"));

  Bytes v2 = Bytes().u8(2).u8(2);
  v2.le(32001, 2).le(6, 2).le(0, 2).le(7, 2).raw("blosc").u8(0);
  for (uint32_t v : {2u, 2u, 4u, 4096u, 5u, 1u, 1u}) v2.le(v, 4);
  v2.le(40000, 2).le(0, 2).le(1, 2).le(0, 2);
  p = pipeline(v2, error);
  ASSERT_TRUE(p) << error;
  EXPECT_EQ((*p)[0].name, "blosc");
  EXPECT_EQ((*p)[1].name, "filter-40000");
  EXPECT_FALSE(zarr_codecs(*p, 4));  // no numcodecs equivalent for filter 40000
  p->pop_back();
  codecs = zarr_codecs(*p, 4);
  ASSERT_TRUE(codecs);
  EXPECT_EQ(codecs->compressor["cname"], "lz4");
  EXPECT_EQ(codecs->filters, nullptr);
  // fletcher32: numcodecs 0.11 has no such codec.
  EXPECT_FALSE(zarr_codecs({Filter{3, "fletcher32", false, {}}}, 4));
  EXPECT_FALSE(zarr_codecs({Filter{32000, "lzf", false, {}}}, 4));
  codecs = zarr_codecs({Filter{32015, "zstd", false, {3}}}, 4);
  ASSERT_TRUE(codecs);
  EXPECT_EQ(codecs->compressor, Json::parse(R"({"id":"zstd","level":3})"));
  codecs = zarr_codecs({}, 4);
  ASSERT_TRUE(codecs);
  EXPECT_EQ(codecs->compressor, nullptr);
}

TEST(Hdf5Filters, Malformed) {
  std::string error;
  EXPECT_FALSE(pipeline(Bytes().u8(2).u8(200), error));
  EXPECT_NE(error.find("limit"), std::string::npos) << error;
  error.clear();
  EXPECT_FALSE(pipeline(Bytes().u8(2).u8(1).le(1, 2).le(0, 2).le(60000, 2), error));
  EXPECT_FALSE(error.empty());
  error.clear();
  EXPECT_FALSE(pipeline(Bytes().u8(2).u8(1).le(1, 2).le(0, 2).le(3, 2).le(1, 4), error));
  EXPECT_FALSE(error.empty());
}

std::optional<DataLayout> layout(const Bytes& b, std::string& error, Sizes sizes = {}) {
  File f(b.data());
  return parse_layout(f.source, sizes, f.all(), error);
}

TEST(Hdf5Layout, Version3) {
  std::string error;
  auto l = layout(Bytes().u8(3).u8(1).le(2048, 8).le(800, 8), error, Sizes{8, 8, 512});
  ASSERT_TRUE(l) << error;
  EXPECT_EQ(l->layout_class, DataLayout::Class::contiguous);
  EXPECT_EQ(l->contiguous_address, 2560u);
  EXPECT_EQ(l->contiguous_size, 800u);
  l = layout(Bytes().u8(3).u8(1).le(~0ULL, 8).le(800, 8), error);
  ASSERT_TRUE(l) << error;
  EXPECT_EQ(l->contiguous_address, kUndefinedAddress);
  l = layout(Bytes().u8(3).u8(0).le(4, 2).raw("abcd"), error);
  ASSERT_TRUE(l) << error;
  EXPECT_EQ(l->layout_class, DataLayout::Class::compact);
  EXPECT_EQ(l->compact_data, (ByteRange{4, 4}));
  l = layout(Bytes().u8(3).u8(2).u8(3).le(4096, 8).le(10, 4).le(5, 4).le(4, 4), error);
  ASSERT_TRUE(l) << error;
  EXPECT_EQ(l->chunk_index.type, ChunkIndexType::btree1);
  EXPECT_EQ(l->chunk_index.address, 4096u);
  EXPECT_EQ(l->chunk_index.chunk_dims, (std::vector<uint64_t>{10, 5}));
  EXPECT_EQ(l->chunk_index.element_size, 4u);
}

TEST(Hdf5Layout, Version1And2) {
  std::string error;
  auto l = layout(Bytes().u8(1).u8(3).u8(2).zeros(5).le(800, 8).le(8, 4).le(8, 4).le(2, 4), error);
  ASSERT_TRUE(l) << error;
  EXPECT_EQ(l->chunk_index.address, 800u);
  EXPECT_EQ(l->chunk_index.chunk_dims, (std::vector<uint64_t>{8, 8}));
  EXPECT_EQ(l->chunk_index.element_size, 2u);
  l = layout(Bytes().u8(2).u8(2).u8(1).zeros(5).le(900, 8).le(10, 4).le(4, 4), error);
  ASSERT_TRUE(l) << error;
  EXPECT_EQ(l->contiguous_address, 900u);
  EXPECT_EQ(l->contiguous_size, 40u);
}

TEST(Hdf5Layout, Version4Indexes) {
  std::string error;
  // Single chunk, filtered: flags bit 1; 2-byte dimension encoding.
  Bytes single = Bytes().u8(4).u8(2).u8(2).u8(3).u8(2).le(100, 2).le(50, 2).le(8, 2);
  single.u8(1).le(1234, 8).le(2, 4).le(7777, 8);
  auto l = layout(single, error);
  ASSERT_TRUE(l) << error;
  EXPECT_EQ(l->chunk_index.type, ChunkIndexType::single);
  EXPECT_EQ(l->chunk_index.single_filtered_size, 1234u);
  EXPECT_EQ(l->chunk_index.single_filter_mask, 2u);
  EXPECT_EQ(l->chunk_index.address, 7777u);
  EXPECT_EQ(l->chunk_index.chunk_dims, (std::vector<uint64_t>{100, 50}));
  EXPECT_EQ(l->chunk_index.element_size, 8u);
  auto v4 = [](unsigned type) {
    return Bytes().u8(4).u8(2).u8(0).u8(2).u8(1).u8(10).u8(4).u8(type);
  };
  l = layout(v4(2).le(500, 8), error);
  ASSERT_TRUE(l) << error;
  EXPECT_EQ(l->chunk_index.type, ChunkIndexType::implicit);
  l = layout(v4(3).u8(10).le(600, 8), error);
  ASSERT_TRUE(l) << error;
  EXPECT_EQ(l->chunk_index.fixed_array_page_bits, 10);
  l = layout(v4(4).u8(32).u8(4).u8(4).u8(16).u8(10).le(700, 8), error);
  ASSERT_TRUE(l) << error;
  EXPECT_EQ(l->chunk_index.type, ChunkIndexType::extensible_array);
  EXPECT_EQ(l->chunk_index.ea_max_bits, 32);
  EXPECT_EQ(l->chunk_index.ea_page_bits, 10);
  EXPECT_EQ(l->chunk_index.address, 700u);
  l = layout(v4(5).le(2048, 4).u8(100).u8(40).le(800, 8), error);
  ASSERT_TRUE(l) << error;
  EXPECT_EQ(l->chunk_index.btree2_node_size, 2048u);
  EXPECT_EQ(l->chunk_index.btree2_merge_percent, 40);
  l = layout(Bytes().u8(4).u8(3).le(0, 8).le(0, 4), error);
  ASSERT_TRUE(l) << error;
  EXPECT_EQ(l->layout_class, DataLayout::Class::virtual_dataset);
  EXPECT_FALSE(layout(v4(9).le(800, 8), error));
  EXPECT_NE(error.find("index type 9"), std::string::npos) << error;
}

TEST(Hdf5Layout, Malformed) {
  std::string error;
  EXPECT_FALSE(layout(Bytes().u8(3).u8(1).le(2048, 8), error));  // cut before the size
  error.clear();
  EXPECT_FALSE(layout(Bytes().u8(5), error));
  EXPECT_NE(error.find("version 5"), std::string::npos) << error;
  error.clear();
  EXPECT_FALSE(layout(Bytes().u8(3).u8(0).le(100, 2).raw("abcd"), error));  // compact data cut
  error.clear();
  EXPECT_FALSE(layout(Bytes().u8(3).u8(2).u8(200), error));
  EXPECT_NE(error.find("limit"), std::string::npos) << error;
  error.clear();
  EXPECT_FALSE(layout(Bytes().u8(3).u8(2).u8(2).le(1, 8).le(0, 4).le(4, 4), error));
  EXPECT_NE(error.find("0"), std::string::npos) << error;
}

Datatype type_of(const Bytes& b) {
  std::string error;
  auto t = datatype(b, error);
  EXPECT_TRUE(t) << error;
  return t.value_or(Datatype{});
}
Json fill(const Bytes& body, bool old_style, const Datatype& type, std::string& error) {
  File f(body.data());
  return parse_fill_value(f.source, f.all(), old_style, type, error);
}

TEST(Hdf5FillValue, Versions) {
  std::string error;
  const Datatype f8 = type_of(ieee_type(8));
  Bytes nan = Bytes().u8(3).u8(0x20).le(8, 4).le(0x7FF8000000000000ULL, 8);
  EXPECT_EQ(fill(nan, false, f8, error), "NaN") << error;
  EXPECT_EQ(fill(Bytes().u8(3).u8(0x20).le(8, 4).le(0xFFF0000000000000ULL, 8), false, f8, error),
            "-Infinity");
  EXPECT_EQ(fill(Bytes().u8(3).u8(0x10), false, f8, error), nullptr);  // undefined
  EXPECT_EQ(fill(Bytes().u8(3).u8(0), false, f8, error), 0.0);         // default
  const Datatype i2 = type_of(int_type(2, true));
  EXPECT_EQ(fill(Bytes().u8(2).u8(2).u8(2).u8(1).le(2, 4).le(0xFFFE, 2), false, i2, error), -2);
  EXPECT_EQ(fill(Bytes().u8(2).u8(2).u8(2).u8(1).le(0, 4), false, i2, error), 0);
  EXPECT_EQ(fill(Bytes().u8(2).u8(2).u8(2).u8(0), false, i2, error), nullptr);
  EXPECT_EQ(fill(Bytes().u8(1).u8(2).u8(2).u8(1).le(2, 4).le(7, 2), false, i2, error), 7);
  EXPECT_EQ(fill(Bytes().le(2, 4).le(9, 2), true, i2, error), 9);
  EXPECT_TRUE(error.empty()) << error;
  const Datatype s3 = type_of(string_type(3, 1, 0));
  EXPECT_EQ(fill(Bytes().le(3, 4).raw("abc"), true, s3, error), "YWJj");
  Bytes boolean = type_header(8, 3, 2, 1).append(int_type(1, true).data());
  boolean.raw("FALSE").u8(0).raw("TRUE").u8(0).u8(0).u8(1);
  EXPECT_EQ(fill(Bytes().le(1, 4).u8(1), true, type_of(boolean), error), true);
  EXPECT_EQ(fill(Bytes().u8(3).u8(0), false, type_of(vlen_string_type()), error), nullptr);
  EXPECT_TRUE(error.empty()) << error;
  // A value of the wrong size, a cut value, an unknown version.
  EXPECT_EQ(fill(Bytes().le(4, 4).le(1, 4), true, i2, error), nullptr);
  EXPECT_FALSE(error.empty());
  error.clear();
  EXPECT_EQ(fill(Bytes().le(8, 4).le(1, 2), true, i2, error), nullptr);
  EXPECT_FALSE(error.empty());
  error.clear();
  EXPECT_EQ(fill(Bytes().u8(4).u8(0), false, i2, error), nullptr);
  EXPECT_NE(error.find("version"), std::string::npos) << error;
}

// Attribute message version 1 (fields padded to 8) holding `type`, `space` and `data`.
Bytes attribute_v1(const std::string& name, const Bytes& type, const Bytes& space,
                   const Bytes& data) {
  Bytes b = Bytes().u8(1).u8(0).le(name.size() + 1, 2).le(type.size(), 2).le(space.size(), 2);
  b.raw(name).u8(0).pad_to(8);
  b.append(type.data()).pad_to(8).append(space.data()).pad_to(8).append(data.data());
  return b;
}
Bytes attribute_v3(const std::string& name, const Bytes& type, const Bytes& space,
                   const Bytes& data) {
  Bytes b = Bytes().u8(3).u8(0).le(name.size() + 1, 2).le(type.size(), 2).le(space.size(), 2);
  b.u8(1).raw(name).u8(0).append(type.data()).append(space.data()).append(data.data());
  return b;
}
Bytes simple_space(std::vector<uint64_t> dims) {
  Bytes b = Bytes().u8(2).u8(dims.size()).u8(0).u8(1);
  for (uint64_t d : dims) b.le(d, 8);
  return b;
}
Bytes scalar_space() {
  return Bytes().u8(2).u8(0).u8(0).u8(0);
}

std::optional<Attribute> attribute(const std::vector<std::byte>& file, ByteRange body,
                                   std::string& error) {
  MemorySource source(file);
  return parse_attribute(source, Sizes{}, body, error);
}
std::optional<Attribute> attribute(const Bytes& b, std::string& error) {
  return attribute(b.data(), {0, b.size()}, error);
}

TEST(Hdf5Attribute, NumbersArraysStrings) {
  std::string error;
  Bytes data = Bytes().le(1, 4).le(0xFFFFFFFF, 4).le(3, 4).le(4, 4).le(5, 4).le(6, 4);
  auto a = attribute(attribute_v1("counts", int_type(4, true), simple_space({2, 3}), data), error);
  ASSERT_TRUE(a) << error;
  EXPECT_EQ(a->name, "counts");
  EXPECT_EQ(a->value, Json::parse("[[1,-1,3],[4,5,6]]"));
  a = attribute(
      attribute_v3("pi", ieee_type(8), scalar_space(), Bytes().le(0x400921FB54442D18ULL, 8)),
      error);
  ASSERT_TRUE(a) << error;
  EXPECT_DOUBLE_EQ(a->value.get<double>(), 3.141592653589793);
  a = attribute(attribute_v3("inf", ieee_type(4), simple_space({1}), Bytes().le(0x7F800000, 4)),
                error);
  ASSERT_TRUE(a) << error;
  EXPECT_EQ(a->value, Json::parse(R"(["Infinity"])"));
  a = attribute(
      attribute_v3("s", string_type(6, 0, 1), scalar_space(), Bytes().raw("h\xc3\xa9").zeros(3)),
      error);
  ASSERT_TRUE(a) << error;
  EXPECT_EQ(a->value, "h\xc3\xa9");
  a = attribute(attribute_v3("sp", string_type(5, 2, 0), scalar_space(), Bytes().raw("ab   ")),
                error);
  ASSERT_TRUE(a) << error;
  EXPECT_EQ(a->value, "ab");
  a = attribute(
      attribute_v3("bad", string_type(2, 1, 0), scalar_space(), Bytes().raw("\xff").u8(0)), error);
  ASSERT_TRUE(a) << error;
  EXPECT_EQ(a->value, "\\xFF");
}

TEST(Hdf5Attribute, CompoundEnumAndLargeValues) {
  std::string error;
  Bytes compound = type_header(6, 3, 2, 6);
  compound.raw("x").u8(0).u8(0).append(int_type(2, false).data());
  compound.raw("y").u8(0).u8(2).append(ieee_type(4).data());
  auto a = attribute(
      attribute_v3("c", compound, scalar_space(), Bytes().le(7, 2).le(0x3FC00000, 4)), error);
  ASSERT_TRUE(a) << error;
  EXPECT_EQ(a->value, Json::parse(R"({"x":7,"y":1.5})"));
  Bytes colors = type_header(8, 3, 2, 1).append(int_type(1, false).data());
  colors.raw("RED").u8(0).raw("GREEN").u8(0).u8(0).u8(1);
  a = attribute(attribute_v3("e", colors, simple_space({3}), Bytes().u8(1).u8(0).u8(9)), error);
  ASSERT_TRUE(a) << error;
  EXPECT_EQ(a->value, Json::parse(R"(["GREEN","RED",9])"));
  Bytes boolean = type_header(8, 3, 2, 1).append(int_type(1, true).data());
  boolean.raw("FALSE").u8(0).raw("TRUE").u8(0).u8(0).u8(1);
  a = attribute(attribute_v3("b", boolean, simple_space({2}), Bytes().u8(1).u8(0)), error);
  ASSERT_TRUE(a) << error;
  EXPECT_EQ(a->value, Json::parse("[true,false]"));
  // 100000 doubles: described, not decoded (and not even present in the message).
  a = attribute(attribute_v3("big", ieee_type(8), simple_space({100000}), Bytes()), error);
  ASSERT_TRUE(a) << error;
  EXPECT_EQ(a->value, Json::parse(R"({"dtype":"<f8","shape":[100000]})"));
}

// A file: the attribute message at 0, then a global heap collection at 4096.
std::vector<std::byte> with_heap(const Bytes& message, const Bytes& objects) {
  Bytes file = message;
  file.zeros(4096 - file.size());
  const uint64_t size = 16 + objects.size() + 16;
  file.raw("GCOL").u8(1).zeros(3).le(size, 8).append(objects.data());
  file.le(0, 2).le(0, 2).zeros(4).le(0, 8);  // free space
  return file.take();
}
Bytes heap_object(uint16_t index, std::string_view data) {
  Bytes b = Bytes().le(index, 2).le(1, 2).zeros(4).le(data.size(), 8).raw(data);
  return b.pad_to(8);
}

TEST(Hdf5Attribute, VariableLengthThroughTheGlobalHeap) {
  std::string error;
  Bytes data = Bytes().le(5, 4).le(4096, 8).le(2, 4).le(2, 4).le(4096, 8).le(1, 4);
  const Bytes message = attribute_v3("names", vlen_string_type(), simple_space({2}), data);
  Bytes objects = heap_object(1, "hi");
  objects.append(heap_object(2, "hello").data());
  auto file = with_heap(message, objects);
  auto a = attribute(file, {0, message.size()}, error);
  ASSERT_TRUE(a) << error;
  EXPECT_EQ(a->value, Json::parse(R"(["hello","hi"])"));
  // A sequence of 2 int16 values.
  Bytes seq_type = type_header(9, 1, 0, 16).append(int_type(2, true).data());
  const Bytes seq =
      attribute_v3("seq", seq_type, scalar_space(), Bytes().le(2, 4).le(4096, 8).le(1, 4));
  file = with_heap(seq, heap_object(1, std::string("\x01\x00\xff\xff", 4)));
  a = attribute(file, {0, seq.size()}, error);
  ASSERT_TRUE(a) << error;
  EXPECT_EQ(a->value, Json::parse("[1,-1]"));
}

TEST(Hdf5Attribute, Malformed) {
  std::string error;
  // A heap object that is not there.
  Bytes data = Bytes().le(2, 4).le(4096, 8).le(7, 4);
  const Bytes message = attribute_v3("s", vlen_string_type(), scalar_space(), data);
  auto file = with_heap(message, heap_object(1, "hi"));
  EXPECT_FALSE(attribute(file, {0, message.size()}, error));
  EXPECT_NE(error.find("no object 7"), std::string::npos) << error;
  // A collection past the end of the file.
  const Bytes far = attribute_v3("s", vlen_string_type(), scalar_space(),
                                 Bytes().le(2, 4).le(1ULL << 40, 8).le(1, 4));
  error.clear();
  EXPECT_FALSE(attribute(far, error));
  EXPECT_NE(error.find("past the end"), std::string::npos) << error;
  // An object longer than its collection.
  Bytes liar = Bytes().le(1, 2).le(1, 2).zeros(4).le(1000, 8).raw("hi").pad_to(8);
  file = with_heap(message, liar);
  error.clear();
  EXPECT_FALSE(attribute(file, {0, message.size()}, error));
  EXPECT_NE(error.find("runs past"), std::string::npos) << error;
  // A length longer than the object.
  const Bytes long_length =
      attribute_v3("s", vlen_string_type(), scalar_space(), Bytes().le(50, 4).le(4096, 8).le(1, 4));
  file = with_heap(long_length, heap_object(1, "hi"));
  error.clear();
  EXPECT_FALSE(attribute(file, {0, long_length.size()}, error));
  // Data cut short, a name past the message, an unknown version, a shared datatype.
  error.clear();
  EXPECT_FALSE(
      attribute(attribute_v3("x", int_type(4, true), simple_space({4}), Bytes().le(1, 4)), error));
  EXPECT_NE(error.find("runs past"), std::string::npos) << error;
  Bytes cut = attribute_v1("counts", int_type(4, true), simple_space({2}), Bytes());
  cut.data().resize(10);
  error.clear();
  EXPECT_FALSE(attribute(cut, error));
  error.clear();
  EXPECT_FALSE(attribute(Bytes().u8(4).u8(0).le(1, 2).le(1, 2).le(1, 2), error));
  EXPECT_NE(error.find("version 4"), std::string::npos) << error;
  error.clear();
  Bytes shared = attribute_v3("x", int_type(4, true), scalar_space(), Bytes().le(1, 4));
  shared.data()[1] = std::byte{1};
  EXPECT_FALSE(attribute(shared, error));
  EXPECT_NE(error.find("shared"), std::string::npos) << error;
}

// 4000 compound members all at offset 0 of a 1-byte compound, 60000 elements: the decoded
// values stop at their limit instead of growing to 240 million.
TEST(Hdf5Attribute, OverlappingMembersStopAtTheValueLimit) {
  Bytes compound = type_header(6, 3, 4000, 1);
  for (int i = 0; i < 4000; ++i)
    compound.u8('a' + i % 26).u8(0).u8(0).append(int_type(1, false).data());
  Bytes body = attribute_v3("bomb", compound, simple_space({60000}), Bytes().zeros(60000));
  std::string error;
  auto a = attribute(body, error);
  EXPECT_FALSE(a);
  EXPECT_NE(error.find("more than"), std::string::npos) << error;
}

// Every prefix and every single-byte change of a few messages: errors or values, never a crash.
TEST(Hdf5Messages, MutationsNeverCrash) {
  Bytes compound = type_header(6, 1, 1, 8);
  compound.raw("a").zeros(7).le(0, 4).u8(0).zeros(3).le(0, 4).zeros(4).zeros(16).append(
      ieee_type(8).data());
  const Bytes attr = attribute_v1("a", compound, simple_space({2}), Bytes().zeros(16));
  for (const Bytes* seed : std::vector<const Bytes*>{&compound, &attr}) {
    for (size_t n = 0; n <= seed->size(); ++n) {
      std::vector<std::byte> bytes(seed->data().begin(), seed->data().begin() + n);
      for (size_t i = 0; i < n; ++i) {
        auto mutated = bytes;
        mutated[i] ^= std::byte{0xA5};
        MemorySource source(mutated);
        std::string error;
        (void)parse_datatype(source, {0, n}, error);
        (void)parse_attribute(source, Sizes{}, {0, n}, error);
        (void)parse_layout(source, Sizes{}, {0, n}, error);
        (void)parse_dataspace(source, Sizes{}, {0, n}, error);
        (void)parse_filter_pipeline(source, {0, n}, error);
      }
    }
  }
}

}  // namespace
}  // namespace payloadfs::formats::hdf5

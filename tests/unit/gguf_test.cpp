// GGUF parser: hand-built edge cases, and files checked against @huggingface/gguf
// (tests/fixtures/gen_gguf.py writes them and records what the reference read).

#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "core/formats/builtin.hpp"
#include "core/render/json_text.hpp"
#include "unit/test_support.hpp"

namespace payloadfs {
namespace {

using testing::Bytes;
using testing::errors_of;
using testing::has_error;
using testing::parse_bytes;

std::unique_ptr<Format> gguf() {
  return formats::make_gguf();
}

// A GGUF writer for hand-built files, in either byte order.
class G {
 public:
  explicit G(bool big = false) : big_(big) {}
  G& u8(uint64_t v) { return n(v, 1); }
  G& u16(uint64_t v) { return n(v, 2); }
  G& u32(uint64_t v) { return n(v, 4); }
  G& u64(uint64_t v) { return n(v, 8); }
  G& str(std::string_view s) {
    u64(s.size());
    b_.raw(s);
    return *this;
  }
  G& raw(std::string_view s) {
    b_.raw(s);
    return *this;
  }
  G& zeros(size_t k) {
    b_.zeros(k);
    return *this;
  }
  G& pad(size_t alignment) { return zeros((alignment - size() % alignment) % alignment); }
  // Preamble: magic, version, counts.
  G& head(uint32_t version, uint64_t tensors, uint64_t kvs) {
    raw("GGUF");
    u32(version);
    u64(tensors);
    return u64(kvs);
  }
  G& kv_u32(std::string_view key, uint32_t v) {
    str(key);
    u32(4);
    return u32(v);
  }
  G& tensor(std::string_view name, std::vector<uint64_t> dims, uint32_t type, uint64_t offset) {
    str(name);
    u32(dims.size());
    for (uint64_t d : dims) u64(d);
    u32(type);
    return u64(offset);
  }
  size_t size() const { return b_.size(); }
  const std::vector<std::byte>& data() const { return b_.data(); }

 private:
  G& n(uint64_t v, int width) {
    if (big_)
      b_.be(v, width);
    else
      b_.le(v, width);
    return *this;
  }
  bool big_;
  Bytes b_;
};

// Two tensors (F32 [4], Q4_0 [32, 2]) after one metadata pair.
std::vector<std::byte> small_file(bool big = false) {
  G g(big);
  g.head(3, 2, 1).kv_u32("k", 7);
  g.tensor("a", {4}, 0, 0).tensor("b", {32, 2}, 2, 32);
  g.pad(32);
  for (int i = 0; i < 16; ++i) g.u8(static_cast<uint64_t>(i));
  g.zeros(16);
  for (int i = 0; i < 36; ++i) g.u8(0xA0);
  return g.data();
}

TEST(Gguf, Detects) {
  const auto f = gguf();
  EXPECT_TRUE(f->detect(small_file(), 1000));
  EXPECT_TRUE(f->detect(Bytes().raw("GGUF").data(), 4));
  EXPECT_FALSE(f->detect(Bytes().raw("GGU").data(), 3));
  EXPECT_FALSE(f->detect(Bytes().raw("gguf\3\0\0\0").data(), 8));
  EXPECT_FALSE(f->detect(Bytes().raw("GGML").zeros(20).data(), 24));
  EXPECT_FALSE(f->detect({}, 0));
}

TEST(Gguf, ParsesSmallFile) {
  for (bool big : {false, true}) {
    const auto bytes = small_file(big);
    const Layout l = parse_bytes(*gguf(), bytes);
    EXPECT_TRUE(l.errors.empty()) << errors_of(l);
    EXPECT_EQ(l.header["version"], 3);
    EXPECT_EQ(l.header["byte_order"], big ? "big" : "little");
    EXPECT_EQ(l.header["tensor_count"], 2);
    EXPECT_EQ(l.header["metadata_kv_count"], 1);
    EXPECT_EQ(l.header["alignment"], 32);
    EXPECT_EQ(l.header["metadata"]["k"], Json({{"type", "uint32"}, {"value", 7}}));
    ASSERT_EQ(l.slices.size(), 2U);
    const uint64_t data = l.header["tensor_data_offset"].get<uint64_t>();
    EXPECT_EQ(data % 32, 0U);
    EXPECT_EQ(l.slices[0].name, "a");
    EXPECT_EQ(l.slices[0].range, (ByteRange{data, 16}));
    EXPECT_EQ(l.slices[0].attributes["type"], "F32");
    EXPECT_EQ(l.slices[0].attributes["dims"], Json::array({4}));
    EXPECT_EQ(l.slices[1].range, (ByteRange{data + 32, 36}));
    EXPECT_EQ(l.slices[1].attributes["type"], "Q4_0");
    EXPECT_EQ(l.slices[1].attributes["data_offset"], 32);
    EXPECT_EQ(data + 68, bytes.size());
    ASSERT_TRUE(l.magic.has_value());
    EXPECT_EQ(*l.magic, (ByteRange{0, 4}));
  }
}

// Every ggml type, with the block struct sizes of ggml-common.h spelled out (QK_K = 256).
TEST(Gguf, TypeTableMatchesGgml) {
  struct Expect {
    uint32_t id;
    const char* name;
    uint64_t block, size;
  };
  const uint64_t K = 256, half = 2;
  const Expect table[] = {
      {0, "F32", 1, 4},
      {1, "F16", 1, half},
      {2, "Q4_0", 32, half + 32 / 2},
      {3, "Q4_1", 32, 2 * half + 32 / 2},
      {6, "Q5_0", 32, half + 4 + 32 / 2},
      {7, "Q5_1", 32, 2 * half + 4 + 32 / 2},
      {8, "Q8_0", 32, half + 32},
      {9, "Q8_1", 32, 2 * half + 32},
      {10, "Q2_K", K, 2 * half + K / 16 + K / 4},
      {11, "Q3_K", K, half + K / 4 + K / 8 + 12},
      {12, "Q4_K", K, 2 * half + 12 + K / 2},
      {13, "Q5_K", K, 2 * half + 12 + K / 2 + K / 8},
      {14, "Q6_K", K, half + K / 16 + 3 * K / 4},
      {15, "Q8_K", K, 4 + K + K / 16 * 2},
      {16, "IQ2_XXS", K, half + K / 8 * 2},
      {17, "IQ2_XS", K, half + K / 8 * 2 + K / 32},
      {18, "IQ3_XXS", K, half + 3 * (K / 8)},
      {19, "IQ1_S", K, half + K / 8 + K / 16},
      {20, "IQ4_NL", 32, half + 32 / 2},
      {21, "IQ3_S", K, half + 13 * (K / 32) + K / 64},
      {22, "IQ2_S", K, half + K / 4 + K / 16},
      {23, "IQ4_XS", K, half + 2 + K / 64 + K / 2},
      {24, "I8", 1, 1},
      {25, "I16", 1, 2},
      {26, "I32", 1, 4},
      {27, "I64", 1, 8},
      {28, "F64", 1, 8},
      {29, "IQ1_M", K, K / 8 + K / 16 + K / 32},
      {30, "BF16", 1, 2},
      {34, "TQ1_0", K, half + K / 64 + (K - 4 * K / 64) / 5},
      {35, "TQ2_0", K, half + K / 4},
      {39, "MXFP4", 32, 1 + 32 / 2},
      {40, "NVFP4", 64, 64 / 16 + 64 / 2},
      {41, "Q1_0", 128, half + 128 / 8},
      {42, "Q2_0", 64, half + 64 / 4},
  };
  for (const auto& e : table) {
    // One tensor of two blocks per row and three rows.
    G g;
    g.head(3, 1, 0).tensor("t", {2 * e.block, 3}, e.id, 0).pad(32);
    g.zeros(6 * e.size);
    const Layout l = parse_bytes(*gguf(), g.data());
    ASSERT_EQ(l.slices.size(), 1U) << e.name << "\n" << errors_of(l);
    EXPECT_EQ(l.slices[0].attributes["type"], e.name);
    EXPECT_EQ(l.slices[0].range.length, 6 * e.size) << e.name;
    EXPECT_TRUE(l.errors.empty()) << e.name << "\n" << errors_of(l);
    if (e.block > 1) {  // a row that is not a whole number of blocks
      G bad;
      bad.head(3, 1, 0).tensor("t", {e.block + 1}, e.id, 0).pad(32).zeros(4 * e.size);
      const Layout lb = parse_bytes(*gguf(), bad.data());
      EXPECT_TRUE(lb.slices.empty()) << e.name;
      EXPECT_TRUE(has_error(lb, "not a multiple of")) << e.name;
    }
  }
  // Removed and unknown ids.
  for (uint32_t id : {4U, 5U, 31U, 32U, 33U, 36U, 37U, 38U, 43U, 0xFFFFFFFFU}) {
    G g;
    g.head(3, 1, 0).tensor("t", {32}, id, 0).pad(32).zeros(4096);
    const Layout l = parse_bytes(*gguf(), g.data());
    EXPECT_TRUE(l.slices.empty()) << id;
    EXPECT_TRUE(has_error(l, "invalid ggml type")) << id;
  }
}

TEST(Gguf, EveryValueType) {
  G g;
  g.head(3, 0, 14);
  g.str("u8").u32(0).u8(255);
  g.str("i8").u32(1).u8(0x80);
  g.str("u16").u32(2).u16(65535);
  g.str("i16").u32(3).u16(0x8000);
  g.str("u32").u32(4).u32(0xFFFFFFFF);
  g.str("i32").u32(5).u32(0x80000000);
  g.str("f32").u32(6).u32(0x3FC00000);  // 1.5
  g.str("bool").u32(7).u8(1);
  g.str("str").u32(8).str("h\xC3\xA9");
  g.str("arr").u32(9).u32(4).u64(3).u32(1).u32(2).u32(3);
  g.str("u64").u32(10).u64(~0ULL);
  g.str("i64").u32(11).u64(0x8000000000000000ULL);
  g.str("f64").u32(12).u64(0xC004000000000000ULL);  // -2.5
  g.str("bad\xFF").u32(7).u8(0);
  const Layout l = parse_bytes(*gguf(), g.data());
  EXPECT_TRUE(l.errors.empty()) << errors_of(l);
  const Json& m = l.header["metadata"];
  EXPECT_EQ(m["u8"]["value"], 255);
  EXPECT_EQ(m["i8"]["value"], -128);
  EXPECT_EQ(m["u16"]["value"], 65535);
  EXPECT_EQ(m["i16"]["value"], -32768);
  EXPECT_EQ(m["u32"]["value"], 4294967295U);
  EXPECT_EQ(m["i32"]["value"], -2147483648LL);
  EXPECT_EQ(m["f32"]["value"], 1.5);
  EXPECT_EQ(m["f32"]["type"], "float32");
  EXPECT_EQ(m["bool"]["value"], true);
  EXPECT_EQ(m["str"]["value"], "h\xC3\xA9");
  EXPECT_EQ(
      m["arr"],
      Json({{"type", "array"}, {"element_type", "uint32"}, {"count", 3}, {"value", {1, 2, 3}}}));
  EXPECT_EQ(m["u64"]["value"], ~0ULL);
  EXPECT_EQ(m["i64"]["value"], INT64_MIN);
  EXPECT_EQ(m["f64"]["value"], -2.5);
  EXPECT_TRUE(m.contains("bad\\xFF")) << m.dump();
  EXPECT_EQ(l.header["tensor_data_offset"], 0 + ((g.size() + 31) / 32 * 32));
}

TEST(Gguf, LongArraysAndStringsAreBounded) {
  G g;
  g.head(3, 0, 3);
  g.str("nums").u32(9).u32(0).u64(1000);
  for (int i = 0; i < 1000; ++i) g.u8(static_cast<uint64_t>(i & 0xFF));
  // 5000 bytes, with a 2-byte character straddling the 4096-byte display limit.
  std::string text(4095, 'a');
  text += "\xC3\xA9";
  text += std::string(903, 'b');
  g.str("text").u32(8).str(text);
  g.str("strs").u32(9).u32(8).u64(100);
  for (int i = 0; i < 100; ++i) g.str(i == 1 ? std::string(5000, 'z') : std::to_string(i));
  const Layout l = parse_bytes(*gguf(), g.data());
  EXPECT_TRUE(l.errors.empty()) << errors_of(l);
  const Json& m = l.header["metadata"];
  EXPECT_EQ(m["nums"]["count"], 1000);
  EXPECT_EQ(m["nums"]["value"].size(), 64U);
  EXPECT_EQ(m["nums"]["value"][63], 63);
  EXPECT_EQ(m["nums"]["truncated"], true);
  EXPECT_EQ(m["text"]["length"], 5000);
  EXPECT_EQ(m["text"]["value"], std::string(4095, 'a'));
  EXPECT_EQ(m["strs"]["value"].size(), 64U);
  EXPECT_EQ(m["strs"]["value"][63], "63");
  EXPECT_EQ(m["strs"]["value"][1].get<std::string>().size(), 4096U);
  EXPECT_EQ(m["strs"]["truncated_strings"], 1);
}

TEST(Gguf, NestedArraysAreBounded) {
  auto nested = [](int depth) {
    G g;
    g.head(3, 0, 1).str("n").u32(9);
    for (int i = 0; i < depth - 1; ++i) g.u32(9).u64(1);
    g.u32(5).u64(2).u32(7).u32(8);
    return g;
  };
  const Layout ok = parse_bytes(*gguf(), nested(8).data());
  EXPECT_TRUE(ok.errors.empty()) << errors_of(ok);
  Json v = ok.header["metadata"]["n"];
  for (int i = 0; i < 7; ++i) v = v["value"][0];
  EXPECT_EQ(v["value"], Json::array({7, 8}));
  const Layout deep = parse_bytes(*gguf(), nested(9).data());
  EXPECT_TRUE(has_error(deep, "nest deeper")) << errors_of(deep);
}

TEST(Gguf, HostileLengths) {
  for (uint64_t n : {0x100000000ULL - 1, ~0ULL, 1ULL << 62}) {
    // String length.
    G s;
    s.head(3, 0, 1).u64(n).raw("key").u32(4).u32(1);
    EXPECT_FALSE(parse_bytes(*gguf(), s.data()).errors.empty()) << n;
    // Array count, for fixed-size, string and array elements.
    for (uint32_t element : {4U, 8U, 9U, 12U}) {
      G a;
      a.head(3, 0, 1).str("k").u32(9).u32(element).u64(n).zeros(64);
      const Layout l = parse_bytes(*gguf(), a.data());
      EXPECT_TRUE(has_error(l, "past the end")) << n << " " << element << errors_of(l);
    }
    // Counts.
    G c;
    c.head(3, n, n);
    EXPECT_TRUE(has_error(parse_bytes(*gguf(), c.data()), "exceeds the limit"));
    // Dimensions whose product overflows, or that ggml reads as negative.
    G d;
    d.head(3, 1, 0).tensor("t", {n, n, 2}, 0, 0).pad(32).zeros(64);
    const Layout ld = parse_bytes(*gguf(), d.data());
    EXPECT_TRUE(ld.slices.empty()) << n;
    EXPECT_FALSE(ld.errors.empty()) << n;
    // Data offsets past the end, or wrapping around.
    G o;
    o.head(3, 1, 0).tensor("t", {4}, 0, n & ~31ULL).pad(32).zeros(16);
    const Layout lo = parse_bytes(*gguf(), o.data());
    EXPECT_TRUE(lo.slices.empty()) << n;
    EXPECT_FALSE(lo.errors.empty()) << n;
  }
  // Zero-length everything is fine.
  G z;
  z.head(3, 1, 1).str("").u32(8).str("").tensor("", {0}, 0, 0).pad(32);
  const Layout lz = parse_bytes(*gguf(), z.data());
  EXPECT_TRUE(lz.errors.empty()) << errors_of(lz);
  ASSERT_EQ(lz.slices.size(), 1U);
  EXPECT_EQ(lz.slices[0].range.length, 0U);
}

TEST(Gguf, Alignment) {
  auto with = [](uint32_t type, uint64_t value) {
    G g;
    g.head(3, 1, 1).str("general.alignment").u32(type);
    if (type == 4) g.u32(value);
    if (type == 10) g.u64(value);
    if (type == 8) g.str("64");
    g.tensor("t", {4}, 0, 0).pad(128).zeros(16);
    return parse_bytes(*gguf(), g.data());
  };
  const Layout a64 = with(4, 64);
  EXPECT_TRUE(a64.errors.empty()) << errors_of(a64);
  EXPECT_EQ(a64.header["alignment"], 64);
  EXPECT_EQ(a64.header["tensor_data_offset"].get<uint64_t>() % 64, 0U);
  ASSERT_EQ(a64.slices.size(), 1U);
  for (uint64_t bad : {0ULL, 3ULL, 48ULL}) {
    const Layout l = with(4, bad);
    EXPECT_TRUE(l.slices.empty()) << bad;
    EXPECT_TRUE(has_error(l, "power of two")) << bad;
    EXPECT_TRUE(l.header["tensor_data_offset"].is_null());
  }
  const Layout u64 = with(10, 64);  // wrong type but usable
  EXPECT_TRUE(has_error(u64, "requires uint32"));
  EXPECT_EQ(u64.slices.size(), 1U);
  const Layout str = with(8, 0);
  EXPECT_TRUE(has_error(str, "not an integer"));
  EXPECT_TRUE(str.slices.empty());
  // A tensor offset that is not a multiple of the alignment.
  G g;
  g.head(3, 1, 0).tensor("t", {4}, 0, 8).pad(32).zeros(32);
  const Layout mis = parse_bytes(*gguf(), g.data());
  EXPECT_TRUE(has_error(mis, "not a multiple of the alignment"));
  EXPECT_EQ(mis.slices.size(), 1U);
}

TEST(Gguf, StructuralErrors) {
  // Version 1, 0 and 4.
  for (uint32_t v : {1U, 0U, 4U}) {
    G g;
    g.head(v, 0, 0);
    const Layout l = parse_bytes(*gguf(), g.data());
    EXPECT_TRUE(has_error(l, v == 1 ? "version 1" : "unsupported GGUF version")) << v;
    EXPECT_EQ(l.header["version"], v);
  }
  // Unknown value type.
  G t;
  t.head(3, 0, 1).str("k").u32(13).u32(0);
  EXPECT_TRUE(has_error(parse_bytes(*gguf(), t.data()), "unknown metadata value type 13"));
  // Too many dimensions.
  G d;
  d.head(3, 1, 0).tensor("t", {1, 1, 1, 1, 1}, 0, 0).pad(32).zeros(4);
  EXPECT_TRUE(has_error(parse_bytes(*gguf(), d.data()), "GGML_MAX_DIMS"));
  // Duplicate keys and tensor names, overlapping tensors, long names.
  G dup;
  dup.head(3, 3, 2).kv_u32("k", 1).kv_u32("k", 2);
  dup.tensor("t", {8}, 0, 0).tensor("t", {8}, 0, 0).tensor(std::string(70, 'n'), {4}, 0, 32);
  dup.pad(32).zeros(48);
  const Layout ld = parse_bytes(*gguf(), dup.data());
  EXPECT_TRUE(has_error(ld, "duplicate metadata key 'k'"));
  EXPECT_EQ(ld.header["metadata"]["k"]["value"], 1);
  EXPECT_TRUE(has_error(ld, "duplicate tensor name"));
  EXPECT_TRUE(has_error(ld, "overlaps"));
  EXPECT_TRUE(has_error(ld, "63-byte"));
  EXPECT_EQ(ld.slices.size(), 3U);
  // Key longer than the name limit.
  G longkey;
  longkey.head(3, 0, 1).str(std::string(5000, 'k')).u32(0).u8(0);
  EXPECT_TRUE(has_error(parse_bytes(*gguf(), longkey.data()), "limit"));
}

TEST(Gguf, TruncatedAtEveryByte) {
  for (bool big : {false, true}) {
    const auto bytes = small_file(big);
    for (size_t n = 0; n < bytes.size(); ++n) {
      const std::vector<std::byte> cut(bytes.begin(), bytes.begin() + static_cast<long>(n));
      const Layout l = parse_bytes(*gguf(), cut);
      EXPECT_FALSE(l.errors.empty()) << n;
      for (const auto& s : l.slices) EXPECT_TRUE(s.range.offset + s.range.length <= n) << n;
    }
  }
}

TEST(Gguf, DataIsNotRead) {
  // A source that fails every read starting in the tensor data: parsing must still succeed.
  class Limited final : public ByteSource {
   public:
    Limited(std::vector<std::byte> head, uint64_t size) : head_(std::move(head)), size_(size) {}
    uint64_t size() const noexcept override { return size_; }
    bool read_exact(uint64_t offset, std::span<std::byte> out) const noexcept override {
      if (offset >= head_.size()) return false;
      for (size_t i = 0; i < out.size(); ++i)
        out[i] = offset + i < head_.size() ? head_[offset + i] : std::byte{0};
      return true;
    }

   private:
    std::vector<std::byte> head_;
    uint64_t size_;
  };
  G g;
  const uint64_t big_rows = 1ULL << 20;  // 10 GB of Q4_K
  g.head(3, 1, 0).tensor("huge", {256, big_rows * 70}, 12, 0).pad(32);
  const uint64_t data = g.size();
  const uint64_t length = 144 * big_rows * 70;
  Limited source(g.data(), data + length);
  const Layout l = gguf()->parse(source);
  EXPECT_TRUE(l.errors.empty()) << errors_of(l);
  ASSERT_EQ(l.slices.size(), 1U);
  EXPECT_EQ(l.slices[0].range, (ByteRange{data, length}));
}

std::string fixture(const std::string& name) {
  return testing::fixtures_dir() + "/gguf/" + name;
}

// Compares our typed metadata value with the reference's value (full arrays, full strings).
void expect_same_value(const Json& ours, const Json& ref, const std::string& where) {
  if (ref.is_array()) {
    ASSERT_TRUE(ours.is_object()) << where;
    EXPECT_EQ(ours["count"], ref.size()) << where;
    const Json& shown = ours["value"];
    ASSERT_EQ(shown.size(), std::min<size_t>(ref.size(), 64)) << where;
    for (size_t i = 0; i < shown.size(); ++i)
      expect_same_value(shown[i], ref[i], where + "[" + std::to_string(i) + "]");
    EXPECT_EQ(ours.value("truncated", false), ref.size() > 64) << where;
  } else if (ref.is_string()) {
    const auto want = ref.get<std::string>();
    const auto got = ours.get<std::string>();
    if (want.size() <= 4096) {
      EXPECT_EQ(got, want) << where;
    } else {
      EXPECT_EQ(want.compare(0, got.size(), got), 0) << where;
      EXPECT_GE(got.size(), 4093U) << where;
    }
  } else {
    EXPECT_EQ(ours, ref) << where;
  }
}

TEST(Gguf, RealFilesMatchReference) {
  const Json expected = testing::read_fixture_json(fixture("expected.json"));
  ASSERT_FALSE(expected.is_null()) << "run tests/fixtures/gen_gguf.py first (PAYLOADFS_FIXTURES)";
  ASSERT_GE(expected["files"].size(), 6U);
  const auto registry = Registry::with_builtins();
  for (const auto& [name, want] : expected["files"].items()) {
    SCOPED_TRACE(name);
    const auto bytes = testing::read_file(fixture(name));
    const Layout l = parse_bytes(*gguf(), bytes);
    EXPECT_TRUE(l.errors.empty()) << errors_of(l);
    const Json& h = l.header;
    for (const char* key : {"version", "byte_order", "tensor_count", "metadata_kv_count",
                            "alignment", "tensor_data_offset"})
      EXPECT_EQ(h[key], want[key]) << key;
    EXPECT_EQ(h["metadata"].size(), want["metadata"].size());
    for (const auto& [key, ref] : want["metadata"].items()) {
      ASSERT_TRUE(h["metadata"].contains(key)) << key;
      const Json& ours = h["metadata"][key];
      EXPECT_EQ(ours["type"], ref["type"]) << key;
      if (ref["type"] == "array") {
        EXPECT_EQ(ours["element_type"], ref["element_type"]) << key;
        expect_same_value(ours, ref["value"], key);
      } else {
        expect_same_value(ours["value"], ref["value"], key);
      }
    }
    ASSERT_EQ(l.slices.size(), want["tensors"].size());
    for (size_t i = 0; i < l.slices.size(); ++i) {
      const Slice& s = l.slices[i];
      const Json& t = want["tensors"][i];
      EXPECT_EQ(s.name, t["name"]);
      EXPECT_EQ(s.attributes["type"], t["type"]) << s.name;
      EXPECT_EQ(s.attributes["dims"], t["dims"]) << s.name;
      EXPECT_EQ(s.attributes["data_offset"], t["data_offset"]) << s.name;
      EXPECT_EQ(s.range.offset, t["offset"].get<uint64_t>()) << s.name;
      EXPECT_EQ(s.range.length, t["length"].get<uint64_t>()) << s.name;
      EXPECT_EQ(testing::slice_bytes(bytes, s),
                testing::read_file(fixture(t["bytes"].get<std::string>())))
          << s.name;
    }
  }
}

// The file read through pread, as the filesystem reads it.
TEST(Gguf, RealFileThroughFdSource) {
  UniqueFd fd(::open(fixture("v3_le.gguf").c_str(), O_RDONLY | O_CLOEXEC));
  ASSERT_TRUE(fd.valid());
  struct stat st {};
  ASSERT_EQ(::fstat(fd.get(), &st), 0);
  FdSource source(fd.get(), static_cast<uint64_t>(st.st_size));
  const Layout l = gguf()->parse(source);
  EXPECT_TRUE(l.errors.empty()) << errors_of(l);
  EXPECT_EQ(l.slices.size(), 27U);
}

TEST(Gguf, RandomMutationsStayInBounds) {
  std::vector<std::vector<std::byte>> seeds = {small_file(false), small_file(true)};
  for (const char* name : {"v3_le.gguf", "v3_be.gguf", "v2_align64.gguf", "hf_meta_le.gguf"}) {
    auto bytes = testing::read_file(fixture(name));
    if (!bytes.empty()) seeds.push_back(std::move(bytes));
  }
  std::mt19937_64 rng(42);
  const auto f = gguf();
  for (int iter = 0; iter < 5000; ++iter) {
    auto bytes = seeds[static_cast<size_t>(iter) % seeds.size()];
    const int edits = 1 + static_cast<int>(rng() % 8);
    for (int e = 0; e < edits && !bytes.empty(); ++e) {
      // Bias edits towards the header, where the structure is.
      const size_t limit = std::min<size_t>(bytes.size(), rng() % 2 ? 64 : bytes.size());
      const size_t at = static_cast<size_t>(rng() % limit);
      switch (rng() % 4) {
        case 0:
          bytes[at] = static_cast<std::byte>(rng());
          break;
        case 1:
          bytes[at] = std::byte{0xFF};
          break;
        case 2:
          bytes[at] = std::byte{0};
          break;
        default:
          bytes.resize(at);
          break;
      }
    }
    const Layout l = parse_bytes(*f, bytes);
    for (const auto& s : l.slices) {
      ASSERT_LE(s.range.offset, bytes.size());
      ASSERT_LE(s.range.length, bytes.size() - s.range.offset);
    }
    (void)Json(l.header).dump();
  }
}

}  // namespace
}  // namespace payloadfs

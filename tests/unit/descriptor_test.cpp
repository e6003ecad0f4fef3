// Format descriptors: loading (errors name file, JSON path, problem), field types, validation,
// the three slice kinds, caps, the shipped examples (telemetry via its generator, pcap against
// tshark on text2pcap captures) and randomized robustness.

#include "core/descriptor/descriptor.hpp"

#include <sys/stat.h>

#include <atomic>
#include <bit>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>

#include "core/io/checked_math.hpp"
#include "unit/test_support.hpp"

namespace payloadfs::descriptor {
namespace {

using testing::errors_of;
using testing::expect_in_bounds;
using testing::has_error;

using payloadfs::testing::Bytes;
using payloadfs::testing::parse_bytes;
namespace fs = std::filesystem;

const fs::path kRepo = fs::path(__FILE__).parent_path().parent_path().parent_path();

std::unique_ptr<DescriptorFormat> compile(const std::string& text, const Limits& limits = {}) {
  auto r = parse_descriptor(text, "test.json", limits);
  if (auto* err = std::get_if<LoadError>(&r)) {
    ADD_FAILURE() << err->message;
    return nullptr;
  }
  return std::get<std::unique_ptr<DescriptorFormat>>(std::move(r));
}

std::string load_error(const std::string& text) {
  auto r = parse_descriptor(text, "bad.json");
  if (auto* err = std::get_if<LoadError>(&r)) return err->message;
  ADD_FAILURE() << "descriptor loaded, expected an error:\n" << text;
  return {};
}

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "descriptor_test.XXXXXX").string();
    path_ = ::mkdtemp(tmpl.data());
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }
  void write(const std::string& name, const std::string& text) const {
    std::ofstream(path_ / name, std::ios::binary) << text;
  }

 private:
  fs::path path_;
};

std::string read_text(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// ---------------------------------------------------------------------------------------------

constexpr const char* kTypes = R"json({
  "name": "types", "endian": "little", "magic": {"offset": 0, "ascii": "TYPE"},
  "fields": [
    {"name": "a_u8", "offset": 4, "type": "u8"},
    {"name": "a_u16", "offset": 5, "type": "u16"},
    {"name": "a_u16be", "offset": 5, "type": "u16", "endian": "big"},
    {"name": "a_u32", "offset": 7, "type": "u32"},
    {"name": "a_u64", "offset": 11, "type": "u64"},
    {"name": "a_i8", "offset": 19, "type": "i8"},
    {"name": "a_i16", "offset": 20, "type": "i16"},
    {"name": "a_i32", "offset": 22, "type": "i32", "endian": "big"},
    {"name": "a_i64", "offset": 26, "type": "i64"},
    {"name": "a_f32", "offset": 34, "type": "f32"},
    {"name": "a_f64", "offset": 38, "type": "f64", "endian": "big"},
    {"name": "a_bool", "offset": 46, "type": "bool"},
    {"name": "a_str", "offset": 47, "type": "str", "length": 8},
    {"name": "a_bytes", "offset": "a_u8 + 51", "type": "bytes", "length": "a_bool * 3"},
    {"name": "a_nan", "offset": 58, "type": "f32"},
    {"name": "a_mode", "offset": 62, "type": "u8", "enum": {"0": "idle", "0x2": "run"}},
    {"name": "a_other", "offset": 63, "type": "u8", "enum": {"0": "idle"}},
    {"name": "a_signed", "offset": 19, "type": "i8", "enum": {"-1": "minus one"}},
    {"name": "a_flags", "offset": 64, "type": "u16", "flags": {"0": "ready", "9": "busy"}},
    {"name": "a_big", "offset": 66, "type": "u64"},
    {"name": "a_sum", "value": "a_u8 + a_i8 + a_bool"},
    {"name": "a_str_utf8", "offset": 74, "type": "str", "length": 2}
  ]
})json";

std::vector<std::byte> types_file() {
  Bytes b;
  b.raw("TYPE");                              // 0
  b.u8(7);                                    // 4 a_u8
  b.le(0x1234, 2);                            // 5
  b.le(0xdeadbeef, 4);                        // 7
  b.le(0x0102030405060708, 8);                // 11
  b.u8(0xff);                                 // 19 i8 = -1
  b.le(0x8000, 2);                            // 20 i16 = -32768
  b.be(0xfffffffe, 4);                        // 22 i32 be = -2
  b.le(static_cast<uint64_t>(-5), 8);         // 26
  b.le(0x3fc00000, 4);                        // 34 f32 1.5
  b.be(0x4004000000000000, 8);                // 38 f64 be 2.5
  b.u8(1);                                    // 46 bool
  b.raw("abc").zeros(1).raw("xyz").zeros(1);  // 47 str "abc"
  b.u8(0);                                    // 55 ..
  b.u8(0);                                    // 56
  b.u8(0);                                    // 57
  b.le(0x7fc00000, 4);                        // 58 NaN
  b.u8(2);                                    // 62 enum run
  b.u8(9);                                    // 63 unknown enum
  b.le(0x0201, 2);              // 64 flags: bit0, bit9, and unnamed bit1? 0x0201 = bits 0, 9
  b.le(0xffffffffffffffff, 8);  // 66 big u64
  b.raw(
      "\xff"
      "A");  // 74 invalid UTF-8
  // a_bytes at 7 + 51 = 58: the 3 bytes of the NaN
  return b.data();
}

TEST(Descriptor, EveryFieldTypeAndEndian) {
  const auto d = compile(kTypes);
  ASSERT_TRUE(d);
  const auto file = types_file();
  const Layout l = parse_bytes(*d, file);
  EXPECT_TRUE(l.errors.empty()) << errors_of(l);
  const Json& h = l.header;
  EXPECT_EQ(h["a_u8"], 7);
  EXPECT_EQ(h["a_u16"], 0x1234);
  EXPECT_EQ(h["a_u16be"], 0x3412);
  EXPECT_EQ(h["a_u32"], 0xdeadbeefU);
  EXPECT_EQ(h["a_u64"], 0x0102030405060708U);
  EXPECT_EQ(h["a_i8"], -1);
  EXPECT_EQ(h["a_i16"], -32768);
  EXPECT_EQ(h["a_i32"], -2);
  EXPECT_EQ(h["a_i64"], -5);
  EXPECT_EQ(h["a_f32"], 1.5);
  EXPECT_EQ(h["a_f64"], 2.5);
  EXPECT_EQ(h["a_bool"], true);
  EXPECT_EQ(h["a_str"], "abc");
  EXPECT_EQ(h["a_bytes"], "0000c0");
  EXPECT_EQ(h["a_nan"], "NaN");
  EXPECT_EQ(h["a_mode"], (Json{{"value", 2}, {"name", "run"}}));
  EXPECT_EQ(h["a_other"], (Json{{"value", 9}, {"name", nullptr}}));
  EXPECT_EQ(h["a_signed"], (Json{{"value", -1}, {"name", "minus one"}}));
  EXPECT_EQ(h["a_flags"], (Json{{"value", 0x201}, {"flags", {"ready", "busy"}}}));
  EXPECT_EQ(h["a_big"], 0xffffffffffffffffULL);
  EXPECT_EQ(h["a_sum"], 7);
  EXPECT_EQ(h["a_str_utf8"], "\\xFFA");
  // Keys in descriptor order.
  EXPECT_EQ(h.begin().key(), "a_u8");
  ASSERT_TRUE(l.magic);
  EXPECT_EQ(*l.magic, (ByteRange{0, 4}));
}

TEST(Descriptor, FlagsWithUnnamedBitsAndTooLargeValues) {
  const auto d = compile(R"json({"name": "f", "magic": {"hex": "ff"},
    "fields": [{"name": "v", "offset": 1, "type": "u8", "flags": {"1": "one"}},
               {"name": "big", "offset": 2, "type": "u64"}],
    "validate": ["big > 0"]})json");
  ASSERT_TRUE(d);
  const auto file = Bytes().u8(0xff).u8(0x83).le(~uint64_t{0}, 8).data();
  const Layout l = parse_bytes(*d, file);
  EXPECT_EQ(l.header["v"], (Json{{"value", 0x83}, {"flags", {"bit0", "one", "bit7"}}}));
  EXPECT_TRUE(has_error(l, "the value of 'big' does not fit in a signed 64-bit integer"))
      << errors_of(l);
}

TEST(Descriptor, FieldPastTheEndIsNullWithError) {
  const auto d = compile(R"json({"name": "t", "magic": {"ascii": "AB"},
    "fields": [{"name": "x", "offset": 2, "type": "u32"},
               {"name": "y", "offset": "x", "type": "u8"},
               {"name": "s", "offset": 0, "type": "str", "length": 5000},
               {"name": "e", "offset": 3, "type": "bytes", "length": 0},
               {"name": "t", "offset": 3, "type": "str", "length": 0}]})json");
  ASSERT_TRUE(d);
  const auto file = Bytes().raw("AB").u8(1).data();
  const Layout l = parse_bytes(*d, file);
  EXPECT_TRUE(l.header["x"].is_null());
  EXPECT_TRUE(l.header["y"].is_null());
  EXPECT_TRUE(has_error(l, "field 'x': 4 bytes at offset 2 run past the end of the file (size 3)"))
      << errors_of(l);
  EXPECT_TRUE(has_error(l, "field 'y' offset: 'x' has no value")) << errors_of(l);
  EXPECT_TRUE(has_error(l, "field 's': length 5000 is outside 0..4096")) << errors_of(l);
  EXPECT_EQ(l.header["e"], "");  // empty, at the very end of the file
  EXPECT_EQ(l.header["t"], "");
  EXPECT_EQ(l.errors.size(), 3u) << errors_of(l);
}

TEST(Descriptor, Validate) {
  const auto d = compile(R"json({"name": "v", "magic": {"ascii": "V"},
    "fields": [{"name": "n", "offset": 1, "type": "u8"}],
    "validate": [
      "n == 1",
      {"expr": "n < 10 && n != 0", "message": "n must be 1..9"},
      {"expr": "100 / (n - 5) > 0", "message": "unused"},
      "u8(n) == 0x56"
    ]})json");
  ASSERT_TRUE(d);
  {
    const Layout l = parse_bytes(*d, Bytes().raw("V").u8(1).data());
    EXPECT_EQ(l.errors.size(), 2u) << errors_of(l);  // 100/(1-5) = -25 fails; u8(1)=1 fails
    EXPECT_TRUE(has_error(l, "validation failed: unused"));
    EXPECT_TRUE(has_error(l, "validation failed: u8(n) == 0x56"));
  }
  {
    const Layout l = parse_bytes(*d, Bytes().raw("V").u8(5).data());
    EXPECT_TRUE(has_error(l, "validation failed: n == 1"));
    EXPECT_TRUE(has_error(
        l, "could not be evaluated: division by zero (in \"100 / (n - 5) > 0\" at column 5)"))
        << errors_of(l);
    EXPECT_TRUE(has_error(l, "u8(5) runs past the end of the file (size 2)")) << errors_of(l);
  }
  {
    const Layout l = parse_bytes(*d, Bytes().raw("V").u8(0).data());
    EXPECT_TRUE(has_error(l, "validation failed: n must be 1..9")) << errors_of(l);
  }
}

TEST(Descriptor, SingleSlices) {
  const auto d = compile(R"json({"name": "s", "magic": {"ascii": "S"},
    "fields": [{"name": "len", "offset": 1, "type": "u8"}],
    "slices": [
      {"name": "body", "offset": 2, "length": "len",
       "fields": [{"name": "first", "offset": 0, "type": "u8"},
                  {"name": "tag", "offset": "first", "type": "str", "length": 2}]},
      {"name": "rest", "offset": "2 + len", "length": "size - 2 - len"},
      {"name": "outside", "offset": "size", "length": 1},
      {"name": "after", "offset": 0, "length": 1}
    ]})json");
  ASSERT_TRUE(d);
  const auto file = Bytes().raw("S").u8(4).u8(1).raw("hi").u8(0).raw("tail").data();
  const Layout l = parse_bytes(*d, file);
  ASSERT_EQ(l.slices.size(), 3u) << errors_of(l);
  EXPECT_EQ(l.slices[0].name, "body");
  EXPECT_EQ(l.slices[0].range, (ByteRange{2, 4}));
  EXPECT_EQ(l.slices[0].attributes, (Json{{"first", 1}, {"tag", "hi"}}));
  EXPECT_EQ(l.slices[1].name, "rest");
  EXPECT_EQ(l.slices[1].range, (ByteRange{6, 4}));
  EXPECT_EQ(l.slices[2].name, "after");
  EXPECT_TRUE(has_error(l, "slice 'outside' [10+1] lies outside the file (size 10)"))
      << errors_of(l);
}

std::string table_descriptor(const std::string& count) {
  return R"json({"name": "t", "magic": {"ascii": "T"},
    "slices": [{"name": "rec/{i}", "count": ")json" +
         count + R"json(", "offset": "1 + i * 2",
                "length": 2, "fields": [{"name": "v", "offset": 1, "type": "u8"},
                                        {"name": "k", "value": "i * 10 + v"}]}]})json";
}

TEST(Descriptor, TableNamesPaddedToTheLargestIndex) {
  Bytes b;
  b.raw("T");
  for (int k = 0; k < 12; ++k) b.u8(0xaa).u8(static_cast<uint8_t>(k));
  const auto file = b.data();
  for (const auto& [count, first, last] :
       std::vector<std::tuple<std::string, std::string, std::string>>{{"1", "rec/0", "rec/0"},
                                                                      {"10", "rec/0", "rec/9"},
                                                                      {"11", "rec/00", "rec/10"},
                                                                      {"12", "rec/00", "rec/11"}}) {
    const auto d = compile(table_descriptor(count));
    ASSERT_TRUE(d);
    const Layout l = parse_bytes(*d, file);
    EXPECT_TRUE(l.errors.empty()) << errors_of(l);
    ASSERT_EQ(l.slices.size(), std::stoul(count));
    EXPECT_EQ(l.slices.front().name, first);
    EXPECT_EQ(l.slices.back().name, last);
    const uint64_t n = l.slices.size() - 1;
    EXPECT_EQ(l.slices.back().range, (ByteRange{1 + n * 2, 2}));
    EXPECT_EQ(l.slices.back().attributes["k"], n * 10 + n);
  }
  const auto zero = compile(table_descriptor("size - size"));
  EXPECT_TRUE(parse_bytes(*zero, file).slices.empty());
}

TEST(Descriptor, TableRecordsOutsideTheFileAreErrorsForThoseRecords) {
  Bytes b;
  b.raw("T");
  for (int k = 0; k < 3; ++k) b.u8(0).u8(static_cast<uint8_t>(k));
  const auto file = b.data();
  const auto d = compile(table_descriptor("5"));
  const Layout l = parse_bytes(*d, file);
  ASSERT_EQ(l.slices.size(), 3u);
  EXPECT_EQ(l.errors.size(), 2u) << errors_of(l);
  EXPECT_TRUE(has_error(l, "slice 'rec/3' field 'v': 1 bytes at offset 8 run past the end"))
      << errors_of(l);
  const auto neg = compile(table_descriptor("0 - 1"));
  EXPECT_TRUE(has_error(parse_bytes(*neg, file), "negative count -1"));
}

TEST(Descriptor, TableCapsAndErrorSummaries) {
  Limits limits;
  limits.max_records = 4;
  limits.max_errors_per_slice = 3;
  const auto d = compile(table_descriptor("1000000000"), limits);
  Bytes b;
  b.raw("T").zeros(20);
  const Layout l = parse_bytes(*d, b.data());
  EXPECT_EQ(l.slices.size(), 4u);
  EXPECT_TRUE(has_error(l, "count 1000000000 exceeds the limit of 4 records")) << errors_of(l);
  // A table of a billion failing records still finishes, with a bounded error list.
  const auto many = compile(table_descriptor("1000000"));
  const Layout m = parse_bytes(*many, Bytes().raw("T").data());
  EXPECT_TRUE(m.slices.empty());
  EXPECT_EQ(m.errors.size(), 101u);
  EXPECT_TRUE(has_error(m, "slice 'rec/{i}': 999900 more errors not listed")) << m.errors.back();
}

constexpr const char* kWalk = R"json({"name": "w", "magic": {"ascii": "W"},
  "slices": [{"name": "rec/{i}", "start": 1, "until": "size",
              "fields": [{"name": "len", "offset": 0, "type": "u8"},
                         {"name": "tag", "offset": 1, "type": "u8", "enum": {"7": "seven"}}],
              "length": "2 + len", "data_offset": "@ + 2", "data_length": "len"}]})json";

TEST(Descriptor, WalkedSequence) {
  const auto d = compile(kWalk);
  ASSERT_TRUE(d);
  Bytes b;
  b.raw("W");
  for (int k = 0; k < 11; ++k) {
    b.u8(static_cast<uint8_t>(k % 3)).u8(7);
    b.zeros(static_cast<size_t>(k % 3));
  }
  const auto file = b.data();
  const Layout l = parse_bytes(*d, file);
  EXPECT_TRUE(l.errors.empty()) << errors_of(l);
  ASSERT_EQ(l.slices.size(), 11u);
  EXPECT_EQ(l.slices[0].name, "rec/00");
  EXPECT_EQ(l.slices[10].name, "rec/10");
  EXPECT_EQ(l.slices[0].range, (ByteRange{3, 0}));
  EXPECT_EQ(l.slices[1].range, (ByteRange{5, 1}));
  EXPECT_EQ(l.slices[2].range, (ByteRange{8, 2}));
  EXPECT_EQ(l.slices[2].attributes, (Json{{"len", 2}, {"tag", {{"value", 7}, {"name", "seven"}}}}));
  EXPECT_EQ(l.slices[10].range.offset + l.slices[10].range.length, file.size());
}

TEST(Descriptor, WalkTruncatedLastRecordKeepsTheOthers) {
  const auto d = compile(kWalk);
  const auto file = Bytes().raw("W").u8(1).u8(0).u8(9).u8(5).u8(0).u8(1).data();
  const Layout l = parse_bytes(*d, file);
  ASSERT_EQ(l.slices.size(), 1u);
  EXPECT_EQ(l.slices[0].name, "rec/0");
  EXPECT_TRUE(has_error(l,
                        "slice 'rec/{i}' record 1 at offset 4: length 7 runs past the end of "
                        "the file (size 7); stopped"))
      << errors_of(l);
  // A record header cut short.
  const auto cut = Bytes().raw("W").u8(0).u8(0).u8(3).data();
  const Layout c = parse_bytes(*d, cut);
  EXPECT_EQ(c.slices.size(), 1u);
  EXPECT_TRUE(has_error(c, "record 1 at offset 3 field 'tag': 1 bytes at offset 4 run past"))
      << errors_of(c);
}

TEST(Descriptor, WalkThatDoesNotAdvanceStops) {
  const auto zero = compile(R"json({"name": "z", "magic": {"ascii": "Z"},
    "slices": [{"name": "r/{i}", "start": 1, "length": "u8(@)"}]})json");
  const Layout l = parse_bytes(*zero, Bytes().raw("Z").u8(2).u8(0).u8(0).u8(0).data());
  EXPECT_EQ(l.slices.size(), 1u);
  EXPECT_TRUE(has_error(l, "record 1 at offset 3: length 0 does not advance the walk; stopped"))
      << errors_of(l);
  const auto back = compile(R"json({"name": "z", "magic": {"ascii": "Z"},
    "slices": [{"name": "r/{i}", "start": 1, "length": "0 - 4"}]})json");
  EXPECT_TRUE(has_error(parse_bytes(*back, Bytes().raw("Z").zeros(8).data()),
                        "length -4 does not advance"));
  // Without until or count the walk ends at the end of the file; with a huge until it is still
  // bounded by the file, with a count by the count and by max_records.
  Limits limits;
  limits.max_records = 50;
  const auto ones = compile(R"json({"name": "o", "magic": {"ascii": "O"},
    "slices": [{"name": "r/{i}", "start": 0, "length": 1, "until": "9223372036854775807"}]})json",
                            limits);
  const Layout o = parse_bytes(*ones, Bytes().raw("O").zeros(99).data());
  EXPECT_EQ(o.slices.size(), 50u);
  EXPECT_TRUE(has_error(o, "stopped after 50 records (the limit)")) << errors_of(o);
}

TEST(Descriptor, WalkWithCountAndUntil) {
  const auto counted = compile(R"json({"name": "c", "magic": {"ascii": "C"},
    "fields": [{"name": "n", "offset": 1, "type": "u8"}],
    "slices": [{"name": "r{i}", "start": 2, "count": "n", "length": 2}]})json");
  const auto file = Bytes().raw("C").u8(3).zeros(10).data();
  Layout l = parse_bytes(*counted, file);
  ASSERT_EQ(l.slices.size(), 3u);
  EXPECT_EQ(l.slices[2].name, "r2");
  EXPECT_EQ(l.slices[2].range, (ByteRange{6, 2}));
  const auto until = compile(R"json({"name": "u", "magic": {"ascii": "U"},
    "slices": [{"name": "r/{i}", "start": 2, "until": 8, "length": 4}]})json");
  l = parse_bytes(*until, file);
  EXPECT_EQ(l.slices.size(), 1u);
  EXPECT_TRUE(has_error(l, "record 1 at offset 6: length 4 runs past the end of the sequence (8)"))
      << errors_of(l);
  // Both: whichever ends first.
  const auto both = compile(R"json({"name": "b", "magic": {"ascii": "C"},
    "slices": [{"name": "r/{i}", "start": 2, "until": 8, "count": 100, "length": 2}]})json");
  l = parse_bytes(*both, file);
  EXPECT_EQ(l.slices.size(), 3u);
  EXPECT_TRUE(l.errors.empty()) << errors_of(l);
}

TEST(Descriptor, WalkDataOutsideTheFileLosesOnlyThatSlice) {
  const auto d = compile(R"json({"name": "d", "magic": {"ascii": "D"},
    "slices": [{"name": "r/{i}", "start": 1, "length": 2,
                "data_offset": "@ + u8(@) * 100", "data_length": 1}]})json");
  const Layout l = parse_bytes(*d, Bytes().raw("D").u8(0).u8(0).u8(1).u8(0).u8(0).u8(0).data());
  ASSERT_EQ(l.slices.size(), 2u);
  EXPECT_EQ(l.slices[0].name, "r/0");
  EXPECT_EQ(l.slices[1].name, "r/2");
  EXPECT_TRUE(has_error(l, "record 1 at offset 3 data [103+1] lies outside the file"))
      << errors_of(l);
}

TEST(Descriptor, ReadBudget) {
  Limits limits;
  limits.max_reads = 10;
  const auto d = compile(kWalk, limits);
  Bytes b;
  b.raw("W");
  for (int k = 0; k < 20; ++k) b.u8(0).u8(0);
  const Layout l = parse_bytes(*d, b.data());
  EXPECT_EQ(l.slices.size(), 5u);  // two reads per record
  EXPECT_TRUE(has_error(l, "the limit on reads per file is exhausted")) << errors_of(l);
}

// ---------------------------------------------------------------------------------------------
// Compact record tables: tables and walks named "<dir>/{i}" keep 16 bytes a record

// Parses without flattening the record tables (unlike parse_bytes).
Layout parse_compact(const Format& format, const std::vector<std::byte>& bytes) {
  const MemorySource source(bytes);
  return format.parse(source);
}

// Each table's records with the attributes its callback reads back, as slices named
// "<dir>/<padded index>"; must equal what parse_bytes lists.
std::vector<Slice> records_of(const Layout& layout, const std::vector<std::byte>& bytes) {
  const MemorySource source(bytes);
  std::vector<Slice> out;
  for (const auto& t : layout.tables) {
    for (size_t k = 0; k < t.records.size(); ++k) {
      const Record& r = t.records[k];
      out.push_back(Slice{t.dir + "/" + SliceTree::record_name(k, t.records.size()),
                          {r.offset, r.length},
                          t.attributes(source, r)});
    }
  }
  return out;
}

void expect_same_slices(const std::vector<Slice>& got, const std::vector<Slice>& want) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t k = 0; k < got.size(); ++k) {
    EXPECT_EQ(got[k].name, want[k].name);
    EXPECT_EQ(got[k].range, want[k].range) << got[k].name;
    EXPECT_EQ(got[k].attributes, want[k].attributes) << got[k].name;
  }
}

TEST(Descriptor, TablesAndWalksNamedDirIBecomeRecordTables) {
  static_assert(sizeof(Record) == 16);
  Bytes t;
  t.raw("T");
  for (int k = 0; k < 12; ++k) t.u8(0xaa).u8(static_cast<uint8_t>(k));
  const auto table = compile(table_descriptor("12"));
  ASSERT_TRUE(table);
  const Layout l = parse_compact(*table, t.data());
  EXPECT_TRUE(l.errors.empty()) << errors_of(l);
  EXPECT_TRUE(l.slices.empty());
  ASSERT_EQ(l.tables.size(), 1u);
  EXPECT_EQ(l.tables[0].dir, "rec");
  ASSERT_EQ(l.tables[0].records.size(), 12u);
  for (uint32_t k = 0; k < 12; ++k) {
    const Record& r = l.tables[0].records[k];
    EXPECT_EQ(r.offset, 1 + k * 2u);
    EXPECT_EQ(r.length, 2u);
    EXPECT_EQ(r.tag, k);  // index mode: the tag is the record number
  }
  expect_same_slices(records_of(l, t.data()), parse_bytes(*table, t.data()).slices);
  EXPECT_EQ(records_of(l, t.data())[11].attributes, (Json{{"v", 11}, {"k", 121}}));

  // A walk whose data starts 2 bytes after @: index mode with a constant delta.
  const auto walk = compile(kWalk);
  Bytes w;
  w.raw("W");
  for (int k = 0; k < 11; ++k) {
    w.u8(static_cast<uint8_t>(k % 3)).u8(static_cast<uint8_t>(k % 2 == 0 ? 7 : 1));
    w.zeros(static_cast<size_t>(k % 3));
  }
  const Layout lw = parse_compact(*walk, w.data());
  EXPECT_TRUE(lw.errors.empty()) << errors_of(lw);
  EXPECT_TRUE(lw.slices.empty());
  ASSERT_EQ(lw.tables.size(), 1u);
  EXPECT_EQ(lw.tables[0].dir, "rec");
  ASSERT_EQ(lw.tables[0].records.size(), 11u);
  EXPECT_EQ(lw.tables[0].records[2].tag, 2u);
  const auto flat = parse_bytes(*walk, w.data()).slices;
  expect_same_slices(records_of(lw, w.data()), flat);
  EXPECT_EQ(flat[2].attributes, (Json{{"len", 2}, {"tag", {{"value", 7}, {"name", "seven"}}}}));
  EXPECT_EQ(flat[3].attributes, (Json{{"len", 0}, {"tag", {{"value", 1}, {"name", nullptr}}}}));
}

// Walks whose data offset is not a fixed distance from @: the tag holds that distance when
// no field uses `i`; otherwise the records are Slices.
TEST(Descriptor, WalkWithVaryingDataOffset) {
  const std::string fields_without_i =
      R"json([{"name": "skip", "offset": 0, "type": "u8"},
              {"name": "len", "offset": 1, "type": "u8"}])json";
  const std::string fields_with_i =
      R"json([{"name": "skip", "offset": 0, "type": "u8"},
              {"name": "len", "offset": 1, "type": "u8"},
              {"name": "n", "value": "i * 100 + skip"}])json";
  auto descriptor = [](const std::string& fields) {
    return R"json({"name": "v", "magic": {"ascii": "V"},
      "slices": [{"name": "data/{i}", "start": 1, "fields": )json" +
           fields + R"json(, "length": "2 + skip + len",
                  "data_offset": "@ + 2 + skip", "data_length": "len"}]})json";
  };
  Bytes b;
  b.raw("V");
  for (int k = 0; k < 5; ++k) {
    b.u8(static_cast<uint8_t>(k)).u8(static_cast<uint8_t>(k + 1));
    b.zeros(static_cast<size_t>(k)).raw(std::string(static_cast<size_t>(k + 1), 'x'));
  }
  const auto file = b.data();

  const auto by_delta = compile(descriptor(fields_without_i));
  ASSERT_TRUE(by_delta);
  const Layout d = parse_compact(*by_delta, file);
  EXPECT_TRUE(d.errors.empty()) << errors_of(d);
  EXPECT_TRUE(d.slices.empty());
  ASSERT_EQ(d.tables.size(), 1u);
  ASSERT_EQ(d.tables[0].records.size(), 5u);
  for (uint32_t k = 0; k < 5; ++k) EXPECT_EQ(d.tables[0].records[k].tag, 2 + k);  // data - @
  expect_same_slices(records_of(d, file), parse_bytes(*by_delta, file).slices);
  EXPECT_EQ(records_of(d, file)[4].attributes, (Json{{"skip", 4}, {"len", 5}}));

  const auto with_i = compile(descriptor(fields_with_i));
  ASSERT_TRUE(with_i);
  const Layout s = parse_compact(*with_i, file);
  EXPECT_TRUE(s.errors.empty()) << errors_of(s);
  EXPECT_TRUE(s.tables.empty());
  ASSERT_EQ(s.slices.size(), 5u);
  EXPECT_EQ(s.slices[0].name, "data/0");
  EXPECT_EQ(s.slices[4].name, "data/4");
  EXPECT_EQ(s.slices[3].range, (ByteRange{16 + 2 + 3, 4}));  // @ = 1 + 3 + 5 + 7
  EXPECT_EQ(s.slices[0].attributes, (Json{{"skip", 0}, {"len", 1}, {"n", 0}}));
  EXPECT_EQ(s.slices[4].attributes, (Json{{"skip", 4}, {"len", 5}, {"n", 404}}));
}

TEST(Descriptor, OtherNamesAndGapsKeepOneSlicePerRecord) {
  // {i} not the whole last component, or the directory shared with another entry.
  for (const std::string& names :
       {std::string(R"json("name": "rec_{i}")json"), std::string(R"json("name": "r/{i}/x")json"),
        std::string(R"json("name": "{i}/r")json")}) {
    const auto d = compile(R"json({"name": "n", "magic": {"ascii": "N"},
      "slices": [{)json" + names +
                           R"json(, "count": 3, "offset": "i", "length": 1}]})json");
    ASSERT_TRUE(d);
    const Layout l = parse_compact(*d, Bytes().raw("N").zeros(3).data());
    EXPECT_TRUE(l.tables.empty()) << names;
    EXPECT_EQ(l.slices.size(), 3u) << names;
  }
  const auto shared = compile(R"json({"name": "n", "magic": {"ascii": "N"},
    "slices": [{"name": "rec/{i}", "count": 3, "offset": "i", "length": 1},
               {"name": "rec/extra", "offset": 0, "length": 1},
               {"name": "other/{i}", "count": 2, "offset": "i", "length": 1}]})json");
  ASSERT_TRUE(shared);
  const Layout s = parse_compact(*shared, Bytes().raw("N").zeros(3).data());
  ASSERT_EQ(s.slices.size(), 4u);
  EXPECT_EQ(s.slices[0].name, "rec/0");
  EXPECT_EQ(s.slices[3].name, "rec/extra");
  ASSERT_EQ(s.tables.size(), 1u);
  EXPECT_EQ(s.tables[0].dir, "other");
  EXPECT_EQ(s.tables[0].records.size(), 2u);

  // A record failing in the middle would renumber the later ones, so the records are Slices
  // that keep their numbers (r/0, r/2).
  const auto gap = compile(R"json({"name": "d", "magic": {"ascii": "D"},
    "slices": [{"name": "r/{i}", "start": 1, "length": 2,
                "data_offset": "@ + u8(@) * 100", "data_length": 1}]})json");
  const auto file = Bytes().raw("D").u8(0).u8(0).u8(1).u8(0).u8(0).u8(0).data();
  const Layout g = parse_compact(*gap, file);
  EXPECT_TRUE(g.tables.empty());
  ASSERT_EQ(g.slices.size(), 2u);
  EXPECT_EQ(g.slices[1].name, "r/2");
  // Failing records at the end keep the table compact (5 claimed, 3 present).
  Bytes b;
  b.raw("T");
  for (int k = 0; k < 3; ++k) b.u8(0).u8(static_cast<uint8_t>(k));
  const auto short_table = compile(table_descriptor("5"));
  const Layout t = parse_compact(*short_table, b.data());
  EXPECT_EQ(t.errors.size(), 2u) << errors_of(t);
  ASSERT_EQ(t.tables.size(), 1u);
  EXPECT_EQ(t.tables[0].records.size(), 3u);
}

TEST(Descriptor, RecordTableAttributesAreSafeToReadFromSeveralThreads) {
  Bytes b;
  b.raw("T");
  for (int k = 0; k < 3000; ++k) b.u8(0).u8(static_cast<uint8_t>(k % 251));
  const auto d = compile(table_descriptor("3000"));
  ASSERT_TRUE(d);
  const auto file = b.data();
  const Layout l = parse_compact(*d, file);
  ASSERT_EQ(l.tables.size(), 1u);
  const RecordTable& table = l.tables[0];
  std::vector<std::thread> threads;
  std::atomic<int> wrong{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      const MemorySource source(file);
      for (size_t k = static_cast<size_t>(t); k < table.records.size(); k += 3) {
        const Json a = table.attributes(source, table.records[k]);
        if (a != Json{{"v", k % 251}, {"k", k * 10 + k % 251}}) ++wrong;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(wrong.load(), 0);
}

// ---------------------------------------------------------------------------------------------
// Detection, and descriptors that do not load

TEST(Descriptor, DetectionAndMagicEndian) {
  const auto d = compile(R"json({"name": "m", "endian": "little",
    "magic": [{"offset": 2, "hex": "ca fe"}, {"offset": 2, "hex": "feca", "endian": "big"}],
    "fields": [{"name": "v", "offset": 4, "type": "u16"}]})json");
  ASSERT_TRUE(d);
  EXPECT_EQ(d->signature(), "cafe at 2 or feca at 2 (big-endian)");
  const auto le = Bytes().zeros(2).u8(0xca).u8(0xfe).le(0x0102, 2).data();
  const auto be = Bytes().zeros(2).u8(0xfe).u8(0xca).be(0x0102, 2).data();
  const auto other = Bytes().zeros(2).u8(0xfe).u8(0xfe).be(0x0102, 2).data();
  EXPECT_TRUE(d->detect(le, le.size()));
  EXPECT_TRUE(d->detect(be, be.size()));
  EXPECT_FALSE(d->detect(other, other.size()));
  EXPECT_FALSE(d->detect(std::span(le).first(3), 3));
  EXPECT_EQ(parse_bytes(*d, le).header["v"], 0x0102);
  EXPECT_EQ(parse_bytes(*d, be).header["v"], 0x0102);
  const Layout wrong = parse_bytes(*d, other);
  EXPECT_TRUE(has_error(wrong, "does not start with the descriptor's magic"));
  EXPECT_EQ(d->name(), "m");
  EXPECT_EQ(d->source_path(), "test.json");
}

// Every error names the file, the JSON path and the problem.
TEST(Descriptor, BadDescriptors) {
  const std::string ok_magic = R"("magic": {"ascii": "X"})";
  struct Case {
    std::string text;
    std::string message;
  };
  const std::vector<Case> cases = {
      {"{", "bad.json: invalid JSON: "},
      {"[]", "bad.json: /: expected an object, found array"},
      {std::string(100, '[') + std::string(100, ']'), "bad.json: JSON nests deeper than 32 levels"},
      {R"({"magic": {"ascii": "X"}})", "bad.json: /: missing key 'name'"},
      {R"({"name": "a b", )" + ok_magic + "}", "bad.json: /name: a format name is 1 to 64"},
      {R"({"name": 5, )" + ok_magic + "}", "bad.json: /name: expected a string, found number"},
      {R"({"name": "x"})", "bad.json: /: missing key 'magic'"},
      {R"({"name": "x", "nmae": 1, )" + ok_magic + "}", "bad.json: /nmae: unknown key 'nmae'"},
      {R"({"name": "x", "endian": "middle", )" + ok_magic + "}",
       R"(bad.json: /endian: expected "little" or "big", found "middle")"},
      {R"({"name": "x", "magic": []})", "bad.json: /magic: expected at least one magic"},
      {R"({"name": "x", "magic": {"ascii": "X", "hex": "58"}})",
       "bad.json: /magic: give exactly one of 'ascii' and 'hex'"},
      {R"({"name": "x", "magic": [{"ascii": "X"}, {"hex": "5g"}]})",
       "bad.json: /magic/1/hex: 'g' is not a hex digit"},
      {R"({"name": "x", "magic": {"hex": "585"}})",
       "bad.json: /magic/hex: odd number of hex digits"},
      {R"({"name": "x", "magic": {"offset": 4095, "ascii": "XY"}})",
       "bad.json: /magic: magic must lie within the first 4096 bytes"},
      {R"({"name": "x", "magic": {"offset": -1, "ascii": "XY"}})",
       "bad.json: /magic/offset: expected a non-negative integer"},
      {R"({"name": "x", "magic": {"ascii": ""}})", "bad.json: /magic: magic must be 1 to 64 bytes"},
      {R"({"name": "x", )" + ok_magic + R"(, "fields": {}})",
       "bad.json: /fields: expected an array, found object"},
      {R"({"name": "x", )" + ok_magic +
           R"(, "fields": [{"name": "a", "offset": 0, "type": "u24"}]})",
       "bad.json: /fields/0/type: unknown type 'u24'"},
      {R"({"name": "x", )" + ok_magic + R"(, "fields": [{"name": "a", "type": "u8"}]})",
       "bad.json: /fields/0: missing key 'offset'"},
      {R"({"name": "x", )" + ok_magic +
           R"(, "fields": [{"name": "a", "offset": 0, "type": "str"}]})",
       "bad.json: /fields/0: a str field needs a 'length'"},
      {R"({"name": "x", )" + ok_magic +
           R"(, "fields": [{"name": "a", "offset": 0, "type": "u8", "length": 1}]})",
       "bad.json: /fields/0/length: only str and bytes fields have a length"},
      {R"({"name": "x", )" + ok_magic +
           R"(, "fields": [{"name": "a", "offset": 0, "type": "u8", "endian": "big"}]})",
       "bad.json: /fields/0/endian: only multi-byte numeric fields have an endianness"},
      {R"({"name": "x", )" + ok_magic +
           R"(, "fields": [{"name": "a", "offset": 0, "type": "f32", "enum": {"1": "one"}}]})",
       "bad.json: /fields/0/enum: only integer fields can have enum names"},
      {R"({"name": "x", )" + ok_magic +
           R"(, "fields": [{"name": "a", "offset": 0, "type": "u8", "enum": {"one": "1"}}]})",
       "bad.json: /fields/0/enum/one: enum keys are integers"},
      {R"({"name": "x", )" + ok_magic +
           R"(, "fields": [{"name": "a", "offset": 0, "type": "u8", "flags": {"64": "x"}}]})",
       "bad.json: /fields/0/flags/64: flag keys are bit numbers 0 to 63"},
      {R"({"name": "x", )" + ok_magic +
           R"(, "fields": [{"name": "a", "offset": 0, "type": "u8"}, {"name": "a", "offset": 1, "type": "u8"}]})",
       "bad.json: /fields/1/name: duplicate field name 'a'"},
      {R"({"name": "x", )" + ok_magic +
           R"(, "fields": [{"name": "size", "offset": 0, "type": "u8"}]})",
       "bad.json: /fields/0/name: 'size' is reserved"},
      {R"({"name": "x", )" + ok_magic +
           R"(, "fields": [{"name": "u16be", "offset": 0, "type": "u8"}]})",
       "bad.json: /fields/0/name: 'u16be' is reserved"},
      {R"({"name": "x", )" + ok_magic +
           R"(, "fields": [{"name": "1a", "offset": 0, "type": "u8"}]})",
       "bad.json: /fields/0/name: a field name is a letter"},
      {R"({"name": "x", )" + ok_magic +
           R"(, "fields": [{"name": "a", "offset": "b", "type": "u8"}, {"name": "b", "offset": 1, "type": "u8"}]})",
       "bad.json: /fields/0/offset: column 1: field 'b' is defined later: a field can use only the "
       "fields before it in \"b\""},
      {R"({"name": "x", )" + ok_magic +
           R"(, "fields": [{"name": "f", "offset": 0, "type": "f64"}, {"name": "b", "offset": "f", "type": "u8"}]})",
       "bad.json: /fields/1/offset: column 1: field 'f' is not an integer"},
      {R"({"name": "x", )" + ok_magic +
           R"(, "fields": [{"name": "a", "offset": "1 +", "type": "u8"}]})",
       "bad.json: /fields/0/offset: column 4: unexpected end of expression in \"1 +\""},
      {R"({"name": "x", )" + ok_magic +
           R"(, "fields": [{"name": "a", "offset": 1.5, "type": "u8"}]})",
       "bad.json: /fields/0/offset: expected an expression (a string or an integer), found number"},
      {R"({"name": "x", )" + ok_magic +
           R"(, "fields": [{"name": "a", "offset": 18446744073709551615, "type": "u8"}]})",
       "bad.json: /fields/0/offset: number does not fit in a signed 64-bit integer"},
      {R"({"name": "x", )" + ok_magic +
           R"(, "fields": [{"name": "a", "offset": "i", "type": "u8"}]})",
       "bad.json: /fields/0/offset: column 1: 'i' exists only in the slices of a table or a walked "
       "sequence"},
      {R"({"name": "x", )" + ok_magic + R"(, "validate": ["@ > 0"]})",
       "bad.json: /validate/0: column 1: '@' exists only in slice lengths and slice fields"},
      {R"({"name": "x", )" + ok_magic + R"(, "validate": [{"message": "m"}]})",
       "bad.json: /validate/0: missing key 'expr'"},
      {R"({"name": "x", )" + ok_magic + R"(, "slices": [{"name": "a", "offset": 0}]})",
       "bad.json: /slices/0: missing key 'length'"},
      {R"({"name": "x", )" + ok_magic +
           R"(, "slices": [{"name": "a", "offset": 0, "length": "foo"}]})",
       "bad.json: /slices/0/length: column 1: unknown name 'foo'"},
      {R"({"name": "x", )" + ok_magic +
           R"(, "slices": [{"name": "a/{i}", "offset": 0, "length": 1}]})",
       "bad.json: /slices/0/name: {i} is only for tables"},
      {R"({"name": "x", )" + ok_magic +
           R"(, "slices": [{"name": "a", "offset": "@", "length": 1}]})",
       "bad.json: /slices/0/offset: column 1: '@' exists only"},
      {R"({"name": "x", )" + ok_magic +
           R"(, "slices": [{"name": "a", "count": 2, "offset": 0, "length": 1, "until": 3}]})",
       "bad.json: /slices/0/until: unknown key 'until'"},
      {R"({"name": "x", )" + ok_magic + R"(, "slices": [{"name": "a", "start": 0, "until": "i"}]})",
       "bad.json: /slices/0: missing key 'length'"},
      {R"({"name": "x", )" + ok_magic +
           R"(, "slices": [{"name": "a", "start": 0, "length": 1, "until": "@"}]})",
       "bad.json: /slices/0/until: column 1: '@' exists only"},
      {R"({"name": "x", )" + ok_magic +
           R"(, "fields": [{"name": "a", "offset": 0, "type": "u8"}], "slices": [{"name": "s", "offset": 0, "length": 1, "fields": [{"name": "a", "offset": 0, "type": "u8"}]}]})",
       "bad.json: /slices/0/fields/0/name: 'a' is already a header field"},
      {R"({"name": "x", )" + ok_magic + R"(, "fields": [{"name": "a", "offset": ")" +
           std::string(70, '(') + "1" + std::string(70, ')') + R"(", "type": "u8"}]})",
       "bad.json: /fields/0/offset: column 65: expression nests deeper than 64 levels"},
  };
  for (const auto& c : cases) {
    const std::string message = load_error(c.text);
    EXPECT_EQ(message.rfind(c.message, 0), 0u)
        << "got:      " << message << "\nexpected: " << c.message;
  }
}

// ---------------------------------------------------------------------------------------------
// Loading from directories

TEST(Descriptor, LoadDirectories) {
  TempDir a, b;
  a.write("20-second.json", R"({"name": "second", "magic": {"ascii": "2"}})");
  a.write("10-first.json", R"({"name": "first", "magic": {"ascii": "1"}})");
  a.write("notes.txt", "not a descriptor");
  b.write("00-shadow.json", R"({"name": "first", "magic": {"ascii": "9"}})");
  b.write("30-third.json", R"({"name": "third", "magic": {"ascii": "3"}})");
  auto r = load_descriptors({a.path().string(), "/nonexistent/payloadfs", b.path().string()});
  ASSERT_TRUE(std::holds_alternative<LoadedDescriptors>(r)) << std::get<LoadError>(r).message;
  const auto& loaded = std::get<LoadedDescriptors>(r);
  ASSERT_EQ(loaded.formats.size(), 3u);
  EXPECT_EQ(loaded.formats[0]->name(), "first");
  EXPECT_EQ(loaded.formats[0]->source_path(), (a.path() / "10-first.json").string());
  EXPECT_EQ(loaded.formats[1]->name(), "second");
  EXPECT_EQ(loaded.formats[2]->name(), "third");
  ASSERT_EQ(loaded.shadowed.size(), 1u);
  EXPECT_NE(loaded.shadowed[0].find("00-shadow.json: format 'first' is shadowed by"),
            std::string::npos);

  a.write("30-dup.json", R"({"name": "second", "magic": {"ascii": "2"}})");
  r = load_descriptors({a.path().string()});
  ASSERT_TRUE(std::holds_alternative<LoadError>(r));
  EXPECT_NE(std::get<LoadError>(r).message.find("30-dup.json: /name: format 'second' is already "
                                                "defined by"),
            std::string::npos)
      << std::get<LoadError>(r).message;

  b.write("40-bad.json", R"({"name": "bad", "magic": {"ascii": "B"}, "fields": [1]})");
  r = load_descriptors({b.path().string()});
  ASSERT_TRUE(std::holds_alternative<LoadError>(r));
  EXPECT_EQ(std::get<LoadError>(r).message,
            (b.path() / "40-bad.json").string() + ": /fields/0: expected an object, found number");

  r = load_descriptors({(b.path() / "30-third.json").string()});
  ASSERT_TRUE(std::holds_alternative<LoadError>(r));
  EXPECT_NE(std::get<LoadError>(r).message.find("not a directory"), std::string::npos);

  auto missing = load_descriptor_file((b.path() / "nope.json").string());
  ASSERT_TRUE(std::holds_alternative<LoadError>(missing));
  EXPECT_NE(std::get<LoadError>(missing).message.find("nope.json: cannot open: "),
            std::string::npos);
}

TEST(Descriptor, ShippedExamplesLoad) {
  auto r = load_descriptors({(kRepo / "examples/formats").string()});
  ASSERT_TRUE(std::holds_alternative<LoadedDescriptors>(r)) << std::get<LoadError>(r).message;
  const auto& loaded = std::get<LoadedDescriptors>(r);
  ASSERT_EQ(loaded.formats.size(), 2u);
  EXPECT_EQ(loaded.formats[0]->name(), "pcap-descriptor");
  EXPECT_EQ(loaded.formats[1]->name(), "telemetry");
  EXPECT_EQ(loaded.formats[1]->signature(), "'TLM1' at 0");
}

// ---------------------------------------------------------------------------------------------
// The telemetry example, with files from its generator

std::unique_ptr<DescriptorFormat> example(const std::string& name) {
  auto r = load_descriptor_file((kRepo / "examples/formats" / name).string());
  if (auto* err = std::get_if<LoadError>(&r)) {
    ADD_FAILURE() << err->message;
    return nullptr;
  }
  return std::get<std::unique_ptr<DescriptorFormat>>(std::move(r));
}

bool run(const std::string& command) {
  return std::system(command.c_str()) == 0;
}

TEST(Telemetry, GeneratedFilesAgreeWithTheGenerator) {
  TempDir dir;
  ASSERT_TRUE(run("/usr/bin/python3 " + (kRepo / "scripts/gen-telemetry.py").string() + " " +
                  dir.path().string() + " --files 4 --records 120 --malformed --expected"));
  const auto d = example("telemetry.json");
  ASSERT_TRUE(d);
  const Json expected = Json::parse(read_text(dir.path() / "expected.json"));
  ASSERT_EQ(expected.size(), 4u);
  const char* modes[] = {"idle", "ground", "flight", "maintenance"};
  const char* kinds[] = {"sample", "event", "marker"};
  for (const auto& [file, want] : expected.items()) {
    SCOPED_TRACE(file);
    const auto bytes = payloadfs::testing::read_file((dir.path() / file).string());
    ASSERT_TRUE(
        d->detect(std::span(bytes).first(std::min<size_t>(bytes.size(), 4096)), bytes.size()));
    const Layout l = parse_bytes(*d, bytes);
    EXPECT_TRUE(l.errors.empty()) << errors_of(l);
    const Json& h = l.header;
    EXPECT_EQ(h["version"], 1);
    EXPECT_EQ(h["header_size"], 64);
    EXPECT_EQ(h["device_id"], want["device_id"]);
    EXPECT_EQ(h["sample_rate_hz"], want["sample_rate_hz"]);
    EXPECT_EQ(h["start_time_ns"], want["start_time_ns"]);
    const auto mode = want["mode"].get<int>();
    EXPECT_EQ(h["mode"], (Json{{"value", mode}, {"name", modes[mode]}}));
    EXPECT_EQ(h["status"]["value"], want["status"]);
    EXPECT_EQ(h["record_count"], want["record_count"]);
    EXPECT_EQ(h["device_name"], want["device_name"]);
    EXPECT_DOUBLE_EQ(h["calibration"].get<double>(), want["calibration"].get<double>());
    EXPECT_EQ(h["reserved"], std::string(24, '0'));
    EXPECT_EQ(h["data_size"], 120 * 24);
    ASSERT_EQ(l.slices.size(), 121u);
    EXPECT_EQ(l.slices[0].name, "header");
    EXPECT_EQ(l.slices[0].range, (ByteRange{0, 64}));
    EXPECT_EQ(l.slices[1].name, "records/000");
    EXPECT_EQ(l.slices[120].name, "records/119");
    for (size_t k = 0; k < 120; ++k) {
      const Slice& s = l.slices[k + 1];
      const Json& rec = want["records"][k];
      EXPECT_EQ(s.range, (ByteRange{64 + k * 24, 24}));
      EXPECT_EQ(s.attributes["timestamp_us"], rec["timestamp_us"]);
      EXPECT_EQ(s.attributes["channel"], rec["channel"]);
      const auto kind = rec["kind"].get<int>();
      EXPECT_EQ(s.attributes["kind"], (Json{{"value", kind}, {"name", kinds[kind]}}));
      EXPECT_EQ(s.attributes["quality"]["value"], rec["quality"]);
      EXPECT_EQ(s.attributes["sequence"], rec["sequence"]);
      EXPECT_DOUBLE_EQ(s.attributes["value"].get<double>(), rec["value"].get<double>());
    }
    // Status flags: the set bits' names, lowest first.
    const char* flag_names[] = {"armed", "gps_lock", "logging", "low_battery", "fault"};
    Json flags = Json::array();
    for (int bit = 0; bit < 5; ++bit)
      if ((want["status"].get<int>() >> bit) & 1) flags.push_back(flag_names[bit]);
    EXPECT_EQ(h["status"]["flags"], flags);
  }

  const auto truncated =
      payloadfs::testing::read_file((dir.path() / "malformed-truncated.tlm").string());
  const Layout t = parse_bytes(*d, truncated);
  EXPECT_TRUE(has_error(t, "validation failed: record_count records do not fit")) << errors_of(t);
  EXPECT_TRUE(has_error(t, "slice 'records/5'")) << errors_of(t);
  EXPECT_EQ(t.slices.size(), 6u);  // header + 5 complete records
  expect_in_bounds(t, truncated.size());

  const auto version =
      payloadfs::testing::read_file((dir.path() / "malformed-version.tlm").string());
  const Layout v = parse_bytes(*d, version);
  EXPECT_EQ(v.errors,
            std::vector<std::string>{"validation failed: unsupported version (expected 1)"});
  EXPECT_EQ(v.slices.size(), 3u);
}

// A million-record recording (built in memory, in the layout gen-telemetry.py writes) is one
// compact table of 16-byte records, not a million slices.
TEST(Telemetry, MillionRecordsStayCompact) {
  const auto d = example("telemetry.json");
  ASSERT_TRUE(d);
  constexpr uint32_t kCount = 1'000'000;
  Bytes b;
  b.raw("TLM1").le(1, 2).le(64, 2).le(0x1000, 4).le(50, 4).le(1'700'000'000'000'000'000, 8);
  b.u8(2).u8(5).le(24, 2).le(kCount, 4).raw("probe-00").zeros(8).le(0x3f800000, 4).zeros(12);
  ASSERT_EQ(b.size(), 64u);
  b.data().reserve(64 + size_t{kCount} * 24);
  for (uint32_t k = 0; k < kCount; ++k) {
    b.le(uint64_t{k} * 20'000, 8).le(k % 8, 2).u8(static_cast<uint8_t>(k % 3)).u8(k % 8);
    b.le(k, 4).le(std::bit_cast<uint64_t>(static_cast<double>(k) / 4), 8);
  }
  const auto file = b.data();
  const Layout l = parse_compact(*d, file);
  EXPECT_TRUE(l.errors.empty()) << errors_of(l);
  ASSERT_EQ(l.slices.size(), 1u);  // the header; no per-record slices
  EXPECT_EQ(l.slices[0].name, "header");
  ASSERT_EQ(l.tables.size(), 1u);
  const RecordTable& t = l.tables[0];
  EXPECT_EQ(t.dir, "records");
  ASSERT_EQ(t.records.size(), kCount);
  EXPECT_LE(t.records.capacity() * sizeof(Record), 32u << 20);
  const MemorySource source(file);
  for (const uint32_t k : {0u, 1u, 123'456u, kCount - 1}) {
    const Record& r = t.records[k];
    EXPECT_EQ(r.offset, 64 + uint64_t{k} * 24);
    EXPECT_EQ(r.length, 24u);
    const Json a = t.attributes(source, r);
    EXPECT_EQ(a["timestamp_us"], uint64_t{k} * 20'000);
    EXPECT_EQ(a["channel"], k % 8);
    EXPECT_EQ(a["kind"]["value"], k % 3);
    EXPECT_EQ(a["quality"]["value"], k % 8);
    EXPECT_EQ(a["sequence"], k);
    EXPECT_DOUBLE_EQ(a["value"].get<double>(), static_cast<double>(k) / 4);
  }
  EXPECT_EQ(SliceTree::record_name(kCount - 1, kCount), "999999");
}

// ---------------------------------------------------------------------------------------------
// The pcap example

Bytes pcap_header(bool big, bool nano, uint32_t linktype = 1) {
  Bytes b;
  const uint32_t magic = nano ? 0xa1b23c4d : 0xa1b2c3d4;
  auto put = [&](uint64_t v, int w) -> Bytes& { return big ? b.be(v, w) : b.le(v, w); };
  put(magic, 4);
  put(2, 2);
  put(4, 2);
  put(0, 4);
  put(0, 4);
  put(65535, 4);
  put(linktype, 4);
  return b;
}

void pcap_record(Bytes& b, bool big, uint32_t sec, uint32_t frac, uint32_t caplen,
                 uint32_t origlen) {
  auto put = [&](uint64_t v) { big ? b.be(v, 4) : b.le(v, 4); };
  put(sec);
  put(frac);
  put(caplen);
  put(origlen);
  for (uint32_t k = 0; k < caplen; ++k) b.u8(static_cast<uint8_t>(k + sec));
}

TEST(PcapDescriptor, BothByteOrdersAndResolutions) {
  const auto d = example("pcap.json");
  ASSERT_TRUE(d);
  for (const bool big : {false, true}) {
    for (const bool nano : {false, true}) {
      SCOPED_TRACE(std::string(big ? "big" : "little") + (nano ? " ns" : " us"));
      Bytes b = pcap_header(big, nano, 113);
      pcap_record(b, big, 1700000000, 123456, 60, 60);
      pcap_record(b, big, 1700000001, 999999, 0, 1500);
      pcap_record(b, big, 1700000002, 5, 14, 1514);
      const auto file = b.data();
      ASSERT_TRUE(d->detect(file, file.size()));
      const Layout l = parse_bytes(*d, file);
      EXPECT_TRUE(l.errors.empty()) << errors_of(l);
      EXPECT_EQ(l.header["magic_number"], (Json{{"value", nano ? 0xa1b23c4dU : 0xa1b2c3d4U},
                                                {"name", nano ? "nanosecond" : "microsecond"}}));
      EXPECT_EQ(l.header["version_major"], 2);
      EXPECT_EQ(l.header["version_minor"], 4);
      EXPECT_EQ(l.header["snaplen"], 65535);
      EXPECT_EQ(l.header["linktype"], (Json{{"value", 113}, {"name", "LINUX_SLL"}}));
      ASSERT_EQ(l.slices.size(), 3u);
      EXPECT_EQ(l.slices[0].name, "packet/0");
      EXPECT_EQ(l.slices[0].range, (ByteRange{40, 60}));
      EXPECT_EQ(
          l.slices[0].attributes,
          (Json{{"ts_sec", 1700000000}, {"ts_usec", 123456}, {"caplen", 60}, {"origlen", 60}}));
      EXPECT_EQ(l.slices[1].range, (ByteRange{116, 0}));
      EXPECT_EQ(l.slices[2].range, (ByteRange{132, 14}));
      EXPECT_EQ(l.slices[2].attributes["origlen"], 1514);
      ASSERT_TRUE(l.magic);
      EXPECT_EQ(*l.magic, (ByteRange{0, 4}));
    }
  }
}

TEST(PcapDescriptor, TruncatedCaptureKeepsCompletePackets) {
  const auto d = example("pcap.json");
  Bytes b = pcap_header(false, false);
  pcap_record(b, false, 1, 0, 10, 10);
  pcap_record(b, false, 2, 0, 10, 10);
  auto file = b.data();
  file.resize(file.size() - 3);
  const Layout l = parse_bytes(*d, file);
  ASSERT_EQ(l.slices.size(), 1u);
  EXPECT_TRUE(has_error(l,
                        "slice 'packet/{i}' record 1 at offset 50: length 26 runs past the end "
                        "of the file (size 73); stopped"))
      << errors_of(l);
  file.resize(24 + 26 + 7);  // the second record header cut short
  const Layout h = parse_bytes(*d, file);
  EXPECT_EQ(h.slices.size(), 1u);
  EXPECT_TRUE(has_error(h, "record 1 at offset 50 field 'ts_usec'")) << errors_of(h);
}

// Real captures: text2pcap writes them, tshark is the reference for every packet.
TEST(PcapDescriptor, AgreesWithTsharkOnText2pcapCaptures) {
  if (!fs::exists("/usr/bin/text2pcap") || !fs::exists("/usr/bin/tshark"))
    GTEST_FAIL() << "text2pcap/tshark not installed (apt-get install tshark)";
  const auto d = example("pcap.json");
  TempDir dir;
  std::string dump;
  std::mt19937 rng(7);
  for (int p = 0; p < 40; ++p) {
    char ts[64];
    std::snprintf(ts, sizeof ts, "2024-01-02 03:04:%02d.%06d\n", p, p * 12345 % 1000000);
    dump += ts;
    const int n = 14 + static_cast<int>(rng() % 300);
    for (int k = 0; k < n; ++k) {
      char byte[16];
      if (k % 16 == 0) {
        std::snprintf(byte, sizeof byte, "%s%06x", k == 0 ? "" : "\n", k);
        dump += byte;
      }
      std::snprintf(byte, sizeof byte, " %02x", static_cast<unsigned>(rng() % 256));
      dump += byte;
    }
    dump += "\n";
  }
  dir.write("dump.txt", dump);
  const std::string base = (dir.path() / "cap.pcap").string();
  ASSERT_TRUE(run("/usr/bin/text2pcap -q -F pcap -t '%Y-%m-%d %H:%M:%S.' " +
                  (dir.path() / "dump.txt").string() + " " + base + " 2>/dev/null"));
  // editcap: captured lengths cut to a snap length (caplen < origlen), and nanosecond pcap.
  const std::string snapped = (dir.path() / "snapped.pcap").string();
  const std::string nano = (dir.path() / "nano.pcap").string();
  ASSERT_TRUE(run("/usr/bin/editcap -F pcap -s 100 " + base + " " + snapped));
  ASSERT_TRUE(run("/usr/bin/editcap -F nsecpcap " + base + " " + nano));
  for (const auto& [pcap, digits] :
       std::vector<std::pair<std::string, size_t>>{{base, 6}, {snapped, 6}, {nano, 9}}) {
    SCOPED_TRACE(pcap);
    const std::string fields = pcap + ".txt";
    ASSERT_TRUE(run("/usr/bin/tshark -r " + pcap +
                    " -T fields -e frame.cap_len -e frame.len -e frame.time_epoch > " + fields +
                    " 2>/dev/null"));
    const auto bytes = payloadfs::testing::read_file(pcap);
    const Layout l = parse_bytes(*d, bytes);
    EXPECT_TRUE(l.errors.empty()) << errors_of(l);
    EXPECT_EQ(l.header["magic_number"]["name"], digits == 9 ? "nanosecond" : "microsecond");
    std::istringstream in(read_text(fields));
    size_t k = 0;
    bool truncated = false;
    for (std::string line; std::getline(in, line); ++k) {
      ASSERT_LT(k, l.slices.size());
      std::istringstream row(line);
      uint64_t cap = 0, len = 0;
      std::string epoch;
      row >> cap >> len >> epoch;
      const Slice& s = l.slices[k];
      EXPECT_EQ(s.attributes["caplen"], cap);
      EXPECT_EQ(s.range.length, cap);
      EXPECT_EQ(s.attributes["origlen"], len);
      truncated = truncated || cap < len;
      const auto dot = epoch.find('.');
      EXPECT_EQ(s.attributes["ts_sec"], std::stoull(epoch.substr(0, dot)));
      EXPECT_EQ(s.attributes["ts_usec"],
                std::stoull((epoch.substr(dot + 1) + "000000000").substr(0, digits)));
    }
    EXPECT_EQ(k, 40u);
    EXPECT_EQ(l.slices.size(), 40u);
    EXPECT_EQ(truncated, pcap == snapped);
  }
}

// ---------------------------------------------------------------------------------------------
// Randomized robustness: mutated files and mutated descriptors

// Small caps keep a few thousand iterations fast; the caps themselves are tested above.
Limits fuzz_limits() {
  Limits limits;
  limits.max_records = 2000;
  limits.max_reads = 20000;
  return limits;
}

std::unique_ptr<DescriptorFormat> fuzz_example(const std::string& name) {
  auto r = load_descriptor_file((kRepo / "examples/formats" / name).string(), fuzz_limits());
  if (auto* err = std::get_if<LoadError>(&r)) {
    ADD_FAILURE() << err->message;
    return nullptr;
  }
  return std::get<std::unique_ptr<DescriptorFormat>>(std::move(r));
}

TEST(Descriptor, RandomizedMutatedFiles) {
  std::vector<std::pair<std::unique_ptr<DescriptorFormat>, std::vector<std::byte>>> cases;
  {
    Bytes b = pcap_header(false, false);
    for (uint32_t k = 0; k < 6; ++k) pcap_record(b, false, k, k, 5 + k * 7, 100);
    cases.emplace_back(fuzz_example("pcap.json"), b.data());
  }
  {
    TempDir dir;
    ASSERT_TRUE(run("/usr/bin/python3 " + (kRepo / "scripts/gen-telemetry.py").string() + " " +
                    dir.path().string() + " --files 1 --records 8"));
    cases.emplace_back(fuzz_example("telemetry.json"),
                       payloadfs::testing::read_file((dir.path() / "flight-000.tlm").string()));
  }
  {
    Bytes b;
    b.raw("W");
    for (int k = 0; k < 8; ++k) b.u8(static_cast<uint8_t>(k)).u8(7).zeros(static_cast<size_t>(k));
    cases.emplace_back(compile(kWalk, fuzz_limits()), b.data());
  }
  cases.emplace_back(compile(kTypes, fuzz_limits()), types_file());
  std::mt19937 rng(20240611);
  for (auto& [format, original] : cases) {
    ASSERT_TRUE(format);
    for (int iter = 0; iter < 1500; ++iter) {
      auto bytes = original;
      const int edits = 1 + static_cast<int>(rng() % 4);
      for (int e = 0; e < edits && !bytes.empty(); ++e) {
        const size_t at = rng() % bytes.size();
        switch (rng() % 4) {
          case 0:
            bytes[at] = static_cast<std::byte>(rng());
            break;
          case 1:
            bytes[at] = std::byte{0xff};
            break;
          case 2:
            bytes.resize(at);
            break;
          default:
            bytes[at] = std::byte{0};
            break;
        }
      }
      const Layout l = parse_bytes(*format, bytes);
      expect_in_bounds(l, bytes.size());
      (void)l.header.dump();
    }
  }
}

TEST(Descriptor, RandomizedMutatedDescriptors) {
  const std::vector<std::string> texts = {read_text(kRepo / "examples/formats/telemetry.json"),
                                          read_text(kRepo / "examples/formats/pcap.json"), kWalk,
                                          kTypes};
  Bytes b = pcap_header(false, false);
  for (uint32_t k = 0; k < 4; ++k) pcap_record(b, false, k, k, 5 + k, 100);
  const auto file_a = b.data();
  const auto file_b = types_file();
  const char alphabet[] = "{}[]\":,0123456789abcxyz+-*/%()<>=!&|^~@i _\\";
  std::mt19937 rng(99);
  int loaded = 0;
  for (int iter = 0; iter < 2500; ++iter) {
    std::string text = texts[rng() % texts.size()];
    const int edits = 1 + static_cast<int>(rng() % 3);
    for (int e = 0; e < edits; ++e) {
      const size_t at = rng() % text.size();
      switch (rng() % 3) {
        case 0:
          text[at] = alphabet[rng() % (sizeof alphabet - 1)];
          break;
        case 1:
          text.erase(at, 1 + rng() % 4);
          break;
        default:
          text.insert(at, 1, alphabet[rng() % (sizeof alphabet - 1)]);
          break;
      }
    }
    auto r = parse_descriptor(text, "mutant.json", fuzz_limits());
    if (auto* err = std::get_if<LoadError>(&r)) {
      EXPECT_EQ(err->message.rfind("mutant.json: ", 0), 0u) << err->message;
      continue;
    }
    ++loaded;
    const auto& d = std::get<std::unique_ptr<DescriptorFormat>>(r);
    for (const auto* file : {&file_a, &file_b}) {
      const Layout l = parse_bytes(*d, *file);
      expect_in_bounds(l, file->size());
      (void)l.header.dump();
    }
  }
  EXPECT_GT(loaded, 100);
}

}  // namespace
}  // namespace payloadfs::descriptor

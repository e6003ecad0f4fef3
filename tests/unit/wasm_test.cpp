// wasm parser tests: modules from wat2wasm and clang (tests/fixtures/gen_wasm.py) against
// `wasm-objdump -h` and `-x`, hand-built modules with custom sections, every section id, bad
// LEB128s, sizes past the end, out-of-order sections, and a bounded mutation run.

#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "core/formats/builtin.hpp"
#include "unit/test_support.hpp"

namespace payloadfs {
namespace {

using testing::Bytes;
using testing::has_error;

const Format& wasm() {
  static const auto format = formats::make_wasm();
  return *format;
}

Bytes module() {
  Bytes b;
  b.raw(std::string_view("\0asm\x01\0\0\0", 8));
  return b;
}

Bytes& section(Bytes& b, uint8_t id, const std::vector<std::byte>& payload) {
  b.u8(id).uleb(payload.size());
  return b.append(payload);
}

std::vector<std::byte> named(std::string_view name, std::string_view rest) {
  Bytes p;
  p.uleb(name.size()).raw(name).raw(rest);
  return p.take();
}

// wasm-objdump's section kinds, by our names.
const std::map<std::string, std::string>& objdump_kinds() {
  static const std::map<std::string, std::string> kinds = {
      {"Type", "type"},     {"Import", "import"}, {"Function", "function"},
      {"Table", "table"},   {"Memory", "memory"}, {"Global", "global"},
      {"Export", "export"}, {"Start", "start"},   {"Elem", "element"},
      {"Code", "code"},     {"Data", "data"},     {"DataCount", "data_count"},
      {"Tag", "tag"},       {"Custom", "custom"}};
  return kinds;
}

class WasmFixtures : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::fixtures_dir() + "/wasm";
    if (testing::fixtures_dir().empty() || !std::filesystem::exists(dir_ + "/manifest.json"))
      GTEST_FAIL() << "run tests/fixtures/gen_wasm.py first (PAYLOADFS_FIXTURES)";
  }
  std::string dir_;
};

TEST_F(WasmFixtures, SectionsMatchWasmObjdump) {
  const Json manifest = testing::read_fixture_json(dir_ + "/manifest.json");
  ASSERT_GE(manifest.size(), 5u);
  size_t sections = 0;
  for (const auto& entry : manifest) {
    const std::string name = entry.get<std::string>();
    SCOPED_TRACE(name);
    const auto file = testing::read_file(dir_ + "/" + name);
    const Json objdump = testing::read_fixture_json(dir_ + "/" + name + ".objdump.json");
    const Layout layout = testing::parse_bytes(wasm(), file);
    const bool too_many = objdump["exports"].get<uint64_t>() > 4096;
    EXPECT_EQ(layout.errors.empty(), !too_many) << testing::errors_of(layout);
    ASSERT_EQ(layout.slices.size(), objdump["sections"].size());
    for (size_t i = 0; i < layout.slices.size(); ++i) {
      const Slice& s = layout.slices[i];
      const Json& o = objdump["sections"][i];
      std::string expected = objdump_kinds().at(o["kind"]);
      if (expected == "custom") expected += "/" + o["custom_name"].get<std::string>();
      EXPECT_EQ(s.name, expected);
      EXPECT_EQ(s.range.offset, o["offset"]) << s.name;
      EXPECT_EQ(s.range.length, o["size"]) << s.name;
      EXPECT_EQ(s.attributes["size"], o["size"]) << s.name;
      ++sections;
    }
    EXPECT_EQ(layout.header["import_count"], objdump["imports"]);
    EXPECT_EQ(layout.header["export_count"], objdump["exports"]);
    const Json& names = objdump["export_names"];
    const Json& exports = layout.header["exports"];
    ASSERT_EQ(exports.size(), std::min<size_t>(names.size(), 4096));
    for (size_t i = 0; i < exports.size(); ++i) EXPECT_EQ(exports[i]["name"], names[i]);
    EXPECT_EQ(layout.header["version"], 1);
  }
  EXPECT_GE(sections, 30u);
}

// The real files, mutated: slices stay inside the file, the header is valid UTF-8 JSON.
TEST_F(WasmFixtures, MutatedFixturesStayInBounds) {
  std::vector<std::vector<std::byte>> seeds;
  for (const auto& entry : testing::read_fixture_json(dir_ + "/manifest.json"))
    seeds.push_back(testing::read_file(dir_ + "/" + entry.get<std::string>()));
  ASSERT_FALSE(seeds.empty());
  testing::mutate_and_parse(wasm(), seeds, 13, 500);
  std::mt19937 rng(13);
  for (int i = 0; i < 100; ++i) {
    auto data = seeds[static_cast<size_t>(i) % seeds.size()];
    if (data.empty()) continue;
    data[rng() % data.size()] = static_cast<std::byte>(rng());
    const Layout layout = testing::parse_bytes(wasm(), data);
    (void)layout.header.dump(-1, ' ', false, Json::error_handler_t::strict);
  }
}

TEST_F(WasmFixtures, MalformedCopiesGiveErrors) {
  const Json manifest = testing::read_fixture_json(dir_ + "/malformed/manifest.json");
  ASSERT_GE(manifest.size(), 5u);
  for (const auto& entry : manifest) {
    const std::string name = entry["file"];
    SCOPED_TRACE(name);
    const auto file = testing::read_file(dir_ + "/malformed/" + name);
    EXPECT_TRUE(wasm().detect(file, file.size()));
    const Layout layout = testing::parse_bytes(wasm(), file);
    EXPECT_FALSE(layout.errors.empty());
    testing::expect_in_bounds(layout, file.size());
  }
}

TEST(WasmHandBuilt, EverySectionAndCustomNames) {
  Bytes b = module();
  section(b, 0, named("first", "abc"));
  section(b, 1, {std::byte{0}});
  Bytes imports;
  imports.uleb(2);
  imports.uleb(3).raw("env");
  imports.uleb(1).raw("f").u8(0).u8(0);  // func, type 0
  imports.uleb(3).raw("env");
  imports.uleb(3).raw("mem").u8(2).u8(1).u8(1).u8(4);  // memory, limits 1..4
  section(b, 2, imports.data());
  for (int id : {3, 4, 5, 13, 6}) section(b, static_cast<uint8_t>(id), {std::byte{0}});
  Bytes exports;
  exports.uleb(1);
  exports.uleb(5).raw("start").u8(0).u8(0);
  section(b, 7, exports.data());
  section(b, 8, {std::byte{0}});
  for (int id : {9, 12, 10, 11}) section(b, static_cast<uint8_t>(id), {std::byte{0}});
  section(b, 0, named("a/b", ""));
  section(b, 0, named("first", "again"));
  const Layout layout = testing::parse_bytes(wasm(), b.data());
  ASSERT_TRUE(layout.errors.empty()) << testing::errors_of(layout);
  std::vector<std::string> names;
  for (const auto& s : layout.slices) names.push_back(s.name);
  EXPECT_EQ(names,
            (std::vector<std::string>{"custom/first", "type", "import", "function", "table",
                                      "memory", "tag", "global", "export", "start", "element",
                                      "data_count", "code", "data", "custom/a/b", "custom/first"}));
  const Slice& custom = layout.slices[0];
  EXPECT_EQ(custom.range, (ByteRange{10, 9}));
  EXPECT_EQ(custom.attributes["id"], 0);
  EXPECT_EQ(custom.attributes["name"], "first");
  EXPECT_EQ(custom.attributes["content_offset"], 16);
  EXPECT_EQ(custom.attributes["content_size"], 3);
  EXPECT_EQ(layout.header["import_count"], 2);
  EXPECT_EQ(layout.header["imports"][1],
            (Json{{"module", "env"}, {"name", "mem"}, {"kind", "memory"}}));
  EXPECT_EQ(layout.header["export_count"], 1);
  EXPECT_EQ(layout.header["exports"][0], (Json{{"name", "start"}, {"kind", "func"}, {"index", 0}}));
  EXPECT_EQ(layout.header["section_count"], 16);
  EXPECT_EQ(layout.slices[9].attributes["function_index"], 0);
}

TEST(WasmHandBuilt, MalformedSections) {
  Bytes cut = module();
  section(cut, 1, {std::byte{0}, std::byte{0}});
  cut.data().pop_back();
  EXPECT_TRUE(has_error(testing::parse_bytes(wasm(), cut.data()), "past the end"));

  Bytes bad_leb = module();
  bad_leb.u8(1).u8(0x80).u8(0x80).u8(0x80).u8(0x80).u8(0x80).u8(0x00);
  EXPECT_TRUE(has_error(testing::parse_bytes(wasm(), bad_leb.data()), "LEB128"));

  Bytes too_big = module();
  too_big.u8(1).u8(0xFF).u8(0xFF).u8(0xFF).u8(0xFF).u8(0x7F);  // more than 32 bits
  EXPECT_TRUE(has_error(testing::parse_bytes(wasm(), too_big.data()), "LEB128"));

  Bytes order = module();
  section(order, 10, {std::byte{0}});
  section(order, 1, {std::byte{0}});
  section(order, 1, {std::byte{0}});
  const Layout lo = testing::parse_bytes(wasm(), order.data());
  EXPECT_TRUE(has_error(lo, "out of order"));
  EXPECT_TRUE(has_error(lo, "a second type section"));
  EXPECT_EQ(lo.slices.size(), 3u);

  Bytes unknown = module();
  section(unknown, 42, {std::byte{1}});
  const Layout lu = testing::parse_bytes(wasm(), unknown.data());
  EXPECT_TRUE(has_error(lu, "unknown section id 42"));
  ASSERT_EQ(lu.slices.size(), 1u);
  EXPECT_EQ(lu.slices[0].name, "unknown/42");

  Bytes bad_custom = module();
  section(bad_custom, 0, {std::byte{9}, std::byte{'a'}});  // name longer than the section
  EXPECT_TRUE(has_error(testing::parse_bytes(wasm(), bad_custom.data()), "custom section"));

  Bytes bad_export = module();
  section(bad_export, 7, {std::byte{3}, std::byte{1}, std::byte{'x'}});
  EXPECT_TRUE(has_error(testing::parse_bytes(wasm(), bad_export.data()), "malformed export"));

  Bytes bad_count = module();
  section(bad_count, 1, {std::byte{0x80}});
  EXPECT_TRUE(has_error(testing::parse_bytes(wasm(), bad_count.data()), "bad LEB128 count"));
}

TEST(WasmHandBuilt, TruncatedAtEveryByte) {
  Bytes b = module();
  section(b, 0, named("name", "xyz"));
  section(b, 1, {std::byte{0}});
  section(b, 7, {std::byte{1}, std::byte{1}, std::byte{'e'}, std::byte{0}, std::byte{0}});
  const auto whole = b.take();
  std::vector<size_t> boundaries = {8};
  for (const auto& s : testing::parse_bytes(wasm(), whole).slices)
    boundaries.push_back(s.range.offset + s.range.length);
  for (size_t n = 0; n < whole.size(); ++n) {
    if (std::find(boundaries.begin(), boundaries.end(), n) != boundaries.end()) continue;
    SCOPED_TRACE(n);
    const std::vector<std::byte> cut(whole.begin(), whole.begin() + static_cast<ptrdiff_t>(n));
    const Layout layout = testing::parse_bytes(wasm(), cut);
    EXPECT_FALSE(layout.errors.empty());
    testing::expect_in_bounds(layout, cut.size());
  }
}

TEST(WasmHandBuilt, SectionLimit) {
  Bytes b = module();
  for (int i = 0; i < 4097; ++i) section(b, 0, named("c", ""));
  const Layout layout = testing::parse_bytes(wasm(), b.data());
  EXPECT_EQ(layout.slices.size(), 4096u);
  EXPECT_TRUE(has_error(layout, "more than 4096 sections"));
}

TEST(WasmDetect, MagicAndVersion) {
  EXPECT_TRUE(wasm().detect(module().data(), 8));
  EXPECT_FALSE(wasm().detect(testing::to_bytes(std::string_view("\0asm\x02\0\0\0", 8)), 8));
  EXPECT_FALSE(wasm().detect(testing::to_bytes(std::string_view("\0asm\x0d\0\x01\0", 8)), 8));
  EXPECT_FALSE(wasm().detect(testing::to_bytes(std::string_view("\0asm", 4)), 4));
}

TEST(WasmRobustness, MutatedModulesStayInBounds) {
  Bytes b = module();
  section(b, 0, named("name", "xyz"));
  section(b, 1, {std::byte{1}, std::byte{0x60}, std::byte{0}, std::byte{0}});
  section(b, 7, {std::byte{1}, std::byte{1}, std::byte{'e'}, std::byte{0}, std::byte{0}});
  Bytes imported;
  imported.u8(1).u8(1).raw("m").u8(1).raw("n").u8(0).u8(0);
  section(b, 2, imported.data());
  testing::mutate_and_parse(wasm(), {b.data()}, 20260503, 3000);
}

}  // namespace
}  // namespace payloadfs

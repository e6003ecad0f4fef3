// pe parser tests: images and objects from mingw-w64 (tests/fixtures/gen_pe.py) against what
// python3-pefile and x86_64-w64-mingw32-objdump -h read of them, hand-built images with
// e_lfanew past the end, sections past the end, a huge NumberOfSections, COFF detection on
// look-alikes, and a bounded mutation run.

#include <filesystem>
#include <string>
#include <vector>

#include "core/formats/builtin.hpp"
#include "unit/test_support.hpp"

namespace payloadfs {
namespace {

using testing::Bytes;
using testing::has_error;

const Format& pe() {
  static const auto format = formats::make_pe();
  return *format;
}

// A PE32+ image: DOS header (e_lfanew 64), signature, COFF header, a 240-byte optional header
// with 16 directories, `sections` section headers each with 512 bytes of raw data.
Bytes image(uint16_t sections, uint32_t raw_size = 512, uint32_t lfanew = 64) {
  Bytes b;
  b.raw("MZ").zeros(0x3C - 2).le(lfanew, 4);
  b.zeros(lfanew - b.size());
  b.raw(std::string_view("PE\0\0", 4));
  b.le(0x8664, 2).le(sections, 2).le(0x5F000000, 4).le(0, 4).le(0, 4).le(240, 2).le(0x22, 2);
  b.le(0x20B, 2).u8(2).u8(40).le(512, 4).le(0, 4).le(0, 4).le(0x1000, 4).le(0x1000, 4);
  b.le(0x140000000, 8).le(0x1000, 4).le(0x200, 4);
  b.le(4, 2).le(0, 2).le(0, 2).le(0, 2).le(5, 2).le(2, 2).le(0, 4);
  b.le(0x3000, 4).le(0x400, 4).le(0, 4).le(3, 2).le(0x160, 2);
  b.le(0x200000, 8).le(0x1000, 8).le(0x100000, 8).le(0x1000, 8).le(0, 4).le(16, 4);
  for (int i = 0; i < 16; ++i) b.le(i == 1 ? 0x1000 : 0, 4).le(i == 1 ? 40 : 0, 4);
  const uint64_t headers = b.size() + uint64_t{sections} * 40;
  const uint64_t data_at = (headers + 511) / 512 * 512;
  for (uint16_t i = 0; i < sections && i < 100; ++i) {
    b.raw(i == 0 ? std::string_view(".text\0\0\0", 8) : std::string_view(".data\0\0\0", 8));
    b.le(raw_size, 4).le(0x1000 * (i + 1), 4).le(raw_size, 4).le(data_at + i * 512, 4);
    b.zeros(12).le(0x60000020, 4);
  }
  b.zeros(data_at - b.size());
  for (uint16_t i = 0; i < sections && i < 100; ++i)
    for (int k = 0; k < 512; ++k) b.u8((i * 7 + k) & 0xFF);
  return b;
}

class PeFixtures : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::fixtures_dir() + "/pe";
    if (testing::fixtures_dir().empty() || !std::filesystem::exists(dir_ + "/manifest.json"))
      GTEST_FAIL() << "run tests/fixtures/gen_pe.py first (PAYLOADFS_FIXTURES)";
  }
  std::string dir_;
};

TEST_F(PeFixtures, ImagesMatchPefile) {
  const Json manifest = testing::read_fixture_json(dir_ + "/manifest.json");
  ASSERT_GE(manifest["images"].size(), 5u);
  for (const auto& entry : manifest["images"]) {
    const std::string name = entry.get<std::string>();
    SCOPED_TRACE(name);
    const auto file = testing::read_file(dir_ + "/" + name);
    const Json ref = testing::read_fixture_json(dir_ + "/" + name + ".pefile.json");
    ASSERT_TRUE(pe().detect(file, file.size()));
    const Layout layout = testing::parse_bytes(pe(), file);
    EXPECT_TRUE(layout.errors.empty()) << testing::errors_of(layout);
    const Json& h = layout.header;
    EXPECT_EQ(h["machine"]["value"], ref["machine"]);
    EXPECT_EQ(h["optional_header"]["magic_value"], ref["magic"]);
    EXPECT_EQ(h["optional_header"]["address_of_entry_point"], ref["entry_point"]);
    EXPECT_EQ(h["optional_header"]["image_base"], ref["image_base"]);
    EXPECT_EQ(h["optional_header"]["subsystem"]["value"], ref["subsystem"]);
    ASSERT_EQ(layout.slices.size(), ref["sections"].size());
    for (size_t i = 0; i < layout.slices.size(); ++i) {
      const Slice& s = layout.slices[i];
      const Json& r = ref["sections"][i];
      const std::string header_name = s.attributes.value("header_name", s.name);
      EXPECT_EQ(header_name, r["name"]);
      EXPECT_EQ(s.attributes["virtual_address"], r["virtual_address"]);
      EXPECT_EQ(s.attributes["virtual_size"], r["virtual_size"]);
      EXPECT_EQ(s.range.length, r["data_length"]) << s.name;
      if (s.range.length != 0) {
        EXPECT_EQ(s.range.offset, r["pointer_to_raw_data"]) << s.name;
      }
    }
    ASSERT_EQ(h["data_directories"].size(), ref["directories"].size());
    for (size_t i = 0; i < ref["directories"].size(); ++i) {
      EXPECT_EQ(h["data_directories"][i]["name"], ref["directories"][i]["name"]);
      EXPECT_EQ(h["data_directories"][i]["rva"], ref["directories"][i]["rva"]);
      EXPECT_EQ(h["data_directories"][i]["size"], ref["directories"][i]["size"]);
    }
    EXPECT_EQ(h["imports"], ref["imports"]);
    EXPECT_EQ(h.value("export_name", Json(nullptr)), ref["export_name"]);
  }
}

TEST_F(PeFixtures, ObjectsMatchObjdump) {
  const Json manifest = testing::read_fixture_json(dir_ + "/manifest.json");
  ASSERT_GE(manifest["objects"].size(), 3u);
  for (const auto& entry : manifest["objects"]) {
    const std::string name = entry.get<std::string>();
    SCOPED_TRACE(name);
    const auto file = testing::read_file(dir_ + "/" + name);
    const Json ref = testing::read_fixture_json(dir_ + "/" + name + ".objdump.json");
    ASSERT_TRUE(pe().detect(file, file.size()));
    const Layout layout = testing::parse_bytes(pe(), file);
    EXPECT_TRUE(layout.errors.empty()) << testing::errors_of(layout);
    EXPECT_EQ(layout.header["kind"], "COFF object");
    ASSERT_EQ(layout.slices.size(), ref.size());
    for (size_t i = 0; i < ref.size(); ++i) {
      EXPECT_EQ(layout.slices[i].name, ref[i]["name"]);
      EXPECT_EQ(layout.slices[i].range.length, ref[i]["size"]);
      if (ref[i]["file_offset"] != 0) {
        EXPECT_EQ(layout.slices[i].range.offset, ref[i]["file_offset"]);
      }
    }
  }
}

TEST_F(PeFixtures, MalformedCopiesGiveErrors) {
  const Json manifest = testing::read_fixture_json(dir_ + "/malformed/manifest.json");
  ASSERT_GE(manifest.size(), 5u);
  for (const auto& [name, what] : manifest.items()) {
    SCOPED_TRACE(name);
    const auto file = testing::read_file(dir_ + "/malformed/" + name);
    EXPECT_TRUE(pe().detect(file, file.size()));
    const Layout layout = testing::parse_bytes(pe(), file);
    EXPECT_FALSE(layout.errors.empty()) << what;
    testing::expect_in_bounds(layout, file.size());
  }
}

TEST_F(PeFixtures, MutatedFixturesStayInBounds) {
  const Json manifest = testing::read_fixture_json(dir_ + "/manifest.json");
  std::vector<std::vector<std::byte>> seeds;
  for (const auto& list : {manifest["images"], manifest["objects"]})
    for (const auto& entry : list) {
      auto file = testing::read_file(dir_ + "/" + entry.get<std::string>());
      file.resize(std::min<size_t>(file.size(), 16384));  // the headers and first sections
      seeds.push_back(std::move(file));
    }
  testing::mutate_and_parse(pe(), seeds, 29, 600);
}

TEST(PeHandBuilt, SectionsAndDirectories) {
  Bytes b = image(2);
  const Layout layout = testing::parse_bytes(pe(), b.data());
  EXPECT_TRUE(pe().detect(b.data(), b.size()));
  EXPECT_TRUE(has_error(layout, "import directory") || layout.errors.empty());
  ASSERT_EQ(layout.slices.size(), 2u);
  EXPECT_EQ(layout.slices[0].name, ".text");
  EXPECT_EQ(layout.slices[1].name, ".data");
  EXPECT_EQ(layout.slices[0].range.length, 512u);
  EXPECT_EQ(layout.slices[0].attributes["characteristics"], "0x60000020");
  EXPECT_EQ(layout.slices[0].attributes["characteristics_flags"],
            (Json{"IMAGE_SCN_CNT_CODE", "IMAGE_SCN_MEM_EXECUTE", "IMAGE_SCN_MEM_READ"}));
  EXPECT_EQ(layout.header["kind"], "PE32+");
  EXPECT_EQ(layout.header["machine"], (Json{{"name", "AMD64"}, {"value", 0x8664}}));
  EXPECT_EQ(layout.header["optional_header"]["subsystem"]["name"], "WINDOWS_CUI");
  EXPECT_EQ(layout.header["optional_header"]["os_version"], "4.0");
  const Json& import = layout.header["data_directories"][1];
  EXPECT_EQ(import["name"], "IMPORT");
  EXPECT_EQ(import["file_offset"], layout.slices[0].range.offset);
}

TEST(PeHandBuilt, LfanewPastTheEnd) {
  Bytes b;
  b.raw("MZ").zeros(0x3C - 2).le(0x7FFFFFF0, 4).zeros(64);
  EXPECT_TRUE(pe().detect(b.data(), b.size()));
  const Layout layout = testing::parse_bytes(pe(), b.data());
  EXPECT_TRUE(has_error(layout, "e_lfanew")) << testing::errors_of(layout);
  EXPECT_TRUE(layout.slices.empty());
  Bytes dos;  // an MS-DOS program: e_lfanew inside the file, no PE signature there
  dos.raw("MZ").zeros(0x3C - 2).le(64, 4).raw("not a PE header");
  EXPECT_FALSE(pe().detect(dos.data(), dos.size()));
  EXPECT_TRUE(has_error(testing::parse_bytes(pe(), dos.data()), "PE\\0\\0"));
}

TEST(PeHandBuilt, SectionPastTheEnd) {
  Bytes b = image(2, 0x10000000);
  const Layout layout = testing::parse_bytes(pe(), b.data());
  EXPECT_TRUE(has_error(layout, "past the end of the file")) << testing::errors_of(layout);
  testing::expect_in_bounds(layout, b.size());
  ASSERT_EQ(layout.slices.size(), 2u);
  EXPECT_EQ(layout.slices[1].range.offset + layout.slices[1].range.length, b.size());
}

TEST(PeHandBuilt, HugeNumberOfSections) {
  Bytes b = image(0xFFFF);
  const Layout layout = testing::parse_bytes(pe(), b.data());
  EXPECT_TRUE(has_error(layout, "NumberOfSections 65535")) << testing::errors_of(layout);
  EXPECT_LE(layout.slices.size(), 96u);
  testing::expect_in_bounds(layout, b.size());
}

TEST(PeHandBuilt, ObjectDetectionIsStrict) {
  Bytes obj;
  obj.le(0x14C, 2).le(1, 2).le(0, 4).le(0, 4).le(0, 4).le(0, 2).le(0, 2);
  obj.raw(std::string_view(".text\0\0\0", 8)).le(0, 4).le(0, 4).le(4, 4).le(60, 4);
  obj.zeros(12).le(0x60300020, 4).raw("\xC3\x90\x90\x90");
  EXPECT_TRUE(pe().detect(obj.data(), obj.size()));
  const Layout layout = testing::parse_bytes(pe(), obj.data());
  EXPECT_TRUE(layout.errors.empty()) << testing::errors_of(layout);
  ASSERT_EQ(layout.slices.size(), 1u);
  EXPECT_EQ(layout.slices[0].range, (ByteRange{60, 4}));
  EXPECT_EQ(layout.header["kind"], "COFF object");

  auto unknown_machine = obj.data();
  unknown_machine[0] = std::byte{0x4D};
  EXPECT_FALSE(pe().detect(unknown_machine, unknown_machine.size()));
  auto raw_past_end = obj.data();
  raw_past_end.pop_back();
  EXPECT_FALSE(pe().detect(raw_past_end, raw_past_end.size()));
  auto bad_name = obj.data();
  bad_name[20] = std::byte{0x01};
  EXPECT_FALSE(pe().detect(bad_name, bad_name.size()));
  auto with_address = obj.data();
  with_address[32] = std::byte{0x10};
  EXPECT_FALSE(pe().detect(with_address, with_address.size()));
  const auto text =
      testing::to_bytes("L\x01 hello, this is just text and not an object file at all");
  EXPECT_FALSE(pe().detect(text, text.size()));
}

}  // namespace
}  // namespace payloadfs

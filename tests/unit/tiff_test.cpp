// tiff: files tifffile and PIL wrote (tests/fixtures/gen_tiff.py) compared with tifffile's
// pages (data offsets, byte counts, compression, tags); hand-built files for the malformed
// cases; a mutation sweep.

#include <array>
#include <cstring>
#include <string>
#include <vector>

#include "core/formats/builtin.hpp"
#include "core/model/layout.hpp"
#include "unit/test_support.hpp"

namespace payloadfs {
namespace {

using testing::has_error;
using testing::parse_bytes;
using testing::read_file;

const std::unique_ptr<Format> kTiff = formats::make_tiff();

std::string fixture_dir() {
  return testing::fixtures_dir() + "/tiff";
}

TEST(TiffReal, MatchesTifffile) {
  const Json expected = testing::read_fixture_json(fixture_dir() + "/expected.json");
  ASSERT_TRUE(expected.is_object()) << "run tests/fixtures/gen_tiff.py " << fixture_dir();
  ASSERT_GE(expected["files"].size(), 8u);
  for (const auto& file : expected["files"]) {
    SCOPED_TRACE(file["file"].get<std::string>());
    const auto bytes = read_file(fixture_dir() + "/" + file["file"].get<std::string>());
    ASSERT_TRUE(testing::detects(*kTiff, bytes));
    const Layout l = parse_bytes(*kTiff, bytes);
    EXPECT_TRUE(l.errors.empty()) << testing::errors_of(l);
    EXPECT_EQ(l.header["bigtiff"], file["bigtiff"]);
    EXPECT_EQ(l.header["byte_order"], file["byteorder"] == ">" ? "big" : "little");
    ASSERT_GE(l.header["ifds"].size(), file["pages"].size());
    size_t slice = 0;
    for (size_t i = 0; i < file["pages"].size(); ++i) {
      const auto& page = file["pages"][i];
      const Json& tags = l.header["ifds"][i]["tags"];
      for (const char* name : {"ImageWidth", "ImageLength", "Compression", "SamplesPerPixel"})
        if (page["tags"].contains(name)) {
          EXPECT_EQ(tags[name], page["tags"][name]) << name;
        }
      const std::string kind = page["tiled"].get<bool>() ? "tile" : "strip";
      for (size_t j = 0; j < page["offsets"].size(); ++j, ++slice) {
        ASSERT_LT(slice, l.slices.size());
        const Slice& s = l.slices[slice];
        EXPECT_EQ(s.name, "ifd/" + std::to_string(i) + "/" + kind + "/" + std::to_string(j));
        EXPECT_EQ(s.range.offset, page["offsets"][j].get<uint64_t>());
        EXPECT_EQ(s.range.length, page["bytecounts"][j].get<uint64_t>());
        EXPECT_EQ(s.stored, page["compression"] == 1);
      }
    }
    EXPECT_EQ(slice, l.slices.size());
  }
}

TEST(TiffReal, GeoKeysDecoded) {
  const auto bytes = read_file(fixture_dir() + "/geotiff.tif");
  const Layout l = parse_bytes(*kTiff, bytes);
  ASSERT_FALSE(l.header["ifds"].empty());
  const Json& keys = l.header["ifds"][0]["geokeys"]["keys"];
  EXPECT_EQ(keys["GTModelTypeGeoKey"], 2);
  EXPECT_EQ(keys["GeographicTypeGeoKey"], 4326);
  EXPECT_EQ(keys["GeogCitationGeoKey"], "WGS 84");
}

TEST(TiffReal, MalformedCopiesGiveTheirErrors) {
  const Json expected = testing::read_fixture_json(fixture_dir() + "/expected.json");
  ASSERT_TRUE(expected.is_object());
  ASSERT_GE(expected["malformed"].size(), 4u);
  for (const auto& m : expected["malformed"]) {
    SCOPED_TRACE(m["file"].get<std::string>());
    const auto bytes = read_file(fixture_dir() + "/" + m["file"].get<std::string>());
    ASSERT_TRUE(testing::detects(*kTiff, bytes));
    const Layout l = parse_bytes(*kTiff, bytes);
    EXPECT_TRUE(has_error(l, m["error"].get<std::string>())) << testing::errors_of(l);
    testing::expect_in_bounds(l, bytes.size());
  }
}

// A classic little-endian file with one IFD of `entries` (tag, type, count, value).
std::vector<std::byte> classic(const std::vector<std::array<uint32_t, 4>>& entries,
                               uint32_t next = 0, uint16_t claimed = 0) {
  std::vector<std::byte> out;
  auto put = [&](uint64_t v, int n) {
    for (int i = 0; i < n; ++i) out.push_back(static_cast<std::byte>((v >> (8 * i)) & 0xff));
  };
  put(0x002a4949, 4);
  put(8, 4);
  put(claimed ? claimed : entries.size(), 2);
  for (const auto& e : entries) {
    put(e[0], 2);
    put(e[1], 2);
    put(e[2], 4);
    put(e[3], 4);
  }
  put(next, 4);
  return out;
}

TEST(Tiff, Detects) {
  for (const char* magic : {"II*\0", "MM\0*", "II+\0", "MM\0+"}) {
    std::vector<std::byte> b(16);
    std::memcpy(b.data(), magic, 4);
    EXPECT_TRUE(testing::detects(*kTiff, b)) << magic;
  }
  EXPECT_FALSE(testing::detects(*kTiff, testing::to_bytes("II*")));
  EXPECT_FALSE(testing::detects(*kTiff, testing::to_bytes("MM*\0xxxx")));
}

TEST(Tiff, Malformed) {
  EXPECT_TRUE(has_error(parse_bytes(*kTiff, classic({{256, 3, 1, 4}}, 8)), "a loop"));
  EXPECT_TRUE(has_error(parse_bytes(*kTiff, classic({{256, 3, 1, 4}}, 100000)), "past the end"));
  EXPECT_TRUE(has_error(parse_bytes(*kTiff, classic({{256, 3, 1, 4}}, 0, 65000)), "entries"));
  EXPECT_TRUE(has_error(parse_bytes(*kTiff, classic({{273, 4, 1, 5000}, {279, 4, 1, 10}})),
                        "runs past the end"));
  EXPECT_TRUE(has_error(parse_bytes(*kTiff, classic({{273, 4, 0x40000000, 30}})), "past the end"));
  EXPECT_TRUE(has_error(parse_bytes(*kTiff, classic({{273, 4, 1, 8}})), "differ in number"));
}

// 5,000 strips past the end: each is an error, but only the first 1,000 are listed.
TEST(Tiff, ErrorsAreCapped) {
  auto file = classic({{273, 4, 5000, 38}, {279, 4, 5000, 38 + 20000}});
  auto put = [&](uint32_t v) {
    for (int i = 0; i < 4; ++i) file.push_back(static_cast<std::byte>((v >> (8 * i)) & 0xff));
  };
  for (int i = 0; i < 5000; ++i) put(1'000'000);
  for (int i = 0; i < 5000; ++i) put(10);
  const Layout l = parse_bytes(*kTiff, file);
  EXPECT_TRUE(l.slices.empty());
  ASSERT_EQ(l.errors.size(), 1001u);
  EXPECT_TRUE(has_error(l, "4000 more errors"));
}

TEST(Tiff, MutationsStayInBounds) {
  const Json expected = testing::read_fixture_json(fixture_dir() + "/expected.json");
  ASSERT_TRUE(expected.is_object());
  std::vector<std::vector<std::byte>> seeds;
  for (const auto& file : expected["files"])
    seeds.push_back(read_file(fixture_dir() + "/" + file["file"].get<std::string>()));
  testing::mutate_and_parse(*kTiff, seeds, 29, 3000);
}

}  // namespace
}  // namespace payloadfs

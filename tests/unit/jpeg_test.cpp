// jpeg parser tests: files from Pillow (tests/fixtures/gen_jpeg.py) against `exiv2 -pS`
// (segments), `exiftool -j -n` (EXIF tags) and Pillow (size, progressive), broken copies, and
// hand-built files (RST markers and stuffed bytes in a scan, fill bytes, an EXIF IFD loop, a
// length past the end), with a bounded mutation run.

#include <cmath>
#include <filesystem>
#include <string>
#include <vector>

#include "core/formats/builtin.hpp"
#include "unit/test_support.hpp"

namespace payloadfs {
namespace {

using testing::Bytes;
using testing::has_error;

const Format& jpeg() {
  static const auto format = formats::make_jpeg();
  return *format;
}

Bytes& segment(Bytes& b, uint8_t marker, const std::vector<std::byte>& data) {
  b.u8(0xFF).u8(marker).be(data.size() + 2, 2);
  return b.append(data);
}

std::vector<std::byte> sof(uint16_t width, uint16_t height) {
  Bytes s;
  s.u8(8).be(height, 2).be(width, 2).u8(1).u8(1).u8(0x11).u8(0);
  return s.take();
}

class JpegFixtures : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::fixtures_dir() + "/jpeg";
    if (testing::fixtures_dir().empty() || !std::filesystem::exists(dir_ + "/manifest.json"))
      GTEST_FAIL() << "run tests/fixtures/gen_jpeg.py first (PAYLOADFS_FIXTURES)";
  }
  std::string dir_;
};

TEST_F(JpegFixtures, SegmentsMatchExiv2AndSizeMatchesPillow) {
  const Json manifest = testing::read_fixture_json(dir_ + "/manifest.json");
  ASSERT_EQ(manifest.size(), 4u);
  for (const auto& entry : manifest) {
    const std::string name = entry.get<std::string>();
    SCOPED_TRACE(name);
    const auto file = testing::read_file(dir_ + "/" + name);
    const Json exiv2 = testing::read_fixture_json(dir_ + "/" + name + ".exiv2.json");
    const Json pil = testing::read_fixture_json(dir_ + "/" + name + ".pil.json");
    ASSERT_TRUE(jpeg().detect(file, file.size()));
    const Layout layout = testing::parse_bytes(jpeg(), file);
    EXPECT_TRUE(layout.errors.empty()) << testing::errors_of(layout);
    ASSERT_GE(layout.slices.size(), exiv2.size());
    for (size_t i = 1; i < exiv2.size(); ++i) {  // exiv2's row 0 is SOI; it stops at SOS
      const Slice& s = layout.slices[i - 1];
      EXPECT_EQ(s.name, exiv2[i]["name"]);
      EXPECT_EQ(s.attributes["marker"], exiv2[i]["marker"]);
      EXPECT_EQ(s.attributes["marker_offset"], exiv2[i]["address"]);
      EXPECT_EQ(s.range.offset, exiv2[i]["address"].get<uint64_t>() + 4);
      if (!exiv2[i]["length"].is_null()) {
        EXPECT_EQ(s.attributes["segment_length"], exiv2[i]["length"]);
      }
    }
    EXPECT_EQ(layout.header["width"], pil["width"]);
    EXPECT_EQ(layout.header["height"], pil["height"]);
    EXPECT_EQ(layout.header["components"], pil["mode"] == "L" ? 1 : 3);
    EXPECT_EQ(layout.header["progressive"], pil["progressive"]);
    uint64_t scans = 0;
    for (const auto& s : layout.slices) scans += s.name == "scan" ? 1 : 0;
    EXPECT_EQ(layout.header["scan_count"], scans);
    EXPECT_GE(scans, pil["progressive"].get<bool>() ? 2u : 1u);
    EXPECT_EQ(layout.header["eoi_offset"], file.size() - 2);
  }
}

TEST_F(JpegFixtures, ExifTagsMatchExiftool) {
  for (const char* name : {"exif_le.jpg", "exif_be.jpg", "progressive.jpg"}) {
    SCOPED_TRACE(name);
    const auto file = testing::read_file(dir_ + "/" + name);
    const Json tool = testing::read_fixture_json(dir_ + "/" + name + ".exiftool.json");
    const Layout layout = testing::parse_bytes(jpeg(), file);
    const Json& exif = layout.header["exif"];
    for (const char* tag : {"Make", "Model", "Orientation", "Software", "DateTimeOriginal",
                            "ExposureTime", "FNumber", "XResolution", "GPSLatitudeRef"})
      EXPECT_EQ(exif[tag], tool[tag]) << tag;
    EXPECT_EQ(exif["ISOSpeedRatings"], tool["ISO"]);
    EXPECT_EQ(layout.header["exif_byte_order"], tool["ExifByteOrder"]);
    const Json& lat = exif["GPSLatitude"];
    const double degrees =
        lat[0].get<double>() + lat[1].get<double>() / 60 + lat[2].get<double>() / 3600;
    EXPECT_NEAR(degrees, tool["GPSLatitude"].get<double>(), 1e-9);
  }
}

TEST_F(JpegFixtures, MalformedCopiesGiveErrors) {
  const Json manifest = testing::read_fixture_json(dir_ + "/malformed/manifest.json");
  ASSERT_GE(manifest.size(), 6u);
  for (const auto& entry : manifest) {
    const std::string name = entry["file"];
    SCOPED_TRACE(name);
    const auto file = testing::read_file(dir_ + "/malformed/" + name);
    EXPECT_TRUE(jpeg().detect(file, file.size()));
    const Layout layout = testing::parse_bytes(jpeg(), file);
    EXPECT_FALSE(layout.errors.empty());
    testing::expect_in_bounds(layout, file.size());
  }
}

TEST_F(JpegFixtures, MutatedFixturesStayInBounds) {
  std::vector<std::vector<std::byte>> seeds;
  for (const auto& entry : testing::read_fixture_json(dir_ + "/manifest.json"))
    seeds.push_back(testing::read_file(dir_ + "/" + entry.get<std::string>()));
  testing::mutate_and_parse(jpeg(), seeds, 19, 300);
}

TEST(JpegHandBuilt, ScanEndsAtTheFirstRealMarker) {
  Bytes b;
  b.u8(0xFF).u8(0xD8);
  segment(b, 0xC0, sof(8, 8));
  segment(b, 0xDA, std::vector<std::byte>(8));
  const size_t scan_start = b.size();
  b.u8(1).u8(0xFF).u8(0x00).u8(2).u8(0xFF).u8(0xD3).u8(3);  // stuffed byte, RST3
  const size_t scan_end = b.size();
  b.u8(0xFF).u8(0xFF).u8(0xFF).u8(0xD9);  // fill bytes, EOI
  b.raw("trailer");
  const Layout layout = testing::parse_bytes(jpeg(), b.data());
  EXPECT_TRUE(layout.errors.empty()) << testing::errors_of(layout);
  ASSERT_EQ(layout.slices.size(), 3u);
  const Slice& scan = layout.slices[2];
  EXPECT_EQ(scan.name, "scan");
  EXPECT_FALSE(scan.stored);
  EXPECT_EQ(scan.range.offset, scan_start);
  EXPECT_EQ(scan.range.length, scan_end - scan_start);
  EXPECT_EQ(scan.attributes["restart_markers"], 1);
  EXPECT_EQ(layout.header["trailing_bytes"], 7);
  EXPECT_EQ(layout.header["width"], 8);
}

TEST(JpegHandBuilt, ExifLoopsAndBadOffsetsGiveErrors) {
  // Big-endian TIFF: IFD0 at 8 with Make (inline "Ab\0") and an Exif pointer back to 8;
  // IFD1 (the next pointer) also 8.
  Bytes tiff;
  tiff.raw("MM").be(42, 2).be(8, 4).be(3, 2);
  tiff.be(0x010F, 2).be(2, 2).be(3, 4).raw("Ab").u8(0).u8(0);
  tiff.be(0x8769, 2).be(4, 2).be(1, 4).be(8, 4);
  tiff.be(0x0110, 2).be(2, 2).be(100, 4).be(5000, 4);  // value past the end
  tiff.be(8, 4);
  Bytes app1;
  app1.raw(std::string("Exif\0\0", 6)).append(tiff.data());
  Bytes b;
  b.u8(0xFF).u8(0xD8);
  segment(b, 0xE1, app1.data());
  segment(b, 0xC0, sof(4, 2));
  b.u8(0xFF).u8(0xD9);
  const Layout layout = testing::parse_bytes(jpeg(), b.data());
  EXPECT_TRUE(has_error(layout, "loops back"));
  EXPECT_TRUE(has_error(layout, "outside the EXIF data"));
  EXPECT_EQ(layout.header["exif"]["Make"], "Ab");
  EXPECT_EQ(layout.header["exif_byte_order"], "MM");
  EXPECT_FALSE(layout.header["exif"].contains("Model"));
}

TEST(JpegHandBuilt, CutAndOverlongSegments) {
  Bytes b;
  b.u8(0xFF).u8(0xD8);
  segment(b, 0xDB, std::vector<std::byte>(65));
  segment(b, 0xDB, std::vector<std::byte>(65));
  Bytes past = b;
  past.u8(0xFF).u8(0xC0).be(300, 2).raw("short");
  const Layout a = testing::parse_bytes(jpeg(), past.data());
  EXPECT_TRUE(has_error(a, "runs past the end"));
  ASSERT_EQ(a.slices.size(), 2u);
  EXPECT_EQ(a.slices[0].name, "DQT");
  EXPECT_EQ(a.slices[1].name, "DQT");  // raw/DQT~1
  Bytes cut = b;
  cut.u8(0xFF).u8(0xC4).u8(0);
  EXPECT_TRUE(has_error(testing::parse_bytes(jpeg(), cut.data()), "cut inside its length"));
  Bytes tiny = b;
  tiny.u8(0xFF).u8(0xFE).be(1, 2);
  EXPECT_TRUE(has_error(testing::parse_bytes(jpeg(), tiny.data()), "less than 2"));
  EXPECT_TRUE(has_error(testing::parse_bytes(jpeg(), b.data()), "without an EOI"));
  EXPECT_FALSE(jpeg().detect(testing::to_bytes("\xFF\xD8"), 2));
}

}  // namespace
}  // namespace payloadfs

// dicom parser tests: files written by pydicom (tests/fixtures/gen_dicom.py) in every
// uncompressed transfer syntax and encapsulated, their broken copies, and hand-built files with
// an element length past the end, a sequence nesting bomb, unknown and deflated transfer
// syntaxes, and a bounded mutation run.

#include <filesystem>
#include <string>
#include <vector>

#include "core/formats/builtin.hpp"
#include "unit/test_support.hpp"

namespace payloadfs {
namespace {

using testing::Bytes;
using testing::has_error;

const Format& dicom() {
  static const auto format = formats::make_dicom();
  return *format;
}

// Explicit VR little endian element with a 16-bit length.
Bytes& element(Bytes& b, uint16_t group, uint16_t elem, std::string_view vr,
               std::string_view value) {
  b.le(group, 2).le(elem, 2).raw(vr).le(value.size(), 2).raw(value);
  return b;
}

// Preamble, DICM and a meta group naming `syntax` (even length, NUL-padded).
Bytes file_with_syntax(std::string syntax) {
  if (syntax.size() % 2 != 0) syntax.push_back('\0');
  Bytes b;
  b.zeros(128).raw("DICM");
  element(b, 0x0002, 0x0010, "UI", syntax);
  return b;
}

class DicomFixtures : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::fixtures_dir() + "/dicom";
    if (testing::fixtures_dir().empty() || !std::filesystem::exists(dir_ + "/manifest.json"))
      GTEST_FAIL() << "run tests/fixtures/gen_dicom.py first (PAYLOADFS_FIXTURES)";
  }
  std::string dir_;
};

TEST_F(DicomFixtures, PydicomFilesParse) {
  const Json manifest = testing::read_fixture_json(dir_ + "/manifest.json");
  ASSERT_GE(manifest.size(), 6u);
  for (const auto& entry : manifest) {
    const std::string name = entry.get<std::string>();
    SCOPED_TRACE(name);
    const auto file = testing::read_file(dir_ + "/" + name);
    ASSERT_TRUE(dicom().detect(file, file.size()));
    const Layout layout = testing::parse_bytes(dicom(), file);
    EXPECT_TRUE(layout.errors.empty()) << testing::errors_of(layout);
    EXPECT_EQ(layout.magic, (ByteRange{128, 4}));
    const Json& h = layout.header;
    EXPECT_FALSE(h["transfer_syntax"]["name"].is_null());
    EXPECT_EQ(h["file_meta"][0]["tag"], "(0002,0000)");
    EXPECT_FALSE(h["elements"].empty());
    EXPECT_EQ(h["elements"].back()["tag"], "(7FE0,0010)");
    if (h["encapsulated"] == true) {
      ASSERT_EQ(layout.slices.size(), 3u);
      for (size_t i = 0; i < 3; ++i) {
        EXPECT_EQ(layout.slices[i].name, "pixel_data/" + std::to_string(i));
        EXPECT_FALSE(layout.slices[i].stored);
        const auto bytes = testing::slice_bytes(file, layout.slices[i]);
        EXPECT_EQ(bytes.front(), std::byte{0xFF});  // the fragments open with a JPEG SOI
      }
      continue;
    }
    ASSERT_EQ(layout.slices.size(), 1u);
    const Slice& pixels = layout.slices[0];
    EXPECT_EQ(pixels.name, "pixel_data");
    uint64_t count = 1;
    for (const auto& d : pixels.attributes["shape"]) count *= d.get<uint64_t>();
    const std::string dtype = pixels.attributes["dtype"];
    EXPECT_EQ(count * static_cast<uint64_t>(dtype.back() - '0'), pixels.range.length);
    EXPECT_EQ(dtype.front(), name.find("_be") != std::string::npos ? '>' : '<');
  }
}

TEST_F(DicomFixtures, SequencesAreWalked) {
  for (const char* name : {"ct_explicit_le.dcm", "ct_implicit_le.dcm", "ct_explicit_be.dcm"}) {
    SCOPED_TRACE(name);
    const auto file = testing::read_file(dir_ + "/" + name);
    const Layout layout = testing::parse_bytes(dicom(), file);
    const Json* referenced = nullptr;
    for (const auto& e : layout.header["elements"])
      if (e["keyword"] == "ReferencedImageSequence") referenced = &e;
    ASSERT_NE(referenced, nullptr);
    EXPECT_EQ((*referenced)["vr"], "SQ");
    ASSERT_EQ((*referenced)["items"].size(), 2u);
    const Json& first = (*referenced)["items"][0];
    EXPECT_EQ(first[0]["keyword"], "ReferencedSOPClassUID");
    EXPECT_EQ(first[0]["value"], "1.2.840.10008.5.1.4.1.1.2");
    EXPECT_EQ(first[2]["items"][0][0]["value"], "NESTED");
    EXPECT_TRUE((*referenced)["items"][1].empty());
    EXPECT_EQ(layout.header["modality"], "CT");
  }
}

TEST_F(DicomFixtures, MalformedCopiesGiveErrors) {
  const Json manifest = testing::read_fixture_json(dir_ + "/malformed/manifest.json");
  ASSERT_GE(manifest.size(), 5u);
  for (const auto& [name, what] : manifest.items()) {
    SCOPED_TRACE(name);
    const auto file = testing::read_file(dir_ + "/malformed/" + name);
    EXPECT_TRUE(dicom().detect(file, file.size()));
    const Layout layout = testing::parse_bytes(dicom(), file);
    EXPECT_FALSE(layout.errors.empty()) << what;
    testing::expect_in_bounds(layout, file.size());
  }
}

TEST_F(DicomFixtures, MutatedFixturesStayInBounds) {
  std::vector<std::vector<std::byte>> seeds;
  for (const auto& entry : testing::read_fixture_json(dir_ + "/manifest.json"))
    seeds.push_back(testing::read_file(dir_ + "/" + entry.get<std::string>()));
  testing::mutate_and_parse(dicom(), seeds, 31, 1000);
}

TEST(DicomHandBuilt, ElementLengthPastTheEnd) {
  Bytes b = file_with_syntax("1.2.840.10008.1.2.1");
  element(b, 0x0008, 0x0060, "CS", "MR");
  b.le(0x0010, 2).le(0x0010, 2).raw("PN").le(0xFFF0, 2).raw("Doe");
  const Layout layout = testing::parse_bytes(dicom(), b.data());
  EXPECT_TRUE(has_error(layout, "runs past the end")) << testing::errors_of(layout);
  EXPECT_EQ(layout.header["modality"], "MR");
}

TEST(DicomHandBuilt, SequenceNestingBomb) {
  Bytes b = file_with_syntax("1.2.840.10008.1.2.1");
  for (int i = 0; i < 100000; ++i) {
    b.le(0x0008, 2).le(0x1140, 2).raw("SQ").le(0, 2).le(0xFFFFFFFF, 4);
    b.le(0xFFFE, 2).le(0xE000, 2).le(0xFFFFFFFF, 4);
  }
  const Layout layout = testing::parse_bytes(dicom(), b.data());
  EXPECT_TRUE(has_error(layout, "nest deeper")) << testing::errors_of(layout);
  (void)layout.header.dump();
}

TEST(DicomHandBuilt, ManyItemsAreBounded) {
  Bytes b = file_with_syntax("1.2.840.10008.1.2");  // implicit VR: (0008,1140) is SQ
  b.le(0x0008, 2).le(0x1140, 2).le(0xFFFFFFFF, 4);
  for (int i = 0; i < 70000; ++i) b.le(0xFFFE, 2).le(0xE000, 2).le(0, 4);
  b.le(0xFFFE, 2).le(0xE0DD, 2).le(0, 4);
  b.le(0x7FE0, 2).le(0x0010, 2).le(4, 4).raw("abcd");  // still found after them
  const Layout layout = testing::parse_bytes(dicom(), b.data());
  EXPECT_TRUE(has_error(layout, "more than 16384")) << testing::errors_of(layout);
  EXPECT_EQ(layout.errors.size(), 1u) << testing::errors_of(layout);
  ASSERT_EQ(layout.slices.size(), 1u);
  EXPECT_EQ(layout.slices[0].name, "pixel_data");
  EXPECT_EQ(layout.slices[0].range.length, 4u);
  EXPECT_EQ(layout.header["elements"].size(), 1u);  // the sequence, with its first items
  // 16384 listed: the meta group's element, the sequence and 16382 of its items.
  EXPECT_EQ(layout.header["elements"][0]["items"].size(), 16382u);
}

TEST(DicomHandBuilt, UnknownAndDeflatedTransferSyntaxes) {
  Bytes unknown = file_with_syntax("1.2.3.4");
  element(unknown, 0x0008, 0x0060, "CS", "MR");
  const Layout lu = testing::parse_bytes(dicom(), unknown.data());
  EXPECT_TRUE(has_error(lu, "unknown transfer syntax 1.2.3.4"));
  EXPECT_FALSE(lu.header.contains("elements"));
  Bytes deflated = file_with_syntax("1.2.840.10008.1.2.1.99");
  EXPECT_TRUE(has_error(testing::parse_bytes(dicom(), deflated.data()), "deflated"));
  Bytes none;
  none.zeros(128).raw("DICM");
  EXPECT_TRUE(has_error(testing::parse_bytes(dicom(), none.data()), "no Transfer Syntax"));
}

TEST(DicomHandBuilt, ImplicitBigEndianAndValues) {
  Bytes b = file_with_syntax("1.2.840.10008.1.2.2");
  b.be(0x0028, 2).be(0x0010, 2).raw("US").be(2, 2).be(3, 2);
  b.be(0x0028, 2).be(0x0011, 2).raw("US").be(2, 2).be(2, 2);
  b.be(0x0028, 2).be(0x0100, 2).raw("US").be(2, 2).be(16, 2);
  b.be(0x0028, 2).be(0x0103, 2).raw("US").be(2, 2).be(1, 2);
  b.be(0x0028, 2).be(0x0009, 2).raw("AT").be(4, 2).be(0x0018, 2).be(0x1063, 2);
  b.be(0x7FE0, 2).be(0x0010, 2).raw("OW").zeros(2).be(12, 4).zeros(12);
  const Layout layout = testing::parse_bytes(dicom(), b.data());
  ASSERT_TRUE(layout.errors.empty()) << testing::errors_of(layout);
  EXPECT_EQ(layout.header["rows"], 3);
  EXPECT_EQ(layout.header["elements"][4]["value"], "(0018,1063)");
  ASSERT_EQ(layout.slices.size(), 1u);
  EXPECT_EQ(layout.slices[0].attributes["dtype"], ">i2");
  EXPECT_EQ(layout.slices[0].attributes["shape"], (Json{3, 2}));
  EXPECT_FALSE(dicom().detect(testing::to_bytes("DICM at 0 is not DICOM"), 22));
}

}  // namespace
}  // namespace payloadfs

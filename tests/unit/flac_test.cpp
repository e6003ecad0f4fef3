// flac parser tests: files from the `flac` encoder (tests/fixtures/gen_flac.py) against
// `metaflac --list`, broken copies of them, and hand-built streams (APPLICATION, an ID3v2 tag,
// bad lengths, a wrong first block), with a bounded mutation run.

#include <filesystem>
#include <string>
#include <vector>

#include "core/formats/builtin.hpp"
#include "unit/test_support.hpp"

namespace payloadfs {
namespace {

using testing::Bytes;
using testing::has_error;

const Format& flac() {
  static const auto format = formats::make_flac();
  return *format;
}

// A block header: last flag, type, 24-bit length.
Bytes& block(Bytes& b, uint8_t type, bool last, const std::vector<std::byte>& data) {
  b.u8((last ? 0x80 : 0) | type).be(data.size(), 3);
  return b.append(data);
}

std::vector<std::byte> streaminfo() {
  Bytes s;
  s.be(4096, 2).be(4096, 2).be(14, 3).be(9000, 3);
  // 44100 Hz, 2 channels, 16 bits, 1000 samples
  s.be((uint64_t{44100} << 44) | (uint64_t{1} << 41) | (uint64_t{15} << 36) | 1000, 8);
  for (int i = 0; i < 16; ++i) s.u8(i);
  return s.take();
}

class FlacFixtures : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::fixtures_dir() + "/flac";
    if (testing::fixtures_dir().empty() || !std::filesystem::exists(dir_ + "/manifest.json"))
      GTEST_FAIL() << "run tests/fixtures/gen_flac.py first (PAYLOADFS_FIXTURES)";
  }
  std::string dir_;
};

// metaflac's "type: 4 (VORBIS_COMMENT)" -> VORBIS_COMMENT.
std::string metaflac_type(const Json& block) {
  const std::string text = block["type"];
  return text.substr(text.find('(') + 1, text.find(')') - text.find('(') - 1);
}

TEST_F(FlacFixtures, BlocksMatchMetaflac) {
  const Json manifest = testing::read_fixture_json(dir_ + "/manifest.json");
  ASSERT_EQ(manifest.size(), 3u);
  for (const auto& entry : manifest) {
    const std::string name = entry.get<std::string>();
    SCOPED_TRACE(name);
    const auto file = testing::read_file(dir_ + "/" + name);
    const Json listing = testing::read_fixture_json(dir_ + "/" + name + ".metaflac.json");
    ASSERT_TRUE(flac().detect(file, file.size()));
    const Layout layout = testing::parse_bytes(flac(), file);
    EXPECT_TRUE(layout.errors.empty()) << testing::errors_of(layout);
    ASSERT_EQ(layout.slices.size(), listing.size() + 1);
    for (size_t i = 0; i < listing.size(); ++i) {
      EXPECT_EQ(layout.slices[i].name, metaflac_type(listing[i]));
      EXPECT_EQ(std::to_string(layout.slices[i].range.length), listing[i]["length"]);
    }
    const Json& h = layout.header;
    const Json& info = listing[0];
    EXPECT_EQ(std::to_string(h["min_block_size"].get<int>()) + " samples",
              info["minimum blocksize"]);
    EXPECT_EQ(std::to_string(h["max_frame_size"].get<int>()) + " bytes", info["maximum framesize"]);
    EXPECT_EQ(std::to_string(h["sample_rate"].get<int>()) + " Hz", info["sample_rate"]);
    EXPECT_EQ(std::to_string(h["channels"].get<int>()), info["channels"]);
    EXPECT_EQ(std::to_string(h["bits_per_sample"].get<int>()), info["bits-per-sample"]);
    EXPECT_EQ(std::to_string(h["total_samples"].get<uint64_t>()), info["total samples"]);
    EXPECT_EQ(h["md5"], info["MD5 signature"]);
    const Slice& frames = layout.slices.back();
    EXPECT_EQ(frames.name, "frames");
    EXPECT_FALSE(frames.stored);
    EXPECT_EQ(frames.range.offset + frames.range.length, file.size());
    EXPECT_EQ(std::to_integer<int>(file[frames.range.offset]), 0xFF);
  }
}

TEST_F(FlacFixtures, TagsAndPicturesOfTheTaggedFile) {
  const auto file = testing::read_file(dir_ + "/tagged.flac");
  const Layout layout = testing::parse_bytes(flac(), file);
  const Json& h = layout.header;
  EXPECT_EQ(h["comments"]["ARTIST"], Json::array({"Alice", "Bob"}));
  EXPECT_EQ(h["comments"]["TITLE"], "Tone");
  EXPECT_EQ(h["comments"]["ALBUM"], "Fixtures \u00e9t\u00e9");
  ASSERT_EQ(h["pictures"].size(), 2u);
  EXPECT_EQ(h["pictures"][0]["mime"], "image/png");
  EXPECT_EQ(h["pictures"][0]["width"], 32);
  EXPECT_EQ(h["pictures"][1]["description"], "Back");
  const uint64_t png = h["pictures"][0]["data_offset"];
  EXPECT_EQ(std::to_integer<int>(file[png + 1]), 'P');
  const auto id3 = testing::read_file(dir_ + "/id3.flac");
  const Layout behind = testing::parse_bytes(flac(), id3);
  ASSERT_TRUE(behind.magic.has_value());
  EXPECT_EQ(behind.magic->offset, id3.size() - file.size());
  EXPECT_EQ(behind.header["id3v2_size"], id3.size() - file.size());
}

TEST_F(FlacFixtures, MalformedCopiesGiveErrors) {
  const Json manifest = testing::read_fixture_json(dir_ + "/malformed/manifest.json");
  ASSERT_GE(manifest.size(), 5u);
  for (const auto& entry : manifest) {
    const std::string name = entry["file"];
    SCOPED_TRACE(name);
    const auto file = testing::read_file(dir_ + "/malformed/" + name);
    EXPECT_TRUE(flac().detect(file, file.size()));
    const Layout layout = testing::parse_bytes(flac(), file);
    EXPECT_FALSE(layout.errors.empty());
    testing::expect_in_bounds(layout, file.size());
  }
}

TEST_F(FlacFixtures, MutatedFixturesStayInBounds) {
  std::vector<std::vector<std::byte>> seeds;
  for (const auto& entry : testing::read_fixture_json(dir_ + "/manifest.json"))
    seeds.push_back(testing::read_file(dir_ + "/" + entry.get<std::string>()));
  testing::mutate_and_parse(flac(), seeds, 17, 300);
}

TEST(FlacHandBuilt, ApplicationAndUnknownBlocks) {
  Bytes b;
  b.raw("fLaC");
  block(b, 0, false, streaminfo());
  Bytes app;
  app.raw("abcd").raw("payload");
  block(b, 2, false, app.data());
  block(b, 1, false, std::vector<std::byte>(10));
  block(b, 1, false, std::vector<std::byte>(3));
  block(b, 9, true, std::vector<std::byte>(2));
  b.u8(0xFF).u8(0xF8).raw("frame bytes");
  const Layout layout = testing::parse_bytes(flac(), b.data());
  EXPECT_TRUE(layout.errors.empty()) << testing::errors_of(layout);
  std::vector<std::string> names;
  for (const auto& s : layout.slices) names.push_back(s.name);
  EXPECT_EQ(names, (std::vector<std::string>{"STREAMINFO", "APPLICATION", "PADDING", "PADDING",
                                             "UNKNOWN_9", "frames"}));
  EXPECT_EQ(layout.slices[1].attributes["application_id"], "61626364");
  EXPECT_EQ(layout.slices[5].range.length, 13u);
  EXPECT_EQ(layout.header["sample_rate"], 44100);
  EXPECT_EQ(layout.header["total_samples"], 1000);
  EXPECT_EQ(layout.header["md5"], "000102030405060708090a0b0c0d0e0f");
}

TEST(FlacHandBuilt, BadBlocksGiveErrors) {
  Bytes wrong_first;
  wrong_first.raw("fLaC");
  block(wrong_first, 1, true, std::vector<std::byte>(4));
  const Layout a = testing::parse_bytes(flac(), wrong_first.data());
  EXPECT_TRUE(has_error(a, "the first block is not STREAMINFO"));
  EXPECT_TRUE(has_error(a, "no STREAMINFO block"));

  Bytes bad_length;
  bad_length.raw("fLaC").u8(0x80).be(0xFFFFFF, 3).append(streaminfo());
  const Layout b = testing::parse_bytes(flac(), bad_length.data());
  EXPECT_TRUE(has_error(b, "runs past the end"));
  EXPECT_TRUE(b.slices.empty());

  Bytes bad_comment;
  bad_comment.raw("fLaC");
  block(bad_comment, 0, false, streaminfo());
  Bytes vc;
  vc.le(3, 4).raw("abc").le(2, 4).le(0xFFFFFFF0, 4);  // a comment length past the block
  block(bad_comment, 4, true, vc.data());
  bad_comment.raw("not a frame");
  const Layout c = testing::parse_bytes(flac(), bad_comment.data());
  EXPECT_TRUE(has_error(c, "Vorbis comment 0 is cut or oversized"));
  EXPECT_TRUE(has_error(c, "frame sync code"));
  EXPECT_EQ(c.header["vendor"], "abc");

  Bytes no_sync = bad_comment;
  no_sync.data().resize(6);
  EXPECT_TRUE(has_error(testing::parse_bytes(flac(), no_sync.data()), "cut inside"));
}

TEST(FlacHandBuilt, DetectionNeedsTheSignature) {
  EXPECT_FALSE(flac().detect(testing::to_bytes("fLa"), 3));
  EXPECT_FALSE(
      flac().detect(testing::to_bytes(std::string("ID3\x04\0\0\0\0\0\x02xxRIFF", 16)), 16));
  EXPECT_TRUE(flac().detect(testing::to_bytes(std::string("ID3\x04\0\0\0\0\0\x02xxfLaC", 16)), 16));
  EXPECT_FALSE(
      flac().detect(testing::to_bytes(std::string("ID3\x04\0\0\0\0\x80\x02xxfLaC", 16)), 16));
}

}  // namespace
}  // namespace payloadfs

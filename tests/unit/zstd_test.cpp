// zstd parser tests: files from the zstd command (tests/fixtures/gen_zstd.py) against what the
// generator knows it wrote, hand-built frames (RFC 8878) with every header field, truncation at
// every byte, malformed blocks, the frame limit, and a bounded mutation run.

#include <filesystem>
#include <string>
#include <vector>

#include "core/formats/builtin.hpp"
#include "unit/test_support.hpp"

namespace payloadfs {
namespace {

using testing::Bytes;
using testing::has_error;

const Format& zstd() {
  static const auto format = formats::make_zstd();
  return *format;
}

// A frame of hand-built blocks: a raw block "hello", an RLE block of 1000 'x' and an empty
// last raw block; descriptor and fields as given.
std::vector<std::byte> frame(uint8_t descriptor, uint8_t window, uint32_t dict, uint64_t fcs,
                             bool checksum) {
  Bytes b;
  b.le(0xFD2FB528, 4).u8(descriptor | (checksum ? 0x04 : 0));
  if ((descriptor & 0x20) == 0) b.u8(window);
  static const int kDictBytes[4] = {0, 1, 2, 4};
  b.le(dict, kDictBytes[descriptor & 3]);
  const int flag = descriptor >> 6;
  const int fcs_bytes = flag == 0 ? ((descriptor & 0x20) != 0 ? 1 : 0) : (1 << flag);
  b.le(fcs_bytes == 2 ? fcs - 256 : fcs, fcs_bytes);
  b.le((5u << 3) | (0u << 1), 3).raw("hello");
  b.le((1000u << 3) | (1u << 1), 3).u8('x');
  b.le((0u << 3) | 1u, 3);
  if (checksum) b.le(0x12345678, 4);
  return b.take();
}

std::vector<std::byte> skippable(uint8_t variant, std::string_view data) {
  Bytes b;
  b.le(0x184D2A50u | variant, 4).le(data.size(), 4).raw(data);
  return b.take();
}

std::vector<std::byte> concat(const std::vector<std::vector<std::byte>>& parts) {
  std::vector<std::byte> out;
  for (const auto& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

class ZstdFixtures : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::fixtures_dir() + "/zstd";
    if (testing::fixtures_dir().empty() || !std::filesystem::exists(dir_ + "/manifest.json"))
      GTEST_FAIL() << "run tests/fixtures/gen_zstd.py first (PAYLOADFS_FIXTURES)";
  }
  std::string dir_;
};

// Every fixture: the frames the generator wrote, in order, covering the file exactly.
TEST_F(ZstdFixtures, FramesAreTheZstdOutputsTheGeneratorConcatenated) {
  const Json manifest = testing::read_fixture_json(dir_ + "/manifest.json");
  ASSERT_GE(manifest.size(), 5u);
  size_t frames_seen = 0;
  for (const auto& entry : manifest) {
    const std::string name = entry.get<std::string>();
    SCOPED_TRACE(name);
    const auto file = testing::read_file(dir_ + "/" + name);
    const Json expected = testing::read_fixture_json(dir_ + "/" + name + ".expected.json");
    const Layout layout = testing::parse_bytes(zstd(), file);
    EXPECT_TRUE(layout.errors.empty()) << testing::errors_of(layout);
    ASSERT_EQ(layout.slices.size(), expected["frames"].size());
    uint64_t at = 0, data_frames = 0, skips = 0;
    for (size_t i = 0; i < layout.slices.size(); ++i) {
      const Slice& s = layout.slices[i];
      const Json& e = expected["frames"][i];
      EXPECT_EQ(s.range.offset, at) << s.name;
      at += s.range.length;
      if (e["kind"] == "frame") {
        EXPECT_EQ(s.name, "frame/" + std::to_string(data_frames++));
        const auto part = testing::read_file(dir_ + "/" + name + ".parts/" +
                                             std::to_string(e["part"].get<int>()));
        if (s.attributes.contains("content_size")) {
          EXPECT_EQ(s.attributes["content_size"], part.size()) << s.name;
        }
        EXPECT_EQ(s.attributes["complete"], true);
        if (e["dictionary"] == true && name == "dictionary.zst" && i < 2) {
          EXPECT_NE(s.attributes["dictionary_id"], 0) << s.name;
        }
      } else {
        EXPECT_EQ(s.name, "skippable/" + std::to_string(skips++));
        const std::string hex = e["user_data"];
        EXPECT_EQ(s.range.length, 8 + hex.size() / 2);
        EXPECT_EQ(s.attributes["magic_variant"], e["variant"]);
      }
      ++frames_seen;
    }
    EXPECT_EQ(at, file.size());
    EXPECT_EQ(layout.header["frames"], data_frames);
    EXPECT_EQ(layout.header["skippable_frames"], skips);
  }
  EXPECT_GE(frames_seen, 14u);
}

// The real files, mutated: slices stay inside the file, the header is valid UTF-8 JSON.
TEST_F(ZstdFixtures, MutatedFixturesStayInBounds) {
  std::vector<std::vector<std::byte>> seeds;
  for (const auto& entry : testing::read_fixture_json(dir_ + "/manifest.json"))
    seeds.push_back(testing::read_file(dir_ + "/" + entry.get<std::string>()));
  ASSERT_FALSE(seeds.empty());
  testing::mutate_and_parse(zstd(), seeds, 11, 1500);
  std::mt19937 rng(11);
  for (int i = 0; i < 300; ++i) {
    auto data = seeds[static_cast<size_t>(i) % seeds.size()];
    if (data.empty()) continue;
    data[rng() % data.size()] = static_cast<std::byte>(rng());
    const Layout layout = testing::parse_bytes(zstd(), data);
    (void)layout.header.dump(-1, ' ', false, Json::error_handler_t::strict);
  }
}

TEST_F(ZstdFixtures, MalformedCopiesGiveErrors) {
  const Json manifest = testing::read_fixture_json(dir_ + "/malformed/manifest.json");
  ASSERT_GE(manifest.size(), 6u);
  for (const auto& entry : manifest) {
    const std::string name = entry["file"];
    SCOPED_TRACE(name);
    const auto file = testing::read_file(dir_ + "/malformed/" + name);
    EXPECT_TRUE(
        zstd().detect(std::span(file).first(std::min<size_t>(file.size(), 4096)), file.size()));
    const Layout layout = testing::parse_bytes(zstd(), file);
    EXPECT_FALSE(layout.errors.empty());
    testing::expect_in_bounds(layout, file.size());
  }
}

TEST(ZstdHandBuilt, EveryHeaderField) {
  // FCS flag 3 (8 bytes), window descriptor 0x5A, 4-byte dictionary ID, checksum.
  const auto a = frame(0xC3, 0x5A, 0xCAFEF00D, 1005, true);
  // Single segment with a 1-byte content size, no window descriptor, 1-byte dictionary ID.
  const auto b = frame(0x21, 0, 7, 200, false);
  // FCS flag 1: 2 bytes holding the size minus 256.
  const auto c = frame(0x40, 0x00, 0, 1005, false);
  const auto file = concat({a, b, c});
  const Layout layout = testing::parse_bytes(zstd(), file);
  ASSERT_TRUE(layout.errors.empty()) << testing::errors_of(layout);
  ASSERT_EQ(layout.slices.size(), 3u);
  const Json& fa = layout.slices[0].attributes;
  EXPECT_EQ(layout.slices[0].range, (ByteRange{0, a.size()}));
  EXPECT_EQ(fa["content_size"], 1005);
  // Exponent 11, mantissa 2: (1 << 21) + 2 * (1 << 18).
  EXPECT_EQ(fa["window_size"], (1u << 21) + 2 * (1u << 18));
  EXPECT_EQ(fa["dictionary_id"], 0xCAFEF00Du);
  EXPECT_EQ(fa["checksum"], true);
  EXPECT_EQ(fa["blocks"], 3);
  const Json& fb = layout.slices[1].attributes;
  EXPECT_EQ(layout.slices[1].range, (ByteRange{a.size(), b.size()}));
  EXPECT_EQ(fb["window_size"], 200);
  EXPECT_EQ(fb["content_size"], 200);
  EXPECT_EQ(fb["dictionary_id"], 7);
  EXPECT_EQ(fb["checksum"], false);
  EXPECT_EQ(fb["single_segment"], true);
  EXPECT_EQ(layout.slices[2].attributes["content_size"], 1005);
  EXPECT_EQ(layout.slices[2].attributes["window_size"], 1024);
  EXPECT_EQ(layout.header["frames"], 3);
  EXPECT_EQ(layout.header["content_size"], 1005 + 200 + 1005);
}

TEST(ZstdHandBuilt, SkippableFramesAreCountedApart) {
  const auto file = concat({skippable(3, "abc"), frame(0x00, 0, 0, 0, false), skippable(15, ""),
                            frame(0x00, 0, 0, 0, true)});
  const Layout layout = testing::parse_bytes(zstd(), file);
  ASSERT_TRUE(layout.errors.empty()) << testing::errors_of(layout);
  ASSERT_EQ(layout.slices.size(), 4u);
  EXPECT_EQ(layout.slices[0].name, "skippable/0");
  EXPECT_EQ(layout.slices[0].range, (ByteRange{0, 11}));
  EXPECT_EQ(layout.slices[0].attributes["magic_variant"], 3);
  EXPECT_EQ(layout.slices[1].name, "frame/0");
  EXPECT_EQ(layout.slices[2].name, "skippable/1");
  EXPECT_EQ(layout.slices[3].name, "frame/1");
  EXPECT_EQ(layout.header["frames"], 2);
  EXPECT_EQ(layout.header["skippable_frames"], 2);
  EXPECT_FALSE(layout.header.contains("content_size"));  // no frame says it
}

TEST(ZstdHandBuilt, TruncatedAtEveryByte) {
  const auto first = frame(0xC3, 0x5A, 9, 1005, true);
  const auto whole = concat({first, skippable(1, "data")});
  for (size_t n = 4; n < whole.size(); ++n) {
    if (n == first.size()) continue;  // one whole frame
    SCOPED_TRACE(n);
    const std::vector<std::byte> cut(whole.begin(), whole.begin() + static_cast<ptrdiff_t>(n));
    const Layout layout = testing::parse_bytes(zstd(), cut);
    EXPECT_FALSE(layout.errors.empty());
    testing::expect_in_bounds(layout, cut.size());
    ASSERT_FALSE(layout.slices.empty());
    // A cut inside the next magic leaves trailing bytes after the first frame.
    const bool in_magic = n > first.size() && n < first.size() + 4;
    EXPECT_EQ(layout.slices.back().range.offset + layout.slices.back().range.length,
              in_magic ? first.size() : n);
  }
}

TEST(ZstdHandBuilt, MalformedBlocksAndHeaders) {
  auto reserved_bit = frame(0x00, 0, 0, 0, false);
  reserved_bit[4] |= std::byte{0x08};
  EXPECT_TRUE(has_error(testing::parse_bytes(zstd(), reserved_bit), "reserved bit"));

  auto reserved_type = frame(0x00, 0, 0, 0, false);
  reserved_type[6] |= std::byte{0x06};  // the first block header's type bits
  EXPECT_TRUE(has_error(testing::parse_bytes(zstd(), reserved_type), "reserved block type"));

  Bytes past;
  past.le(0xFD2FB528, 4).u8(0x00).u8(0x00).le((60000u << 3) | 1u, 3).raw("short");
  const Layout l = testing::parse_bytes(zstd(), past.data());
  EXPECT_TRUE(has_error(l, "truncated frame"));
  ASSERT_EQ(l.slices.size(), 1u);
  EXPECT_EQ(l.slices[0].attributes["complete"], false);
  EXPECT_EQ(l.slices[0].range, (ByteRange{0, past.size()}));

  // A raw block above the 1 KiB window is reported; the frame is still delimited.
  Bytes big;
  big.le(0xFD2FB528, 4).u8(0x00).u8(0x00).le((2000u << 3) | 1u, 3).zeros(2000);
  const Layout lb = testing::parse_bytes(zstd(), big.data());
  EXPECT_TRUE(has_error(lb, "maximum block size"));
  EXPECT_EQ(lb.slices[0].range.length, big.size());

  auto trailing = frame(0x00, 0, 0, 0, false);
  for (char c : std::string("junk")) trailing.push_back(static_cast<std::byte>(c));
  const Layout lt = testing::parse_bytes(zstd(), trailing);
  EXPECT_TRUE(has_error(lt, "not a zstd frame"));
  EXPECT_EQ(lt.header["trailing_bytes"], 4);

  const auto skip_past = skippable(0, "x");
  std::vector<std::byte> cut_skip(skip_past.begin(), skip_past.end() - 1);
  EXPECT_TRUE(has_error(testing::parse_bytes(zstd(), cut_skip), "past the end"));
}

TEST(ZstdHandBuilt, FrameLimit) {
  const auto one = skippable(0, "");
  std::vector<std::byte> file;
  for (int i = 0; i < 65537; ++i) file.insert(file.end(), one.begin(), one.end());
  const Layout layout = testing::parse_bytes(zstd(), file);
  EXPECT_EQ(layout.slices.size(), 65536u);
  EXPECT_TRUE(has_error(layout, "more than 65536 frames"));
}

TEST(ZstdDetect, SignaturesAndSkippableFollowers) {
  EXPECT_TRUE(zstd().detect(frame(0x00, 0, 0, 0, false), 100));
  const auto skip = skippable(2, "ab");
  EXPECT_TRUE(zstd().detect(skip, skip.size()));  // the file is one skippable frame
  EXPECT_TRUE(zstd().detect(concat({skip, frame(0x00, 0, 0, 0, false)}), 100));
  // LZ4 shares the skippable magic: an LZ4 frame (04 22 4D 18) after it is not zstd.
  auto lz4 = skip;
  for (int b : {0x04, 0x22, 0x4D, 0x18}) lz4.push_back(static_cast<std::byte>(b));
  EXPECT_FALSE(zstd().detect(lz4, lz4.size() + 100));
  EXPECT_FALSE(zstd().detect(skip, 4));  // its size runs past the end
  EXPECT_FALSE(zstd().detect(testing::to_bytes("\x28\xb5\x2f"), 3));
  EXPECT_FALSE(zstd().detect(testing::to_bytes("\x22\xb5\x2f\xfd"), 100));  // legacy v0.2
}

TEST(ZstdRobustness, MutatedFramesStayInBounds) {
  testing::mutate_and_parse(
      zstd(),
      {concat({frame(0xC3, 0x5A, 9, 1005, true), skippable(1, "data"), frame(0x21, 0, 7, 200, 0)})},
      20260501, 3000);
}

}  // namespace
}  // namespace payloadfs

// xz parser tests: files from the xz command (tests/fixtures/gen_xz.py) against
// `xz -lvv --robot`'s listing of them, hand-built streams (.xz format 1.2.0) with every check
// size, stream padding, broken CRC32s, bad varints, an index that disagrees with the blocks, a
// backward size pointing outside the file, the block limit, and a bounded mutation run.

#include <zlib.h>

#include <filesystem>
#include <string>
#include <vector>

#include "core/formats/builtin.hpp"
#include "unit/test_support.hpp"

namespace payloadfs {
namespace {

using testing::Bytes;
using testing::has_error;

const Format& xz() {
  static const auto format = formats::make_xz();
  return *format;
}

uint32_t crc(const std::vector<std::byte>& data, size_t from, size_t length) {
  return static_cast<uint32_t>(
      crc32(0, reinterpret_cast<const Bytef*>(data.data() + from), static_cast<uInt>(length)));
}

uint64_t check_size(uint8_t check) {
  return check == 0 ? 0 : check == 1 ? 4 : check == 4 ? 8 : 32;
}

struct Built {
  std::vector<std::byte> bytes;
  std::vector<ByteRange> blocks;  // in the file
  size_t index_offset = 0;
};

// One stream of blocks holding `contents` as LZMA2 uncompressed chunks, with check `check`
// (its value is not verified by the parser, so it is zeros).
Built stream(const std::vector<std::string>& contents, uint8_t check) {
  Built out;
  Bytes b;
  b.raw(std::string_view("\xFD"
                         "7zXZ\0",
                         6))
      .u8(0)
      .u8(check);
  b.le(crc(b.data(), 6, 2), 4);
  std::vector<std::pair<uint64_t, uint64_t>> records;
  for (const auto& c : contents) {
    const size_t start = b.size();
    b.u8(2).u8(0).u8(0x21).u8(1).u8(8).zeros(3);  // LZMA2, dictionary 8 MiB props
    b.le(crc(b.data(), start, 8), 4);
    b.u8(1).be(c.size() - 1, 2).raw(c).u8(0);
    const uint64_t unpadded = b.size() - start + check_size(check);
    b.pad_to(4).zeros(check_size(check));
    records.emplace_back(unpadded, c.size());
    out.blocks.push_back({start, b.size() - start});
  }
  out.index_offset = b.size();
  b.u8(0).uleb(records.size());
  for (const auto& [unpadded, size] : records) b.uleb(unpadded).uleb(size);
  b.pad_to(4);
  b.le(crc(b.data(), out.index_offset, b.size() - out.index_offset), 4);
  const uint64_t backward = (b.size() - out.index_offset) / 4 - 1;
  const size_t footer = b.size();
  b.le(0, 4).le(backward, 4).u8(0).u8(check).raw("YZ");
  auto bytes = b.take();
  const uint32_t footer_crc = crc(bytes, footer + 4, 6);
  for (int i = 0; i < 4; ++i) bytes[footer + i] = static_cast<std::byte>(footer_crc >> (8 * i));
  out.bytes = std::move(bytes);
  return out;
}

class XzFixtures : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::fixtures_dir() + "/xz";
    if (testing::fixtures_dir().empty() || !std::filesystem::exists(dir_ + "/manifest.json"))
      GTEST_FAIL() << "run tests/fixtures/gen_xz.py first (PAYLOADFS_FIXTURES)";
  }
  std::string dir_;
};

TEST_F(XzFixtures, BlocksMatchXzRobotListing) {
  const Json manifest = testing::read_fixture_json(dir_ + "/manifest.json");
  ASSERT_GE(manifest.size(), 8u);
  size_t blocks = 0;
  for (const auto& entry : manifest) {
    const std::string name = entry.get<std::string>();
    SCOPED_TRACE(name);
    const auto file = testing::read_file(dir_ + "/" + name);
    const Json robot = testing::read_fixture_json(dir_ + "/" + name + ".robot.json");
    const Layout layout = testing::parse_bytes(xz(), file);
    EXPECT_TRUE(layout.errors.empty()) << testing::errors_of(layout);
    EXPECT_EQ(layout.header["streams"], robot["streams"].size());
    EXPECT_EQ(layout.header["blocks"], robot["blocks"].size());
    ASSERT_EQ(layout.slices.size(), robot["blocks"].size());
    for (size_t i = 0; i < layout.slices.size(); ++i) {
      const Slice& s = layout.slices[i];
      const Json& r = robot["blocks"][i];
      SCOPED_TRACE(s.name);
      EXPECT_EQ(s.name, "block/" + std::to_string(i));
      EXPECT_EQ(s.range.offset, r["offset"]);
      EXPECT_EQ(s.range.length, r["size"]);
      for (const char* key : {"uncompressed_size", "uncompressed_offset", "check", "stream",
                              "header_size", "compressed_size"})
        EXPECT_EQ(s.attributes[key], r[key]) << key;
      ++blocks;
    }
    const Json& streams = layout.header["stream_list"];
    ASSERT_EQ(streams.size(), robot["streams"].size());
    for (size_t i = 0; i < streams.size(); ++i) {
      for (const char* key : {"offset", "size", "blocks", "uncompressed_size", "check"})
        EXPECT_EQ(streams[i][key], robot["streams"][i][key]) << key;
    }
  }
  EXPECT_GE(blocks, 30u);
}

// The real files, mutated: slices stay inside the file, the header is valid UTF-8 JSON.
TEST_F(XzFixtures, MutatedFixturesStayInBounds) {
  std::vector<std::vector<std::byte>> seeds;
  for (const auto& entry : testing::read_fixture_json(dir_ + "/manifest.json"))
    seeds.push_back(testing::read_file(dir_ + "/" + entry.get<std::string>()));
  ASSERT_FALSE(seeds.empty());
  testing::mutate_and_parse(xz(), seeds, 12, 1500);
  std::mt19937 rng(12);
  for (int i = 0; i < 300; ++i) {
    auto data = seeds[static_cast<size_t>(i) % seeds.size()];
    if (data.empty()) continue;
    data[rng() % data.size()] = static_cast<std::byte>(rng());
    const Layout layout = testing::parse_bytes(xz(), data);
    (void)layout.header.dump(-1, ' ', false, Json::error_handler_t::strict);
  }
}

TEST_F(XzFixtures, MalformedCopiesGiveErrors) {
  const Json manifest = testing::read_fixture_json(dir_ + "/malformed/manifest.json");
  ASSERT_GE(manifest.size(), 8u);
  for (const auto& entry : manifest) {
    const std::string name = entry["file"];
    SCOPED_TRACE(name);
    const auto file = testing::read_file(dir_ + "/malformed/" + name);
    const Layout layout = testing::parse_bytes(xz(), file);
    EXPECT_FALSE(layout.errors.empty());
    testing::expect_in_bounds(layout, file.size());
  }
}

TEST(XzHandBuilt, StreamsPaddingAndChecks) {
  const Built a = stream({"first block", std::string(300, 'b')}, 1);
  const Built b = stream({"sha"}, 10);
  const Built c = stream({}, 0);
  const Built d = stream({"crc64 data"}, 4);
  Bytes file;
  file.append(a.bytes).zeros(8).append(b.bytes).append(c.bytes).zeros(4).append(d.bytes).zeros(4);
  const Layout layout = testing::parse_bytes(xz(), file.data());
  ASSERT_TRUE(layout.errors.empty()) << testing::errors_of(layout);
  EXPECT_EQ(layout.header["streams"], 4);
  EXPECT_EQ(layout.header["blocks"], 4);
  EXPECT_EQ(layout.header["stream_padding"], 16);
  EXPECT_EQ(layout.header["check"], Json({"CRC32", "SHA-256", "None", "CRC64"}));
  ASSERT_EQ(layout.slices.size(), 4u);
  EXPECT_EQ(layout.slices[0].range, a.blocks[0]);
  EXPECT_EQ(layout.slices[1].range, a.blocks[1]);
  const uint64_t b_at = a.bytes.size() + 8;
  EXPECT_EQ(layout.slices[2].range, (ByteRange{b_at + b.blocks[0].offset, b.blocks[0].length}));
  EXPECT_EQ(layout.slices[2].attributes["check"], "SHA-256");
  EXPECT_EQ(layout.slices[2].attributes["stream"], 1);
  EXPECT_EQ(layout.slices[3].attributes["stream"], 3);
  EXPECT_EQ(layout.slices[1].attributes["uncompressed_size"], 300);
  EXPECT_EQ(layout.slices[1].attributes["uncompressed_offset"], 11);
  EXPECT_EQ(layout.slices[1].attributes["compressed_size"], 300 + 4);
  EXPECT_EQ(layout.slices[1].attributes["header_size"], 12);
  EXPECT_EQ(layout.header["uncompressed_size"], 11 + 300 + 3 + 10);
}

TEST(XzHandBuilt, TruncatedAtEveryByte) {
  const Built s = stream({"abc", "defgh"}, 4);
  for (size_t n = 0; n < s.bytes.size(); ++n) {
    SCOPED_TRACE(n);
    const std::vector<std::byte> cut(s.bytes.begin(), s.bytes.begin() + static_cast<ptrdiff_t>(n));
    const Layout layout = testing::parse_bytes(xz(), cut);
    EXPECT_FALSE(layout.errors.empty());
    testing::expect_in_bounds(layout, cut.size());
  }
}

TEST(XzHandBuilt, CrcMismatchesAreErrors) {
  const Built s = stream({"abc"}, 1);
  auto header = s.bytes;
  header[9] ^= std::byte{1};
  EXPECT_TRUE(has_error(testing::parse_bytes(xz(), header), "stream header CRC32"));
  auto footer = s.bytes;
  footer[footer.size() - 12] ^= std::byte{1};
  EXPECT_TRUE(has_error(testing::parse_bytes(xz(), footer), "stream footer CRC32"));
  auto index = s.bytes;
  index[s.bytes.size() - 13] ^= std::byte{1};
  const Layout li = testing::parse_bytes(xz(), index);
  EXPECT_TRUE(has_error(li, "index") && has_error(li, "CRC32"));
  EXPECT_EQ(li.slices.size(), 1u);  // the blocks are still where the index says
  auto block_header = s.bytes;
  block_header[s.blocks[0].offset + 8] ^= std::byte{1};
  EXPECT_TRUE(has_error(testing::parse_bytes(xz(), block_header), "block header CRC32"));
}

// Rebuilds the index of `s` (a CRC32 stream) with `body` after the indicator, CRC32s valid.
std::vector<std::byte> with_index_body(const Built& s, const std::vector<uint8_t>& body) {
  Bytes b;
  b.append(std::vector<std::byte>(s.bytes.begin(),
                                  s.bytes.begin() + static_cast<ptrdiff_t>(s.index_offset)));
  b.u8(0);
  for (uint8_t v : body) b.u8(v);
  b.pad_to(4);
  b.le(crc(b.data(), s.index_offset, b.size() - s.index_offset), 4);
  const uint64_t backward = (b.size() - s.index_offset) / 4 - 1;
  const size_t footer = b.size();
  b.le(0, 4).le(backward, 4).u8(0).u8(s.bytes[s.bytes.size() - 3] == std::byte{0} ? 0 : 1);
  b.raw("YZ");
  auto bytes = b.take();
  const uint32_t c = crc(bytes, footer + 4, 6);
  for (int i = 0; i < 4; ++i) bytes[footer + i] = static_cast<std::byte>(c >> (8 * i));
  return bytes;
}

TEST(XzHandBuilt, BadIndexes) {
  const Built s = stream({"abc"}, 1);
  // A record count as a varint with a trailing zero byte, and one over 9 bytes.
  EXPECT_TRUE(has_error(testing::parse_bytes(xz(), with_index_body(s, {0x81, 0x00, 0, 0})),
                        "number of records"));
  EXPECT_TRUE(
      has_error(testing::parse_bytes(xz(), with_index_body(s, {0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
                                                               0xFF, 0xFF, 0xFF, 0xFF, 0x01})),
                "number of records"));
  // The index says the block is 4 bytes shorter than it is: the stream header is not found
  // where the blocks would then start (4 bytes longer cannot fit before the index at all).
  const uint8_t real = static_cast<uint8_t>(12 + 1 + 2 + 3 + 1 + 4);  // header, LZMA2, check
  const Layout grown = testing::parse_bytes(xz(), with_index_body(s, {1, uint8_t(real - 4), 3}));
  EXPECT_TRUE(has_error(grown, "the index disagrees with the blocks"));
  EXPECT_TRUE(grown.slices.empty());
  EXPECT_TRUE(testing::parse_bytes(xz(), with_index_body(s, {1, real, 3})).errors.empty());
  EXPECT_TRUE(has_error(testing::parse_bytes(xz(), with_index_body(s, {1, uint8_t(real + 4), 3})),
                        "do not fit"));
  // Blocks that cannot fit before the index.
  EXPECT_TRUE(
      has_error(testing::parse_bytes(xz(), with_index_body(s, {1, 0xF0, 0x7F, 3})), "do not fit"));
}

TEST(XzHandBuilt, BackwardSizeOutsideTheFile) {
  auto bytes = stream({"abc"}, 1).bytes;
  const size_t footer = bytes.size() - 12;
  for (int i = 0; i < 4; ++i) bytes[footer + 4 + i] = std::byte{0x40};
  const uint32_t c = crc(bytes, footer + 4, 6);
  for (int i = 0; i < 4; ++i) bytes[footer + i] = static_cast<std::byte>(c >> (8 * i));
  const Layout layout = testing::parse_bytes(xz(), bytes);
  EXPECT_TRUE(has_error(layout, "backward size"));
  EXPECT_TRUE(layout.slices.empty());
}

TEST(XzHandBuilt, NonzeroPaddingAndGarbage) {
  const Built s = stream({"abc"}, 1);
  Bytes b;
  b.append(s.bytes).u8(1).zeros(3);
  EXPECT_FALSE(testing::parse_bytes(xz(), b.data()).errors.empty());
  Bytes odd;
  odd.append(s.bytes).zeros(2);
  EXPECT_TRUE(has_error(testing::parse_bytes(xz(), odd.data()), "multiple of 4"));
}

TEST(XzHandBuilt, BlockLimit) {
  const Built s = stream(std::vector<std::string>(65537, "z"), 0);
  const Layout layout = testing::parse_bytes(xz(), s.bytes);
  EXPECT_TRUE(has_error(layout, "more than 65536 blocks"));
  EXPECT_TRUE(layout.slices.empty());
  const Built ok = stream(std::vector<std::string>(65536, "z"), 0);
  const Layout all = testing::parse_bytes(xz(), ok.bytes);
  EXPECT_TRUE(all.errors.empty()) << testing::first_error(all);
  EXPECT_EQ(all.slices.size(), 65536u);
}

TEST(XzDetect, Magic) {
  EXPECT_TRUE(xz().detect(stream({}, 0).bytes, 32));
  EXPECT_FALSE(xz().detect(testing::to_bytes(std::string_view("\xFD"
                                                              "7zXZ",
                                                              5)),
                           5));
  EXPECT_FALSE(xz().detect(testing::to_bytes("\x5d\x00\x00\x80\x00"), 5));  // .lzma
}

TEST(XzRobustness, MutatedStreamsStayInBounds) {
  Bytes b;
  b.append(stream({"one", "two"}, 1).bytes).zeros(4).append(stream({"three"}, 4).bytes);
  testing::mutate_and_parse(xz(), {b.data()}, 20260502, 3000);
}

}  // namespace
}  // namespace payloadfs

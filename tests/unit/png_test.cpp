// PNG parser: hand-built edge cases, and real files (Pillow, /usr/share) compared with
// pngcheck -v, Pillow and an independent Python chunk walk (see tests/fixtures/gen_png.py).

#include <algorithm>
#include <array>
#include <filesystem>
#include <random>
#include <string>

#include "core/formats/builtin.hpp"
#include "unit/test_support.hpp"

namespace payloadfs {
namespace {

using testing::expect_in_bounds;
using testing::has_error;

using testing::Bytes;
using testing::parse_bytes;

uint32_t crc32(const std::string& bytes) {
  uint32_t c = 0xFFFFFFFFU;
  for (const char ch : bytes) {
    c ^= static_cast<unsigned char>(ch);
    for (int k = 0; k < 8; ++k) c = (c & 1U) != 0 ? 0xEDB88320U ^ (c >> 1) : c >> 1;
  }
  return c ^ 0xFFFFFFFFU;
}

Bytes& add_chunk(Bytes& b, const std::string& type, const std::string& data) {
  b.be(data.size(), 4).raw(type).raw(data).be(crc32(type + data), 4);
  return b;
}

std::string ihdr(uint32_t w, uint32_t h, uint8_t depth, uint8_t color, uint8_t interlace = 0) {
  Bytes b;
  b.be(w, 4).be(h, 4).u8(depth).u8(color).u8(0).u8(0).u8(interlace);
  return std::string(reinterpret_cast<const char*>(b.data().data()), b.size());
}

Bytes minimal_png() {
  Bytes b;
  b.raw("\x89PNG\r\n\x1a\n");
  add_chunk(b, "IHDR", ihdr(3, 2, 8, 2));
  add_chunk(b, "IDAT", std::string("\x78\x9c\x63\x00\x00\x00\x01\x00\x01", 9));
  add_chunk(b, "IEND", "");
  return b;
}

TEST(Png, Detect) {
  auto f = formats::make_png();
  const auto png = minimal_png();
  EXPECT_TRUE(f->detect(png.data(), png.size()));
  Bytes not_png;
  not_png.raw("\x89PNG\r\n\x1a\r");
  EXPECT_FALSE(f->detect(not_png.data(), not_png.size()));
  Bytes short_sig;
  short_sig.raw("\x89PNG");
  EXPECT_FALSE(f->detect(short_sig.data(), short_sig.size()));
  EXPECT_FALSE(f->detect({}, 0));
}

TEST(Png, MinimalFile) {
  auto f = formats::make_png();
  const auto png = minimal_png();
  const Layout l = parse_bytes(*f, png.data());
  EXPECT_TRUE(l.errors.empty()) << l.errors.front();
  ASSERT_TRUE(l.magic.has_value());
  EXPECT_EQ(*l.magic, (ByteRange{0, 8}));
  EXPECT_EQ(l.header["width"], 3);
  EXPECT_EQ(l.header["height"], 2);
  EXPECT_EQ(l.header["bit_depth"], 8);
  EXPECT_EQ(l.header["color_type"], 2);
  EXPECT_EQ(l.header["color_type_name"], "truecolour");
  EXPECT_EQ(l.header["interlace"], 0);
  EXPECT_EQ(l.header["chunks"], 3);
  EXPECT_EQ(l.header["chunk_types"], Json::parse(R"(["IHDR","IDAT","IEND"])"));
  EXPECT_EQ(l.header["trailing_bytes"], 0);
  ASSERT_EQ(l.slices.size(), 3U);
  EXPECT_EQ(l.slices[0].name, "IHDR");
  EXPECT_EQ(l.slices[0].range, (ByteRange{16, 13}));
  EXPECT_EQ(l.slices[1].name, "IDAT");
  EXPECT_EQ(l.slices[1].range, (ByteRange{41, 9}));
  EXPECT_EQ(l.slices[2].range, (ByteRange{62, 0}));
  for (const auto& s : l.slices) EXPECT_EQ(s.attributes["crc_ok"], true) << s.name;
  EXPECT_EQ(l.slices[2].attributes["crc"], "ae426082");  // the well-known IEND CRC
}

TEST(Png, TruncatedAtEveryByte) {
  auto f = formats::make_png();
  const auto full = minimal_png().data();
  for (size_t n = 0; n < full.size(); ++n) {
    const std::vector<std::byte> cut(full.begin(), full.begin() + static_cast<std::ptrdiff_t>(n));
    const Layout l = parse_bytes(*f, cut);
    EXPECT_FALSE(l.errors.empty()) << "cut at " << n;
    if (n < 8) {
      EXPECT_TRUE(has_error(l, "shorter than the 8-byte")) << "cut at " << n;
    } else {
      EXPECT_TRUE(has_error(l, "missing IEND") || has_error(l, "'IEND' at offset 54")) << n;
    }
    expect_in_bounds(l, n);
  }
}

TEST(Png, TruncatedChunkKeepsPartialSlice) {
  auto f = formats::make_png();
  auto bytes = minimal_png().data();
  bytes.resize(41 + 5);  // inside IDAT data
  const Layout l = parse_bytes(*f, bytes);
  ASSERT_EQ(l.slices.size(), 2U);
  EXPECT_EQ(l.slices[1].range, (ByteRange{41, 5}));
  EXPECT_EQ(l.slices[1].attributes["truncated"], true);
  EXPECT_TRUE(has_error(l, "truncated"));
}

TEST(Png, LengthLimits) {
  auto f = formats::make_png();
  for (const uint64_t length : {0x80000000ULL, 0xFFFFFFFFULL}) {
    Bytes b;
    b.raw("\x89PNG\r\n\x1a\n");
    add_chunk(b, "IHDR", ihdr(1, 1, 8, 0));
    b.be(length, 4).raw("IDAT").zeros(16);
    const Layout l = parse_bytes(*f, b.data());
    EXPECT_TRUE(has_error(l, "2^31-1")) << length;
    EXPECT_EQ(l.slices.size(), 1U);
  }
  // 2^31-1 is allowed by the specification but runs past this file.
  Bytes b;
  b.raw("\x89PNG\r\n\x1a\n");
  add_chunk(b, "IHDR", ihdr(1, 1, 8, 0));
  b.be(0x7FFFFFFF, 4).raw("IDAT").zeros(16);
  const Layout l = parse_bytes(*f, b.data());
  ASSERT_EQ(l.slices.size(), 2U);
  EXPECT_EQ(l.slices[1].range, (ByteRange{41, 16}));
  EXPECT_TRUE(has_error(l, "truncated"));
}

TEST(Png, StructuralErrors) {
  auto f = formats::make_png();
  {  // no IHDR, bad chunk type stops the walk
    Bytes b;
    b.raw("\x89PNG\r\n\x1a\n");
    add_chunk(b, "IDAT", "xx");
    add_chunk(b, "ID1T", "yy");
    const Layout l = parse_bytes(*f, b.data());
    EXPECT_TRUE(has_error(l, "missing IHDR"));
    EXPECT_TRUE(has_error(l, "not IHDR"));
    EXPECT_TRUE(has_error(l, "invalid chunk type"));
    EXPECT_EQ(l.slices.size(), 1U);
  }
  {  // data after IEND, bad CRC, invalid IHDR values, unknown critical chunk
    Bytes b;
    b.raw("\x89PNG\r\n\x1a\n");
    add_chunk(b, "IHDR", ihdr(0, 5, 3, 2, 2));
    b.be(3, 4).raw(std::string("tEXtab\0", 7)).be(0x12345678, 4);
    add_chunk(b, "ABCD", "");
    add_chunk(b, "IEND", "");
    b.raw("garbage");
    const Layout l = parse_bytes(*f, b.data());
    EXPECT_TRUE(has_error(l, "after IEND"));
    EXPECT_TRUE(has_error(l, "CRC error in chunk 'tEXt'"));
    EXPECT_TRUE(has_error(l, "outside 1..2^31-1"));
    EXPECT_TRUE(has_error(l, "invalid bit depth 3"));
    EXPECT_TRUE(has_error(l, "unknown interlace method 2"));
    EXPECT_TRUE(has_error(l, "unknown critical chunk 'ABCD'"));
    EXPECT_EQ(l.header["trailing_bytes"], 7);
    EXPECT_EQ(l.header["crc_errors"], 1);
    ASSERT_EQ(l.slices.size(), 4U);
    EXPECT_EQ(l.slices[1].attributes["crc_ok"], false);
    EXPECT_EQ(l.slices[1].attributes["crc"], "12345678");
    EXPECT_EQ(l.slices[1].attributes["keyword"], "ab");
  }
  {  // bad IHDR length, second IHDR
    Bytes b;
    b.raw("\x89PNG\r\n\x1a\n");
    add_chunk(b, "IHDR", "short");
    add_chunk(b, "IHDR", ihdr(1, 1, 8, 0));
    add_chunk(b, "IEND", "");
    const Layout l = parse_bytes(*f, b.data());
    EXPECT_TRUE(has_error(l, "IHDR length is 5"));
    EXPECT_TRUE(has_error(l, "more than one IHDR"));
    EXPECT_FALSE(l.header.contains("width"));
  }
}

TEST(Png, ApngAndText) {
  auto f = formats::make_png();
  Bytes b;
  b.raw("\x89PNG\r\n\x1a\n");
  add_chunk(b, "IHDR", ihdr(4, 4, 8, 6));
  add_chunk(b, "acTL", std::string("\0\0\0\2\0\0\0\0", 8));
  add_chunk(b, "iTXt", std::string("Key\0\0\0\0\0text", 12));
  add_chunk(b, "IDAT", "a");
  add_chunk(b, "fdAT", "bbbb");
  add_chunk(b, "IDAT", "c");
  add_chunk(b, "IEND", "");
  const Layout l = parse_bytes(*f, b.data());
  EXPECT_TRUE(l.errors.empty());
  EXPECT_EQ(l.header["animation"]["num_frames"], 2);
  EXPECT_EQ(l.header["animation"]["num_plays"], 0);
  EXPECT_EQ(l.header["idat_chunks"], 2);
  EXPECT_EQ(l.header["idat_bytes"], 2);
  EXPECT_EQ(l.slices[2].attributes["keyword"], "Key");
}

TEST(Png, ChunkCountCap) {
  auto f = formats::make_png();
  Bytes b;
  b.raw("\x89PNG\r\n\x1a\n");
  add_chunk(b, "IHDR", ihdr(1, 1, 8, 0));
  for (int i = 0; i < 70000; ++i) add_chunk(b, "tIME", "");
  add_chunk(b, "IEND", "");
  const Layout l = parse_bytes(*f, b.data());
  EXPECT_TRUE(has_error(l, "more than 65536 chunks"));
  EXPECT_EQ(l.slices.size(), 65536U);
  EXPECT_EQ(l.header["chunk_types"].size(), 256U);
  EXPECT_EQ(l.header["chunk_types_truncated"], true);
}

TEST(Png, CrcBudget) {
  // Two 40 MiB chunks: the first is checked, the second exceeds the 64 MiB budget.
  auto f = formats::make_png();
  Bytes b;
  b.raw("\x89PNG\r\n\x1a\n");
  add_chunk(b, "IHDR", ihdr(1, 1, 8, 0));
  const std::string big(40U << 20, 'x');
  add_chunk(b, "IDAT", big);
  add_chunk(b, "IDAT", big);
  add_chunk(b, "IEND", "");
  const Layout l = parse_bytes(*f, b.data());
  ASSERT_EQ(l.slices.size(), 4U);
  EXPECT_EQ(l.slices[1].attributes["crc_ok"], true);
  EXPECT_TRUE(l.slices[2].attributes["crc_ok"].is_null());
  EXPECT_EQ(l.header["crc_unchecked_chunks"], 1);
}

// Real files, compared with pngcheck -v, Pillow and the generator's chunk walk.
TEST(Png, RealFilesMatchReferences) {
  const std::string dir = testing::fixtures_dir() + "/png";
  const Json manifest = testing::read_fixture_json(dir + "/manifest.json");
  ASSERT_FALSE(manifest.is_null()) << "run tests/fixtures/gen_png.py " << dir;
  auto f = formats::make_png();
  ASSERT_GE(manifest.size(), 13U);  // the Pillow-made files; /usr/share adds more
  size_t compared_slices = 0;
  for (const auto& [file, expect] : manifest.items()) {
    SCOPED_TRACE(file);
    const auto bytes = testing::read_file(dir + "/" + file);
    ASSERT_TRUE(f->detect(std::span(bytes).first(std::min<size_t>(bytes.size(), kDetectHeadBytes)),
                          bytes.size()));
    const Layout l = parse_bytes(*f, bytes);
    const Json& check = expect["pngcheck"];
    // Image line: pngcheck, and Pillow where it opens the file.
    EXPECT_EQ(l.header["width"], check["width"]);
    EXPECT_EQ(l.header["height"], check["height"]);
    EXPECT_EQ(l.header["bit_depth"], check["bit_depth"]);
    EXPECT_EQ(l.header["color_type"], check["color_type"]);
    EXPECT_EQ(l.header["interlace"], check["interlace"]);
    if (!expect["pil"].is_null()) {
      EXPECT_EQ(l.header["width"], expect["pil"]["width"]);
      EXPECT_EQ(l.header["height"], expect["pil"]["height"]);
      EXPECT_EQ(l.header["interlace"], expect["pil"]["interlace"]);
      const auto& types = expect["pil"]["color_types"];
      EXPECT_NE(std::find(types.begin(), types.end(), l.header["color_type"]), types.end())
          << "Pillow mode " << expect["pil"]["mode"];
    }
    // Chunk list: pngcheck stops at its first error, so compare its prefix.
    ASSERT_GE(l.slices.size(), check["chunks"].size());
    for (size_t i = 0; i < check["chunks"].size(); ++i) {
      EXPECT_EQ(l.slices[i].name, check["chunks"][i]["type"]);
      // pngcheck gives the offset of the type field, 4 bytes after the length field.
      EXPECT_EQ(l.slices[i].attributes["chunk_offset"].get<uint64_t>() + 4,
                check["chunks"][i]["type_offset"]);
      EXPECT_EQ(l.slices[i].range.length, check["chunks"][i]["length"]);
    }
    if (check["ok"].get<bool>()) {
      EXPECT_TRUE(l.errors.empty()) << l.errors.front();
      EXPECT_EQ(l.slices.size(), check["chunks"].size());
    } else {
      EXPECT_FALSE(l.errors.empty());
    }
    if (!check["crc_error"].is_null()) {
      const auto& e = check["crc_error"];
      const auto it = std::find_if(l.slices.begin(), l.slices.end(), [](const Slice& s) {
        return s.attributes.contains("crc_ok") && s.attributes["crc_ok"] == false;
      });
      ASSERT_NE(it, l.slices.end());
      EXPECT_EQ(it->name, e["type"]);
      EXPECT_EQ(it->attributes["crc"], e["expected"]);
      EXPECT_TRUE(has_error(l, "computed " + e["computed"].get<std::string>()));
    }
    EXPECT_EQ(check["after_iend"].get<bool>(), has_error(l, "after IEND"));
    // Every chunk: the Python walk's offsets, CRCs, and data bytes.
    const Json& walk = expect["walk"];
    ASSERT_EQ(l.slices.size(), walk.size());
    EXPECT_EQ(l.header["chunks"], walk.size());
    for (size_t i = 0; i < walk.size(); ++i) {
      const Slice& s = l.slices[i];
      EXPECT_EQ(s.name, walk[i]["type"]);
      EXPECT_EQ(s.range.offset, walk[i]["data_offset"]);
      EXPECT_EQ(s.range.length, walk[i]["length"]);
      EXPECT_EQ(s.attributes["crc"], walk[i]["crc"]);
      EXPECT_EQ(s.attributes["crc_ok"], walk[i]["crc_ok"]);
      const auto want =
          testing::read_file(dir + "/chunks/" + file + "/" + std::to_string(i) + ".bin");
      EXPECT_EQ(testing::slice_bytes(bytes, s), want) << s.name << " #" << i;
      ++compared_slices;
    }
  }
  EXPECT_GT(compared_slices, 40U);
}

TEST(Png, MutatedFilesStayInBounds) {
  auto f = formats::make_png();
  std::vector<std::vector<std::byte>> seeds = {minimal_png().data()};
  const std::string dir = testing::fixtures_dir() + "/png";
  for (const char* name : {"apng.png", "text_chunks.png", "mode_P_trns.png", "interlaced.png"}) {
    auto bytes = testing::read_file(dir + "/" + name);
    if (!bytes.empty()) seeds.push_back(std::move(bytes));
  }
  std::mt19937 rng(12345);
  for (int iter = 0; iter < 3000; ++iter) {
    auto bytes = seeds[static_cast<size_t>(iter) % seeds.size()];
    const int edits = 1 + static_cast<int>(rng() % 8);
    for (int e = 0; e < edits && !bytes.empty(); ++e) {
      const size_t at = rng() % bytes.size();
      switch (rng() % 4) {
        case 0:
          bytes[at] = static_cast<std::byte>(rng());
          break;
        case 1:
          bytes.resize(at);
          break;
        case 2:  // a length field set to an extreme
          for (size_t k = 0; k < 4 && at + k < bytes.size(); ++k)
            bytes[at + k] = static_cast<std::byte>(rng() % 2 == 0 ? 0xFF : 0x00);
          break;
        default:
          bytes.insert(bytes.begin() + static_cast<std::ptrdiff_t>(at), std::byte{0x7F});
      }
    }
    const Layout l = parse_bytes(*f, bytes);
    expect_in_bounds(l, bytes.size());
  }
}

}  // namespace
}  // namespace payloadfs

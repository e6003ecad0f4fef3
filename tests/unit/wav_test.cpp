// WAVE parser: hand-built edge cases, and real files (sox, Python wave, libsndfile, alsa-utils)
// compared with soxi, wave and libsndfile (see tests/fixtures/gen_wav.py).

#include <algorithm>
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

// A little- or big-endian writer for hand-built RIFF/RIFX files.
struct Riff {
  bool big = false;
  Bytes b;
  Riff& n(uint64_t v, int width) {
    if (big)
      b.be(v, width);
    else
      b.le(v, width);
    return *this;
  }
  Riff& chunk(const std::string& id, const std::string& data) {
    b.raw(id);
    n(data.size(), 4);
    b.raw(data);
    if (data.size() % 2 != 0) b.u8(0);
    return *this;
  }
};

std::string fmt_pcm(bool big, uint16_t channels, uint32_t rate, uint16_t bits) {
  Riff r{big, {}};
  const uint16_t align = static_cast<uint16_t>(channels * bits / 8);
  r.n(1, 2).n(channels, 2).n(rate, 4).n(uint64_t{rate} * align, 4).n(align, 2).n(bits, 2);
  return std::string(reinterpret_cast<const char*>(r.b.data().data()), r.b.size());
}

Bytes wav(bool big, const std::string& fmt, const std::string& data) {
  Riff body{big, {}};
  body.b.raw("WAVE");
  body.chunk("fmt ", fmt).chunk("data", data);
  Riff file{big, {}};
  file.b.raw(big ? "RIFX" : "RIFF");
  file.n(body.b.size(), 4);
  file.b.append(body.b.data());
  return file.b;
}

const Slice* find(const Layout& l, const std::string& name) {
  for (const auto& s : l.slices)
    if (s.name == name) return &s;
  return nullptr;
}

TEST(Wav, Detect) {
  auto f = formats::make_wav();
  for (const char* c : {"RIFF", "RIFX", "RF64", "BW64"}) {
    Bytes b;
    b.raw(c).le(4, 4).raw("WAVE");
    EXPECT_TRUE(f->detect(b.data(), b.size())) << c;
  }
  Bytes avi;
  avi.raw("RIFF").le(4, 4).raw("AVI ");
  EXPECT_FALSE(f->detect(avi.data(), avi.size()));
  Bytes short_head;
  short_head.raw("RIFF").le(4, 4).raw("WAV");
  EXPECT_FALSE(f->detect(short_head.data(), short_head.size()));
}

TEST(Wav, LittleAndBigEndianPcm) {
  auto f = formats::make_wav();
  for (const bool big : {false, true}) {
    const std::string samples(12, 'x');
    const auto bytes = wav(big, fmt_pcm(big, 2, 44100, 16), samples);
    const Layout l = parse_bytes(*f, bytes.data());
    EXPECT_TRUE(l.errors.empty()) << l.errors.front();
    EXPECT_EQ(l.header["container"], big ? "RIFX" : "RIFF");
    EXPECT_EQ(l.header["byte_order"], big ? "big" : "little");
    EXPECT_EQ(l.header["riff_size"], bytes.size() - 8);
    EXPECT_EQ(l.header["audio_format"], 1);
    EXPECT_EQ(l.header["audio_format_name"], "PCM");
    EXPECT_EQ(l.header["channels"], 2);
    EXPECT_EQ(l.header["sample_rate"], 44100);
    EXPECT_EQ(l.header["byte_rate"], 176400);
    EXPECT_EQ(l.header["block_align"], 4);
    EXPECT_EQ(l.header["bits_per_sample"], 16);
    EXPECT_EQ(l.header["frames"], 3);
    EXPECT_EQ(l.header["chunk_count"], 2);
    EXPECT_EQ(l.header["chunks"][0]["id"], "fmt ");
    ASSERT_EQ(l.slices.size(), 2U);
    EXPECT_EQ(l.slices[0].name, "fmt");
    EXPECT_EQ(l.slices[0].range, (ByteRange{20, 16}));
    EXPECT_EQ(l.slices[1].name, "data");
    EXPECT_EQ(l.slices[1].range, (ByteRange{44, 12}));
    EXPECT_EQ(l.slices[1].attributes["size"], 12);
    EXPECT_EQ(*l.magic, (ByteRange{0, 4}));
  }
}

TEST(Wav, TruncatedAtEveryByte) {
  auto f = formats::make_wav();
  const auto full = wav(false, fmt_pcm(false, 1, 8000, 8), "abcde").data();
  for (size_t n = 0; n < full.size(); ++n) {
    const std::vector<std::byte> cut(full.begin(), full.begin() + static_cast<std::ptrdiff_t>(n));
    const Layout l = parse_bytes(*f, cut);
    // The final pad byte is the only byte whose loss is tolerated.
    if (n + 1 < full.size()) {
      EXPECT_FALSE(l.errors.empty()) << "cut at " << n;
    }
    expect_in_bounds(l, n);
  }
}

TEST(Wav, PadBytesAndInfo) {
  auto f = formats::make_wav();
  Riff body{false, {}};
  body.b.raw("WAVE");
  Riff info{false, {}};
  info.b.raw("INFO");
  info.chunk("INAM", std::string("Name\0", 5)).chunk("ICMT", std::string("odd\0", 4));
  const std::string list(reinterpret_cast<const char*>(info.b.data().data()), info.b.size());
  body.chunk("fmt ", fmt_pcm(false, 1, 8000, 8)).chunk("data", "abc").chunk("LIST", list);
  body.chunk("odd ", "x");
  Riff file{false, {}};
  file.b.raw("RIFF");
  file.n(body.b.size(), 4).b.append(body.b.data());
  const Layout l = parse_bytes(*f, file.b.data());
  EXPECT_TRUE(l.errors.empty()) << l.errors.front();
  ASSERT_EQ(l.slices.size(), 4U);
  EXPECT_EQ(l.slices[1].range, (ByteRange{44, 3}));
  EXPECT_EQ(l.slices[2].name, "LIST");
  EXPECT_EQ(l.slices[2].range.offset, 56U);  // after the pad byte
  EXPECT_EQ(l.slices[2].attributes["list_type"], "INFO");
  EXPECT_EQ(l.slices[3].name, "odd");
  EXPECT_EQ(l.slices[3].attributes["id"], "odd ");
  EXPECT_EQ(l.header["info"]["INAM"], "Name");
  EXPECT_EQ(l.header["info"]["ICMT"], "odd");
  EXPECT_EQ(l.header["frames"], 3);
}

TEST(Wav, MissingPadByteIsFollowed) {
  auto f = formats::make_wav();
  Bytes b;
  b.raw("RIFF").le(4 + 24 + 11 + 8, 4).raw("WAVE");
  b.raw("fmt ").le(16, 4).append(Bytes().raw(fmt_pcm(false, 1, 8000, 8)).data());
  b.raw("data").le(3, 4).raw("abc");  // no pad byte
  b.raw("fact").le(0, 4);
  const Layout l = parse_bytes(*f, b.data());
  EXPECT_TRUE(has_error(l, "not followed by a pad byte"));
  ASSERT_EQ(l.slices.size(), 3U);
  EXPECT_EQ(l.slices[2].name, "fact");
  EXPECT_EQ(l.slices[2].range.offset, 55U);
}

TEST(Wav, StreamingPlaceholders) {
  auto f = formats::make_wav();
  auto bytes = wav(false, fmt_pcm(false, 2, 8000, 16), std::string(16, 's'));
  auto& d = bytes.data();
  for (size_t i : {4, 5, 6, 7, 40, 41, 42, 43}) d[i] = std::byte{0xFF};
  Layout l = parse_bytes(*f, d);
  EXPECT_TRUE(has_error(l, "streaming placeholder"));
  ASSERT_EQ(l.slices.size(), 2U);
  EXPECT_EQ(l.slices[1].range, (ByteRange{44, 16}));
  EXPECT_EQ(l.slices[1].attributes["truncated"], true);
  EXPECT_EQ(l.header["frames"], 4);
  // Size 0 is taken at its word, as sox does: an empty data chunk.
  for (size_t i : {4, 5, 6, 7}) d[i] = std::byte{0};
  for (size_t i : {40, 41, 42, 43}) d[i] = std::byte{0};
  d.resize(44);
  l = parse_bytes(*f, d);
  ASSERT_EQ(l.slices.size(), 2U);
  EXPECT_EQ(l.slices[1].range.length, 0U);
  EXPECT_EQ(l.header["frames"], 0);
}

TEST(Wav, SizeErrors) {
  auto f = formats::make_wav();
  {  // RIFF size smaller than the file: trailing bytes
    auto bytes = wav(false, fmt_pcm(false, 1, 8000, 8), "ab");
    bytes.raw("junk!");
    const Layout l = parse_bytes(*f, bytes.data());
    EXPECT_TRUE(has_error(l, "5 bytes after the RIFF chunk"));
    EXPECT_EQ(l.header["trailing_bytes"], 5);
    EXPECT_EQ(l.slices.size(), 2U);
  }
  {  // chunk sizes of 2^32-1 in the middle, RIFF size past EOF, not WAVE
    Bytes b;
    b.raw("RIFF").le(1000, 4).raw("WAVX");
    b.raw("fmt ").le(0xFFFFFFFF, 4).zeros(20);
    const Layout l = parse_bytes(*f, b.data());
    EXPECT_TRUE(has_error(l, "not 'WAVE'"));
    EXPECT_TRUE(has_error(l, "runs past the end of the file"));
    EXPECT_TRUE(has_error(l, "declares 4294967295 bytes"));
    EXPECT_TRUE(has_error(l, "missing data chunk"));
    ASSERT_EQ(l.slices.size(), 1U);
    EXPECT_EQ(l.slices[0].range, (ByteRange{20, 20}));
  }
  {  // fmt too short, block_align 0, odd chunk id bytes
    Bytes b;
    b.raw("RIFF").le(4 + 8 + 8 + 8 + 4, 4).raw("WAVE");
    b.raw("fmt ").le(8, 4).zeros(8);
    b.raw("d/\x01 ").le(4, 4).raw("abcd");
    const Layout l = parse_bytes(*f, b.data());
    EXPECT_TRUE(has_error(l, "shorter than 14"));
    EXPECT_TRUE(has_error(l, "missing data"));
    ASSERT_EQ(l.slices.size(), 2U);
    EXPECT_EQ(l.slices[1].name, "d\\x2f\\x01");
  }
}

TEST(Wav, ExtensibleBothByteOrders) {
  auto f = formats::make_wav();
  for (const bool big : {false, true}) {
    Riff fmt{big, {}};
    fmt.n(0xFFFE, 2).n(6, 2).n(48000, 4).n(48000 * 18, 4).n(18, 2).n(24, 2).n(22, 2);
    fmt.n(20, 2).n(0x3F, 4).n(3, 4).n(0, 2).n(0x10, 2);
    fmt.b.u8(0x80).u8(0).u8(0).u8(0xAA).u8(0).u8(0x38).u8(0x9B).u8(0x71);
    const std::string fmt_text(reinterpret_cast<const char*>(fmt.b.data().data()), fmt.b.size());
    const auto bytes = wav(big, fmt_text, std::string(36, 'z'));
    const Layout l = parse_bytes(*f, bytes.data());
    EXPECT_TRUE(l.errors.empty()) << l.errors.front();
    EXPECT_EQ(l.header["audio_format_name"], "EXTENSIBLE");
    EXPECT_EQ(l.header["valid_bits_per_sample"], 20);
    EXPECT_EQ(l.header["channel_mask"], 0x3F);
    EXPECT_EQ(l.header["speakers"], Json::parse(R"(["FL","FR","FC","LFE","BL","BR"])"));
    EXPECT_EQ(l.header["subformat"], "00000003-0000-0010-8000-00aa00389b71");
    EXPECT_EQ(l.header["subformat_name"], "IEEE_FLOAT");
    EXPECT_EQ(l.header["frames"], 2);
  }
}

TEST(Wav, Rf64WithTable) {
  auto f = formats::make_wav();
  Bytes b;
  b.raw("BW64").le(0xFFFFFFFF, 4).raw("WAVE");
  b.raw("ds64").le(40, 4).le(0, 8).le(8, 8).le(2, 8).le(1, 4).raw("junk").le(2, 8);
  b.raw("fmt ").le(16, 4).append(Bytes().raw(fmt_pcm(false, 2, 8000, 16)).data());
  b.raw("junk").le(0xFFFFFFFF, 4).raw("JJ");
  b.raw("data").le(0xFFFFFFFF, 4).raw("12345678");
  auto& d = b.data();
  const uint64_t riff = d.size() - 8;
  for (int i = 0; i < 8; ++i)
    d[20 + static_cast<size_t>(i)] = static_cast<std::byte>((riff >> (8 * i)) & 0xFF);
  const Layout l = parse_bytes(*f, d);
  EXPECT_TRUE(l.errors.empty()) << l.errors.front();
  EXPECT_EQ(l.header["container"], "BW64");
  EXPECT_EQ(l.header["riff_size"], riff);
  EXPECT_EQ(l.header["ds64"]["data_size"], 8);
  EXPECT_EQ(l.header["ds64"]["sample_count"], 2);
  EXPECT_EQ(l.header["frames"], 2);
  const Slice* junk = find(l, "junk");
  ASSERT_NE(junk, nullptr);
  EXPECT_EQ(junk->range.length, 2U);
  EXPECT_EQ(junk->attributes["size_from_ds64"], true);
  const Slice* data = find(l, "data");
  ASSERT_NE(data, nullptr);
  EXPECT_EQ(data->range.length, 8U);
  // A ds64 claiming 2^64-1 data bytes: cut at EOF, no overflow.
  for (int i = 0; i < 8; ++i) d[28 + static_cast<size_t>(i)] = std::byte{0xFF};
  const Layout bad = parse_bytes(*f, d);
  EXPECT_TRUE(has_error(bad, "declares 18446744073709551615 bytes"));
  expect_in_bounds(bad, d.size());
}

TEST(Wav, ChunkCountCap) {
  auto f = formats::make_wav();
  Riff body{false, {}};
  body.b.raw("WAVE");
  for (int i = 0; i < 70000; ++i) body.chunk("pad ", "");
  Riff file{false, {}};
  file.b.raw("RIFF");
  file.n(body.b.size(), 4).b.append(body.b.data());
  const Layout l = parse_bytes(*f, file.b.data());
  EXPECT_TRUE(has_error(l, "more than 65536 chunks"));
  EXPECT_EQ(l.slices.size(), 65536U);
  EXPECT_EQ(l.header["chunks"].size(), 256U);
  EXPECT_EQ(l.header["chunks_truncated"], true);
}

uint32_t effective_format(const Json& h) {
  if (h["audio_format"] == 0xFFFE && h.contains("subformat_code"))
    return h["subformat_code"].get<uint32_t>();
  return h["audio_format"].get<uint32_t>();
}

// libsndfile subtype -> WAVE format tag.
uint32_t subtype_format(const std::string& subtype) {
  if (subtype.rfind("PCM_", 0) == 0) return 1;
  if (subtype == "FLOAT" || subtype == "DOUBLE") return 3;
  if (subtype == "ALAW") return 6;
  if (subtype == "ULAW") return 7;
  if (subtype == "MS_ADPCM") return 2;
  if (subtype == "IMA_ADPCM") return 0x11;
  return 0;
}

// soxi -e encoding -> WAVE format tag.
uint32_t soxi_format(const std::string& encoding) {
  if (encoding == "Signed Integer PCM" || encoding == "Unsigned Integer PCM") return 1;
  if (encoding == "Floating Point PCM") return 3;
  if (encoding == "A-law") return 6;
  if (encoding == "u-law") return 7;
  if (encoding == "MS ADPCM") return 2;
  if (encoding == "IMA ADPCM") return 0x11;
  return 0;
}

TEST(Wav, RealFilesMatchReferences) {
  const std::string dir = testing::fixtures_dir() + "/wav";
  const Json manifest = testing::read_fixture_json(dir + "/manifest.json");
  ASSERT_FALSE(manifest.is_null()) << "run tests/fixtures/gen_wav.py " << dir;
  ASSERT_GE(manifest.size(), 18U);
  auto f = formats::make_wav();
  size_t data_compared = 0;
  for (const auto& [file, expect] : manifest.items()) {
    SCOPED_TRACE(file);
    const auto bytes = testing::read_file(dir + "/" + file);
    ASSERT_TRUE(f->detect(std::span(bytes).first(std::min<size_t>(bytes.size(), kDetectHeadBytes)),
                          bytes.size()));
    const Layout l = parse_bytes(*f, bytes);
    const Json& h = l.header;
    const bool bad = expect["expect_errors"].get<bool>();
    if (bad)
      EXPECT_FALSE(l.errors.empty());
    else
      EXPECT_TRUE(l.errors.empty()) << l.errors.front();
    const bool adpcm = effective_format(h) == 2 || effective_format(h) == 0x11;
    if (const Json& s = expect["soxi"]; !s.is_null()) {
      EXPECT_EQ(h["channels"], s["channels"]);
      EXPECT_EQ(h["sample_rate"], s["rate"]);
      EXPECT_EQ(h["bits_per_sample"], s["bits"]);
      EXPECT_EQ(effective_format(h), soxi_format(s["encoding"].get<std::string>()));
      if (adpcm) {
        // sox counts whole blocks; fact holds the exact count, at most that.
        EXPECT_EQ(h["frames"].get<uint64_t>() * h["samples_per_block"].get<uint64_t>(),
                  s["samples"]);
        EXPECT_LE(h["fact_sample_length"], s["samples"]);
        EXPECT_GT(h["fact_sample_length"], 0);
      } else if (!bad) {
        EXPECT_EQ(h["frames"], s["samples"]);
      }
    }
    if (const Json& w = expect["wave"]; !w.is_null()) {
      EXPECT_EQ(h["audio_format"], 1);
      EXPECT_EQ(h["channels"], w["channels"]);
      EXPECT_EQ(h["sample_rate"], w["rate"]);
      EXPECT_EQ(h["bits_per_sample"], w["sampwidth"].get<int>() * 8);
      if (!bad) {
        EXPECT_EQ(h["frames"], w["frames"]);
      }
    }
    if (const Json& sf = expect["soundfile"]; !sf.is_null()) {
      EXPECT_EQ(h["channels"], sf["channels"]);
      EXPECT_EQ(h["sample_rate"], sf["rate"]);
      // libsndfile counts frames actually present, also in damaged files.
      if (!adpcm) {
        EXPECT_EQ(h["frames"], sf["frames"]);
      }
      EXPECT_EQ(effective_format(h), subtype_format(sf["subtype"].get<std::string>()));
      if (sf["format"] != "RF64") {
        EXPECT_EQ(h["audio_format"] == 0xFFFE, sf["format"] == "WAVEX");
      }
      EXPECT_EQ(h["container"] == "RF64", sf["format"] == "RF64");
      for (const auto& [id, text] : sf["info"].items()) EXPECT_EQ(h["info"][id], text) << id;
    }
    if (!adpcm) {
      const uint64_t align =
          h["channels"].get<uint64_t>() * h["bits_per_sample"].get<uint64_t>() / 8;
      EXPECT_EQ(h["block_align"], align);
      EXPECT_EQ(h["byte_rate"], align * h["sample_rate"].get<uint64_t>());
    }
    EXPECT_EQ(h["byte_order"], file.find("rifx") != std::string::npos ? "big" : "little");
    const Slice* data = find(l, "data");
    ASSERT_NE(data, nullptr);
    if (!expect["data"].is_null()) {
      const auto want = testing::read_file(dir + "/" + expect["data"].get<std::string>());
      EXPECT_EQ(testing::slice_bytes(bytes, *data), want);
      ++data_compared;
    }
    const Slice* fmt = find(l, "fmt");
    ASSERT_NE(fmt, nullptr);
    EXPECT_GE(fmt->range.length, 14U);
  }
  EXPECT_GE(data_compared, 16U);
}

TEST(Wav, MutatedFilesStayInBounds) {
  auto f = formats::make_wav();
  std::vector<std::vector<std::byte>> seeds = {
      wav(false, fmt_pcm(false, 1, 8000, 8), "abcde").data(),
      wav(true, fmt_pcm(true, 2, 8000, 16), "abcdefgh").data()};
  const std::string dir = testing::fixtures_dir() + "/wav";
  for (const char* name : {"sf_rf64.wav", "sf_info.wav", "sox_rifx24_6ch.wav", "sox_msadpcm.wav",
                           "sf_u8_tail_info.wav"}) {
    auto bytes = testing::read_file(dir + "/" + name);
    if (!bytes.empty()) seeds.push_back(std::move(bytes));
  }
  std::mt19937 rng(777);
  for (int iter = 0; iter < 4000; ++iter) {
    auto bytes = seeds[static_cast<size_t>(iter) % seeds.size()];
    const int edits = 1 + static_cast<int>(rng() % 8);
    for (int e = 0; e < edits && !bytes.empty(); ++e) {
      // Header-heavy formats: aim most edits at the first 128 bytes.
      const size_t span = rng() % 4 == 0 ? bytes.size() : std::min<size_t>(bytes.size(), 128);
      const size_t at = rng() % span;
      switch (rng() % 4) {
        case 0:
          bytes[at] = static_cast<std::byte>(rng());
          break;
        case 1:
          bytes.resize(at);
          break;
        case 2:
          for (size_t k = 0; k < 4 && at + k < bytes.size(); ++k)
            bytes[at + k] = static_cast<std::byte>(rng() % 2 == 0 ? 0xFF : 0x00);
          break;
        default:
          bytes.insert(bytes.begin() + static_cast<std::ptrdiff_t>(at), std::byte{0x01});
      }
    }
    const Layout l = parse_bytes(*f, bytes);
    expect_in_bounds(l, bytes.size());
  }
}

}  // namespace
}  // namespace payloadfs

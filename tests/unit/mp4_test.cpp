// mp4 parser tests: files ffmpeg wrote (tests/fixtures/gen_mp4.py) against ffprobe's packets and
// streams, and hand-built movies: sample tables (stsz, stz2, stsc runs, stco, co64, stss), box
// sizes 0 and 1, uuid boxes, repeated boxes, and malformed inputs (a size past the end, a size
// smaller than its header, a deep nesting bomb, chunk offsets past the end, stsc naming chunks
// that do not exist), plus a bounded mutation run.

#include <algorithm>
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

const Format& mp4() {
  static const auto format = formats::make_mp4();
  return *format;
}

std::vector<std::byte> box(std::string_view type, const std::vector<std::byte>& payload) {
  Bytes b;
  b.be(8 + payload.size(), 4).raw(type).append(payload);
  return b.take();
}

std::vector<std::byte> cat(std::initializer_list<std::vector<std::byte>> parts) {
  Bytes b;
  for (const auto& p : parts) b.append(p);
  return b.take();
}

std::vector<std::byte> full(std::string_view type, const Bytes& payload) {
  Bytes b;
  b.be(0, 4).append(payload.data());
  return box(type, b.take());
}

std::vector<std::byte> ftyp() {
  Bytes b;
  b.raw("isom").be(512, 4).raw("isommp41");
  return box("ftyp", b.take());
}

// A trak (id 1, a video handler) around the given sample table boxes.
std::vector<std::byte> trak(const std::vector<std::byte>& tables) {
  Bytes tkhd;
  tkhd.be(0, 8).be(1, 4).be(0, 8).zeros(52).be(32u << 16, 4).be(16u << 16, 4);
  Bytes mdhd;
  mdhd.be(0, 8).be(1000, 4).be(10, 4).be(0x55c4, 2).be(0, 2);
  Bytes hdlr;
  hdlr.be(0, 4).raw("vide").zeros(12).raw("v\0");
  Bytes entry;
  entry.zeros(6).be(1, 2).zeros(16).be(32, 2).be(16, 2).zeros(50);
  Bytes stsd;
  stsd.be(1, 4).append(box("avc1", entry.take()));
  const auto stbl = box("stbl", cat({full("stsd", stsd), tables}));
  const auto mdia = box("mdia", cat({full("mdhd", mdhd), full("hdlr", hdlr), box("minf", stbl)}));
  return box("trak", cat({full("tkhd", tkhd), mdia}));
}

std::vector<std::byte> moov(const std::vector<std::byte>& traks) {
  Bytes mvhd;
  mvhd.be(0, 8).be(1000, 4).be(10, 4).zeros(80);
  return box("moov", cat({full("mvhd", mvhd), traks}));
}

Bytes stsz(std::vector<uint32_t> sizes) {
  Bytes b;
  b.be(0, 4).be(sizes.size(), 4);
  for (const auto s : sizes) b.be(s, 4);
  return b;
}

Bytes stsc(std::vector<std::pair<uint32_t, uint32_t>> runs) {
  Bytes b;
  b.be(runs.size(), 4);
  for (const auto& [first, per_chunk] : runs) b.be(first, 4).be(per_chunk, 4).be(1, 4);
  return b;
}

Bytes stco(std::vector<uint64_t> offsets, int width = 4) {
  Bytes b;
  b.be(offsets.size(), 4);
  for (const auto o : offsets) b.be(o, width);
  return b;
}

// A movie whose samples are the given tables; mdat holds 64 bytes of media at offset 40 + moov.
std::vector<std::byte> movie(const std::vector<std::byte>& tables, uint64_t media = 64) {
  const auto head = cat({ftyp(), moov(trak(tables))});
  Bytes mdat;
  for (uint64_t i = 0; i < media; ++i) mdat.u8(i);
  return cat({head, box("mdat", mdat.take())});
}

// Where mdat's payload starts in movie(tables): the same movie with an empty table is as long.
uint64_t media_start(const std::vector<std::byte>& tables) {
  return movie(tables, 0).size();
}

std::vector<const Slice*> samples(const Layout& layout) {
  std::vector<const Slice*> out;
  for (const auto& s : layout.slices)
    if (s.name.rfind("track/", 0) == 0) out.push_back(&s);
  return out;
}

class Mp4Fixtures : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::fixtures_dir() + "/mp4";
    if (testing::fixtures_dir().empty() || !std::filesystem::exists(dir_ + "/manifest.json"))
      GTEST_FAIL() << "run tests/fixtures/gen_mp4.py first (PAYLOADFS_FIXTURES)";
  }
  std::string dir_;
};

TEST_F(Mp4Fixtures, SamplesMatchFfprobePackets) {
  const Json manifest = testing::read_fixture_json(dir_ + "/manifest.json");
  ASSERT_EQ(manifest.size(), 4u);
  size_t packets = 0;
  for (const auto& entry : manifest) {
    const std::string name = entry.get<std::string>();
    SCOPED_TRACE(name);
    const auto file = testing::read_file(dir_ + "/" + name);
    ASSERT_TRUE(mp4().detect(file, file.size()));
    const Json probe = testing::read_fixture_json(dir_ + "/" + name + ".ffprobe.json");
    const Layout layout = testing::parse_bytes(mp4(), file);
    EXPECT_TRUE(layout.errors.empty()) << testing::errors_of(layout);
    std::map<std::string, const Slice*> by_name;
    for (const auto& s : layout.slices) by_name[s.name] = &s;
    std::map<int, uint64_t> track_of, next;
    for (const auto& stream : probe["streams"])
      track_of[stream["index"]] = std::stoull(stream["id"].get<std::string>(), nullptr, 16);
    for (const auto& packet : probe["packets"]) {
      const uint64_t track = track_of.at(packet["stream_index"]);
      const uint64_t i = next[static_cast<int>(track)]++;
      const auto& t = layout.header["tracks"][track - 1];
      const uint64_t count = t["sample_count"];
      const std::string slice =
          "track/" + std::to_string(track) + "/" + SliceTree::record_name(i, count);
      ASSERT_TRUE(by_name.count(slice)) << slice;
      EXPECT_EQ(by_name[slice]->range.offset, std::stoull(packet["pos"].get<std::string>()));
      EXPECT_EQ(by_name[slice]->range.length, std::stoull(packet["size"].get<std::string>()));
      ++packets;
    }
  }
  EXPECT_GE(packets, 200u);
}

TEST_F(Mp4Fixtures, MalformedCopiesGiveTheirErrors) {
  const Json manifest = testing::read_fixture_json(dir_ + "/malformed/manifest.json");
  ASSERT_GE(manifest.size(), 5u);
  for (const auto& entry : manifest) {
    const std::string name = entry["file"];
    SCOPED_TRACE(name);
    const auto file = testing::read_file(dir_ + "/malformed/" + name);
    EXPECT_TRUE(mp4().detect(file, file.size()));
    const Layout layout = testing::parse_bytes(mp4(), file);
    EXPECT_TRUE(has_error(layout, entry["error"].get<std::string>())) << testing::errors_of(layout);
    testing::expect_in_bounds(layout, file.size());
  }
}

TEST_F(Mp4Fixtures, MutatedFixturesStayInBounds) {
  std::vector<std::vector<std::byte>> seeds;
  for (const auto& entry : testing::read_fixture_json(dir_ + "/manifest.json"))
    seeds.push_back(testing::read_file(dir_ + "/" + entry.get<std::string>()));
  ASSERT_FALSE(seeds.empty());
  testing::mutate_and_parse(mp4(), seeds, 17, 400);
}

TEST(Mp4HandBuilt, SamplesFromChunkRunsAndSyncSamples) {
  // 5 samples: chunks 1 and 2 hold 2 each, chunk 3 holds 1.
  Bytes stss;
  stss.be(2, 4).be(1, 4).be(4, 4);
  const auto tables_of = [&](uint64_t base) {
    return cat({full("stsz", stsz({3, 4, 5, 6, 7})), full("stsc", stsc({{1, 2}, {3, 1}})),
                full("stco", stco({base, base + 10, base + 30})), full("stss", stss)});
  };
  const uint64_t base = media_start(tables_of(0));
  const auto file = movie(tables_of(base));
  const Layout layout = testing::parse_bytes(mp4(), file);
  EXPECT_TRUE(layout.errors.empty()) << testing::errors_of(layout);
  const auto s = samples(layout);
  ASSERT_EQ(s.size(), 5u);
  const std::vector<uint64_t> offsets = {base, base + 3, base + 10, base + 15, base + 30};
  for (size_t i = 0; i < 5; ++i) {
    EXPECT_EQ(s[i]->name, "track/1/" + std::to_string(i));
    EXPECT_EQ(s[i]->range.offset, offsets[i]);
    EXPECT_EQ(s[i]->range.length, i + 3);
    EXPECT_EQ(s[i]->attributes["keyframe"], i == 0 || i == 3);
  }
  const Json& t = layout.header["tracks"][0];
  EXPECT_EQ(t["handler"], "vide");
  EXPECT_EQ(t["codec"], "avc1");
  EXPECT_EQ(t["width"], 32);
  EXPECT_EQ(t["height"], 16);
  EXPECT_EQ(t["sample_count"], 5);
  EXPECT_EQ(layout.header["brands"]["major"], "isom");
  EXPECT_EQ(layout.header["timescale"], 1000);
}

TEST(Mp4HandBuilt, Stz2FourBitSizesAndCo64) {
  Bytes stz2;
  stz2.be(0, 3).u8(4).be(3, 4).u8(0x12).u8(0x30);  // sizes 1, 2, 3
  const auto tables_of = [&](uint64_t base) {
    return cat({full("stz2", stz2), full("stsc", stsc({{1, 3}})), full("co64", stco({base}, 8))});
  };
  const uint64_t base = media_start(tables_of(0));
  const Layout layout = testing::parse_bytes(mp4(), movie(tables_of(base)));
  EXPECT_TRUE(layout.errors.empty()) << testing::errors_of(layout);
  const auto s = samples(layout);
  ASSERT_EQ(s.size(), 3u);
  EXPECT_EQ(s[1]->range.offset, base + 1);
  EXPECT_EQ(s[2]->range.offset, base + 3);
  EXPECT_EQ(s[2]->range.length, 3u);
}

TEST(Mp4HandBuilt, ChunkOffsetPastTheEnd) {
  const auto tables = cat({full("stsz", stsz({4, 4})), full("stsc", stsc({{1, 1}})),
                           full("stco", stco({1u << 30, 40}))});
  const auto file = movie(tables);
  const Layout layout = testing::parse_bytes(mp4(), file);
  EXPECT_TRUE(has_error(layout, "runs past the end of the file")) << testing::errors_of(layout);
  EXPECT_TRUE(samples(layout).empty());
  testing::expect_in_bounds(layout, file.size());
}

TEST(Mp4HandBuilt, StscNamesChunksThatDoNotExist) {
  const auto tables = cat({full("stsz", stsz({4, 4})), full("stsc", stsc({{1, 1}, {9, 1}})),
                           full("stco", stco({40, 44}))});
  const Layout layout = testing::parse_bytes(mp4(), movie(tables));
  EXPECT_TRUE(has_error(layout, "stsc references chunk 9 but the track has 2 chunks"))
      << testing::errors_of(layout);
  EXPECT_EQ(samples(layout).size(), 2u);
  const auto backwards = cat({full("stsz", stsz({4, 4})), full("stsc", stsc({{2, 1}, {1, 1}})),
                              full("stco", stco({40, 44}))});
  const Layout l2 = testing::parse_bytes(mp4(), movie(backwards));
  EXPECT_TRUE(has_error(l2, "not 1")) << testing::errors_of(l2);
  EXPECT_TRUE(has_error(l2, "not in increasing chunk order")) << testing::errors_of(l2);
  // A declared count of samples the chunks do not hold.
  const auto short_runs =
      cat({full("stsz", stsz({4, 4, 4})), full("stsc", stsc({{1, 1}})), full("stco", stco({40}))});
  EXPECT_TRUE(has_error(testing::parse_bytes(mp4(), movie(short_runs)), "the chunks hold 1"));
}

TEST(Mp4HandBuilt, BoxSizes) {
  // Size 0: mdat to the end of the file; size 1: a 64-bit largesize; uuid: 16 more bytes.
  Bytes large;
  large.be(1, 4).raw("free").be(16 + 3, 8).raw("abc");
  Bytes uuid;
  uuid.be(8 + 16 + 2, 4).raw("uuid").zeros(16).raw("xy");
  Bytes to_end;
  to_end.be(0, 4).raw("mdat").raw("media");
  const auto file = cat({ftyp(), large.take(), uuid.take(), to_end.take()});
  const Layout layout = testing::parse_bytes(mp4(), file);
  ASSERT_EQ(layout.slices.size(), 4u);
  EXPECT_EQ(layout.slices[1].name, "free");
  EXPECT_EQ(layout.slices[1].range.length, 3u);
  EXPECT_EQ(layout.slices[2].name, "uuid");
  EXPECT_EQ(layout.slices[2].range.length, 2u);
  EXPECT_EQ(layout.slices[3].name, "mdat");
  EXPECT_EQ(layout.slices[3].range.length, 5u);
  EXPECT_FALSE(layout.slices[3].stored);
  EXPECT_TRUE(has_error(layout, "no movie header"));
}

TEST(Mp4HandBuilt, SizePastTheEndAndBelowTheHeader) {
  Bytes past;
  past.be(1000, 4).raw("free").raw("abc");
  const auto file = cat({ftyp(), past.take()});
  const Layout layout = testing::parse_bytes(mp4(), file);
  EXPECT_TRUE(has_error(layout, "runs past the end of its parent"));
  ASSERT_EQ(layout.slices.size(), 2u);
  EXPECT_EQ(layout.slices[1].range.length, 3u);  // cut at the end of the file
  for (const uint32_t size : {2u, 7u}) {
    Bytes small;
    small.be(size, 4).raw("free").raw("abcdefgh");
    const Layout l = testing::parse_bytes(mp4(), cat({ftyp(), small.take()}));
    EXPECT_TRUE(has_error(l, "smaller than its 8-byte header")) << size;
  }
  Bytes small_large;
  small_large.be(1, 4).raw("free").be(8, 8);
  EXPECT_TRUE(has_error(testing::parse_bytes(mp4(), cat({ftyp(), small_large.take()})),
                        "smaller than its 16-byte header"));
}

TEST(Mp4HandBuilt, DeepNestingBombIsCut) {
  std::vector<std::byte> inner = box("free", {});
  for (int i = 0; i < 2000; ++i) inner = box("moov", inner);
  const auto file = cat({ftyp(), inner});
  const Layout layout = testing::parse_bytes(mp4(), file);
  EXPECT_TRUE(has_error(layout, "nested deeper than 16")) << testing::errors_of(layout);
  ASSERT_EQ(layout.slices.size(), 2u);
  EXPECT_EQ(std::count(layout.slices[1].name.begin(), layout.slices[1].name.end(), '/'), 15);
  testing::expect_in_bounds(layout, file.size());
}

TEST(Mp4HandBuilt, RepeatedBoxesGetSuffixOnTheirComponent) {
  const auto tables = cat({full("stsz", stsz({})), full("stsc", stsc({})), full("stco", stco({}))});
  const auto file =
      cat({ftyp(), moov(cat({trak(tables), trak(tables)})), box("free", {}), box("free", {})});
  const Layout layout = testing::parse_bytes(mp4(), file);
  std::vector<std::string> names;
  for (const auto& s : layout.slices) names.push_back(s.name);
  EXPECT_NE(std::find(names.begin(), names.end(), "moov/trak/mdia/minf/stbl/stsd"), names.end());
  EXPECT_NE(std::find(names.begin(), names.end(), "moov/trak~1/mdia/minf/stbl/stsd"), names.end());
  EXPECT_NE(std::find(names.begin(), names.end(), "free~1"), names.end());
  EXPECT_TRUE(has_error(layout, "a second track with this id"));
}

// Found by fuzz_mp4: a trak inside a trak added tracks while the outer one was being filled.
TEST(Mp4HandBuilt, TrakInsideTrakKeepsTheOuterTrack) {
  const auto tables = cat({full("stsz", stsz({})), full("stsc", stsc({})), full("stco", stco({}))});
  std::vector<std::byte> inner;
  for (int i = 0; i < 9; ++i) inner = cat({inner, trak(tables)});
  const auto outer = box("trak", cat({inner, full("stsz", stsz({}))}));
  const auto file = cat({ftyp(), moov(outer)});
  const Layout layout = testing::parse_bytes(mp4(), file);
  EXPECT_EQ(layout.header["track_count"], 10);
  testing::expect_in_bounds(layout, file.size());
}

TEST(Mp4HandBuilt, Detection) {
  const auto file = movie({});
  EXPECT_TRUE(mp4().detect(file, file.size()));
  Bytes old;
  old.be(0, 4).raw("mdat").raw("xyz");
  EXPECT_TRUE(mp4().detect(old.data(), old.size()));
  Bytes wide;
  wide.be(8, 4).raw("wide");
  EXPECT_TRUE(mp4().detect(wide.data(), 16));
  EXPECT_FALSE(mp4().detect(wide.data(), 4));  // a size past the end
  Bytes other;
  other.be(8, 4).raw("abcd");
  EXPECT_FALSE(mp4().detect(other.data(), other.size()));
  Bytes free_zero;
  free_zero.be(0, 4).raw("free");
  EXPECT_FALSE(mp4().detect(free_zero.data(), free_zero.size()));
}

}  // namespace
}  // namespace payloadfs

// gzip parser tests: files from gzip, pigz, cat and Python against Python's gzip/zlib and
// `gzip -lvN`, hand-built edge cases, the work budget, and a bounded mutation run.

#include <fcntl.h>
#include <unistd.h>
#include <zlib.h>

#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "core/formats/builtin.hpp"
#include "core/io/checked_math.hpp"
#include "core/io/unique_fd.hpp"
#include "unit/test_support.hpp"

namespace payloadfs {
namespace {

using testing::expect_in_bounds;
using testing::to_bytes;

using testing::Bytes;

const Format& gz() {
  static const auto format = formats::make_gzip();
  return *format;
}

// Raw deflate (no zlib/gzip wrapper) of `data`; `finish` false leaves the stream open after a
// full flush, so the output can be repeated.
std::vector<std::byte> raw_deflate(std::string_view data, bool finish = true) {
  z_stream zs{};
  EXPECT_EQ(deflateInit2(&zs, 9, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY), Z_OK);
  std::vector<std::byte> out(deflateBound(&zs, data.size()) + 64);
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  zs.avail_in = static_cast<uInt>(data.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  EXPECT_EQ(deflate(&zs, finish ? Z_FINISH : Z_FULL_FLUSH), finish ? Z_STREAM_END : Z_OK);
  out.resize(zs.total_out);
  deflateEnd(&zs);
  return out;
}

uint32_t crc_of(std::string_view data) {
  return static_cast<uint32_t>(
      crc32(0, reinterpret_cast<const Bytef*>(data.data()), static_cast<uInt>(data.size())));
}

// Decompresses a raw deflate slice; nullopt unless it is exactly one complete stream.
std::optional<std::string> inflate_exact(const std::vector<std::byte>& raw) {
  z_stream zs{};
  if (inflateInit2(&zs, -15) != Z_OK) return std::nullopt;
  std::string out;
  std::vector<unsigned char> buf(1 << 16);
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<std::byte*>(raw.data()));
  zs.avail_in = static_cast<uInt>(raw.size());
  int ret = Z_OK;
  while (ret == Z_OK) {
    zs.next_out = buf.data();
    zs.avail_out = static_cast<uInt>(buf.size());
    ret = inflate(&zs, Z_NO_FLUSH);
    out.append(reinterpret_cast<const char*>(buf.data()), buf.size() - zs.avail_out);
  }
  const bool exact = ret == Z_STREAM_END && zs.avail_in == 0;
  inflateEnd(&zs);
  if (!exact) return std::nullopt;
  return out;
}

struct MemberSpec {
  std::string content = "hello, gzip\n";
  uint8_t flags = 0;
  uint32_t mtime = 0;
  std::string extra;
  std::string name;
  std::string comment;
};

std::vector<std::byte> member(const MemberSpec& spec) {
  Bytes b;
  b.u8(0x1f).u8(0x8b).u8(8).u8(spec.flags).le(spec.mtime, 4).u8(0).u8(3);
  if ((spec.flags & 0x04) != 0) b.le(spec.extra.size(), 2).raw(spec.extra);
  if ((spec.flags & 0x08) != 0) b.raw(spec.name).u8(0);
  if ((spec.flags & 0x10) != 0) b.raw(spec.comment).u8(0);
  if ((spec.flags & 0x02) != 0) {
    const auto& d = b.data();
    b.le(crc32(0, reinterpret_cast<const Bytef*>(d.data()), static_cast<uInt>(d.size())) & 0xFFFF,
         2);
  }
  b.append(raw_deflate(spec.content));
  b.le(crc_of(spec.content), 4).le(spec.content.size(), 4);
  return b.data();
}

std::vector<std::byte> concat(std::initializer_list<std::vector<std::byte>> parts) {
  std::vector<std::byte> out;
  for (const auto& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

// ---------------------------------------------------------------- real files vs. Python/gzip

class GzipFixtures : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::fixtures_dir() + "/gzip";
    if (testing::fixtures_dir().empty() || !std::filesystem::exists(dir_ + "/manifest.json"))
      GTEST_FAIL() << "run tests/fixtures/gen_gzip.py first (PAYLOADFS_FIXTURES)";
  }
  std::string dir_;
};

TEST_F(GzipFixtures, MatchesZlibAndGzipList) {
  const Json manifest = testing::read_fixture_json(dir_ + "/manifest.json");
  ASSERT_GE(manifest.size(), 8u);
  size_t compared = 0;
  for (const auto& entry : manifest) {
    const std::string name = entry.get<std::string>();
    SCOPED_TRACE(name);
    const std::string path = dir_ + "/" + name;
    const Json expected = testing::read_fixture_json(path + ".expected.json");
    const auto file = testing::read_file(path);
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    ASSERT_TRUE(fd.valid());
    const FdSource source(fd.get(), file.size());
    const Layout layout = gz().parse(source);
    ASSERT_TRUE(layout.magic.has_value());
    EXPECT_EQ(*layout.magic, (ByteRange{0, 2}));

    const Json& h = layout.header;
    const Json& members = expected["members"];
    ASSERT_EQ(h["members"], members.size());
    ASSERT_EQ(h["member_list"].size(), members.size());
    ASSERT_EQ(layout.slices.size(), members.size());
    uint64_t total = 0;
    for (size_t i = 0; i < members.size(); ++i) {
      SCOPED_TRACE("member " + std::to_string(i));
      const Json& e = members[i];
      const Json& m = h["member_list"][i];
      for (const char* key : {"offset", "method", "flags", "mtime", "xfl", "os", "deflate_offset",
                              "deflate_length", "crc32", "isize", "uncompressed_bytes"})
        EXPECT_EQ(m[key], e[key]) << key;
      for (const char* key : {"name", "comment", "extra", "header_crc16"}) {
        EXPECT_EQ(m.contains(key), e.contains(key)) << key;
        if (e.contains(key)) {
          EXPECT_EQ(m[key], e[key]) << key;
        }
      }
      EXPECT_EQ(m["complete"], true);
      total += e["uncompressed_bytes"].get<uint64_t>();

      const Slice& s = layout.slices[i];
      EXPECT_EQ(s.name, "deflate");
      EXPECT_EQ(s.attributes["member"], i);
      EXPECT_EQ(s.attributes["crc32"], e["crc32"]);
      EXPECT_EQ(s.attributes["isize"], e["isize"]);
      const auto bytes = testing::slice_bytes(file, s);
      EXPECT_EQ(bytes, testing::read_file(path + ".deflate/" + std::to_string(i)));
      const auto content = inflate_exact(bytes);
      ASSERT_TRUE(content.has_value());
      EXPECT_EQ(crc_of(*content), e["crc32"]);
      ++compared;
    }
    // Top-level header fields describe the first member.
    for (const char* key : {"method", "flags", "mtime", "xfl", "os", "crc32", "isize"})
      EXPECT_EQ(h[key], members[0][key]) << key;
    EXPECT_EQ(h["uncompressed_size"], total);
    if (expected.contains("gzip_list")) {
      const Json& l = expected["gzip_list"];
      EXPECT_EQ(h["crc32"], l["crc32"]);
      EXPECT_EQ(h["isize"], l["uncompressed"]);
      EXPECT_EQ(file.size(), l["compressed"].get<uint64_t>());
      if (h.contains("name")) {
        EXPECT_EQ(h["name"], l["name"]);
      }
    }
    const uint64_t trailing = expected["trailing_bytes"];
    if (trailing == 0) {
      EXPECT_FALSE(h.contains("trailing_bytes"));
    } else {
      EXPECT_EQ(h["trailing_bytes"], trailing);
    }
    // Zero padding is accepted silently, as gzip does; other trailing bytes are an error.
    const bool garbage = trailing > 0 && !expected["trailing_zero"].get<bool>();
    EXPECT_EQ(layout.errors.size(), garbage ? 1u : 0u)
        << (layout.errors.empty() ? "" : layout.errors.front());
  }
  EXPECT_GE(compared, 12u);
}

TEST_F(GzipFixtures, PayloadNamesMembersDeflateDeflate1) {
  Registry registry;
  registry.add(formats::make_gzip());
  const auto payload = testing::payload_of(dir_ + "/multi.gz", registry);
  const Json header = Json::parse(payload->header_json());
  EXPECT_EQ(header["format"], "gzip");
  EXPECT_EQ(header["magic"], "1f8b");
  EXPECT_EQ(header["header"]["members"], 4);
  EXPECT_EQ(header["header"]["name"], "notes.txt");
  const Json slices = Json::parse(testing::slices_json_of(*payload, dir_ + "/multi.gz"));
  ASSERT_EQ(slices.size(), 4u);
  EXPECT_EQ(slices[0]["path"], "raw/deflate");
  EXPECT_EQ(slices[1]["path"], "raw/deflate~1");
  EXPECT_EQ(slices[3]["path"], "raw/deflate~3");
  EXPECT_EQ(slices[3]["name"], "deflate");
  EXPECT_EQ(slices[3]["file_name"], "naïve.txt");
}

// ---------------------------------------------------------------- hand-built files

TEST(GzipHandBuilt, EveryOptionalField) {
  MemberSpec spec;
  spec.flags = 0x1f;
  spec.mtime = 1234567890;
  spec.extra = std::string("AB\x02\x00xyCD\x00\x00", 10);
  spec.name = "file.txt";
  spec.comment = "comment";
  const auto b = member(spec);
  const Layout layout = testing::parse_bytes(gz(), b);
  EXPECT_TRUE(layout.errors.empty()) << layout.errors.front();
  const Json& h = layout.header;
  EXPECT_EQ(h["flags"], 0x1f);
  EXPECT_EQ(h["flag_names"], Json::parse(R"(["FTEXT","FHCRC","FEXTRA","FNAME","FCOMMENT"])"));
  EXPECT_EQ(h["mtime"], 1234567890);
  EXPECT_EQ(h["mtime_utc"], "2009-02-13T23:31:30Z");
  EXPECT_EQ(h["os"], 3);
  EXPECT_EQ(h["os_name"], "Unix");
  EXPECT_EQ(h["extra_length"], 10);
  EXPECT_EQ(h["extra"], "41420200787943440000");
  EXPECT_EQ(h["extra_subfields"],
            Json::parse(R"([{"id":"AB","length":2},{"id":"CD","length":0}])"));
  EXPECT_EQ(h["name"], "file.txt");
  EXPECT_EQ(h["comment"], "comment");
  EXPECT_TRUE(h.contains("header_crc16"));
  EXPECT_EQ(h["isize"], spec.content.size());
  EXPECT_EQ(h["crc32"], crc_of(spec.content));
  ASSERT_EQ(layout.slices.size(), 1u);
  EXPECT_EQ(layout.slices[0].attributes["file_name"], "file.txt");
  EXPECT_EQ(inflate_exact(testing::slice_bytes(b, layout.slices[0])), spec.content);
}

TEST(GzipHandBuilt, TruncatedAtEveryByte) {
  MemberSpec spec;
  spec.flags = 0x1e;
  spec.extra = "AB\x01";
  spec.extra += '\0';
  spec.extra += 'z';
  spec.name = "n";
  spec.comment = "c";
  spec.content = std::string(3000, 'q') + "tail";
  const auto full = member(spec);
  const uint64_t trailer = full.size() - 8;
  for (size_t cut = 1; cut < full.size(); ++cut) {
    SCOPED_TRACE(cut);
    const std::vector<std::byte> part(full.begin(),
                                      full.begin() + static_cast<std::ptrdiff_t>(cut));
    const Layout layout = testing::parse_bytes(gz(), part);
    expect_in_bounds(layout, cut);
    EXPECT_FALSE(layout.errors.empty());
    EXPECT_EQ(layout.header["members"], 1);
    if (cut >= trailer) {
      // The deflate stream is whole; only the trailer is missing.
      ASSERT_EQ(layout.slices.size(), 1u);
      EXPECT_EQ(layout.slices[0].attributes["complete"], true);
      EXPECT_EQ(layout.slices[0].range.offset + layout.slices[0].range.length, trailer);
    } else if (!layout.slices.empty()) {
      EXPECT_EQ(layout.slices[0].attributes["complete"], false);
      EXPECT_EQ(layout.slices[0].range.offset + layout.slices[0].range.length, cut);
    }
  }
}

TEST(GzipHandBuilt, TrailerMismatches) {
  auto b = member({});
  b[b.size() - 8] ^= std::byte{1};  // CRC32
  b[b.size() - 1] ^= std::byte{1};  // ISIZE
  const Layout layout = testing::parse_bytes(gz(), b);
  ASSERT_EQ(layout.errors.size(), 2u);
  EXPECT_NE(layout.errors[0].find("CRC32"), std::string::npos);
  EXPECT_NE(layout.errors[1].find("ISIZE"), std::string::npos);
  EXPECT_EQ(layout.slices.size(), 1u);
}

TEST(GzipHandBuilt, HeaderCrcMismatch) {
  MemberSpec spec;
  spec.flags = 0x02;
  auto b = member(spec);
  b[10] ^= std::byte{0xFF};
  const Layout layout = testing::parse_bytes(gz(), b);
  ASSERT_EQ(layout.errors.size(), 1u);
  EXPECT_NE(layout.errors[0].find("header CRC16"), std::string::npos);
  EXPECT_EQ(layout.slices.size(), 1u);
}

TEST(GzipHandBuilt, UnsupportedMethodAndReservedFlags) {
  auto b = member({});
  b[2] = std::byte{7};
  Layout layout = testing::parse_bytes(gz(), b);
  EXPECT_EQ(layout.errors.size(), 1u);
  EXPECT_TRUE(layout.slices.empty());
  EXPECT_EQ(layout.header["method"], 7);
  b[2] = std::byte{8};
  b[3] = std::byte{0x20};
  layout = testing::parse_bytes(gz(), b);
  EXPECT_EQ(layout.errors.size(), 1u);
  EXPECT_TRUE(layout.slices.empty());
}

TEST(GzipHandBuilt, ExtraLengthPastEnd) {
  Bytes b;
  b.u8(0x1f).u8(0x8b).u8(8).u8(0x04).le(0, 4).u8(0).u8(3).le(0xFFFF, 2).raw("short");
  const Layout layout = testing::parse_bytes(gz(), b.data());
  EXPECT_EQ(layout.errors.size(), 1u);
  EXPECT_TRUE(layout.slices.empty());
}

TEST(GzipHandBuilt, UnterminatedName) {
  Bytes b;
  b.u8(0x1f).u8(0x8b).u8(8).u8(0x08).le(0, 4).u8(0).u8(3).raw(std::string(100000, 'n'));
  const Layout layout = testing::parse_bytes(gz(), b.data());
  ASSERT_EQ(layout.errors.size(), 1u);
  EXPECT_NE(layout.errors[0].find("FNAME"), std::string::npos);
}

TEST(GzipHandBuilt, NonUtf8NameIsEscaped) {
  MemberSpec spec;
  spec.flags = 0x08;
  spec.name = "x\xfe";
  const Layout layout = testing::parse_bytes(gz(), member(spec));
  EXPECT_EQ(layout.header["name"], "x\\xFE");
  EXPECT_NO_THROW((void)layout.header.dump(-1, ' ', false, Json::error_handler_t::strict));
}

TEST(GzipHandBuilt, CorruptDeflate) {
  Bytes b;
  b.u8(0x1f).u8(0x8b).u8(8).u8(0).le(0, 4).u8(0).u8(3).u8(0x07).zeros(20);  // BTYPE 11
  const Layout layout = testing::parse_bytes(gz(), b.data());
  ASSERT_EQ(layout.errors.size(), 1u);
  EXPECT_NE(layout.errors[0].find("invalid deflate data"), std::string::npos);
  ASSERT_EQ(layout.slices.size(), 1u);
  EXPECT_EQ(layout.slices[0].attributes["complete"], false);
  EXPECT_EQ(layout.slices[0].range, (ByteRange{10, b.size() - 10}));
}

TEST(GzipHandBuilt, MultiMemberWithZeroPaddingAndGarbage) {
  MemberSpec a, c;
  a.content = "first";
  c.content = "second";
  c.flags = 0x08;
  c.name = "two";
  auto b = concat({member(a), member(c), std::vector<std::byte>(512)});
  Layout layout = testing::parse_bytes(gz(), b);
  EXPECT_TRUE(layout.errors.empty());
  EXPECT_EQ(layout.header["members"], 2);
  EXPECT_EQ(layout.header["trailing_bytes"], 512);
  EXPECT_EQ(layout.header["uncompressed_size"], 11);
  EXPECT_EQ(layout.header["member_list"][1]["name"], "two");
  ASSERT_EQ(layout.slices.size(), 2u);
  EXPECT_EQ(inflate_exact(testing::slice_bytes(b, layout.slices[1])), "second");
  b.push_back(std::byte{1});
  layout = testing::parse_bytes(gz(), b);
  EXPECT_EQ(layout.errors.size(), 1u);
  EXPECT_EQ(layout.slices.size(), 2u);
  // A second member that starts but is cut short.
  const auto second = member(c);
  b = concat({member(a), std::vector<std::byte>(second.begin(), second.begin() + 12)});
  layout = testing::parse_bytes(gz(), b);
  EXPECT_EQ(layout.errors.size(), 1u);
  EXPECT_EQ(layout.header["members"], 2);
  EXPECT_EQ(layout.slices.size(), 1u);
  EXPECT_FALSE(layout.header.contains("uncompressed_size"));
}

TEST(GzipHandBuilt, MemberCap) {
  const auto one = member({"", 0, 0, "", "", ""});
  std::vector<std::byte> b;
  for (int i = 0; i < 4097; ++i) b.insert(b.end(), one.begin(), one.end());
  const Layout layout = testing::parse_bytes(gz(), b);
  EXPECT_EQ(layout.header["members"], 4096);
  EXPECT_EQ(layout.slices.size(), 4096u);
  ASSERT_EQ(layout.errors.size(), 1u);
  EXPECT_NE(layout.errors[0].find("more than 4096 members"), std::string::npos);
}

TEST(GzipHandBuilt, WorkBudgetFallsBackToTheLastEightBytes) {
  // 1 MiB of zeros compressed and full-flushed is a byte-aligned run of blocks that can be
  // repeated; 1100 copies decode to 1100 MiB, beyond the 1 GiB work budget.
  const auto block = raw_deflate(std::string(1 << 20, '\0'), false);
  Bytes b;
  b.u8(0x1f).u8(0x8b).u8(8).u8(0).le(0, 4).u8(0).u8(3);
  for (int i = 0; i < 1100; ++i) b.append(block);
  b.u8(0x03).u8(0x00);  // final empty fixed-Huffman block
  b.le(0xDEADBEEF, 4).le(1100u << 20, 4);
  const Layout layout = testing::parse_bytes(gz(), b.data());
  ASSERT_EQ(layout.errors.size(), 1u);
  EXPECT_NE(layout.errors[0].find("bytes of work"), std::string::npos);
  ASSERT_EQ(layout.slices.size(), 1u);
  EXPECT_EQ(layout.slices[0].range, (ByteRange{10, b.size() - 18}));
  EXPECT_EQ(layout.slices[0].attributes["complete"], false);
  EXPECT_EQ(layout.header["crc32"], 0xDEADBEEFu);
  EXPECT_EQ(layout.header["isize"], 1100u << 20);
}

TEST(GzipDetect, MagicOnly) {
  EXPECT_TRUE(gz().detect(to_bytes("\x1f\x8b"), 2));
  EXPECT_TRUE(gz().detect(member({}), 100));
  EXPECT_FALSE(gz().detect(to_bytes("\x1f"), 1));
  EXPECT_FALSE(gz().detect(to_bytes("\x8b\x1f\x08"), 3));
  EXPECT_FALSE(gz().detect(to_bytes("PK\x03\x04"), 4));
  EXPECT_FALSE(gz().detect({}, 0));
}

// ---------------------------------------------------------------- robustness

TEST(GzipRobustness, MutatedFilesStayInBounds) {
  MemberSpec rich;
  rich.flags = 0x1f;
  rich.extra = std::string("AP\x02\x00hi", 6);
  rich.name = "name";
  rich.comment = "comment";
  rich.content = std::string(2000, 'a') + "bcdefg";
  std::vector<std::vector<std::byte>> seeds = {member(rich), concat({member({}), member(rich)})};
  const std::string dir = testing::fixtures_dir() + "/gzip";
  for (const char* name : {"plain.gz", "hand.gz", "named.gz"}) {
    if (!testing::fixtures_dir().empty() && std::filesystem::exists(dir + "/" + name))
      seeds.push_back(testing::read_file(dir + "/" + name));
  }
  std::mt19937_64 rng(0x6219);
  for (int iter = 0; iter < 3000; ++iter) {
    std::vector<std::byte> b = seeds[static_cast<size_t>(iter) % seeds.size()];
    const int edits = 1 + static_cast<int>(rng() % 6);
    for (int e = 0; e < edits && !b.empty(); ++e) {
      const uint64_t pos = (rng() % 2 == 0 ? rng() % 48 : rng()) % b.size();
      const uint64_t kind = rng() % 5;
      if (kind == 0)
        b[pos] = static_cast<std::byte>(rng());
      else if (kind == 1)
        b[pos] ^= static_cast<std::byte>(1u << (rng() % 8));
      else if (kind == 2)
        b[pos] = std::byte{0xFF};
      else if (kind == 3)
        b.resize(static_cast<size_t>(rng() % b.size()));
      else
        b.insert(b.begin() + static_cast<std::ptrdiff_t>(pos), std::byte{0x1f});
    }
    const Layout layout = testing::parse_bytes(gz(), b);
    for (const auto& s : layout.slices)
      ASSERT_TRUE(range_within(s.range.offset, s.range.length, b.size())) << iter;
    (void)layout.header.dump(-1, ' ', false, Json::error_handler_t::strict);
  }
}

}  // namespace
}  // namespace payloadfs

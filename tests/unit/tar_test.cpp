// tar: real archives from GNU tar and Python's tarfile compared with `tar -xO` and
// tarfile.getmembers(); hand-built headers for the edge cases; a mutation sweep.

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "core/formats/builtin.hpp"
#include "core/io/checked_math.hpp"
#include "core/model/layout.hpp"
#include "unit/test_support.hpp"

namespace payloadfs {
namespace {

using testing::parse_bytes;
using testing::read_file;
using testing::slice_bytes;

const std::unique_ptr<Format> kTar = formats::make_tar();

// One 512-byte header, its checksum computed unless `checksum` says otherwise.
struct Header {
  std::string name;
  char type = '0';
  std::string size = "00000000000";  // octal text, or raw bytes for base-256 tests
  std::string mode = "0000644";
  std::string uid = "0001750";
  std::string gid = "0001750";
  std::string mtime = "14360000000";
  std::string magic = std::string(
      "ustar\0"
      "00",
      8);
  std::string prefix;
  std::string uname = "user";
  std::string gname = "group";
  bool bad_checksum = false;

  std::vector<std::byte> block() const {
    std::string b(512, '\0');
    auto put = [&](size_t off, size_t width, const std::string& v) {
      b.replace(off, std::min(width, v.size()), v.substr(0, width));
    };
    put(0, 100, name);
    put(100, 8, mode);
    put(108, 8, uid);
    put(116, 8, gid);
    put(124, 12, size);
    put(136, 12, mtime);
    b[156] = type;
    put(257, 8, magic);
    put(265, 32, uname);
    put(297, 32, gname);
    put(345, 155, prefix);
    b.replace(148, 8, "        ");
    unsigned sum = 0;
    for (const char c : b) sum += static_cast<unsigned char>(c);
    if (bad_checksum) ++sum;
    char chk[8];
    std::snprintf(chk, sizeof chk, "%06o", sum);
    b.replace(148, 7, std::string(chk, 6) + '\0');
    std::vector<std::byte> out(512);
    std::memcpy(out.data(), b.data(), 512);
    return out;
  }
};

std::string octal(uint64_t v, int width = 11) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%0*llo", width, static_cast<unsigned long long>(v));
  return buf;
}

class Archive {
 public:
  Archive& header(const Header& h) {
    bytes_.append(h.block());
    return *this;
  }
  // A member with data, padded to 512.
  Archive& file(Header h, const std::string& data) {
    h.size = octal(data.size());
    header(h);
    return this->data(data);
  }
  Archive& data(const std::string& d) {
    bytes_.raw(d);
    bytes_.zeros((512 - d.size() % 512) % 512);
    return *this;
  }
  Archive& pax(char type, const std::string& records) {
    Header h;
    h.name = "PaxHeaders/x";
    h.type = type;
    h.size = octal(records.size());
    header(h);
    return data(records);
  }
  Archive& end() {
    bytes_.zeros(1024);
    return *this;
  }
  const std::vector<std::byte>& bytes() const { return bytes_.data(); }
  std::vector<std::byte>& bytes() { return bytes_.data(); }

 private:
  testing::Bytes bytes_;
};

std::string record(const std::string& kv) {
  // "<len> key=value\n" where len counts itself.
  size_t len = kv.size() + 3;
  while (std::to_string(len).size() + kv.size() + 2 != len) ++len;
  return std::to_string(len) + " " + kv + "\n";
}

std::string text_of(const std::vector<std::byte>& file, const Slice& s) {
  const auto b = slice_bytes(file, s);
  return std::string(reinterpret_cast<const char*>(b.data()), b.size());
}

void expect_sane(const Layout& layout, uint64_t size) {
  for (const auto& s : layout.slices)
    EXPECT_TRUE(range_within(s.range.offset, s.range.length, size)) << s.name;
  EXPECT_NO_THROW((void)layout.header.dump());
}

bool detects(const std::vector<std::byte>& bytes) {
  return testing::detects(*kTar, bytes);
}

// ---- real archives -----------------------------------------------------------------------

std::string fixture_dir() {
  return testing::fixtures_dir() + "/tar";
}

Json expected_json() {
  const auto bytes = read_file(fixture_dir() + "/expected.json");
  return Json::parse(std::string(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
}

std::string from_hex(const std::string& hex) {
  std::string out;
  for (size_t i = 0; i + 1 < hex.size(); i += 2)
    out.push_back(static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16)));
  return out;
}

std::string strip_dot_slash(std::string s) {
  while (s.starts_with("./") && s.size() > 2) s.erase(0, 2);
  return s;
}

TEST(TarReal, MatchesTarAndTarfile) {
  if (!std::filesystem::exists(fixture_dir() + "/expected.json"))
    GTEST_FAIL() << "run tests/fixtures/gen_tar.py " << fixture_dir();
  const Json expected = expected_json();
  ASSERT_GE(expected["archives"].size(), 11u);
  for (const auto& archive : expected["archives"]) {
    const std::string file = archive["file"];
    SCOPED_TRACE(file);
    const auto bytes = read_file(fixture_dir() + "/" + file);
    ASSERT_FALSE(bytes.empty());
    EXPECT_TRUE(detects(bytes));
    const Layout layout = parse_bytes(*kTar, bytes);
    EXPECT_TRUE(layout.errors.empty()) << layout.errors.front();
    EXPECT_EQ(layout.header["format"], archive["format"]);
    EXPECT_EQ(layout.header["members"], archive["members"]);
    EXPECT_EQ(layout.header["sparse_files"], archive["sparse"]);
    EXPECT_EQ(layout.header["end_marker"], "two zero blocks");
    if (archive["format"] == "v7") {
      EXPECT_FALSE(layout.magic.has_value());
    } else {
      ASSERT_TRUE(layout.magic.has_value());
      EXPECT_EQ(layout.magic->offset, 257u);
      EXPECT_EQ(layout.magic->length, 8u);
    }
    const auto& regular = archive["regular"];
    EXPECT_EQ(layout.header["regular_files"], regular.size());
    ASSERT_EQ(layout.slices.size(), regular.size());
    for (size_t i = 0; i < regular.size(); ++i) {
      const auto& want = regular[i];
      const Slice& got = layout.slices[i];
      const std::string stored = from_hex(want["name_hex"]);
      SCOPED_TRACE(stored);
      EXPECT_EQ(got.name, strip_dot_slash(stored));
      EXPECT_EQ(got.attributes["stored_name"], stored);
      EXPECT_EQ(slice_bytes(bytes, got),
                read_file(fixture_dir() + "/" + want["data"].get<std::string>()));
      EXPECT_EQ(got.range.length, want["size"].get<uint64_t>());
      EXPECT_EQ(got.attributes["size"], want["size"]);
      EXPECT_EQ(std::stoll(got.attributes["mode"].get<std::string>(), nullptr, 8),
                want["mode"].get<int64_t>());
      EXPECT_EQ(got.attributes["uid"], want["uid"]);
      EXPECT_EQ(got.attributes["gid"], want["gid"]);
      EXPECT_NEAR(got.attributes["mtime"].get<double>(), want["mtime"].get<double>(), 1e-6);
      if (archive["format"] != "v7") {
        EXPECT_EQ(got.attributes["uname"], want["uname"]);
        EXPECT_EQ(got.attributes["gname"], want["gname"]);
      }
    }
  }
}

// Truncating a real archive anywhere keeps a prefix of its slices and reports an error.
TEST(TarReal, TruncatedAnywhere) {
  const auto full = read_file(fixture_dir() + "/gnu_pax.tar");
  ASSERT_FALSE(full.empty());
  const Layout whole = parse_bytes(*kTar, full);
  const uint64_t end = whole.header["end_offset"].get<uint64_t>();
  for (uint64_t cut = 0; cut < end + 1024; cut += (cut % 512 == 0 ? 1 : 511)) {
    const std::vector<std::byte> part(full.begin(), full.begin() + static_cast<ptrdiff_t>(cut));
    const Layout layout = parse_bytes(*kTar, part);
    expect_sane(layout, part.size());
    EXPECT_FALSE(layout.errors.empty()) << "cut at " << cut;
    ASSERT_LE(layout.slices.size(), whole.slices.size());
    for (size_t i = 0; i < layout.slices.size(); ++i) {
      EXPECT_EQ(layout.slices[i].name, whole.slices[i].name);
      EXPECT_EQ(layout.slices[i].range, whole.slices[i].range);
    }
  }
}

// ---- hand-built archives ------------------------------------------------------------------

TEST(TarBuilt, UstarPrefixAndAttributes) {
  Header h;
  h.name = "file.txt";
  h.prefix = "some/dir";
  h.mode = "0104755";
  Archive a;
  a.file(h, "contents").end();
  const Layout layout = parse_bytes(*kTar, a.bytes());
  EXPECT_TRUE(layout.errors.empty());
  EXPECT_EQ(layout.header["format"], "ustar");
  ASSERT_EQ(layout.slices.size(), 1u);
  const Slice& s = layout.slices[0];
  EXPECT_EQ(s.name, "some/dir/file.txt");
  EXPECT_EQ(s.range, (ByteRange{512, 8}));
  EXPECT_EQ(s.attributes["mode"], "104755");
  EXPECT_EQ(s.attributes["uid"], 1000);
  EXPECT_EQ(s.attributes["mtime"], 014360000000LL);
  EXPECT_EQ(s.attributes["uname"], "user");
  EXPECT_EQ(s.attributes["typeflag"], "0");
  EXPECT_EQ(text_of(a.bytes(), s), "contents");
}

TEST(TarBuilt, GnuKeepsNoPrefixAndReadsLongNames) {
  Header h;
  h.magic = std::string("ustar  \0", 8);
  h.prefix = "17";  // GNU keeps atime here: must not become part of the name
  h.name = "short";
  Header longname;
  longname.magic = h.magic;
  longname.name = "././@LongLink";
  longname.type = 'L';
  const std::string long_path = std::string(300, 'p') + "/leaf";
  Archive a;
  a.file(longname, long_path + '\0').file(h, "x");
  a.file(h, "y").end();
  const Layout layout = parse_bytes(*kTar, a.bytes());
  EXPECT_TRUE(layout.errors.empty());
  EXPECT_EQ(layout.header["format"], "gnu");
  EXPECT_EQ(layout.header["members"], 2);
  ASSERT_EQ(layout.slices.size(), 2u);
  EXPECT_EQ(layout.slices[0].name, long_path);
  EXPECT_EQ(layout.slices[1].name, "short");
}

TEST(TarBuilt, Base256Numbers) {
  Header h;
  h.name = "b256";
  h.magic = std::string("ustar  \0", 8);
  h.size = std::string("\x80\0\0\0\0\0\0\0\0\0\0\x05", 12);
  h.uid = std::string("\x80\0\0\0\0\x2d\xc6\xc0", 8);                             // 3000000
  h.mtime = std::string("\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xfe", 12);  // -2
  Archive a;
  a.header(h).data("12345").end();
  const Layout layout = parse_bytes(*kTar, a.bytes());
  EXPECT_TRUE(layout.errors.empty()) << layout.errors.front();
  ASSERT_EQ(layout.slices.size(), 1u);
  EXPECT_EQ(layout.slices[0].range, (ByteRange{512, 5}));
  EXPECT_EQ(layout.slices[0].attributes["uid"], 3000000);
  EXPECT_EQ(layout.slices[0].attributes["mtime"], -2);
}

TEST(TarBuilt, HugeSizesFailSafely) {
  const std::vector<std::string> sizes = {
      std::string("\x80\0\0\0\x02\0\0\0\0\0\0\0", 12),                      // 8 GiB (past EOF)
      std::string("\x80\0\0\0\xff\xff\xff\xff\xff\xff\xff\xff", 12),        // 2^64-1 (> int64)
      std::string("\x80\x7f\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff", 12),  // > 64 bits
      std::string("\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xfe", 12),  // negative
      "77777777777",                                                        // 8 GiB - 1
      "77777777777777",                                                     // no terminator
      "12x4",                                                               // not octal
  };
  for (const auto& size : sizes) {
    Header h;
    h.name = "big";
    h.size = size;
    Archive a;
    a.header(h).data("abc").end();
    const Layout layout = parse_bytes(*kTar, a.bytes());
    expect_sane(layout, a.bytes().size());
    EXPECT_TRUE(layout.slices.empty());
    EXPECT_FALSE(layout.errors.empty());
  }
  // Size 0 is fine.
  Header h;
  h.name = "zero";
  Archive a;
  a.header(h).end();
  const Layout layout = parse_bytes(*kTar, a.bytes());
  EXPECT_TRUE(layout.errors.empty());
  ASSERT_EQ(layout.slices.size(), 1u);
  EXPECT_EQ(layout.slices[0].range, (ByteRange{512, 0}));
}

TEST(TarBuilt, PaxRecordsAndGlobals) {
  Header h;
  h.name = "ustar_name";
  Archive a;
  a.pax('g', record("uname=global_user") + record("comment=ignored") + record("gid=77"));
  a.pax('x', record("path=pax/long/é/name.bin") + record("size=3") + record("mtime=1700000000.5") +
                 record("uid=4000000000"));
  h.size = octal(999);  // pax size overrides the header's
  a.header(h).data("abc");
  a.pax('x', record("uname="));  // empty value: back to the header's uname
  a.file(h, "second").end();
  const Layout layout = parse_bytes(*kTar, a.bytes());
  EXPECT_TRUE(layout.errors.empty()) << layout.errors.front();
  EXPECT_EQ(layout.header["format"], "pax");
  EXPECT_EQ(layout.header["members"], 2);
  ASSERT_EQ(layout.slices.size(), 2u);
  const Slice& s = layout.slices[0];
  EXPECT_EQ(s.name, "pax/long/é/name.bin");
  EXPECT_EQ(text_of(a.bytes(), s), "abc");
  EXPECT_EQ(s.attributes["uid"], 4000000000LL);
  EXPECT_EQ(s.attributes["gid"], 77);
  EXPECT_DOUBLE_EQ(s.attributes["mtime"].get<double>(), 1700000000.5);
  EXPECT_EQ(s.attributes["uname"], "global_user");
  const Slice& t = layout.slices[1];
  EXPECT_EQ(t.name, "ustar_name");
  EXPECT_EQ(text_of(a.bytes(), t), "second");
  EXPECT_EQ(t.attributes["uname"], "user");
  EXPECT_EQ(t.attributes["gid"], 77);
}

TEST(TarBuilt, MalformedPaxRecords) {
  const std::vector<std::string> bad = {
      "0 path=x\n",   "5 path=x\n", "99999999999999999999999 path=x\n",
      "12 path=abc!", "path=x\n",   "10 =value\n",
      "11 novalue\n", "4 a\n",
  };
  for (const auto& records : bad) {
    Header h;
    h.name = "after";
    Archive a;
    a.pax('x', records).file(h, "data").end();
    const Layout layout = parse_bytes(*kTar, a.bytes());
    expect_sane(layout, a.bytes().size());
    EXPECT_FALSE(layout.errors.empty()) << records;
    ASSERT_EQ(layout.slices.size(), 1u) << records;  // the member itself is still readable
  }
  // A bad pax size cannot be trusted for the walk: reported, header size used.
  Header h;
  h.name = "m";
  Archive a;
  a.pax('x', record("size=18446744073709551615")).file(h, "data").end();
  const Layout layout = parse_bytes(*kTar, a.bytes());
  EXPECT_FALSE(layout.errors.empty());
  ASSERT_EQ(layout.slices.size(), 1u);
  EXPECT_EQ(layout.slices[0].range.length, 4u);
  // A pax size near 2^63 overflows the walk.
  Archive b;
  b.pax('x', record("size=9223372036854775807")).file(h, "data").end();
  const Layout lb = parse_bytes(*kTar, b.bytes());
  expect_sane(lb, b.bytes().size());
  EXPECT_FALSE(lb.errors.empty());
  EXPECT_TRUE(lb.slices.empty());
}

TEST(TarBuilt, ExtendedHeaderCap) {
  Archive a;
  a.pax('x', std::string((1 << 20) + 1, 'a')).end();
  const Layout layout = parse_bytes(*kTar, a.bytes());
  ASSERT_FALSE(layout.errors.empty());
  EXPECT_NE(layout.errors[0].find("limit"), std::string::npos);
}

TEST(TarBuilt, EndMarkers) {
  Header h;
  h.name = "one";
  {  // no zero blocks at all
    Archive a;
    a.file(h, "1");
    const Layout layout = parse_bytes(*kTar, a.bytes());
    EXPECT_EQ(layout.slices.size(), 1u);
    EXPECT_EQ(layout.header["end_marker"], "eof");
    EXPECT_EQ(layout.errors.size(), 1u);
  }
  {  // a lone zero block
    Archive a;
    a.file(h, "1");
    a.bytes().resize(a.bytes().size() + 512);
    const Layout layout = parse_bytes(*kTar, a.bytes());
    EXPECT_EQ(layout.slices.size(), 1u);
    EXPECT_EQ(layout.header["end_marker"], "one zero block");
    EXPECT_EQ(layout.errors.size(), 1u);
  }
  {  // extended header and then the end
    Archive a;
    a.file(h, "1").pax('x', record("path=p")).end();
    const Layout layout = parse_bytes(*kTar, a.bytes());
    EXPECT_EQ(layout.slices.size(), 1u);
    EXPECT_EQ(layout.errors.size(), 1u);
  }
  {  // two zero blocks and trailing record padding
    Archive a;
    a.file(h, "1").end();
    a.bytes().resize(10240);
    const Layout layout = parse_bytes(*kTar, a.bytes());
    EXPECT_TRUE(layout.errors.empty());
    EXPECT_EQ(layout.header["end_offset"], 1024);
  }
}

TEST(TarBuilt, BadChecksumStopsTheWalk) {
  Header h;
  h.name = "good";
  Header bad = h;
  bad.name = "bad";
  bad.bad_checksum = true;
  Archive a;
  a.file(h, "g").file(bad, "b").file(h, "g2").end();
  const Layout layout = parse_bytes(*kTar, a.bytes());
  ASSERT_EQ(layout.slices.size(), 1u);
  EXPECT_EQ(layout.slices[0].name, "good");
  ASSERT_EQ(layout.errors.size(), 1u);
  EXPECT_NE(layout.errors[0].find("checksum"), std::string::npos);
}

TEST(TarBuilt, MemberTypes) {
  Archive a;
  Header h;
  for (const char t : std::string("0123456 7DMV") + '\0') {
    h.name = std::string("t_") + (t == '\0' ? 'z' : t);
    h.type = t;
    a.file(h, t == '0' || t == '7' || t == '\0' || t == 'D' ? "data" : "");
  }
  h.type = '\0';
  h.name = "olddir/";
  a.header(h);
  h.type = '2';  // a symlink whose size field is not zero: still no data records
  h.name = "sized_link";
  h.size = octal(1000);
  a.header(h);
  h.type = '0';
  h.name = "./dotted";
  a.file(h, "dot");
  a.end();
  const Layout layout = parse_bytes(*kTar, a.bytes());
  EXPECT_TRUE(layout.errors.empty()) << layout.errors.front();
  ASSERT_EQ(layout.slices.size(), 4u);
  EXPECT_EQ(layout.slices[0].name, "t_0");
  EXPECT_EQ(layout.slices[1].name, "t_7");
  EXPECT_EQ(layout.slices[2].name, "t_z");
  EXPECT_EQ(layout.slices[2].attributes["typeflag"], "");
  EXPECT_EQ(layout.slices[3].name, "dotted");
  EXPECT_EQ(layout.slices[3].attributes["stored_name"], "./dotted");
  EXPECT_EQ(layout.header["directories"], 2);
  EXPECT_EQ(layout.header["symlinks"], 2);
  EXPECT_EQ(layout.header["hardlinks"], 1);
  EXPECT_EQ(layout.header["other_members"], 7);  // 3 4 6 ' ' D M V
  EXPECT_EQ(layout.header["members"], 16);
}

TEST(TarBuilt, OldGnuSparse) {
  Header h;
  h.name = "sparse";
  h.type = 'S';
  h.magic = std::string("ustar  \0", 8);
  auto block = h.block();
  {  // extension blocks that never end
    block[482] = std::byte{1};
    // Recompute the checksum by hand: flip via a fresh header is simpler.
    std::string b(reinterpret_cast<const char*>(block.data()), 512);
    b.replace(148, 8, "        ");
    unsigned sum = 0;
    for (const char c : b) sum += static_cast<unsigned char>(c);
    char chk[8];
    std::snprintf(chk, sizeof chk, "%06o", sum);
    b.replace(148, 7, std::string(chk, 6) + '\0');
    std::memcpy(block.data(), b.data(), 512);
    testing::Bytes bytes;
    bytes.append(block);
    for (int i = 0; i < 4; ++i) {
      bytes.zeros(504).u8(1).zeros(7);
    }
    const Layout layout = parse_bytes(*kTar, bytes.data());
    expect_sane(layout, bytes.size());
    EXPECT_TRUE(layout.slices.empty());
    EXPECT_FALSE(layout.errors.empty());
  }
  {  // one extension block, then data, then a regular member
    testing::Bytes bytes;
    bytes.append(block);
    bytes.zeros(512);  // extension block with isextended = 0
    Header r;
    r.name = "after";
    Archive a;
    a.file(r, "ok").end();
    bytes.append(a.bytes());
    const Layout layout = parse_bytes(*kTar, bytes.data());
    EXPECT_TRUE(layout.errors.empty()) << layout.errors.front();
    EXPECT_EQ(layout.header["sparse_files"], 1);
    ASSERT_EQ(layout.slices.size(), 1u);
    EXPECT_EQ(layout.slices[0].name, "after");
    EXPECT_EQ(layout.slices[0].range.offset, 1024u + 512u);
  }
}

TEST(TarDetect, PositiveAndNegative) {
  Header h;
  h.name = "x";
  Archive ustar;
  ustar.file(h, "1").end();
  EXPECT_TRUE(detects(ustar.bytes()));

  h.magic = std::string("ustar  \0", 8);
  Archive gnu;
  gnu.file(h, "1").end();
  EXPECT_TRUE(detects(gnu.bytes()));

  h.magic = std::string(8, '\0');
  h.uname = h.gname = "";
  Archive v7;
  v7.file(h, "1").end();
  EXPECT_TRUE(detects(v7.bytes()));
  const Layout layout = parse_bytes(*kTar, v7.bytes());
  EXPECT_EQ(layout.header["format"], "v7");
  EXPECT_EQ(layout.slices.size(), 1u);

  h.name = std::string("bad\x01name", 8);  // a v7 header needs a sane name
  Archive v7bad;
  v7bad.file(h, "1").end();
  EXPECT_FALSE(detects(v7bad.bytes()));

  Header bad;
  bad.name = "x";
  bad.bad_checksum = true;
  Archive badsum;
  badsum.file(bad, "1").end();
  EXPECT_FALSE(detects(badsum.bytes()));

  EXPECT_FALSE(detects(std::vector<std::byte>(1024)));  // zeros
  EXPECT_FALSE(detects(std::vector<std::byte>(100)));   // too short
  EXPECT_FALSE(detects(std::vector<std::byte>(ustar.bytes().begin(), ustar.bytes().begin() + 511)));
  testing::Bytes text;
  for (int i = 0; i < 40; ++i) text.raw("The quick brown fox jumps over the lazy dog. ");
  EXPECT_FALSE(detects(text.data()));
}

TEST(TarParse, EmptyAndTiny) {
  for (size_t n : {0u, 1u, 511u, 512u, 1023u}) {
    const std::vector<std::byte> bytes(n);
    const Layout layout = parse_bytes(*kTar, bytes);
    EXPECT_TRUE(layout.slices.empty());
    EXPECT_FALSE(layout.errors.empty()) << n;
  }
}

// ---- robustness ---------------------------------------------------------------------------

TEST(TarFuzz, MutationsNeverEscapeTheFile) {
  std::vector<std::vector<std::byte>> seeds;
  for (const char* name : {"gnu_pax.tar", "gnu_gnu.tar", "gnu_sparse.tar", "py_pax.tar"}) {
    auto bytes = read_file(fixture_dir() + "/" + name);
    if (bytes.size() > 64 * 1024) bytes.resize(64 * 1024);
    if (!bytes.empty()) seeds.push_back(std::move(bytes));
  }
  Header h;
  h.name = "n";
  Archive a;
  a.pax('g', record("uname=g")).pax('x', record("path=p") + record("size=2")).file(h, "ab").end();
  seeds.push_back(a.bytes());
  ASSERT_GE(seeds.size(), 5u);
  std::mt19937_64 rng(20240601);
  for (int iter = 0; iter < 3000; ++iter) {
    auto bytes = seeds[rng() % seeds.size()];
    const int edits = 1 + static_cast<int>(rng() % 8);
    for (int e = 0; e < edits; ++e) {
      const size_t at = rng() % bytes.size();
      switch (rng() % 4) {
        case 0:
          bytes[at] = static_cast<std::byte>(rng());
          break;
        case 1:
          bytes[at] = std::byte{0};
          break;
        case 2:
          bytes[at] = static_cast<std::byte>('0' + rng() % 10);
          break;
        default:
          bytes.resize(at + 1);
          break;
      }
    }
    // Keep headers' checksums valid half the time so mutations reach the field parsers.
    if (iter % 2 == 0) {
      for (size_t off = 0; off + 512 <= bytes.size(); off += 512) {
        auto* b = reinterpret_cast<unsigned char*>(bytes.data() + off);
        if (std::memcmp(b + 257, "ustar", 5) != 0) continue;
        std::memset(b + 148, ' ', 8);
        unsigned sum = 0;
        for (int i = 0; i < 512; ++i) sum += b[i];
        char chk[8];
        std::snprintf(chk, sizeof chk, "%06o", sum);
        std::memcpy(b + 148, chk, 7);
      }
    }
    const Layout layout = parse_bytes(*kTar, bytes);
    expect_sane(layout, bytes.size());
    (void)detects(bytes);
  }
}

}  // namespace
}  // namespace payloadfs

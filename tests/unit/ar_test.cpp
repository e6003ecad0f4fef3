// ar: real archives from GNU ar, llvm-ar and dpkg-deb compared with `ar tvO`, `ar p` and
// `nm --print-armap` (tests/fixtures/gen_ar.py); hand-built archives for the edge cases and the
// malformed ones; a mutation sweep.

#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "core/formats/builtin.hpp"
#include "core/model/layout.hpp"
#include "unit/test_support.hpp"

namespace payloadfs {
namespace {

using testing::has_error;
using testing::parse_bytes;
using testing::read_file;
using testing::slice_bytes;
using testing::to_bytes;

const std::unique_ptr<Format> kAr = formats::make_ar();

bool detects(const std::vector<std::byte>& bytes) {
  return testing::detects(*kAr, bytes);
}

std::string fixture_dir() {
  return testing::fixtures_dir() + "/ar";
}

// One member header: the fields as text, padded with spaces to their widths.
std::string header(const std::string& name, uint64_t size, const std::string& mode = "100644",
                   const std::string& mtime = "1600000000", const std::string& uid = "1000",
                   const std::string& gid = "100", const std::string& size_text = "") {
  auto pad = [](std::string s, size_t width) {
    s.resize(width, ' ');
    return s;
  };
  return pad(name, 16) + pad(mtime, 12) + pad(uid, 6) + pad(gid, 6) + pad(mode, 8) +
         pad(size_text.empty() ? std::to_string(size) : size_text, 10) + "`\n";
}

// A member: header and data, padded to an even offset.
std::string member(const std::string& name, const std::string& data) {
  return header(name, data.size()) + data + (data.size() % 2 ? "\n" : "");
}

std::string text_of(const std::vector<std::byte>& file, const Slice& s) {
  const auto b = slice_bytes(file, s);
  return std::string(reinterpret_cast<const char*>(b.data()), b.size());
}

// ---- real archives -------------------------------------------------------------------------

TEST(ArReal, MatchesArAndNm) {
  const Json expected = testing::read_fixture_json(fixture_dir() + "/expected.json");
  ASSERT_TRUE(expected.is_object()) << "run tests/fixtures/gen_ar.py " << fixture_dir();
  ASSERT_GE(expected["archives"].size(), 10u);
  for (const auto& archive : expected["archives"]) {
    const std::string file = archive["file"];
    SCOPED_TRACE(file);
    const auto bytes = read_file(fixture_dir() + "/" + file);
    ASSERT_TRUE(detects(bytes));
    const Layout layout = parse_bytes(*kAr, bytes);
    EXPECT_TRUE(layout.errors.empty()) << testing::errors_of(layout);
    EXPECT_EQ(layout.header["variant"], archive["variant"]);
    const auto& members = archive["members"];
    EXPECT_EQ(layout.header["members"], members.size());
    ASSERT_EQ(layout.slices.size(), members.size());
    for (size_t i = 0; i < members.size(); ++i) {
      const auto& want = members[i];
      const Slice& got = layout.slices[i];
      SCOPED_TRACE(want["name"].get<std::string>());
      EXPECT_EQ(got.name, want["name"]);
      EXPECT_EQ(got.range.offset, want["offset"].get<uint64_t>());  // ar tvO's offset
      EXPECT_EQ(got.range.length, want["size"].get<uint64_t>());
      EXPECT_EQ(slice_bytes(bytes, got),
                read_file(fixture_dir() + "/" + want["data"].get<std::string>()));
      EXPECT_EQ(std::stoll(got.attributes["mode"].get<std::string>(), nullptr, 8) & 0777,
                want["mode"].get<int64_t>());
      EXPECT_EQ(got.attributes["uid"], want["uid"]);
      EXPECT_EQ(got.attributes["gid"], want["gid"]);
      const auto mtime = got.attributes["mtime"].get<int64_t>();
      EXPECT_EQ(mtime / 60 * 60, want["mtime_minute"].get<int64_t>());
      if (!want["mtime"].is_null()) {
        EXPECT_EQ(mtime, want["mtime"].get<int64_t>());
      }
    }
    const Json& table = layout.header["symbol_table"];
    if (archive["symbol_kind"].is_null()) {
      EXPECT_TRUE(table.is_null());
      continue;
    }
    ASSERT_TRUE(table.is_object());
    EXPECT_EQ(table["kind"], archive["symbol_kind"]);
    const auto& symbols = archive["symbols"];
    EXPECT_EQ(layout.header["symbol_count"], symbols.size());
    ASSERT_EQ(table["symbols"].size(), symbols.size());
    EXPECT_EQ(table["symbols_complete"], true);
    for (size_t i = 0; i < symbols.size(); ++i) {
      EXPECT_EQ(table["symbols"][i]["name"], symbols[i][0]);
      EXPECT_EQ(table["symbols"][i]["member"], symbols[i][1]);
    }
  }
}

TEST(ArReal, MalformedCopiesReportTheirError) {
  const Json expected = testing::read_fixture_json(fixture_dir() + "/expected.json");
  ASSERT_TRUE(expected.is_object());
  ASSERT_GE(expected["malformed"].size(), 6u);
  for (const auto& c : expected["malformed"]) {
    SCOPED_TRACE(c["file"].get<std::string>());
    const auto bytes = read_file(fixture_dir() + "/" + c["file"].get<std::string>());
    ASSERT_TRUE(detects(bytes));
    const Layout layout = parse_bytes(*kAr, bytes);
    testing::expect_in_bounds(layout, bytes.size());
    EXPECT_TRUE(has_error(layout, c["error"].get<std::string>())) << testing::errors_of(layout);
  }
}

// Cutting a real archive anywhere keeps a prefix of its slices; every cut inside a member
// header or member data is an error.
TEST(ArReal, TruncatedAnywhere) {
  const auto full = read_file(fixture_dir() + "/gnu_long_names.a");
  ASSERT_FALSE(full.empty());
  const Layout whole = parse_bytes(*kAr, full);
  ASSERT_EQ(whole.slices.size(), 4u);
  for (size_t cut = 9; cut < full.size(); cut += 7) {
    const std::vector<std::byte> part(full.begin(), full.begin() + static_cast<ptrdiff_t>(cut));
    const Layout layout = parse_bytes(*kAr, part);
    testing::expect_in_bounds(layout, part.size());
    ASSERT_LE(layout.slices.size(), whole.slices.size());
    for (size_t i = 0; i < layout.slices.size(); ++i)
      EXPECT_EQ(layout.slices[i].range, whole.slices[i].range);
    const bool at_boundary = std::any_of(whole.slices.begin(), whole.slices.end(), [&](auto& s) {
      const uint64_t end = s.range.offset + s.range.length;
      return cut == end || cut == end + (end & 1);
    });
    if (!at_boundary) {
      EXPECT_FALSE(layout.errors.empty()) << "cut at " << cut;
    }
  }
}

// ---- hand-built archives -------------------------------------------------------------------

TEST(ArBuilt, EmptyArchive) {
  const auto bytes = to_bytes("!<arch>\n");
  ASSERT_TRUE(detects(bytes));
  const Layout layout = parse_bytes(*kAr, bytes);
  EXPECT_TRUE(layout.errors.empty());
  EXPECT_EQ(layout.header["members"], 0);
  EXPECT_EQ(layout.header["variant"], "common");
  EXPECT_TRUE(layout.header["symbol_table"].is_null());
  ASSERT_TRUE(layout.magic.has_value());
  EXPECT_EQ(*layout.magic, (ByteRange{0, 8}));
}

TEST(ArBuilt, CommonFormatAttributesAndPadding) {
  const std::string file = "!<arch>\n" + member("odd", "abc") + member("even", "wxyz");
  const auto bytes = to_bytes(file);
  const Layout layout = parse_bytes(*kAr, bytes);
  EXPECT_TRUE(layout.errors.empty()) << testing::errors_of(layout);
  ASSERT_EQ(layout.slices.size(), 2u);
  EXPECT_EQ(layout.slices[0].name, "odd");
  EXPECT_EQ(layout.slices[0].range, (ByteRange{68, 3}));
  EXPECT_EQ(layout.slices[1].range, (ByteRange{68 + 4 + 60, 4}));  // after the padding byte
  EXPECT_EQ(text_of(bytes, layout.slices[1]), "wxyz");
  const Json& a = layout.slices[0].attributes;
  EXPECT_EQ(a["mode"], "100644");
  EXPECT_EQ(a["mtime"], 1600000000);
  EXPECT_EQ(a["uid"], 1000);
  EXPECT_EQ(a["gid"], 100);
  EXPECT_EQ(a["size"], 3);
  EXPECT_EQ(a["header_offset"], 8);
}

TEST(ArBuilt, GnuLongNamesAndRepeatedNames) {
  const std::string table = "a_very_long_member_name.o/\nanother_long_name.o/\n";
  const std::string file = "!<arch>\n" + member("//", table) + member("/0", "one") +
                           member("/27", "two") + member("short.o/", "three") +
                           member("/0", "again");
  const auto bytes = to_bytes(file);
  const Layout layout = parse_bytes(*kAr, bytes);
  EXPECT_TRUE(layout.errors.empty()) << testing::errors_of(layout);
  EXPECT_EQ(layout.header["variant"], "gnu");
  EXPECT_EQ(layout.header["members"], 4);
  EXPECT_EQ(layout.header["long_name_table"]["size"], table.size());
  ASSERT_EQ(layout.slices.size(), 4u);
  EXPECT_EQ(layout.slices[0].name, "a_very_long_member_name.o");
  EXPECT_EQ(layout.slices[1].name, "another_long_name.o");
  EXPECT_EQ(layout.slices[2].name, "short.o");
  // A repeated name stays the name; raw/ gives the second one its ~1 (layout.md).
  EXPECT_EQ(layout.slices[3].name, "a_very_long_member_name.o");
  EXPECT_EQ(text_of(bytes, layout.slices[3]), "again");
}

TEST(ArBuilt, BsdNamesAndSymbolTable) {
  // __.SYMDEF: 2 ranlib entries (little-endian), then the string table.
  testing::Bytes symdef;
  symdef.raw(std::string("__.SYMDEF SORTED\0\0\0\0", 20));
  symdef.le(16, 4).le(0, 4).le(0, 4).le(4, 4).le(0, 4).le(8, 4).raw(std::string("foo\0bar\0", 8));
  const std::string name = "a_bsd_member_with_a_long_name.o";
  const std::string data = "object bytes";
  std::string file = "!<arch>\n" + header("#1/20", symdef.size()) + symdef.text();
  const uint64_t member_offset = file.size();
  file += header("#1/" + std::to_string(name.size()), name.size() + data.size()) + name + data;
  // Fix the ranlib offsets to point at the member header.
  for (size_t at : {8 + 60 + 20 + 8, 8 + 60 + 20 + 16}) file[at] = static_cast<char>(member_offset);
  const auto bytes = to_bytes(file);
  const Layout layout = parse_bytes(*kAr, bytes);
  EXPECT_TRUE(layout.errors.empty()) << testing::errors_of(layout);
  EXPECT_EQ(layout.header["variant"], "bsd");
  ASSERT_EQ(layout.slices.size(), 1u);
  EXPECT_EQ(layout.slices[0].name, name);
  EXPECT_EQ(text_of(bytes, layout.slices[0]), data);
  const Json& table = layout.header["symbol_table"];
  EXPECT_EQ(table["kind"], "bsd");
  EXPECT_EQ(table["member"], "__.SYMDEF SORTED");
  EXPECT_EQ(table["count"], 2);
  EXPECT_EQ(table["symbols"][1]["name"], "bar");
  EXPECT_EQ(table["symbols"][1]["member"], name);
}

TEST(ArBuilt, GnuSymbolTableNamesItsMembers) {
  testing::Bytes symbols;
  symbols.be(2, 4).be(0, 4).be(0, 4).raw(std::string("alpha\0beta\0", 11));
  std::string file = "!<arch>\n" + member("/", symbols.text());
  const auto first = static_cast<uint32_t>(file.size());
  file += member("x.o/", "xx");
  const auto second = static_cast<uint32_t>(file.size());
  file += member("y.o/", "yy");
  auto put_be = [&](size_t at, uint32_t v) {
    for (int i = 0; i < 4; ++i)
      file[at + static_cast<size_t>(i)] = static_cast<char>(v >> (24 - 8 * i));
  };
  put_be(8 + 60 + 4, first);
  put_be(8 + 60 + 8, second);
  const Layout layout = parse_bytes(*kAr, to_bytes(file));
  EXPECT_TRUE(layout.errors.empty()) << testing::errors_of(layout);
  const Json& table = layout.header["symbol_table"];
  EXPECT_EQ(table["kind"], "gnu");
  EXPECT_EQ(layout.header["symbol_count"], 2);
  EXPECT_EQ(table["symbols"][0], (Json{{"name", "alpha"}, {"member", "x.o"}}));
  EXPECT_EQ(table["symbols"][1], (Json{{"name", "beta"}, {"member", "y.o"}}));
}

// ---- malformed -----------------------------------------------------------------------------

TEST(ArMalformed, SizeThatIsNotANumber) {
  const std::string file = "!<arch>\n" + header("a/", 0, "644", "0", "0", "0", "12abc") + "x";
  const Layout layout = parse_bytes(*kAr, to_bytes(file));
  EXPECT_TRUE(has_error(layout, "is not a decimal number")) << testing::errors_of(layout);
  EXPECT_TRUE(layout.slices.empty());
}

TEST(ArMalformed, BlankSizeAndHugeSize) {
  for (const std::string& size : {std::string(" "), std::string("9999999999")}) {
    const std::string file = "!<arch>\n" + header("a/", 0, "644", "0", "0", "0", size) + "x";
    const Layout layout = parse_bytes(*kAr, to_bytes(file));
    EXPECT_FALSE(layout.errors.empty()) << size;
    EXPECT_TRUE(layout.slices.empty());
  }
}

TEST(ArMalformed, MemberPastTheEnd) {
  const std::string file = "!<arch>\n" + member("ok/", "fine") + header("cut/", 100) + "short";
  const Layout layout = parse_bytes(*kAr, to_bytes(file));
  EXPECT_TRUE(has_error(layout, "runs past the end of the file")) << testing::errors_of(layout);
  ASSERT_EQ(layout.slices.size(), 1u);  // the whole member before it stays
  EXPECT_EQ(layout.slices[0].name, "ok");
}

TEST(ArMalformed, LongNameReferences) {
  const std::string table = "name_one.o/\nunterminated";
  const std::string file = "!<arch>\n" + member("//", table) + member("/500", "a") +
                           member("/12", "b") + member("/x1", "c");
  const Layout layout = parse_bytes(*kAr, to_bytes(file));
  EXPECT_TRUE(has_error(layout, "outside the long-name table")) << testing::errors_of(layout);
  EXPECT_TRUE(has_error(layout, "does not end with a newline"));
  EXPECT_TRUE(has_error(layout, "unknown special name"));
  ASSERT_EQ(layout.slices.size(), 3u);  // the data is sound; the stored names are kept
  EXPECT_EQ(layout.slices[0].name, "/500");
}

TEST(ArMalformed, LongNameWithoutTable) {
  const Layout layout = parse_bytes(*kAr, to_bytes("!<arch>\n" + member("/0", "a")));
  EXPECT_TRUE(has_error(layout, "no long-name table")) << testing::errors_of(layout);
}

TEST(ArMalformed, TruncatedHeaderAndBadTerminator) {
  const std::string good = "!<arch>\n" + member("a/", "data");
  Layout layout = parse_bytes(*kAr, to_bytes(good + header("b/", 4).substr(0, 30)));
  EXPECT_TRUE(has_error(layout, "truncated member header")) << testing::errors_of(layout);
  EXPECT_EQ(layout.slices.size(), 1u);
  std::string bad = good;
  bad[8 + 58] = 'X';
  layout = parse_bytes(*kAr, to_bytes(bad));
  EXPECT_TRUE(has_error(layout, "does not end with")) << testing::errors_of(layout);
}

TEST(ArMalformed, BsdNameLongerThanTheMember) {
  const std::string file = "!<arch>\n" + header("#1/50", 10) + "0123456789";
  const Layout layout = parse_bytes(*kAr, to_bytes(file));
  EXPECT_TRUE(has_error(layout, "BSD name length")) << testing::errors_of(layout);
  const std::string limit = "!<arch>\n" + header("#1/5000", 6000) + std::string(6000, 'n');
  EXPECT_TRUE(has_error(parse_bytes(*kAr, to_bytes(limit)), "exceeds the limit of 4096"));
}

TEST(ArMalformed, SymbolTablesThatDoNotFit) {
  testing::Bytes gnu;
  gnu.be(1000, 4).be(0, 4);
  Layout layout = parse_bytes(*kAr, to_bytes("!<arch>\n" + member("/", gnu.text())));
  EXPECT_TRUE(has_error(layout, "symbols, more than its")) << testing::errors_of(layout);
  layout = parse_bytes(*kAr, to_bytes("!<arch>\n" + member("/", "ab")));
  EXPECT_TRUE(has_error(layout, "too few for its symbol count")) << testing::errors_of(layout);
  testing::Bytes bsd;
  bsd.le(64, 4).le(0, 4);
  layout = parse_bytes(*kAr, to_bytes("!<arch>\n" + member("__.SYMDEF", bsd.text())));
  EXPECT_TRUE(has_error(layout, "byte counts do not fit")) << testing::errors_of(layout);
  testing::Bytes strx;  // a name index past the string table
  strx.le(8, 4).le(100, 4).le(0, 4).le(4, 4).raw("abc");
  strx.raw(std::string(1, '\0'));
  layout = parse_bytes(*kAr, to_bytes("!<arch>\n" + member("__.SYMDEF", strx.text())));
  EXPECT_TRUE(has_error(layout, "is outside its 4-byte string table"))
      << testing::errors_of(layout);
}

TEST(ArLimits, SymbolsListedUpToTheLimit) {
  constexpr uint32_t kCount = 10'001;
  // The table's size is fixed by the count, so the member after it lands at a known offset.
  const uint64_t table_bytes = 4 + 4 * uint64_t{kCount} + 2 * uint64_t{kCount};
  const auto member_offset = static_cast<uint32_t>(8 + 60 + table_bytes + (table_bytes & 1));
  testing::Bytes symbols;
  symbols.be(kCount, 4);
  for (uint32_t i = 0; i < kCount; ++i) symbols.be(member_offset, 4);
  for (uint32_t i = 0; i < kCount; ++i) symbols.raw(std::string("s\0", 2));
  const std::string file = "!<arch>\n" + member("/", symbols.text()) + member("m.o/", "m");
  const Layout layout = parse_bytes(*kAr, to_bytes(file));
  EXPECT_TRUE(has_error(layout, "only the first 10000 are listed")) << testing::errors_of(layout);
  const Json& table = layout.header["symbol_table"];
  EXPECT_EQ(layout.header["symbol_count"], kCount);
  EXPECT_EQ(table["symbols"].size(), 10'000u);
  EXPECT_EQ(table["symbols"][9'999]["member"], "m.o");
  EXPECT_EQ(table["symbols_complete"], false);
  EXPECT_FALSE(has_error(layout, "point at no member"));
}

TEST(ArLimits, ErrorsAreListedUpToTheLimit) {
  std::string file = "!<arch>\n";
  for (int i = 0; i < 1500; ++i) file += header("a/", 2, "644", "0", "bad") + "ab";
  const Layout layout = parse_bytes(*kAr, to_bytes(file));
  EXPECT_EQ(layout.slices.size(), 1500u);
  ASSERT_EQ(layout.errors.size(), 1001u);
  EXPECT_EQ(layout.errors.back(), "500 more errors after the first 1000 are not listed");
}

TEST(ArMalformed, SymbolsPointingAtNoMember) {
  testing::Bytes symbols;
  symbols.be(1, 4).be(12345, 4).raw(std::string("lost\0", 5));
  const Layout layout =
      parse_bytes(*kAr, to_bytes("!<arch>\n" + member("/", symbols.text()) + member("a/", "a")));
  EXPECT_TRUE(has_error(layout, "1 symbols point at no member header"))
      << testing::errors_of(layout);
  EXPECT_TRUE(layout.header["symbol_table"]["symbols"][0]["member"].is_null());
}

TEST(ArMalformed, NonNumericAttributes) {
  const std::string file = "!<arch>\n" + header("a/", 1, "64x", "soon", "me", "us") + "z\n";
  const Layout layout = parse_bytes(*kAr, to_bytes(file));
  ASSERT_EQ(layout.slices.size(), 1u);
  for (const char* key : {"mode", "mtime", "uid", "gid"})
    EXPECT_TRUE(has_error(layout, std::string("the ") + key + " field")) << key;
}

TEST(ArDetect, SignatureOnly) {
  EXPECT_TRUE(detects(to_bytes("!<arch>\n")));
  EXPECT_FALSE(detects(to_bytes("!<arch>")));
  EXPECT_FALSE(detects(to_bytes("!<thin>\n")));
  EXPECT_FALSE(detects(to_bytes("<arch>\n!")));
}

TEST(ArFuzz, MutationsNeverEscapeTheFile) {
  std::vector<std::vector<std::byte>> seeds;
  for (const char* f : {"gnu_long_names.a", "llvm_bsd.a", "llvm_gnu_sym64.a",
                        "llvm_darwin_symdef64.a", "package_xz.deb"})
    seeds.push_back(read_file(fixture_dir() + "/" + f));
  for (const auto& s : seeds) ASSERT_FALSE(s.empty());
  testing::mutate_and_parse(*kAr, seeds, 20260, 3000);
}

}  // namespace
}  // namespace payloadfs

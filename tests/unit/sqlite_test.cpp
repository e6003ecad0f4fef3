// SQLite header parser: hand-built headers, and real databases compared with SQLite's own view
// (showdb and PRAGMAs, recorded by tests/fixtures/gen_sqlite.py).

#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "core/formats/builtin.hpp"
#include "unit/test_support.hpp"

namespace payloadfs {
namespace {

using testing::Bytes;
using testing::errors_of;
using testing::has_error;
using testing::parse_bytes;

std::unique_ptr<Format> sqlite() {
  return formats::make_sqlite();
}

struct Fields {
  uint16_t page_size = 4096;
  uint8_t write_version = 1, read_version = 1, reserved = 0, max = 64, min = 32, leaf = 32;
  uint32_t change_counter = 7, page_count = 3, trunk = 0, freelist = 0, cookie = 1, format = 4;
  uint32_t cache = 0, top_root = 0, encoding = 1, user_version = 0, incremental = 0, app_id = 0;
  uint32_t valid_for = 7, version = 3040001;
  uint8_t reserved_byte = 0;
};

// A database of `pages` pages whose first 100 bytes are the header described by `f`.
std::vector<std::byte> database(const Fields& f, uint64_t pages = 3) {
  Bytes b;
  b.raw(std::string_view("SQLite format 3\0", 16));
  b.be(f.page_size, 2).u8(f.write_version).u8(f.read_version).u8(f.reserved);
  b.u8(f.max).u8(f.min).u8(f.leaf);
  for (uint32_t v : {f.change_counter, f.page_count, f.trunk, f.freelist, f.cookie, f.format,
                     f.cache, f.top_root, f.encoding, f.user_version, f.incremental, f.app_id})
    b.be(v, 4);
  b.u8(f.reserved_byte).zeros(19);
  b.be(f.valid_for, 4).be(f.version, 4);
  const uint64_t page = f.page_size == 1 ? 65536 : f.page_size;
  b.zeros(static_cast<size_t>(page * pages - 100));
  return b.data();
}

TEST(Sqlite, Detects) {
  const auto f = sqlite();
  const auto db = database(Fields{});
  EXPECT_TRUE(f->detect(std::span(db).first(100), db.size()));
  EXPECT_TRUE(f->detect(std::span(db).first(16), 16));
  EXPECT_FALSE(f->detect(std::span(db).first(15), 15));
  EXPECT_FALSE(f->detect(Bytes().raw("SQLite format 3 ").zeros(84).data(), 100));
  EXPECT_FALSE(f->detect(Bytes().raw("SQLite format 2").u8(0).zeros(84).data(), 100));
  EXPECT_FALSE(f->detect({}, 0));
}

TEST(Sqlite, DecodesEveryField) {
  Fields f;
  f.reserved = 8;
  f.trunk = 2;
  f.freelist = 1;
  f.cookie = 0x01020304;
  f.cache = 0xFFFFFFFF;  // -1
  f.top_root = 3;
  f.encoding = 3;
  f.user_version = 0xFFFFFFFB;  // -5
  f.incremental = 1;
  f.app_id = 0x80000000;
  f.version = 3045002;
  const auto db = database(f);
  const Layout l = parse_bytes(*sqlite(), db);
  EXPECT_TRUE(l.errors.empty()) << errors_of(l);
  const Json& h = l.header;
  EXPECT_EQ(h["page_size"], 4096);
  EXPECT_EQ(h["reserved_space"], 8);
  EXPECT_EQ(h["max_payload_fraction"], 64);
  EXPECT_EQ(h["file_change_counter"], 7);
  EXPECT_EQ(h["page_count"], 3);
  EXPECT_EQ(h["first_freelist_trunk"], 2);
  EXPECT_EQ(h["freelist_pages"], 1);
  EXPECT_EQ(h["schema_cookie"], 0x01020304);
  EXPECT_EQ(h["schema_format"], 4);
  EXPECT_EQ(h["default_cache_size"], -1);
  EXPECT_EQ(h["autovacuum_top_root"], 3);
  EXPECT_EQ(h["text_encoding"], 3);
  EXPECT_EQ(h["text_encoding_name"], "utf-16be");
  EXPECT_EQ(h["user_version"], -5);
  EXPECT_EQ(h["incremental_vacuum"], 1);
  EXPECT_EQ(h["application_id"], INT32_MIN);
  EXPECT_EQ(h["version_valid_for"], 7);
  EXPECT_EQ(h["sqlite_version"], 3045002);
  EXPECT_EQ(h["sqlite_version_string"], "3.45.2");
  EXPECT_EQ(h["page_count_valid"], true);
  EXPECT_EQ(h["database_pages"], 3);
  EXPECT_EQ(h["database_pages_source"], "header");
  EXPECT_EQ(h["journal_mode"], "rollback");
  ASSERT_EQ(l.slices.size(), 1U);
  EXPECT_EQ(l.slices[0].name, "header");
  EXPECT_EQ(l.slices[0].range, (ByteRange{0, 100}));
  ASSERT_TRUE(l.magic.has_value());
  EXPECT_EQ(*l.magic, (ByteRange{0, 16}));
}

TEST(Sqlite, PageSizes) {
  for (uint32_t raw : {512U, 1024U, 2048U, 4096U, 8192U, 16384U, 32768U, 1U}) {
    Fields f;
    f.page_size = static_cast<uint16_t>(raw);
    const Layout l = parse_bytes(*sqlite(), database(f, 2));  // the header says 3 pages
    f.page_count = 2;
    const Layout l2 = parse_bytes(*sqlite(), database(f, 2));
    EXPECT_TRUE(l2.errors.empty()) << raw << errors_of(l2);
    EXPECT_EQ(l2.header["page_size"], raw == 1 ? 65536U : raw);
    EXPECT_EQ(l2.header["page_size_raw"], raw);
    EXPECT_TRUE(has_error(l, "only 2")) << raw;
  }
  for (uint32_t raw : {0U, 2U, 256U, 511U, 513U, 3000U, 65535U, 0x8001U}) {
    auto bytes = database(Fields{});
    bytes[16] = static_cast<std::byte>(raw >> 8);
    bytes[17] = static_cast<std::byte>(raw & 0xFF);
    const Layout l = parse_bytes(*sqlite(), bytes);
    EXPECT_TRUE(has_error(l, "page size field")) << raw;
    EXPECT_TRUE(l.header["database_pages"].is_number()) << raw;  // header count still valid
    EXPECT_EQ(l.slices.size(), 1U);
  }
}

TEST(Sqlite, InHeaderPageCountValidity) {
  // version-valid-for != change counter: the size comes from the file, as SQLite does it.
  Fields f;
  f.page_count = 999;
  f.valid_for = 6;
  Layout l = parse_bytes(*sqlite(), database(f, 5));
  EXPECT_TRUE(l.errors.empty()) << errors_of(l);
  EXPECT_EQ(l.header["page_count"], 999);
  EXPECT_EQ(l.header["page_count_valid"], false);
  EXPECT_EQ(l.header["database_pages"], 5);
  EXPECT_EQ(l.header["database_pages_source"], "file size");
  // A zero in-header size is never valid.
  f = Fields{};
  f.page_count = 0;
  l = parse_bytes(*sqlite(), database(f, 4));
  EXPECT_EQ(l.header["page_count_valid"], false);
  EXPECT_EQ(l.header["database_pages"], 4);
  // Valid but larger than the file.
  f = Fields{};
  f.page_count = 10;
  l = parse_bytes(*sqlite(), database(f, 4));
  EXPECT_TRUE(has_error(l, "holds only 4")) << errors_of(l);
  // A partial last page counts as a page (SQLite rounds up) and is reported.
  auto bytes = database(Fields{});
  bytes.resize(bytes.size() - 100);
  l = parse_bytes(*sqlite(), bytes);
  EXPECT_TRUE(has_error(l, "whole number")) << errors_of(l);
}

TEST(Sqlite, ValidityChecks) {
  auto check = [](auto mutate, std::string_view needle) {
    Fields f;
    mutate(f);
    const Layout l = parse_bytes(*sqlite(), database(f));
    EXPECT_TRUE(has_error(l, needle)) << needle << "\n" << errors_of(l);
    EXPECT_EQ(l.slices.size(), 1U);
  };
  check([](Fields& f) { f.max = 65; }, "64/32/32");
  check([](Fields& f) { f.min = 0; }, "64/32/32");
  check([](Fields& f) { f.leaf = 255; }, "64/32/32");
  check([](Fields& f) { f.write_version = 3; }, "write version 3");
  check([](Fields& f) { f.read_version = 0; }, "read version 0");
  check([](Fields& f) { f.page_size = 512, f.reserved = 33; }, "below the minimum of 480");
  check([](Fields& f) { f.encoding = 4; }, "text encoding 4");
  check([](Fields& f) { f.format = 5; }, "schema format 5");
  check([](Fields& f) { f.trunk = 9; }, "freelist trunk page 9");
  check([](Fields& f) { f.trunk = 2, f.freelist = 5; }, "does not fit");
  check([](Fields& f) { f.freelist = 1; }, "disagree");
  check([](Fields& f) { f.top_root = 4; }, "largest root");
  check([](Fields& f) { f.incremental = 1; }, "auto-vacuum is off");
  check([](Fields& f) { f.reserved_byte = 1; }, "reserved for expansion");
  // Encoding 0 (not yet set) is not an error and has no name.
  Fields f;
  f.encoding = 0;
  const Layout l = parse_bytes(*sqlite(), database(f));
  EXPECT_TRUE(l.errors.empty()) << errors_of(l);
  EXPECT_TRUE(l.header["text_encoding_name"].is_null());
}

TEST(Sqlite, TruncatedAndHostile) {
  const auto db = database(Fields{});
  for (size_t n = 0; n < 100; ++n) {
    const std::vector<std::byte> cut(db.begin(), db.begin() + static_cast<long>(n));
    const Layout l = parse_bytes(*sqlite(), cut);
    EXPECT_TRUE(has_error(l, "shorter than the 100-byte")) << n;
    EXPECT_TRUE(l.slices.empty());
  }
  // Exactly the header: parses, but the file is not a whole page.
  const std::vector<std::byte> header(db.begin(), db.begin() + 100);
  const Layout l = parse_bytes(*sqlite(), header);
  EXPECT_EQ(l.slices.size(), 1U);
  EXPECT_TRUE(has_error(l, "whole number"));
  // All 0xFF and all-maximum fields: no crash, errors, slice kept.
  auto ff = db;
  std::fill(ff.begin() + 16, ff.begin() + 100, std::byte{0xFF});
  const Layout lf = parse_bytes(*sqlite(), ff);
  EXPECT_FALSE(lf.errors.empty());
  EXPECT_EQ(lf.header["page_count"], 0xFFFFFFFFU);
  EXPECT_EQ(lf.header["user_version"], -1);
  EXPECT_EQ(lf.slices.size(), 1U);
}

std::string fixture(const std::string& name) {
  return testing::fixtures_dir() + "/sqlite/" + name;
}

uint32_t as_u32(const Json& v) {
  return v.is_number_unsigned() ? static_cast<uint32_t>(v.get<uint64_t>())
                                : static_cast<uint32_t>(v.get<int64_t>());
}

TEST(Sqlite, RealDatabasesMatchSqlite) {
  std::ifstream in(fixture("expected.json"));
  ASSERT_TRUE(in.good()) << "run tests/fixtures/gen_sqlite.py first (PAYLOADFS_FIXTURES)";
  const Json expected = Json::parse(in);
  ASSERT_GE(expected.size(), 14U);
  for (const auto& [name, want] : expected.items()) {
    SCOPED_TRACE(name);
    const auto bytes = testing::read_file(fixture(name));
    ASSERT_EQ(bytes.size(), want["size"].get<uint64_t>());
    const auto f = sqlite();
    ASSERT_TRUE(
        f->detect(std::span(bytes).first(std::min<size_t>(bytes.size(), 4096)), bytes.size()));
    const Layout l = parse_bytes(*f, bytes);
    EXPECT_TRUE(l.errors.empty()) << errors_of(l);
    const Json& h = l.header;
    // Every field showdb decodes; it prints 32-bit fields unsigned.
    for (const auto& [key, value] : want["showdb"].items()) {
      ASSERT_TRUE(h.contains(key)) << key;
      EXPECT_EQ(as_u32(h[key]), as_u32(value)) << key;
    }
    // The payload fractions, which showdb only dumps as bytes.
    EXPECT_EQ(h["max_payload_fraction"], std::to_integer<int>(bytes[21]));
    // The library's own view.
    const Json& p = want["pragma"];
    EXPECT_EQ(h["page_size"], p["page_size"]);
    EXPECT_EQ(h["database_pages"], p["page_count"]);
    EXPECT_EQ(h["user_version"], p["user_version"]);
    EXPECT_EQ(h["application_id"], p["application_id"]);
    std::string encoding = p["encoding"].get<std::string>();
    for (auto& c : encoding) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    EXPECT_EQ(h["text_encoding_name"], encoding);
    EXPECT_EQ(h["schema_cookie"], p["schema_version"]);
    EXPECT_EQ(h["freelist_pages"], p["freelist_count"]);
    const int auto_vacuum =
        h["autovacuum_top_root"] == 0 ? 0 : (h["incremental_vacuum"] != 0 ? 2 : 1);
    EXPECT_EQ(auto_vacuum, p["auto_vacuum"]);
    EXPECT_EQ(h["journal_mode"] == "wal", p["journal_mode"] == "wal");
    EXPECT_EQ(h["max_payload_fraction"], 64);
    EXPECT_EQ(h["min_payload_fraction"], 32);
    EXPECT_EQ(h["leaf_payload_fraction"], 32);
    EXPECT_EQ(h["sqlite_version_string"], want["library_version"]);
    // The header slice holds the bytes showdb dumped.
    ASSERT_EQ(l.slices.size(), 1U);
    EXPECT_EQ(testing::slice_bytes(bytes, l.slices[0]),
              testing::read_file(fixture(name + ".header")));
  }
}

TEST(Sqlite, RandomMutationsStayInBounds) {
  std::vector<std::vector<std::byte>> seeds = {database(Fields{})};
  for (const char* name : {"default.db", "page512.db", "freelist.db", "wal.db", "utf16le.db"}) {
    auto bytes = testing::read_file(fixture(name));
    if (!bytes.empty()) seeds.push_back(std::move(bytes));
  }
  std::mt19937_64 rng(7);
  const auto f = sqlite();
  for (int iter = 0; iter < 3000; ++iter) {
    auto bytes = seeds[static_cast<size_t>(iter) % seeds.size()];
    const int edits = 1 + static_cast<int>(rng() % 6);
    for (int e = 0; e < edits; ++e) {
      const size_t at = 16 + static_cast<size_t>(rng() % 84);
      if (rng() % 10 == 0) {
        bytes.resize(std::min(bytes.size(), static_cast<size_t>(rng() % 200)));
        break;
      }
      bytes[at] = static_cast<std::byte>(rng());
    }
    const Layout l = parse_bytes(*f, bytes);
    for (const auto& s : l.slices) {
      ASSERT_LE(s.range.offset, bytes.size());
      ASSERT_LE(s.range.length, bytes.size() - s.range.offset);
    }
    (void)l.header.dump();
  }
}

}  // namespace
}  // namespace payloadfs

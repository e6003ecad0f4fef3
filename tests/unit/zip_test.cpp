// zip: real archives from Info-ZIP zip and Python's zipfile compared with zipfile, zipinfo -v
// and unzip -p; hand-built archives for the edge cases; a mutation sweep.

#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "core/formats/builtin.hpp"
#include "core/io/checked_math.hpp"
#include "core/model/layout.hpp"
#include "core/render/json_text.hpp"
#include "unit/test_support.hpp"

namespace payloadfs {
namespace {

using testing::Bytes;
using testing::parse_bytes;
using testing::read_file;
using testing::slice_bytes;

const std::unique_ptr<Format> kZip = formats::make_zip();

struct Entry {
  std::string name;
  std::string data;
  uint16_t method = 0;
  uint16_t flags = 0;
  uint16_t time = (12 << 11) | (34 << 5) | 28;  // 12:34:56
  uint16_t date = (41 << 9) | (6 << 5) | 15;    // 2021-06-15
  uint32_t crc = 0x12345678;
  std::string local_extra;
  std::string central_extra;
  std::optional<uint32_t> csize, usize, offset;  // central overrides (e.g. 0xFFFFFFFF)
  uint16_t disk = 0;
};

Entry E(std::string name, std::string data = "", uint16_t method = 0, uint16_t flags = 0,
        uint16_t disk = 0) {
  Entry e;
  e.name = std::move(name);
  e.data = std::move(data);
  e.method = method;
  e.flags = flags;
  e.disk = disk;
  return e;
}

struct ZipBuilder {
  std::vector<Entry> entries;
  std::string comment;
  std::string prefix;     // prepended bytes (offsets not adjusted)
  bool zip64 = false;     // write a zip64 end record and locator
  bool saturate = false;  // 0xFFFF... in the plain end record
  std::optional<uint64_t> declared_entries, cd_offset_override, cd_size_override;
  uint16_t disk = 0, cd_disk = 0;
  std::string trailing;

  Bytes build() const {
    Bytes b;
    b.raw(prefix);
    std::vector<uint64_t> offsets;
    for (const auto& e : entries) {
      offsets.push_back(b.size() - prefix.size());
      b.le(0x04034b50, 4).le(20, 2).le(e.flags, 2).le(e.method, 2).le(e.time, 2).le(e.date, 2);
      b.le(e.crc, 4).le(e.data.size(), 4).le(e.data.size(), 4);
      b.le(e.name.size(), 2).le(e.local_extra.size(), 2).raw(e.name).raw(e.local_extra);
      b.raw(e.data);
    }
    const uint64_t cd_start = b.size() - prefix.size();
    for (size_t i = 0; i < entries.size(); ++i) {
      const auto& e = entries[i];
      b.le(0x02014b50, 4).le(0x031e, 2).le(20, 2).le(e.flags, 2).le(e.method, 2);
      b.le(e.time, 2).le(e.date, 2).le(e.crc, 4);
      b.le(e.csize.value_or(static_cast<uint32_t>(e.data.size())), 4);
      b.le(e.usize.value_or(static_cast<uint32_t>(e.data.size())), 4);
      b.le(e.name.size(), 2).le(e.central_extra.size(), 2).le(0, 2).le(e.disk, 2).le(0, 2);
      b.le(0, 4).le(e.offset.value_or(static_cast<uint32_t>(offsets[i])), 4);
      b.raw(e.name).raw(e.central_extra);
    }
    const uint64_t cd_size = cd_size_override.value_or(b.size() - prefix.size() - cd_start);
    const uint64_t cd_offset = cd_offset_override.value_or(cd_start);
    const uint64_t count = declared_entries.value_or(entries.size());
    if (zip64) {
      const uint64_t rec = b.size() - prefix.size();
      b.le(0x06064b50, 4).le(44, 8).le(45, 2).le(45, 2).le(disk, 4).le(cd_disk, 4);
      b.le(count, 8).le(count, 8).le(cd_size, 8).le(cd_offset, 8);
      b.le(0x07064b50, 4).le(0, 4).le(rec, 8).le(1, 4);
    }
    b.le(0x06054b50, 4).le(disk, 2).le(cd_disk, 2);
    b.le(saturate ? 0xFFFF : count, 2).le(saturate ? 0xFFFF : count, 2);
    b.le(saturate ? 0xFFFFFFFF : cd_size, 4).le(saturate ? 0xFFFFFFFF : cd_offset, 4);
    b.le(comment.size(), 2).raw(comment).raw(trailing);
    return b;
  }
};

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
  return testing::detects(*kZip, bytes);
}

std::string le_bytes(uint64_t v, int width) {
  std::string s;
  for (int i = 0; i < width; ++i) s.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
  return s;
}

// ---- real archives -----------------------------------------------------------------------

std::string fixture_dir() {
  return testing::fixtures_dir() + "/zip";
}

std::string from_hex(const std::string& hex) {
  std::string out;
  for (size_t i = 0; i + 1 < hex.size(); i += 2)
    out.push_back(static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16)));
  return out;
}

TEST(ZipReal, MatchesZipfileZipinfoAndUnzip) {
  if (!std::filesystem::exists(fixture_dir() + "/expected.json"))
    GTEST_FAIL() << "run tests/fixtures/gen_zip.py " << fixture_dir();
  const Json expected = testing::read_fixture_json(fixture_dir() + "/expected.json");
  ASSERT_GE(expected["archives"].size(), 14u);
  for (const auto& archive : expected["archives"]) {
    const std::string file = archive["file"];
    SCOPED_TRACE(file);
    const auto bytes = read_file(fixture_dir() + "/" + file);
    ASSERT_FALSE(bytes.empty());
    EXPECT_EQ(detects(bytes), !file.starts_with("sfx_"));
    const Layout layout = parse_bytes(*kZip, bytes);
    EXPECT_TRUE(layout.errors.empty()) << layout.errors.front();
    const Json& h = layout.header;
    EXPECT_EQ(h["entries"], archive["entries"]);
    EXPECT_EQ(h["comment"], from_hex(archive["comment_hex"]));
    EXPECT_EQ(h["zip64"], archive["zip64"]);
    EXPECT_EQ(h["prepended_bytes"], archive["prepended"]);
    if (archive.contains("cd_size")) {
      EXPECT_EQ(h["central_directory_size"], archive["cd_size"]);
      EXPECT_EQ(h["central_directory_offset"], archive["cd_offset"]);
    }
    ASSERT_TRUE(layout.magic.has_value());
    EXPECT_EQ(layout.magic->length, 4u);
    EXPECT_EQ(layout.magic->offset,
              file.starts_with("sfx_") ? h["end_of_central_directory_offset"].get<uint64_t>() : 0);
    size_t next = 0;
    uint64_t dirs = 0;
    for (const auto& want : archive["entries_list"]) {
      const std::string name = from_hex(want["name_hex"]);
      SCOPED_TRACE(name);
      if (want["is_dir"].get<bool>()) {
        ++dirs;
        continue;
      }
      ASSERT_LT(next, layout.slices.size());
      const Slice& got = layout.slices[next++];
      EXPECT_EQ(got.name, name);
      EXPECT_EQ(got.range.offset, want["data_offset"].get<uint64_t>());
      EXPECT_EQ(slice_bytes(bytes, got),
                read_file(fixture_dir() + "/" + want["data"].get<std::string>()));
      const Json& a = got.attributes;
      EXPECT_EQ(a["method"], want["method"]);
      EXPECT_EQ(a["method_name"], want["method"] == 8 ? "deflated" : "stored");
      EXPECT_EQ(a["crc32"], want["crc"]);
      EXPECT_EQ(a["compressed_size"], want["compress_size"]);
      EXPECT_EQ(a["uncompressed_size"], want["file_size"]);
      EXPECT_EQ(a["mtime"], want["date_time"]);
      if (want["ut_mtime"].is_null())
        EXPECT_FALSE(a.contains("mtime_utc"));
      else
        EXPECT_EQ(a["mtime_utc"], want["ut_mtime"]);
      EXPECT_EQ(a["encrypted"], (want["flag_bits"].get<int>() & 1) != 0);
      EXPECT_EQ(a["flags"], want["flag_bits"]);
      EXPECT_EQ(a["local_header_offset"], want["header_offset"]);
    }
    EXPECT_EQ(next, layout.slices.size());
    EXPECT_EQ(h["directories"], dirs);
    EXPECT_EQ(h["files"], layout.slices.size());
  }
}

TEST(ZipReal, TruncatedAnywhere) {
  const auto full = read_file(fixture_dir() + "/infozip_zip64.zip");
  ASSERT_FALSE(full.empty());
  for (size_t cut = 0; cut < full.size(); cut += (cut + 200 < full.size() ? 997 : 1)) {
    const std::vector<std::byte> part(full.begin(), full.begin() + static_cast<ptrdiff_t>(cut));
    const Layout layout = parse_bytes(*kZip, part);
    expect_sane(layout, part.size());
    EXPECT_FALSE(layout.errors.empty()) << cut;
  }
}

// ---- hand-built archives ------------------------------------------------------------------

TEST(ZipBuilt, StoredEntriesDirectoriesAndLocalExtra) {
  ZipBuilder z;
  Entry a = E("dir/", "");
  Entry b = E("dir/file.txt", "hello");
  b.local_extra = std::string(4, '\0') + "";  // id 0, size 0: local extra differs from central
  b.local_extra += le_bytes(0xCAFE, 2) + le_bytes(3, 2) + "xyz";
  Entry c = E("second", "world!", 8, 1);
  z.entries = {a, b, c};
  z.comment = "comment";
  const auto bytes = z.build().data();
  EXPECT_TRUE(detects(bytes));
  const Layout layout = parse_bytes(*kZip, bytes);
  EXPECT_TRUE(layout.errors.empty()) << layout.errors.front();
  EXPECT_EQ(layout.header["entries"], 3);
  EXPECT_EQ(layout.header["comment"], "comment");
  EXPECT_EQ(layout.header["directories"], 1);
  ASSERT_EQ(layout.slices.size(), 2u);
  EXPECT_EQ(layout.slices[0].name, "dir/file.txt");
  EXPECT_EQ(text_of(bytes, layout.slices[0]), "hello");
  EXPECT_EQ(layout.slices[0].attributes["mtime"], "2021-06-15T12:34:56");
  EXPECT_EQ(layout.slices[0].attributes["crc32"], 0x12345678);
  EXPECT_EQ(text_of(bytes, layout.slices[1]), "world!");
  EXPECT_EQ(layout.slices[1].attributes["method_name"], "deflated");
  EXPECT_EQ(layout.slices[1].attributes["encrypted"], true);
}

TEST(ZipBuilt, Zip64ExtraAndEndRecord) {
  ZipBuilder z;
  Entry e = E("big", "0123456789");
  e.csize = e.usize = e.offset = 0xFFFFFFFF;
  e.central_extra =
      le_bytes(1, 2) + le_bytes(24, 2) + le_bytes(10, 8) + le_bytes(10, 8) + le_bytes(0, 8);
  e.central_extra += le_bytes(0x5455, 2) + le_bytes(5, 2) + "\x03" + le_bytes(1700000000, 4);
  z.entries = {e};
  z.zip64 = true;
  z.saturate = true;
  const auto bytes = z.build().data();
  const Layout layout = parse_bytes(*kZip, bytes);
  EXPECT_TRUE(layout.errors.empty()) << layout.errors.front();
  EXPECT_EQ(layout.header["zip64"], true);
  EXPECT_EQ(layout.header["entries"], 1);
  ASSERT_EQ(layout.slices.size(), 1u);
  EXPECT_EQ(text_of(bytes, layout.slices[0]), "0123456789");
  EXPECT_EQ(layout.slices[0].attributes["compressed_size"], 10);
  EXPECT_EQ(layout.slices[0].attributes["mtime_utc"], "2023-11-14T22:13:20Z");
}

TEST(ZipBuilt, BrokenZip64) {
  {  // saturated sizes without the extra field
    ZipBuilder z;
    Entry e = E("big", "0123456789");
    e.csize = 0xFFFFFFFF;
    z.entries = {e};
    const auto bytes = z.build().data();
    const Layout layout = parse_bytes(*kZip, bytes);
    expect_sane(layout, bytes.size());
    EXPECT_TRUE(layout.slices.empty());
    EXPECT_FALSE(layout.errors.empty());
  }
  {  // extra field too short for what it must hold
    ZipBuilder z;
    Entry e = E("big", "0123456789");
    e.csize = e.usize = 0xFFFFFFFF;
    e.central_extra = le_bytes(1, 2) + le_bytes(8, 2) + le_bytes(10, 8);
    z.entries = {e};
    const auto bytes = z.build().data();
    const Layout layout = parse_bytes(*kZip, bytes);
    expect_sane(layout, bytes.size());
    EXPECT_FALSE(layout.errors.empty());
  }
  {  // extra field length past its end
    ZipBuilder z;
    Entry e = E("x", "1");
    e.central_extra = le_bytes(0x5455, 2) + le_bytes(200, 2) + "\x01";
    z.entries = {e};
    const auto bytes = z.build().data();
    const Layout layout = parse_bytes(*kZip, bytes);
    EXPECT_EQ(layout.errors.size(), 1u);
    EXPECT_EQ(layout.slices.size(), 1u);
  }
  {  // saturated end record without a locator
    ZipBuilder z;
    z.entries = {E("x", "1")};
    z.saturate = true;
    const auto bytes = z.build().data();
    const Layout layout = parse_bytes(*kZip, bytes);
    expect_sane(layout, bytes.size());
    EXPECT_FALSE(layout.errors.empty());
  }
  {  // zip64 record declaring 2^64-1 entries and a size of 2^64-1
    ZipBuilder z;
    z.entries = {E("x", "1")};
    z.zip64 = true;
    z.declared_entries = UINT64_MAX;
    const auto bytes = z.build().data();
    const Layout layout = parse_bytes(*kZip, bytes);
    EXPECT_EQ(layout.slices.size(), 1u);
    ASSERT_EQ(layout.errors.size(), 1u);
    EXPECT_EQ(layout.errors[0],
              "end record declares 18446744073709551615 entries, but a central directory of 47 "
              "bytes holds at most 1");
    z.declared_entries.reset();
    z.cd_size_override = UINT64_MAX;
    const auto bytes2 = z.build().data();
    const Layout l2 = parse_bytes(*kZip, bytes2);
    EXPECT_TRUE(l2.slices.empty());
    EXPECT_FALSE(l2.errors.empty());
  }
}

// A zip64 end record and its locator, the only end of an archive: `entries` declared, a
// central directory of `cd_size` bytes at `cd_offset`.
Bytes zip64_end(uint64_t at, uint64_t entries, uint64_t cd_size, uint64_t cd_offset) {
  Bytes b;
  b.le(0x06064b50, 4).le(44, 8).le(45, 2).le(45, 2).le(0, 4).le(0, 4);
  b.le(entries, 8).le(entries, 8).le(cd_size, 8).le(cd_offset, 8);
  b.le(0x07064b50, 4).le(0, 4).le(at, 8).le(1, 4);
  return b;
}

TEST(ZipBuilt, Zip64OnlyEndRecordAtZeroIsAZipWithErrors) {
  // Nothing but a zip64 end record claiming 2^32 entries, and its locator: no plain end record.
  const auto bytes = zip64_end(0, uint64_t{1} << 32, 0, 0).data();
  ASSERT_EQ(bytes.size(), 76u);
  EXPECT_TRUE(detects(bytes));
  const Layout layout = parse_bytes(*kZip, bytes);
  const Json& h = layout.header;
  EXPECT_EQ(h["zip64"], true);
  EXPECT_EQ(h["entries"], uint64_t{1} << 32);
  EXPECT_TRUE(h["end_of_central_directory_offset"].is_null());
  EXPECT_EQ(h["zip64_end_of_central_directory_offset"], 0);
  EXPECT_EQ(h["files"], 0);
  EXPECT_TRUE(layout.slices.empty());
  ASSERT_TRUE(layout.magic.has_value());
  EXPECT_EQ(*layout.magic, (ByteRange{0, 4}));
  ASSERT_EQ(layout.errors.size(), 2u) << testing::first_error(layout);
  EXPECT_EQ(layout.errors[0],
            "no end of central directory record (PK\\x05\\x06): the archive ends with only a "
            "zip64 end record (at offset 0) and its locator");
  EXPECT_EQ(layout.errors[1],
            "end record declares 4294967296 entries, but a central directory of 0 bytes holds at "
            "most 0");
  expect_sane(layout, bytes.size());

  // The 32-bit counterpart: a plain end record at 0 claiming 65535 entries.
  Bytes plain;
  plain.le(0x06054b50, 4).le(0, 2).le(0, 2).le(0xFFFF, 2).le(0xFFFF, 2).le(0, 4).le(0, 4).le(0, 2);
  EXPECT_TRUE(detects(plain.data()));
  const Layout l32 = parse_bytes(*kZip, plain.data());
  EXPECT_EQ(l32.header["entries"], 0xFFFF);
  EXPECT_FALSE(l32.errors.empty());
}

TEST(ZipBuilt, Zip64OnlyEndRecordAfterEntries) {
  // Entries and a central directory, then only a zip64 end record: the entries are found.
  ZipBuilder z;
  z.entries = {E("a", "AAA"), E("b", "BB")};
  auto bytes = z.build().data();
  const uint64_t eocd = bytes.size() - 22;  // no comment
  const auto le_at = [&bytes](uint64_t at, int width) {
    uint64_t v = 0;
    for (int i = width; i-- > 0;) v = v << 8 | std::to_integer<uint64_t>(bytes[at + i]);
    return v;
  };
  ASSERT_EQ(le_at(eocd, 4), 0x06054b50u);
  const uint64_t cd_size = le_at(eocd + 12, 4), cd_offset = le_at(eocd + 16, 4);
  bytes.resize(eocd);  // drop the plain end record
  const auto tail = zip64_end(eocd, 2, cd_size, cd_offset).data();
  bytes.insert(bytes.end(), tail.begin(), tail.end());
  EXPECT_TRUE(detects(bytes));
  const Layout layout = parse_bytes(*kZip, bytes);
  ASSERT_EQ(layout.errors.size(), 1u) << testing::first_error(layout);
  EXPECT_NE(layout.errors[0].find("only a zip64 end record (at offset " + std::to_string(eocd)),
            std::string::npos);
  ASSERT_EQ(layout.slices.size(), 2u);
  EXPECT_EQ(text_of(bytes, layout.slices[0]), "AAA");
  EXPECT_EQ(text_of(bytes, layout.slices[1]), "BB");
  EXPECT_EQ(layout.header["entries"], 2);
  ASSERT_TRUE(layout.magic.has_value());
  EXPECT_EQ(layout.magic->offset, 0u);

  // A locator pointing nowhere: reported, no archive to read.
  auto broken = bytes;
  for (size_t i = 0; i < 4; ++i) broken[eocd + i] = std::byte{'X'};
  const Layout l2 = parse_bytes(*kZip, broken);
  EXPECT_TRUE(l2.slices.empty());
  ASSERT_EQ(l2.errors.size(), 1u);
  EXPECT_NE(l2.errors[0].find("holds no zip64 end of central directory record"), std::string::npos);
}

TEST(ZipDetect, Zip64RecordAtZeroNeedsItsLocator) {
  auto bytes = zip64_end(0, 0, 0, 0).data();
  EXPECT_TRUE(detects(bytes));
  auto no_locator = bytes;
  no_locator[56] = std::byte{'X'};
  EXPECT_FALSE(detects(no_locator));
  auto short_record = bytes;
  short_record[4] = std::byte{43};  // the record's size: less than its fixed fields
  EXPECT_FALSE(detects(short_record));
  auto huge_record = bytes;
  huge_record[11] = std::byte{0x80};  // a size past the head (and any file)
  EXPECT_FALSE(detects(huge_record));
  EXPECT_FALSE(detects(std::vector<std::byte>(bytes.begin(), bytes.begin() + 60)));
  // Its empty-archive form parses cleanly but for the missing plain record.
  const Layout layout = parse_bytes(*kZip, bytes);
  EXPECT_EQ(layout.errors.size(), 1u) << testing::first_error(layout);
  EXPECT_EQ(layout.header["entries"], 0);
  // Every cut of it stays in bounds.
  for (size_t cut = 0; cut < bytes.size(); ++cut) {
    const std::vector<std::byte> part(bytes.begin(), bytes.begin() + static_cast<ptrdiff_t>(cut));
    const Layout l = parse_bytes(*kZip, part);
    expect_sane(l, part.size());
    EXPECT_FALSE(l.errors.empty()) << cut;
  }
}

TEST(ZipBuilt, EndRecordSearch) {
  ZipBuilder z;
  z.entries = {E("x", "1")};
  // A fake end record inside the comment must not win: its comment would overrun the file.
  z.comment = "before PK\x05\x06" + std::string(16, '\xff') + " after";
  auto bytes = z.build().data();
  Layout layout = parse_bytes(*kZip, bytes);
  EXPECT_TRUE(layout.errors.empty()) << layout.errors.front();
  EXPECT_EQ(layout.header["comment"], utf8_or_escaped(z.comment));
  EXPECT_EQ(layout.slices.size(), 1u);

  z.comment = "";
  z.trailing = "garbage";
  bytes = z.build().data();
  layout = parse_bytes(*kZip, bytes);
  EXPECT_EQ(layout.errors.size(), 1u);
  EXPECT_EQ(layout.slices.size(), 1u);

  // More than 64 KiB of trailing bytes: the end record is out of reach.
  z.trailing = std::string(70000, 'g');
  bytes = z.build().data();
  layout = parse_bytes(*kZip, bytes);
  EXPECT_FALSE(layout.errors.empty());
  EXPECT_TRUE(layout.slices.empty());
}

TEST(ZipBuilt, BadOffsetsAndCounts) {
  {  // local header offset past the end
    ZipBuilder z;
    Entry e = E("x", "1");
    e.offset = 0xFFFFFFF0;
    z.entries = {e, E("y", "2")};
    const auto bytes = z.build().data();
    const Layout layout = parse_bytes(*kZip, bytes);
    EXPECT_EQ(layout.errors.size(), 1u);
    ASSERT_EQ(layout.slices.size(), 1u);
    EXPECT_EQ(layout.slices[0].name, "y");
  }
  {  // local header offset pointing at something else
    ZipBuilder z;
    Entry e = E("x", "1");
    e.offset = 5;
    z.entries = {e};
    const auto bytes = z.build().data();
    const Layout layout = parse_bytes(*kZip, bytes);
    EXPECT_EQ(layout.errors.size(), 1u);
    EXPECT_TRUE(layout.slices.empty());
  }
  {  // compressed size past the end
    ZipBuilder z;
    Entry e = E("x", "1");
    e.csize = 0xFFFFFFF0;
    z.entries = {e};
    const auto bytes = z.build().data();
    const Layout layout = parse_bytes(*kZip, bytes);
    EXPECT_EQ(layout.errors.size(), 1u);
    EXPECT_TRUE(layout.slices.empty());
  }
  {  // more entries declared than present
    ZipBuilder z;
    z.entries = {E("x", "1")};
    z.declared_entries = 3;
    const auto bytes = z.build().data();
    const Layout layout = parse_bytes(*kZip, bytes);
    EXPECT_EQ(layout.errors.size(), 1u);
    EXPECT_EQ(layout.slices.size(), 1u);
  }
  {  // central directory offset past the end
    ZipBuilder z;
    z.entries = {E("x", "1")};
    z.cd_offset_override = 0xFFFFFF00;
    const auto bytes = z.build().data();
    const Layout layout = parse_bytes(*kZip, bytes);
    expect_sane(layout, bytes.size());
    EXPECT_FALSE(layout.errors.empty());
  }
  {  // central directory size larger than the file
    ZipBuilder z;
    z.entries = {E("x", "1")};
    z.cd_size_override = 0xFFFFFFF0;
    const auto bytes = z.build().data();
    const Layout layout = parse_bytes(*kZip, bytes);
    expect_sane(layout, bytes.size());
    EXPECT_FALSE(layout.errors.empty());
  }
  {  // multi-disk
    ZipBuilder z;
    z.entries = {E("x", "1")};
    z.disk = 2;
    z.cd_disk = 1;
    const auto bytes = z.build().data();
    const Layout layout = parse_bytes(*kZip, bytes);
    EXPECT_FALSE(layout.errors.empty());
    EXPECT_TRUE(layout.slices.empty());
    // Last segment holding the directory: entries on other disks are reported.
    z.cd_disk = 2;
    z.entries = {E("x", "1", 0, 0, 0), E("y", "2", 0, 0, 2)};
    const auto seg = z.build().data();
    const Layout l2 = parse_bytes(*kZip, seg);
    EXPECT_EQ(l2.errors.size(), 1u);
    ASSERT_EQ(l2.slices.size(), 1u);
    EXPECT_EQ(l2.slices[0].name, "y");
  }
}

TEST(ZipBuilt, PrependedData) {
  ZipBuilder z;
  z.prefix = std::string(1000, 'S');
  z.entries = {E("a", "AAA"), E("b", "BB")};
  const auto bytes = z.build().data();
  EXPECT_FALSE(detects(bytes));
  const Layout layout = parse_bytes(*kZip, bytes);
  EXPECT_TRUE(layout.errors.empty()) << layout.errors.front();
  EXPECT_EQ(layout.header["prepended_bytes"], 1000);
  ASSERT_EQ(layout.slices.size(), 2u);
  EXPECT_EQ(text_of(bytes, layout.slices[0]), "AAA");
  EXPECT_EQ(text_of(bytes, layout.slices[1]), "BB");
  EXPECT_EQ(layout.slices[1].attributes["local_header_offset"], 1000 + 34);
}

TEST(ZipBuilt, NameEncodings) {
  ZipBuilder z;
  z.entries = {E("caf\x82\x80", "1"),           // CP437: café + Ç
               E("caf\xc3\xa9", "2"),           // UTF-8 without flag
               E("\xff\xfe", "3", 0, 0x0800)};  // bad UTF-8 with flag
  const auto bytes = z.build().data();
  const Layout layout = parse_bytes(*kZip, bytes);
  ASSERT_EQ(layout.slices.size(), 3u);
  EXPECT_EQ(layout.slices[0].name, "caf\xc3\xa9\xc3\x87");
  EXPECT_EQ(layout.slices[1].name, "caf\xc3\xa9");
  EXPECT_EQ(layout.slices[2].name, "\xff\xfe");  // raw bytes: the tree and JSON escape them
}

TEST(ZipBuilt, EmptyArchives) {
  ZipBuilder z;
  auto bytes = z.build().data();
  ASSERT_EQ(bytes.size(), 22u);
  EXPECT_TRUE(detects(bytes));
  Layout layout = parse_bytes(*kZip, bytes);
  EXPECT_TRUE(layout.errors.empty());
  EXPECT_EQ(layout.header["entries"], 0);
  EXPECT_TRUE(layout.slices.empty());
  ASSERT_TRUE(layout.magic.has_value());
  EXPECT_EQ(layout.magic->offset, 0u);

  // Too short for an end record.
  bytes.resize(21);
  EXPECT_FALSE(detects(bytes));
  layout = parse_bytes(*kZip, bytes);
  EXPECT_FALSE(layout.errors.empty());
}

TEST(ZipDetect, Negatives) {
  Bytes b;
  b.le(0x02014b50, 4).zeros(100);
  EXPECT_FALSE(detects(b.data()));
  Bytes c;
  c.raw("PK");
  EXPECT_FALSE(detects(c.data()));
  Bytes d;
  d.raw("not a zip file at all, just text").zeros(40);
  EXPECT_FALSE(detects(d.data()));
  EXPECT_FALSE(detects({}));
}

TEST(ZipBuilt, TruncatedEverywhere) {
  ZipBuilder z;
  z.entries = {E("a/", ""), E("a/b", "data")};
  z.comment = "c";
  const auto full = z.build().data();
  for (size_t cut = 0; cut < full.size(); ++cut) {
    const std::vector<std::byte> part(full.begin(), full.begin() + static_cast<ptrdiff_t>(cut));
    const Layout layout = parse_bytes(*kZip, part);
    expect_sane(layout, part.size());
    EXPECT_FALSE(layout.errors.empty()) << cut;
  }
}

// ---- robustness ---------------------------------------------------------------------------

TEST(ZipFuzz, MutationsNeverEscapeTheFile) {
  std::vector<std::vector<std::byte>> seeds;
  for (const char* name :
       {"infozip_zip64.zip", "py_unseekable.zip", "sfx_raw.zip", "py_zip64.zip"}) {
    auto bytes = read_file(fixture_dir() + "/" + name);
    if (!bytes.empty()) seeds.push_back(std::move(bytes));
  }
  ZipBuilder z;
  Entry e = E("big", "0123456789");
  e.csize = e.usize = e.offset = 0xFFFFFFFF;
  e.central_extra =
      le_bytes(1, 2) + le_bytes(24, 2) + le_bytes(10, 8) + le_bytes(10, 8) + le_bytes(0, 8);
  z.entries = {e, E("d/", "")};
  z.zip64 = true;
  z.saturate = true;
  seeds.push_back(z.build().data());
  ASSERT_GE(seeds.size(), 5u);
  std::mt19937_64 rng(987654321);
  for (int iter = 0; iter < 3000; ++iter) {
    auto bytes = seeds[rng() % seeds.size()];
    const int edits = 1 + static_cast<int>(rng() % 6);
    for (int k = 0; k < edits; ++k) {
      // Aim most edits at the central directory and end records, where offsets live.
      const size_t tail = std::min<size_t>(bytes.size(), 2048);
      const size_t at = rng() % 3 == 0 ? rng() % bytes.size() : bytes.size() - 1 - rng() % tail;
      switch (rng() % 4) {
        case 0:
          bytes[at] = static_cast<std::byte>(rng());
          break;
        case 1:
          bytes[at] = std::byte{0xFF};
          break;
        case 2:
          bytes[at] = std::byte{0};
          break;
        default:
          if (rng() % 4 == 0) bytes.resize(at + 1);
          break;
      }
    }
    const Layout layout = parse_bytes(*kZip, bytes);
    expect_sane(layout, bytes.size());
    (void)detects(bytes);
  }
}

}  // namespace
}  // namespace payloadfs

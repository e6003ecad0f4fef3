// cpio: real archives from GNU cpio (newc, crc, odc, bin; concatenated ones) compared with
// `cpio -itvn` and `cpio -i --to-stdout` (tests/fixtures/gen_cpio.py); hand-built archives for
// the edge cases and the malformed ones; a mutation sweep.

#include <cstdio>
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

const std::unique_ptr<Format> kCpio = formats::make_cpio();

bool detects(const std::vector<std::byte>& bytes) {
  return testing::detects(*kCpio, bytes);
}

std::string fixture_dir() {
  return testing::fixtures_dir() + "/cpio";
}

// One newc entry: header, name, data, each padded to 4 bytes (the archive starts at 0).
struct NewcEntry {
  NewcEntry(std::string entry_name, std::string entry_data, uint32_t entry_mode = 0100644)
      : name(std::move(entry_name)), data(std::move(entry_data)), mode(entry_mode) {}

  std::string name;
  std::string data;
  uint32_t mode;
  std::string magic = "070701";
  std::string filesize_text;  // overrides the size field when set
  std::string namesize_text;

  std::string bytes() const {
    auto hex = [](uint64_t v) {
      char buf[16];
      std::snprintf(buf, sizeof buf, "%08llX", static_cast<unsigned long long>(v));
      return std::string(buf);
    };
    std::string out = magic + hex(7) + hex(mode) + hex(1000) + hex(100) + hex(1) + hex(1600000000) +
                      (filesize_text.empty() ? hex(data.size()) : filesize_text) + hex(8) + hex(1) +
                      hex(0) + hex(0) +
                      (namesize_text.empty() ? hex(name.size() + 1) : namesize_text) + hex(0);
    out += name + std::string(1, '\0');
    out.resize((out.size() + 3) / 4 * 4, '\0');
    out += data;
    out.resize((out.size() + 3) / 4 * 4, '\0');
    return out;
  }
};

std::string newc(const std::vector<NewcEntry>& entries, bool trailer = true) {
  std::string out;
  for (const auto& e : entries) out += e.bytes();
  if (trailer) out += NewcEntry{"TRAILER!!!", "", 0}.bytes();
  return out;
}

std::string text_of(const std::vector<std::byte>& file, const Slice& s) {
  const auto b = slice_bytes(file, s);
  return std::string(reinterpret_cast<const char*>(b.data()), b.size());
}

std::string strip_dot_slash(std::string s) {
  while (s.starts_with("./") && s.size() > 2) s.erase(0, 2);
  return s;
}

// ---- real archives -------------------------------------------------------------------------

// The expected slices of an archive: its parts' regular files, in order.
void check_archive(const Json& archive, const std::vector<std::byte>& bytes, const Layout& layout) {
  size_t slice = 0, others = 0, entries = 0;
  for (const auto& part : archive["parts"]) {
    for (const auto& want : part["entries"]) {
      ++entries;
      const std::string name = want["name"];
      SCOPED_TRACE(name);
      if (want["type"] != "file") {
        const Json& other = layout.header["others"][others++];
        EXPECT_EQ(other["path"], name);
        EXPECT_EQ(other["type"], want["type"]);
        if (want["type"] == "symlink") {
          EXPECT_EQ(other["target"], want["target"]);
        }
        continue;
      }
      ASSERT_LT(slice, layout.slices.size());
      const Slice& got = layout.slices[slice++];
      EXPECT_EQ(got.name, strip_dot_slash(name));
      EXPECT_EQ(got.attributes["stored_name"], name);
      EXPECT_EQ(got.range.length, want["size"].get<uint64_t>());
      EXPECT_EQ(slice_bytes(bytes, got),
                read_file(fixture_dir() + "/" + want["data"].get<std::string>()));
      EXPECT_EQ(std::stoll(got.attributes["mode"].get<std::string>(), nullptr, 8) & 07777,
                want["mode"].get<int64_t>());
      EXPECT_EQ(got.attributes["uid"], want["uid"]);
      EXPECT_EQ(got.attributes["gid"], want["gid"]);
      EXPECT_EQ(got.attributes["nlink"], want["nlink"]);
      if (!want["mtime"].is_null()) {
        EXPECT_EQ(got.attributes["mtime"], want["mtime"]);
      }
      EXPECT_GE(got.range.offset, part["offset"].get<uint64_t>());
    }
  }
  EXPECT_EQ(slice, layout.slices.size());
  EXPECT_EQ(layout.header["members"], entries);
  EXPECT_EQ(layout.header["regular_files"], slice);
  EXPECT_EQ(layout.header["others"].size(), others);
}

TEST(CpioReal, MatchesGnuCpio) {
  const Json expected = testing::read_fixture_json(fixture_dir() + "/expected.json");
  ASSERT_TRUE(expected.is_object()) << "run tests/fixtures/gen_cpio.py " << fixture_dir();
  ASSERT_GE(expected["archives"].size(), 6u);
  for (const auto& archive : expected["archives"]) {
    const std::string file = archive["file"];
    SCOPED_TRACE(file);
    const auto bytes = read_file(fixture_dir() + "/" + file);
    ASSERT_TRUE(detects(bytes));
    const Layout layout = parse_bytes(*kCpio, bytes);
    EXPECT_TRUE(layout.errors.empty()) << testing::errors_of(layout);
    EXPECT_EQ(layout.header["format"], archive["format"]);
    EXPECT_EQ(layout.header["end_marker"], "TRAILER!!!");
    EXPECT_EQ(layout.header["trailing_data_offset"], archive["trailing_data_offset"]);
    const auto& parts = archive["parts"];
    ASSERT_EQ(layout.header["archive_count"], parts.size());
    for (size_t i = 0; i < parts.size(); ++i) {
      EXPECT_EQ(layout.header["archives"][i]["offset"], parts[i]["offset"]);
      EXPECT_EQ(layout.header["archives"][i]["format"], parts[i]["format"]);
    }
    check_archive(archive, bytes, layout);
  }
}

TEST(CpioReal, MalformedCopiesReportTheirError) {
  const Json expected = testing::read_fixture_json(fixture_dir() + "/expected.json");
  ASSERT_TRUE(expected.is_object());
  ASSERT_GE(expected["malformed"].size(), 5u);
  for (const auto& c : expected["malformed"]) {
    SCOPED_TRACE(c["file"].get<std::string>());
    const auto bytes = read_file(fixture_dir() + "/" + c["file"].get<std::string>());
    ASSERT_TRUE(detects(bytes));
    const Layout layout = parse_bytes(*kCpio, bytes);
    testing::expect_in_bounds(layout, bytes.size());
    EXPECT_TRUE(has_error(layout, c["error"].get<std::string>())) << testing::errors_of(layout);
  }
}

// Cutting a real archive anywhere before its trailer keeps a prefix of its slices and is an
// error (the trailer is missing); a cut inside the first header is not a cpio file at all.
TEST(CpioReal, TruncatedAnywhere) {
  for (const char* name : {"newc.cpio", "odc.cpio", "bin.cpio"}) {
    SCOPED_TRACE(name);
    const auto full = read_file(fixture_dir() + "/" + name);
    ASSERT_FALSE(full.empty());
    const Layout whole = parse_bytes(*kCpio, full);
    const uint64_t trailer = whole.header["archives"][0]["trailer_offset"].get<uint64_t>();
    for (size_t cut = 1; cut <= trailer + 4; cut += 5) {
      const std::vector<std::byte> part(full.begin(), full.begin() + static_cast<ptrdiff_t>(cut));
      if (!detects(part)) continue;
      const Layout layout = parse_bytes(*kCpio, part);
      testing::expect_in_bounds(layout, part.size());
      EXPECT_FALSE(layout.errors.empty()) << "cut at " << cut;
      ASSERT_LE(layout.slices.size(), whole.slices.size());
      for (size_t i = 0; i < layout.slices.size(); ++i)
        EXPECT_EQ(layout.slices[i].range, whole.slices[i].range);
    }
  }
}

// ---- hand-built archives -------------------------------------------------------------------

TEST(CpioBuilt, NewcPaddingAndTypes) {
  NewcEntry dir{"d", "", 040755};
  NewcEntry link{"d/l", "target", 0120777};
  NewcEntry file{"d/f", "12345"};
  NewcEntry fifo{"p", "", 010644};
  const auto bytes = to_bytes(newc({dir, link, file, fifo}));
  ASSERT_TRUE(detects(bytes));
  const Layout layout = parse_bytes(*kCpio, bytes);
  EXPECT_TRUE(layout.errors.empty()) << testing::errors_of(layout);
  EXPECT_EQ(layout.header["format"], "newc");
  EXPECT_EQ(layout.header["members"], 4);
  EXPECT_EQ(layout.header["directories"], 1);
  EXPECT_EQ(layout.header["symlinks"], 1);
  EXPECT_EQ(layout.header["other_members"], 1);
  EXPECT_EQ(layout.header["others"][1],
            (Json{{"path", "d/l"}, {"type", "symlink"}, {"mode", "120777"}, {"target", "target"}}));
  ASSERT_EQ(layout.slices.size(), 1u);
  const Slice& s = layout.slices[0];
  EXPECT_EQ(s.name, "d/f");
  // header 110 + "d/f\0" = 114, padded to 116.
  const uint64_t at = dir.bytes().size() + link.bytes().size();
  EXPECT_EQ(s.range, (ByteRange{at + 116, 5}));
  EXPECT_EQ(text_of(bytes, s), "12345");
  EXPECT_EQ(s.attributes["mode"], "100644");
  EXPECT_EQ(s.attributes["ino"], 7);
  EXPECT_EQ(s.attributes["uid"], 1000);
  EXPECT_EQ(s.attributes["gid"], 100);
  EXPECT_EQ(s.attributes["mtime"], 1600000000);
  EXPECT_FALSE(s.attributes.contains("check"));
  ASSERT_TRUE(layout.magic.has_value());
  EXPECT_EQ(*layout.magic, (ByteRange{0, 6}));
}

TEST(CpioBuilt, ConcatenatedWithZerosAndTrailingData) {
  const std::string first = newc({{"a", "one"}});
  const std::string second = newc({{"a", "two"}, {"b", "three"}});
  const std::string file = first + std::string(512, '\0') + second + "\x1f\x8b rest";
  const auto bytes = to_bytes(file);
  const Layout layout = parse_bytes(*kCpio, bytes);
  EXPECT_TRUE(layout.errors.empty()) << testing::errors_of(layout);
  EXPECT_EQ(layout.header["archive_count"], 2);
  EXPECT_EQ(layout.header["archives"][1]["offset"], first.size() + 512);
  EXPECT_EQ(layout.header["archives"][1]["members"], 2);
  EXPECT_EQ(layout.header["trailing_data_offset"], first.size() + 512 + second.size());
  ASSERT_EQ(layout.slices.size(), 3u);
  EXPECT_EQ(layout.slices[0].name, "a");
  EXPECT_EQ(layout.slices[1].name, "a");  // a repeated path: raw/a~1
  EXPECT_EQ(text_of(bytes, layout.slices[1]), "two");
  EXPECT_EQ(layout.slices[1].attributes["archive"], 1);
}

TEST(CpioBuilt, OdcAndBinary) {
  // odc: octal fields, no padding.
  std::string odc =
      "070707000001000002100600001750000144000001000000"
      "13766704000"
      "000002" +
      std::string("00000000003") + "f" + std::string(1, '\0') + "xyz";
  odc +=
      "070707000000000000000000000000000000000001000000"
      "00000000000"
      "000013" +
      std::string("00000000000") + "TRAILER!!!" + std::string(1, '\0');
  Layout layout = parse_bytes(*kCpio, to_bytes(odc));
  EXPECT_TRUE(layout.errors.empty()) << testing::errors_of(layout);
  EXPECT_EQ(layout.header["format"], "odc");
  ASSERT_EQ(layout.slices.size(), 1u);
  EXPECT_EQ(layout.slices[0].range, (ByteRange{78, 3}));
  EXPECT_EQ(layout.slices[0].attributes["uid"], 01750);
  EXPECT_EQ(layout.slices[0].attributes["mtime"], 013766704000);
  // Old binary, big-endian: name and data padded to 2 bytes.
  testing::Bytes bin;
  auto entry = [&](const std::string& name, uint32_t mode, const std::string& data) {
    bin.be(070707, 2).be(1, 2).be(2, 2).be(mode, 2).be(3, 2).be(4, 2).be(1, 2).be(0, 2);
    bin.be(0x5f5e, 2).be(0x1000, 2).be(name.size() + 1, 2).be(0, 2).be(data.size(), 2);
    bin.raw(name).u8(0).pad_to(2).raw(data).pad_to(2);
  };
  entry("bb", 0100644, "odd");
  entry("TRAILER!!!", 0, "");
  const auto bytes = bin.take();
  ASSERT_TRUE(detects(bytes));
  layout = parse_bytes(*kCpio, bytes);
  EXPECT_TRUE(layout.errors.empty()) << testing::errors_of(layout);
  EXPECT_EQ(layout.header["format"], "bin");
  ASSERT_EQ(layout.slices.size(), 1u);
  EXPECT_EQ(layout.slices[0].range, (ByteRange{26 + 4, 3}));
  EXPECT_EQ(layout.slices[0].attributes["mtime"], 0x5f5e1000);
  EXPECT_EQ(*layout.magic, (ByteRange{0, 2}));
}

// ---- malformed -----------------------------------------------------------------------------

TEST(CpioMalformed, SizeThatIsNotHex) {
  NewcEntry bad{"b", "data"};
  bad.filesize_text = "0000000G";
  const Layout layout = parse_bytes(*kCpio, to_bytes(newc({{"a", "ok"}, bad})));
  EXPECT_TRUE(has_error(layout, "filesize field '0000000G' is not a hex number"))
      << testing::errors_of(layout);
  EXPECT_EQ(layout.slices.size(), 1u);
}

TEST(CpioMalformed, DataPastTheEnd) {
  NewcEntry big{"big", "tiny"};
  big.filesize_text = "FFFFFFFF";
  const Layout layout = parse_bytes(*kCpio, to_bytes(newc({{"a", "ok"}, big}, false)));
  EXPECT_TRUE(has_error(layout, "runs past the end of the file")) << testing::errors_of(layout);
  EXPECT_EQ(layout.slices.size(), 1u);
}

TEST(CpioMalformed, NamesizeZeroAndOverTheLimit) {
  NewcEntry zero{"z", ""};
  zero.namesize_text = "00000000";
  Layout layout = parse_bytes(*kCpio, to_bytes(newc({{"a", "ok"}, zero})));
  EXPECT_TRUE(has_error(layout, "namesize 0")) << testing::errors_of(layout);
  NewcEntry huge{"h", ""};
  huge.namesize_text = "00100000";
  layout = parse_bytes(*kCpio, to_bytes(newc({{"a", "ok"}, huge})));
  EXPECT_TRUE(has_error(layout, "exceeds the limit of 4096")) << testing::errors_of(layout);
}

TEST(CpioMalformed, TruncatedHeaderAndMissingTrailer) {
  const std::string good = newc({{"a", "ok"}}, false);
  Layout layout = parse_bytes(*kCpio, to_bytes(good + NewcEntry{"b", "x"}.bytes().substr(0, 40)));
  EXPECT_TRUE(has_error(layout, "truncated header")) << testing::errors_of(layout);
  layout = parse_bytes(*kCpio, to_bytes(good));
  EXPECT_TRUE(has_error(layout, "ends without its TRAILER!!! entry"));
  EXPECT_EQ(layout.header["end_marker"], "eof");
  layout = parse_bytes(*kCpio, to_bytes(good + "garbage that is no header"));
  EXPECT_TRUE(has_error(layout, "has no cpio magic")) << testing::errors_of(layout);
}

TEST(CpioMalformed, BrokenSecondArchive) {
  NewcEntry bad{"x", ""};
  bad.filesize_text = "zzzzzzzz";
  const std::string file = newc({{"a", "ok"}}) + std::string(8, '\0') + newc({bad});
  const Layout layout = parse_bytes(*kCpio, to_bytes(file));
  EXPECT_TRUE(has_error(layout, "is not a hex number")) << testing::errors_of(layout);
  EXPECT_EQ(layout.header["archive_count"], 2);
}

TEST(CpioMalformed, TooMuchZeroPadding) {
  const std::string file = newc({{"a", "ok"}}) + std::string((16 << 20) + 8, '\0') + "070701";
  const Layout layout = parse_bytes(*kCpio, to_bytes(file));
  EXPECT_TRUE(has_error(layout, "zero bytes after the archive")) << testing::errors_of(layout);
}

TEST(CpioDetect, MagicAndAValidHeader) {
  const std::string good = newc({{"a", "ok"}});
  EXPECT_TRUE(detects(to_bytes(good)));
  EXPECT_FALSE(detects(to_bytes(good.substr(0, 100))));  // the header is cut
  std::string bad = good;
  bad[20] = 'x';  // a field that is not hex
  EXPECT_FALSE(detects(to_bytes(bad)));
  EXPECT_FALSE(detects(to_bytes("070701")));
  EXPECT_FALSE(detects(to_bytes(std::string("\xc7\x71", 2) + std::string(40, 'a'))));
  EXPECT_FALSE(detects(to_bytes("070703" + good.substr(6))));
}

TEST(CpioFuzz, MutationsNeverEscapeTheFile) {
  std::vector<std::vector<std::byte>> seeds;
  for (const char* f : {"newc.cpio", "crc.cpio", "odc.cpio", "bin.cpio", "concatenated.cpio"})
    seeds.push_back(read_file(fixture_dir() + "/" + f));
  for (const auto& s : seeds) ASSERT_FALSE(s.empty());
  testing::mutate_and_parse(*kCpio, seeds, 4242, 3000);
}

}  // namespace
}  // namespace payloadfs

#include "core/payload.hpp"

#include <gtest/gtest.h>
#include <malloc.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "core/formats/builtin.hpp"
#include "core/io/binary_reader.hpp"
#include "core/io/source_root.hpp"
#include "core/payload_cache.hpp"
#include "unit/test_support.hpp"

namespace payloadfs {
namespace {

namespace fsys = std::filesystem;

class PayloadTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir = fsys::temp_directory_path() / ("payload_test." + std::to_string(::getpid()));
    fsys::remove_all(dir);
    fsys::create_directories(dir);
  }
  void TearDown() override { fsys::remove_all(dir); }

  std::string write(const std::string& name, const std::string& content) {
    const auto path = dir / name;
    fsys::create_directories(path.parent_path());
    std::ofstream(path, std::ios::binary) << content;
    return path.string();
  }

  Json header_of(const Payload& p) { return Json::parse(p.header_json()); }

  fsys::path dir;
  Registry registry = Registry::with_builtins();
};

// An ELF64 object with `count` sections, sections 1 .. count-2 one-byte PROGBITS ".s<i>" and
// the last the name table: with 20,000 sections, 16,384 slices (the ELF limit).
std::string elf_with_sections(uint32_t count) {
  testing::Bytes b;
  std::string names(1, '\0');
  std::vector<uint32_t> offsets;
  for (uint32_t i = 1; i + 1 < count; ++i) {
    offsets.push_back(static_cast<uint32_t>(names.size()));
    names += ".s" + std::to_string(i) + '\0';
  }
  const auto strtab_name = static_cast<uint32_t>(names.size());
  names += std::string(".shstrtab") + '\0';
  const uint64_t names_off = 64 + count - 2;
  const uint64_t shoff = (names_off + names.size() + 7) & ~uint64_t{7};
  b.u8(0x7f).raw("ELF").u8(2).u8(1).u8(1).u8(0).zeros(8);
  b.le(1, 2).le(62, 2).le(1, 4).le(0, 8).le(0, 8).le(shoff, 8).le(0, 4);
  b.le(64, 2).le(56, 2).le(0, 2).le(64, 2).le(count, 2).le(count - 1, 2);
  for (uint32_t i = 0; i + 2 < count; ++i) b.u8(i & 0xFF);
  b.raw(names).pad_to(8);
  b.zeros(64);  // section 0
  for (uint32_t i = 1; i + 1 < count; ++i)
    b.le(offsets[i - 1], 4).le(1, 4).le(2, 8).le(0, 8).le(64 + i - 1, 8).le(1, 8).zeros(24);
  b.le(strtab_name, 4).le(3, 4).zeros(16).le(names_off, 8).le(names.size(), 8).zeros(24);
  const auto& bytes = b.data();
  return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
}

// Under AddressSanitizer malloc is ASan's own: mallinfo2 counts none of it and freed memory is
// quarantined, so glibc's heap is measured only in the other builds (the dev build runs these
// checks; the sanitizer build still checks everything else about the same payloads).
#if defined(__SANITIZE_ADDRESS__)
constexpr bool kGlibcHeap = false;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
constexpr bool kGlibcHeap = false;
#else
constexpr bool kGlibcHeap = true;
#endif
#else
constexpr bool kGlibcHeap = true;
#endif

// Bytes malloc has handed out and not taken back (arenas and mmapped chunks).
size_t heap_in_use() {
  const struct mallinfo2 m = ::mallinfo2();
  return m.uordblks + m.hblkhd;
}

size_t rss_anon_kib() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line))
    if (line.rfind("RssAnon:", 0) == 0) return std::stoul(line.substr(8));
  return 0;
}

// A format whose header is larger than header.json may be.
class HugeHeaderFormat final : public Format {
 public:
  std::string_view name() const noexcept override { return "huge"; }
  std::string_view description() const noexcept override { return "a test format"; }
  std::string_view signature() const noexcept override { return "HUGE at 0"; }
  bool detect(std::span<const std::byte> head, uint64_t) const override {
    return head.size() >= 4 && std::memcmp(head.data(), "HUGE", 4) == 0;
  }
  Layout parse(const ByteSource&) const override {
    Layout layout;
    layout.header["count"] = 3;
    layout.header["name"] = "kept";
    layout.header["long_text"] = std::string(5000, 'x');
    Json& list = layout.header["list"] = Json::array();
    for (int i = 0; i < 300'000; ++i) list.push_back("item " + std::to_string(i));
    layout.header["small_object"] = Json{{"a", 1}};
    layout.header["flag"] = true;
    layout.slices.push_back(Slice{"data", {0, 4}, Json::object()});
    return layout;
  }
};

TEST_F(PayloadTest, UnknownFileHasEveryHeaderKey) {
  const std::string file = write("x.bin", "ABCDEFG");
  const auto p = testing::payload_of(file, registry);
  const Json h = header_of(*p);
  for (const char* key :
       {"path", "size", "mtime", "format", "magic", "magic_offset", "header", "slice_count"})
    EXPECT_TRUE(h.contains(key)) << key;
  EXPECT_FALSE(h.contains("errors"));
  EXPECT_EQ(h["format"], "unknown");
  EXPECT_EQ(h["magic"], "41424344");
  EXPECT_EQ(h["size"], 7);
  EXPECT_EQ(p->magic(), (ByteRange{0, 4}));
  EXPECT_EQ(testing::slices_json_of(*p, file), "[]\n");
}

TEST_F(PayloadTest, ShortAndEmptyFiles) {
  const auto empty = testing::payload_of(write("empty", ""), registry);
  EXPECT_EQ(header_of(*empty)["magic"], "");
  EXPECT_EQ(empty->magic().length, 0u);
  EXPECT_FALSE(empty->mapped());  // a header never maps
  {
    const UniqueFd fd(::open((dir / "empty").c_str(), O_RDONLY | O_CLOEXEC));
    EXPECT_EQ(empty->map(fd.get()), 0);
  }
  EXPECT_TRUE(empty->mapped());
  EXPECT_TRUE(empty->bytes({0, 0}).empty());
  const auto two = testing::payload_of(write("two", "hi"), registry);
  EXPECT_EQ(header_of(*two)["magic"], "6869");
  const UniqueFd other(::open((dir / "empty").c_str(), O_RDONLY | O_CLOEXEC));
  EXPECT_EQ(two->map(other.get()), ESTALE);  // not the file it was built from
  EXPECT_FALSE(two->mapped());
}

TEST_F(PayloadTest, ErrorsAppearExactlyWhenMalformed) {
  std::string npy = std::string("\x93NUMPY\x01\x00", 8);
  npy += std::string("\x76\x00", 2);
  std::string dict = "{'descr': '<u1', 'fortran_order': False, 'shape': (4,), }";
  dict += std::string(118 - dict.size() - 1, ' ') + "\n";
  const auto good = testing::payload_of(write("good.npy", npy + dict + "abcd"), registry);
  EXPECT_FALSE(header_of(*good).contains("errors"));
  EXPECT_EQ(header_of(*good)["format"], "npy");
  const auto bad = testing::payload_of(write("bad.npy", npy + dict + "ab"), registry);
  const Json h = header_of(*bad);
  ASSERT_TRUE(h.contains("errors"));
  EXPECT_EQ(h["format"], "npy");
  EXPECT_EQ(h["slice_count"], 0);
  EXPECT_EQ(h["magic"], "934e554d5059");
}

TEST_F(PayloadTest, SlicesJsonNamesTheRawPath) {
  const std::string header = R"({"a/b":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},)"
                             R"("a/c":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}})";
  std::string file(8, '\0');
  file[0] = static_cast<char>(header.size());
  const std::string path = write("m.safetensors", file + header + "xy");
  const auto p = testing::payload_of(path, registry);
  const std::string text = testing::slices_json_of(*p, path);
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 4);  // one object per line
  const Json s = Json::parse(text);
  ASSERT_EQ(s.size(), 2u);
  EXPECT_EQ(s[0]["path"], "raw/a/b");
  EXPECT_EQ(s[1]["name"], "a/c");
  EXPECT_EQ(s[1]["offset"], 8 + header.size() + 1);
  EXPECT_EQ(s[1]["dtype"], "U8");
  const auto entry = p->tree().find("a/c");
  ASSERT_TRUE(entry);
  EXPECT_TRUE(p->bytes(*p->range_of(*entry)).empty());  // not mapped yet
  const UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  ASSERT_EQ(p->map(fd.get()), 0);
  const auto bytes = p->bytes(*p->range_of(*entry));
  ASSERT_EQ(bytes.size(), 1u);
  EXPECT_EQ(static_cast<char>(bytes[0]), 'y');
}

// A format whose file is a u32 count then that many (u32 length, bytes) records.
class CountedRecords final : public Format {
 public:
  std::string_view name() const noexcept override { return "counted"; }
  std::string_view description() const noexcept override { return "test"; }
  std::string_view signature() const noexcept override { return "test"; }
  bool detect(std::span<const std::byte>, uint64_t) const override { return true; }
  Layout parse(const ByteSource& source) const override {
    Layout layout;
    BinaryReader r(source);
    const uint32_t count = r.u32();
    RecordTable table;
    table.dir = "record";
    for (uint32_t i = 0; i < count && r.ok(); ++i) {
      const uint32_t length = r.u32();
      table.records.push_back(Record{r.tell(), length, i});
      r.skip(length);
    }
    table.attributes = [](const ByteSource& src, const Record& rec) {
      BinaryReader back(src);
      back.seek(rec.offset - 4);
      return Json{{"declared", back.u32()}, {"tag", rec.tag}};
    };
    layout.tables.push_back(std::move(table));
    layout.slices.push_back(Slice{"count", {0, 4}, Json::object()});
    return layout;
  }
};

TEST_F(PayloadTest, RecordTablesRenderSlicesJsonInPiecesOfExactSize) {
  std::string file;
  const auto le32 = [&file](uint32_t v) {
    for (int i = 0; i < 4; ++i) file.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
  };
  const uint32_t count = 2500;  // three chunks
  le32(count);
  for (uint32_t i = 0; i < count; ++i) {
    le32(i % 5);
    file += std::string(i % 5, static_cast<char>('a' + i % 26));
  }
  const std::string path = write("counted.bin", file);
  Registry counted;
  counted.add(std::make_unique<CountedRecords>());
  const auto p = testing::payload_of(path, counted);
  EXPECT_EQ(Json::parse(p->header_json())["slice_count"], count + 1);
  // Building the payload does not render its records: slices.json is sized on first need.
  EXPECT_FALSE(p->slices_json_measured());
  const std::string text = testing::slices_json_of(*p, path);
  EXPECT_EQ(text.size(), p->slices_json_size());
  const Json all = Json::parse(text);
  ASSERT_EQ(all.size(), count + 1);
  EXPECT_EQ(all[0]["name"], "count");
  EXPECT_EQ(all[1]["name"], "record/0000");
  EXPECT_EQ(all[2500]["path"], "raw/record/2499");
  EXPECT_EQ(all[2500]["declared"], 2499 % 5);
  EXPECT_EQ(all[2500]["tag"], 2499);
  const auto entry = p->tree().find("record/1234");
  ASSERT_TRUE(entry);
  const auto range = p->range_of(*entry);
  EXPECT_EQ(range->offset, all[1235]["offset"]);
  EXPECT_EQ(range->length, 1234u % 5);
  // Pieces line up: every offset falls in exactly one, and they tile the text.
  UniqueFd fd(::open(path.c_str(), O_RDONLY));
  const FdSource source(fd.get(), p->size());
  uint64_t at = 0;
  size_t pieces = 0;
  while (at < p->slices_json_size()) {
    SlicesJson::Piece piece;
    ASSERT_TRUE(p->slices_json_piece(at, source, piece));
    ASSERT_EQ(piece.start, at);
    EXPECT_EQ(text.substr(at, piece.text.size()), piece.text);
    at += piece.text.size();
    ++pieces;
  }
  EXPECT_EQ(pieces, 5u);  // head, three chunks, tail
}

TEST_F(PayloadTest, NonUtf8PathIsEscapedInJson) {
  const auto p = testing::payload_of(write("caf\xE9.bin", "data"), registry);
  const Json h = header_of(*p);
  const std::string path = h["path"];
  EXPECT_NE(path.find("caf\\xE9.bin"), std::string::npos) << path;
}

TEST_F(PayloadTest, RegistryOrderPutsUnknownLast) {
  const auto formats = registry.formats();
  ASSERT_GE(formats.size(), 3u);
  EXPECT_EQ(formats.back()->name(), "unknown");
  EXPECT_NE(registry.find("npy"), nullptr);
  EXPECT_NE(registry.find("safetensors"), nullptr);
  EXPECT_EQ(registry.find("nope"), nullptr);
}

TEST_F(PayloadTest, CacheRevalidatesChangedSources) {
  write("sub/f.bin", "1234");
  auto root = SourceRoot::open(dir.string());
  ASSERT_TRUE(std::holds_alternative<SourceRoot>(root));
  PayloadCache cache(std::get<SourceRoot>(root), registry, 2);
  auto first = std::get<std::shared_ptr<const Payload>>(cache.get("sub/f.bin"));
  auto again = std::get<std::shared_ptr<const Payload>>(cache.get("sub/f.bin"));
  EXPECT_EQ(first, again);
  write("sub/f.bin", "123456");
  auto changed = std::get<std::shared_ptr<const Payload>>(cache.get("sub/f.bin"));
  EXPECT_NE(first, changed);
  EXPECT_EQ(changed->size(), 6u);
  EXPECT_EQ(first->size(), 4u);  // the old version stays intact for whoever holds it
  EXPECT_EQ(std::get<int>(cache.get("missing")), ENOENT);
  EXPECT_EQ(std::get<int>(cache.get("sub")), ENOENT);  // a directory is not a payload
  write("a", "a");
  write("b", "b");
  (void)cache.get("a");
  (void)cache.get("b");
  EXPECT_LE(cache.counters().cached, 2u);
  EXPECT_GE(cache.counters().evictions, 1u);
}

TEST_F(PayloadTest, MemoryEstimateIsWhatTheHeapHolds) {
  // The estimate is counted from what the payload holds; for a payload of 16,384 slices (where
  // malloc's per-thread caches of freed chunks are noise) it matches malloc's own count.
  const std::string file = write("many.o", elf_with_sections(20000));
  (void)testing::payload_of(file, registry);  // one-time allocations (statics) out of the way
  const size_t before = heap_in_use();
  const auto p = testing::payload_of(file, registry);
  const size_t held = heap_in_use() - before;
  EXPECT_EQ(p->slices().size(), 16384u);
  if (kGlibcHeap) {
    EXPECT_GT(held, size_t{8} << 20);
    EXPECT_NEAR(static_cast<double>(p->memory_estimate()), static_cast<double>(held),
                0.05 * static_cast<double>(held));
  }
  // And for a payload of a few slices, within the noise of those caches.
  const std::string small =
      write("small.npy", std::string("\x93NUMPY\x01\x00\x76\x00", 10) +
                             "{'descr': '<f4', 'fortran_order': False, "
                             "'shape': (3,), }" +
                             std::string(118 - 57 - 1, ' ') + "\n" + std::string(12, '\0'));
  const auto q = testing::payload_of(small, registry);
  EXPECT_EQ(q->format(), "npy");
  EXPECT_TRUE(q->errors().empty());
  EXPECT_GT(q->memory_estimate(), 1000u);
  EXPECT_LT(q->memory_estimate(), 8000u);
}

TEST_F(PayloadTest, BuildingAndDroppingALargePayloadGivesTheMemoryBack) {
  const std::string file = write("many.o", elf_with_sections(65000));
  (void)testing::payload_of(file, registry);
  const size_t before = rss_anon_kib();
  auto p = testing::payload_of(file, registry);
  const size_t built = rss_anon_kib();
  EXPECT_EQ(p->slices().size(), 16384u);
  if (!kGlibcHeap) return;
  // What stays resident is the payload itself, not the parse's peak (the section table, the
  // header's JSON tree), which malloc would otherwise keep.
  EXPECT_LT(built - std::min(built, before), p->memory_estimate() / 1024 * 5 / 4 + 2048)
      << "estimate " << p->memory_estimate() << " bytes";
  p.reset();
  EXPECT_LT(rss_anon_kib(), before + 2048);
}

TEST_F(PayloadTest, OversizedHeaderKeepsItsPlainValues) {
  Registry huge;
  huge.add(std::make_unique<HugeHeaderFormat>());
  const auto p = testing::payload_of(write("h.bin", "HUGE and more"), huge);
  EXPECT_LT(p->header_json().size(), size_t{64} << 10);
  const Json h = header_of(*p);
  EXPECT_EQ(h["format"], "huge");
  EXPECT_EQ(h["header"], (Json{{"count", 3}, {"name", "kept"}, {"flag", true}}));
  ASSERT_EQ(h["errors"].size(), 1u);
  EXPECT_EQ(h["errors"][0],
            "header.json would be over 4194304 bytes: the header's lists, objects and long "
            "strings (long_text, list, small_object) are left out");
  EXPECT_EQ(h["slice_count"], 1);
}

TEST_F(PayloadTest, SourceRootRefusesEscapes) {
  write("inside/f", "x");
  fsys::create_directory_symlink("/etc", dir / "link_to_etc");
  fsys::create_symlink("/etc/passwd", dir / "file_link");
  auto root = std::get<SourceRoot>(SourceRoot::open(dir.string()));
  EXPECT_TRUE(std::holds_alternative<struct stat>(root.stat("inside/f")));
  EXPECT_EQ(std::get<int>(root.open_file("link_to_etc/passwd")), ENOENT);
  EXPECT_EQ(std::get<int>(root.open_file("../etc/passwd")), ENOENT);
  EXPECT_EQ(std::get<int>(root.open_file("file_link")), ENOENT);
  const auto st = std::get<struct stat>(root.stat("file_link"));  // seen as a link, not followed
  EXPECT_TRUE(S_ISLNK(st.st_mode));
}

}  // namespace
}  // namespace payloadfs

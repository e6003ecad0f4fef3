// ELF parser tests: real files (system binaries, gcc/g++/as/ld output, 32-bit and big-endian,
// extended numbering) against binutils' readelf and objcopy, hand-built edge cases, and a
// bounded mutation run.

#include <fcntl.h>
#include <unistd.h>

#include <filesystem>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "core/formats/builtin.hpp"
#include "core/io/checked_math.hpp"
#include "core/io/unique_fd.hpp"
#include "unit/test_support.hpp"

namespace payloadfs {
namespace {

using testing::has_error;
using testing::to_bytes;

using testing::Bytes;

const Format& elf() {
  static const auto format = formats::make_elf();
  return *format;
}

// readelf prints constant names without their prefix, and the GNU version sections as VER*.
std::string readelf_type(const Json& ours, std::string_view prefix) {
  if (!ours.is_string()) return "?";
  std::string name = ours.get<std::string>();
  if (name.rfind(prefix, 0) == 0) name = name.substr(prefix.size());
  if (name == "GNU_verdef") return "VERDEF";
  if (name == "GNU_verneed") return "VERNEED";
  if (name == "GNU_versym") return "VERSYM";
  return name;
}

// ---------------------------------------------------------------- real files vs. readelf

class ElfFixtures : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::fixtures_dir() + "/elf";
    if (testing::fixtures_dir().empty() || !std::filesystem::exists(dir_ + "/manifest.json"))
      GTEST_FAIL() << "run tests/fixtures/gen_elf.py first (PAYLOADFS_FIXTURES)";
  }
  std::string dir_;
};

TEST_F(ElfFixtures, MatchesReadelfAndObjcopy) {
  const Json manifest = testing::read_fixture_json(dir_ + "/manifest.json");
  ASSERT_GE(manifest.size(), 5u);
  size_t compared_slices = 0, empty_slices = 0;
  std::set<std::string> empty_in_gxx;
  bool saw_big = false, saw_32 = false, saw_ext = false;
  for (const auto& entry : manifest) {
    const std::string name = entry.get<std::string>();
    SCOPED_TRACE(name);
    const std::string path = dir_ + "/" + name;
    const Json expected = testing::read_fixture_json(path + ".expected.json");
    const auto file = testing::read_file(path);
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    ASSERT_TRUE(fd.valid());
    const FdSource source(fd.get(), file.size());
    const Layout layout = elf().parse(source);
    EXPECT_TRUE(layout.errors.empty()) << layout.errors.front();
    ASSERT_TRUE(layout.magic.has_value());
    EXPECT_EQ(*layout.magic, (ByteRange{0, 4}));

    const Json& h = layout.header;
    const Json& eh = expected["header"];
    for (const char* key : {"class", "data", "ident_version", "osabi", "abi_version", "type",
                            "machine", "version", "entry", "phoff", "shoff", "flags", "ehsize",
                            "phentsize", "phnum", "shentsize", "shnum", "shstrndx"}) {
      EXPECT_EQ(h[key], eh[key]) << key;
    }
    saw_big |= h["data"] == "big endian";
    saw_32 |= h["class"] == "ELF32";
    saw_ext |= name == "hello_ext.o";

    const Json& segs = h["segments"];
    const Json& esegs = expected["segments"];
    ASSERT_EQ(segs.size(), esegs.size());
    for (size_t i = 0; i < segs.size(); ++i) {
      SCOPED_TRACE("segment " + std::to_string(i));
      EXPECT_EQ(readelf_type(segs[i]["type"], "PT_"), esegs[i]["type"]);
      for (const char* key : {"offset", "vaddr", "paddr", "filesz", "memsz", "flags", "align"})
        EXPECT_EQ(segs[i][key], esegs[i][key]) << key;
    }

    const Json& secs = h["sections"];
    const Json& esecs = expected["sections"];
    ASSERT_EQ(secs.size(), esecs.size());
    size_t slice = 0;
    for (size_t i = 0; i < secs.size(); ++i) {
      const Json& s = secs[i];
      const Json& e = esecs[i];
      SCOPED_TRACE("section " + std::to_string(i) + " " + e["name"].get<std::string>());
      EXPECT_EQ(s["index"], e["index"]);
      EXPECT_EQ(s["name"], e["name"]);
      EXPECT_EQ(readelf_type(s["type"], "SHT_"), e["type"]);
      for (const char* key :
           {"addr", "offset", "size", "entsize", "flags", "link", "info", "align"})
        EXPECT_EQ(s[key], e[key]) << key;
      // Every section but the null ones and SHT_NOBITS is a slice, in section order: those
      // with contents hold the dumped bytes, empty ones (.data, .note.GNU-stack of g++ -c) none.
      if (i == 0 || e["type"] == "NULL" || e["type"] == "NOBITS") {
        EXPECT_TRUE(e["dump"].is_null());
        continue;
      }
      ASSERT_LT(slice, layout.slices.size());
      const Slice& sl = layout.slices[slice++];
      EXPECT_EQ(sl.name, e["name"]);
      EXPECT_EQ(sl.attributes["index"], i);
      EXPECT_EQ(sl.attributes["type"], s["type"]);
      EXPECT_EQ(sl.attributes["flags"], e["flags"]);
      EXPECT_EQ(sl.attributes["addr"], e["addr"]);
      EXPECT_EQ(sl.attributes["align"], e["align"]);
      EXPECT_EQ(sl.range.offset, e["offset"]);
      EXPECT_EQ(sl.range.length, e["size"]);
      if (e["dump"].is_null()) {
        EXPECT_EQ(e["size"], 0);
        ++empty_slices;
        if (name == "twice.o") empty_in_gxx.insert(e["name"].get<std::string>());
        continue;
      }
      const auto want = testing::read_file(path + ".sections/" + std::to_string(i));
      EXPECT_EQ(testing::slice_bytes(file, sl), want) << "dumped by " << e["dump"];
      ++compared_slices;
    }
    EXPECT_EQ(slice, layout.slices.size()) << "no slices beyond the sections readelf lists";
  }
  EXPECT_GT(compared_slices, 50u);
  EXPECT_GT(empty_slices, 2u);
  // g++ -c writes an empty .data and the .note.GNU-stack that marks a non-executable stack.
  EXPECT_TRUE(empty_in_gxx.contains(".data"));
  EXPECT_TRUE(empty_in_gxx.contains(".note.GNU-stack"));
  EXPECT_TRUE(saw_32) << "gcc-multilib missing: no 32-bit fixture";
  EXPECT_TRUE(saw_big) << "binutils-powerpc-linux-gnu missing: no big-endian fixture";
  EXPECT_TRUE(saw_ext);
}

TEST_F(ElfFixtures, PayloadShowsSectionSlices) {
  // Through Payload::build as the filesystem does it (with a registry holding just ELF).
  Registry registry;
  registry.add(formats::make_elf());
  const auto payload = testing::payload_of(dir_ + "/hello.o", registry);
  const Json header = Json::parse(payload->header_json());
  EXPECT_EQ(header["format"], "elf");
  EXPECT_EQ(header["magic"], "7f454c46");
  EXPECT_EQ(header["header"]["type"], "ET_REL");
  EXPECT_FALSE(header.contains("errors"));
  const Json slices = Json::parse(testing::slices_json_of(*payload, dir_ + "/hello.o"));
  bool text = false;
  for (const auto& s : slices) {
    EXPECT_NE(s["name"], ".bss");
    if (s["name"] == ".text.main") {
      text = true;
      EXPECT_EQ(s["path"], "raw/.text.main");
      EXPECT_EQ(s["flags"], "AX");
      EXPECT_EQ(s["type"], "SHT_PROGBITS");
    }
  }
  EXPECT_TRUE(text);
}

TEST_F(ElfFixtures, EmptySectionsOfGxxObjectsAreEmptyFiles) {
  // `g++ -c` output has an empty .data and .note.GNU-stack (whose presence and flags mark a
  // non-executable stack): both are listed in slices.json and are empty files under raw/.
  Registry registry;
  registry.add(formats::make_elf());
  const std::string path = dir_ + "/twice.o";
  const auto payload = testing::payload_of(path, registry);
  EXPECT_FALSE(Json::parse(payload->header_json()).contains("errors"));
  const Json slices = Json::parse(testing::slices_json_of(*payload, path));
  std::set<std::string> empty;
  for (const auto& s : slices) {
    EXPECT_NE(s["type"], "SHT_NOBITS") << s["name"];
    if (s["length"] != 0) continue;
    empty.insert(s["name"].get<std::string>());
    const auto entry = payload->tree().find(s["path"].get<std::string>().substr(4));
    ASSERT_TRUE(entry.has_value()) << s["path"];
    EXPECT_EQ(entry->kind, SliceTree::Entry::Kind::slice);
    EXPECT_EQ(payload->range_of(*entry), (ByteRange{s["offset"].get<uint64_t>(), 0}));
  }
  EXPECT_EQ(empty, (std::set<std::string>{".data", ".note.GNU-stack"}));
  for (const auto& s : slices) {
    if (s["name"] == ".note.GNU-stack") {
      EXPECT_EQ(s["path"], "raw/.note.GNU-stack");
      EXPECT_EQ(s["type"], "SHT_PROGBITS");
      EXPECT_EQ(s["flags"], "");  // no SHF_EXECINSTR: the stack is not executable
    }
  }
}

// ---------------------------------------------------------------- hand-built files

struct Sec {
  std::string name;
  uint32_t type = 1;
  uint64_t flags = 0;
  std::string data;
  uint64_t addr = 0;
};

// A small ELF: header, one PT_LOAD, section data, .shstrtab, section headers (null first).
struct Built {
  std::vector<std::byte> bytes;
  uint64_t shoff = 0;
  uint64_t phoff = 0;
  std::vector<uint64_t> data_offsets;  // per Sec
};

Built build(bool is64, bool big, const std::vector<Sec>& secs) {
  const auto put = [&](Bytes& b, uint64_t v, int width) {
    if (big)
      b.be(v, width);
    else
      b.le(v, width);
  };
  const int word = is64 ? 8 : 4;
  const uint64_t ehsize = is64 ? 64 : 52, phsize = is64 ? 56 : 32, shsize = is64 ? 64 : 40;
  std::string shstrtab(1, '\0');
  std::vector<uint32_t> name_offsets;
  for (const auto& s : secs) {
    name_offsets.push_back(static_cast<uint32_t>(shstrtab.size()));
    shstrtab += s.name + '\0';
  }
  const uint32_t shstrtab_name = static_cast<uint32_t>(shstrtab.size());
  shstrtab += std::string(".shstrtab") + '\0';

  Built out;
  out.phoff = ehsize;
  uint64_t cursor = ehsize + phsize;
  for (const auto& s : secs) {
    out.data_offsets.push_back(cursor);
    if (s.type != 8) cursor += s.data.size();
  }
  const uint64_t shstrtab_off = cursor;
  cursor += shstrtab.size();
  out.shoff = cursor;
  const uint64_t shnum = secs.size() + 2;

  Bytes b;
  b.u8(0x7f).raw("ELF").u8(is64 ? 2 : 1).u8(big ? 2 : 1).u8(1).u8(3).u8(0).zeros(7);
  put(b, 2, 2);              // ET_EXEC
  put(b, big ? 20 : 62, 2);  // EM_PPC / EM_X86_64
  put(b, 1, 4);
  put(b, 0x401000, word);
  put(b, out.phoff, word);
  put(b, out.shoff, word);
  put(b, 0, 4);
  put(b, ehsize, 2);
  put(b, phsize, 2);
  put(b, 1, 2);
  put(b, shsize, 2);
  put(b, shnum, 2);
  put(b, shnum - 1, 2);
  // PT_LOAD R+X covering the file.
  put(b, 1, 4);
  if (is64) put(b, 5, 4);
  put(b, 0, word);
  put(b, 0x400000, word);
  put(b, 0x400000, word);
  put(b, out.shoff + shnum * shsize, word);
  put(b, out.shoff + shnum * shsize, word);
  if (!is64) put(b, 5, 4);
  put(b, 0x1000, word);
  for (const auto& s : secs)
    if (s.type != 8) b.raw(s.data);
  b.raw(shstrtab);
  const auto shdr = [&](uint32_t name, uint32_t type, uint64_t flags, uint64_t addr, uint64_t off,
                        uint64_t size) {
    put(b, name, 4);
    put(b, type, 4);
    put(b, flags, word);
    put(b, addr, word);
    put(b, off, word);
    put(b, size, word);
    put(b, 0, 4);
    put(b, 0, 4);
    put(b, 1, word);
    put(b, 0, word);
  };
  shdr(0, 0, 0, 0, 0, 0);
  for (size_t i = 0; i < secs.size(); ++i)
    shdr(name_offsets[i], secs[i].type, secs[i].flags, secs[i].addr, out.data_offsets[i],
         secs[i].data.size());
  shdr(shstrtab_name, 3, 0, 0, shstrtab_off, shstrtab.size());
  out.bytes = b.data();
  return out;
}

const std::vector<Sec> kSections = {
    {".text", 1, 0x6, "\x90\x90\xc3", 0x401000},
    {".data", 1, 0x3, "DATA", 0x402000},
    {".bss", 8, 0x3, std::string(100, '\0'), 0x403000},
    {".comment", 1, 0x30, std::string("GCC\0", 4), 0},
    {".empty", 1, 0x2, "", 0},
};

void check_basic(const Layout& layout, const std::vector<std::byte>& bytes, const Built& built) {
  EXPECT_TRUE(layout.errors.empty()) << layout.errors.front();
  const Json& secs = layout.header["sections"];
  ASSERT_EQ(secs.size(), 7u);
  EXPECT_EQ(secs[0]["type"], "SHT_NULL");
  EXPECT_EQ(secs[0]["name"], "");
  EXPECT_EQ(secs[1]["name"], ".text");
  EXPECT_EQ(secs[1]["flags"], "AX");
  EXPECT_EQ(secs[1]["flags_number"], 6);
  EXPECT_EQ(secs[2]["flags"], "WA");
  EXPECT_EQ(secs[3]["type"], "SHT_NOBITS");
  EXPECT_EQ(secs[3]["size"], 100);
  EXPECT_EQ(secs[4]["flags"], "MS");
  EXPECT_EQ(secs[6]["name"], ".shstrtab");
  EXPECT_EQ(secs[6]["type"], "SHT_STRTAB");
  // No slice for the null section or .bss (NOBITS); the empty section is an empty slice.
  ASSERT_EQ(layout.slices.size(), 5u);
  EXPECT_EQ(layout.slices[0].name, ".text");
  EXPECT_EQ(layout.slices[0].range, (ByteRange{built.data_offsets[0], 3}));
  EXPECT_EQ(layout.slices[0].attributes["addr"], 0x401000);
  EXPECT_EQ(layout.slices[1].name, ".data");
  EXPECT_EQ(testing::slice_bytes(bytes, layout.slices[1]), to_bytes("DATA"));
  EXPECT_EQ(layout.slices[2].name, ".comment");
  EXPECT_EQ(layout.slices[3].name, ".empty");
  EXPECT_EQ(layout.slices[3].range, (ByteRange{built.data_offsets[4], 0}));
  EXPECT_EQ(layout.slices[3].attributes["flags"], "A");
  EXPECT_EQ(layout.slices[4].name, ".shstrtab");
  const Json& segs = layout.header["segments"];
  ASSERT_EQ(segs.size(), 1u);
  EXPECT_EQ(segs[0]["type"], "PT_LOAD");
  EXPECT_EQ(segs[0]["flags"], "RX");
  EXPECT_EQ(segs[0]["flags_number"], 5);
  EXPECT_EQ(segs[0]["vaddr"], 0x400000);
  EXPECT_EQ(layout.header["entry"], 0x401000);
  EXPECT_EQ(layout.header["osabi"], "ELFOSABI_GNU");
  EXPECT_EQ(layout.header["shnum"], 7);
  EXPECT_EQ(layout.header["shstrndx"], 6);
}

TEST(ElfHandBuilt, AllFourClassAndByteOrderCombinations) {
  for (const bool is64 : {false, true}) {
    for (const bool big : {false, true}) {
      SCOPED_TRACE(std::string(is64 ? "64" : "32") + (big ? " BE" : " LE"));
      const Built built = build(is64, big, kSections);
      const Layout layout = testing::parse_bytes(elf(), built.bytes);
      check_basic(layout, built.bytes, built);
      EXPECT_EQ(layout.header["class"], is64 ? "ELF64" : "ELF32");
      EXPECT_EQ(layout.header["data"], big ? "big endian" : "little endian");
      EXPECT_EQ(layout.header["machine"], big ? "EM_PPC" : "EM_X86_64");
      EXPECT_EQ(layout.header["machine_number"], big ? 20 : 62);
      EXPECT_EQ(layout.header["type"], "ET_EXEC");
    }
  }
}

void set(std::vector<std::byte>& b, uint64_t offset, uint64_t value, int width, bool big = false) {
  for (int i = 0; i < width; ++i) {
    const int shift = 8 * (big ? width - 1 - i : i);
    b[offset + static_cast<uint64_t>(i)] = static_cast<std::byte>((value >> shift) & 0xFF);
  }
}

TEST(ElfHandBuilt, ExtendedNumbering) {
  Built built = build(true, false, kSections);
  auto& b = built.bytes;
  set(b, 0x3c, 0, 2);              // e_shnum = 0
  set(b, 0x3e, 0xFFFF, 2);         // e_shstrndx = SHN_XINDEX
  set(b, 0x38, 0xFFFF, 2);         // e_phnum = PN_XNUM
  set(b, built.shoff + 32, 7, 8);  // section 0 sh_size = 7
  set(b, built.shoff + 40, 6, 4);  // section 0 sh_link = 6
  set(b, built.shoff + 44, 1, 4);  // section 0 sh_info = 1
  const Layout layout = testing::parse_bytes(elf(), b);
  EXPECT_TRUE(layout.errors.empty()) << layout.errors.front();
  EXPECT_EQ(layout.header["shnum"], 7);
  EXPECT_EQ(layout.header["shstrndx"], 6);
  EXPECT_EQ(layout.header["phnum"], 1);
  EXPECT_EQ(layout.header["sections"][1]["name"], ".text");
  EXPECT_EQ(layout.slices.size(), 5u);
}

TEST(ElfHandBuilt, ExtendedNumberingWithoutSectionZero) {
  Built built = build(true, false, kSections);
  auto& b = built.bytes;
  set(b, 0x28, 0, 8);       // e_shoff = 0: no section headers
  set(b, 0x3e, 0xFFFF, 2);  // yet e_shstrndx = SHN_XINDEX
  set(b, 0x38, 0xFFFF, 2);  // and e_phnum = PN_XNUM
  const Layout layout = testing::parse_bytes(elf(), b);
  EXPECT_EQ(layout.errors.size(), 2u);
  EXPECT_EQ(layout.header["sections"].size(), 0u);
  EXPECT_EQ(layout.header["segments"].size(), 0u);
  EXPECT_TRUE(layout.slices.empty());
}

TEST(ElfHandBuilt, TruncatedAtEveryByteNeverOverreaches) {
  const Built built = build(true, true, kSections);
  for (size_t cut = 0; cut <= built.bytes.size(); ++cut) {
    const std::vector<std::byte> part(built.bytes.begin(),
                                      built.bytes.begin() + static_cast<std::ptrdiff_t>(cut));
    const Layout layout = testing::parse_bytes(elf(), part);
    for (const auto& s : layout.slices)
      EXPECT_TRUE(range_within(s.range.offset, s.range.length, cut)) << cut;
    if (cut < built.bytes.size()) {
      EXPECT_FALSE(layout.errors.empty()) << "cut at " << cut;
    }
    if (cut < 16) {
      EXPECT_FALSE(layout.header.contains("type"));
    }
  }
}

TEST(ElfHandBuilt, TruncatedSectionTableKeepsCompleteEntries) {
  const Built built = build(false, false, kSections);
  // Cut in the middle of section header 3 (.bss): sections 0..2 remain.
  const size_t cut = built.shoff + 3 * 40 + 10;
  const std::vector<std::byte> part(built.bytes.begin(),
                                    built.bytes.begin() + static_cast<std::ptrdiff_t>(cut));
  const Layout layout = testing::parse_bytes(elf(), part);
  EXPECT_EQ(layout.header["sections"].size(), 3u);
  ASSERT_FALSE(layout.errors.empty());
  EXPECT_NE(layout.errors[0].find("runs past the end"), std::string::npos);
  // .shstrtab (index 6) was not read, so names are unavailable and slices fall back to indexes.
  ASSERT_EQ(layout.slices.size(), 2u);
  EXPECT_EQ(layout.slices[0].name, "section_1");
  EXPECT_EQ(layout.slices[1].name, "section_2");
}

TEST(ElfHandBuilt, ExtremeSizesAndOffsets) {
  for (const uint64_t value : {uint64_t{0xFFFFFFFF}, ~uint64_t{0}, uint64_t{1} << 63}) {
    Built built = build(true, false, kSections);
    auto& b = built.bytes;
    const uint64_t text = built.shoff + 64;  // section 1
    set(b, text + 32, value, 8);             // .text sh_size
    set(b, text + 64 + 24, value, 8);        // .data sh_offset
    const Layout layout = testing::parse_bytes(elf(), b);
    EXPECT_EQ(layout.errors.size(), 2u);
    EXPECT_EQ(layout.header["sections"][1]["size"], value);
    EXPECT_EQ(layout.header["sections"][2]["offset"], value);
    for (const auto& s : layout.slices) {
      EXPECT_NE(s.name, ".text");
      EXPECT_NE(s.name, ".data");
    }
    EXPECT_EQ(layout.slices.size(), 3u);  // .comment, .empty, .shstrtab
  }
}

TEST(ElfHandBuilt, HugeCountsAreCapped) {
  Built built = build(true, false, kSections);
  auto& b = built.bytes;
  set(b, 0x3c, 0, 2);                         // e_shnum = 0 ...
  set(b, built.shoff + 32, ~uint64_t{0}, 8);  // ... and 2^64-1 sections
  set(b, 0x38, 0xFFFF, 2);                    // PN_XNUM ...
  set(b, built.shoff + 44, 0xFFFFFFFF, 4);    // ... and 2^32-1 program headers
  const Layout layout = testing::parse_bytes(elf(), b);
  EXPECT_EQ(layout.header["shnum"], ~uint64_t{0});
  EXPECT_EQ(layout.header["phnum"], 0xFFFFFFFFu);
  EXPECT_EQ(layout.header["sections"].size(), 7u);  // what the file holds
  bool capped = false;
  for (const auto& e : layout.errors)
    capped |= e.find("exceed the limit of 65536") != std::string::npos;
  EXPECT_TRUE(capped);
}

TEST(ElfHandBuilt, BadEntrySizes) {
  Built built = build(true, false, kSections);
  set(built.bytes, 0x3a, 40, 2);  // e_shentsize too small for ELF64
  set(built.bytes, 0x36, 8, 2);   // e_phentsize too small
  const Layout layout = testing::parse_bytes(elf(), built.bytes);
  EXPECT_EQ(layout.errors.size(), 2u);
  EXPECT_TRUE(layout.slices.empty());
  EXPECT_EQ(layout.header["sections"].size(), 0u);
  EXPECT_EQ(layout.header["segments"].size(), 0u);
}

TEST(ElfHandBuilt, LargerEntrySizeIsTheStride) {
  // gABI allows e_shentsize larger than the structure; rebuild with 72-byte entries.
  const Built built = build(true, false, kSections);
  std::vector<std::byte> b(built.bytes.begin(),
                           built.bytes.begin() + static_cast<std::ptrdiff_t>(built.shoff));
  for (size_t i = 0; i < 7; ++i) {
    const auto entry = built.bytes.begin() + static_cast<std::ptrdiff_t>(built.shoff + i * 64);
    b.insert(b.end(), entry, entry + 64);
    b.insert(b.end(), 8, std::byte{0xEE});
  }
  set(b, 0x3a, 72, 2);
  const Layout layout = testing::parse_bytes(elf(), b);
  check_basic(layout, b, built);
}

TEST(ElfHandBuilt, BadNames) {
  Built built = build(true, false, kSections);
  auto& b = built.bytes;
  set(b, built.shoff + 64, 0xFFFFFF, 4);  // .text name offset outside .shstrtab
  // .shstrtab without a final NUL: shrink its size by one.
  const uint64_t strtab_hdr = built.shoff + 6 * 64;
  uint64_t size = 0;
  for (int i = 7; i >= 0; --i)
    size = (size << 8) | std::to_integer<uint64_t>(b[strtab_hdr + 32 + static_cast<uint64_t>(i)]);
  set(b, strtab_hdr + 32, size - 1, 8);
  const Layout layout = testing::parse_bytes(elf(), b);
  EXPECT_TRUE(layout.header["sections"][1]["name"].is_null());
  EXPECT_EQ(layout.header["sections"][6]["name"], ".shstrtab");
  EXPECT_EQ(layout.errors.size(), 2u);  // bad offset, unterminated name
  EXPECT_EQ(layout.slices[0].name, "section_1");
}

TEST(ElfHandBuilt, NonUtf8NamesAreEscaped) {
  std::vector<Sec> secs = kSections;
  secs[0].name = "bad\xff";
  const Built built = build(true, false, secs);
  const Layout layout = testing::parse_bytes(elf(), built.bytes);
  EXPECT_EQ(layout.header["sections"][1]["name"], "bad\\xFF");
  EXPECT_EQ(layout.slices[0].name, "bad\\xFF");
  EXPECT_NO_THROW((void)layout.header.dump());
}

TEST(ElfHandBuilt, InvalidIdent) {
  Built built = build(true, false, kSections);
  built.bytes[4] = std::byte{3};
  Layout layout = testing::parse_bytes(elf(), built.bytes);
  EXPECT_EQ(layout.errors.size(), 1u);
  EXPECT_EQ(layout.header["class"], 3);
  built.bytes[4] = std::byte{2};
  built.bytes[5] = std::byte{0};
  layout = testing::parse_bytes(elf(), built.bytes);
  EXPECT_EQ(layout.errors.size(), 1u);
  EXPECT_TRUE(layout.slices.empty());
}

TEST(ElfHandBuilt, UnknownConstantsAreNumbers) {
  Built built = build(true, false, kSections);
  auto& b = built.bytes;
  set(b, 0x10, 0xfe01, 2);                      // OS-specific e_type
  set(b, 0x12, 0x1234, 2);                      // unknown machine
  set(b, built.phoff, 0x60000123, 4);           // OS-specific segment type
  set(b, built.shoff + 64 + 4, 0x60000042, 4);  // OS-specific section type
  set(b, built.shoff + 64 + 8, 0x0ff00006, 8);  // AX + OS-specific flag bits
  b[7] = std::byte{200};
  const Layout layout = testing::parse_bytes(elf(), b);
  EXPECT_EQ(layout.header["type"], 0xfe01);
  EXPECT_EQ(layout.header["machine"], 0x1234);
  EXPECT_EQ(layout.header["osabi"], 200);
  EXPECT_EQ(layout.header["segments"][0]["type"], 0x60000123);
  EXPECT_EQ(layout.header["sections"][1]["type"], 0x60000042);
  EXPECT_EQ(layout.header["sections"][1]["flags"], "AXo");
  EXPECT_EQ(layout.slices[0].attributes["type"], 0x60000042);
}

TEST(ElfHandBuilt, OsSpecificFlagLettersFollowReadelf) {
  Built built = build(true, false, kSections);
  auto& b = built.bytes;
  set(b, built.shoff + 64 + 8, 0x01200003, 8);     // W A + SHF_GNU_RETAIN + SHF_GNU_MBIND
  set(b, built.shoff + 128 + 8, 0x90000002, 8);    // A + SHF_X86_64_LARGE + SHF_EXCLUDE
  Layout layout = testing::parse_bytes(elf(), b);  // built with ELFOSABI_GNU
  EXPECT_EQ(layout.header["sections"][1]["flags"], "WARD");
  EXPECT_EQ(layout.header["sections"][2]["flags"], "AlE");
  b[7] = std::byte{0};  // ELFOSABI_NONE: readelf shows retain as 'o', which covers all OS bits
  layout = testing::parse_bytes(elf(), b);
  EXPECT_EQ(layout.header["sections"][1]["flags"], "WAo");
}

// ---------------------------------------------------------------- limits

// An ELF64 little-endian object with `count` sections by extended numbering (e_shnum = 0,
// section 0's sh_size the count; e_shstrndx = SHN_XINDEX, section 0's sh_link the index of the
// name table, the last section). Sections 1 .. count-2 are one-byte PROGBITS named `name` when
// given, else ".s<i>"; `phnum` program headers (PN_XNUM when over 0xfffe) come first.
struct ManySections {
  std::vector<std::byte> bytes;
  uint64_t shoff = 0;
};

ManySections many_sections(uint64_t count, const std::string& name = "", uint64_t phnum = 0) {
  std::string names(1, '\0');
  std::vector<uint32_t> name_offsets;
  for (uint64_t i = 1; i + 1 < count; ++i) {
    if (name.empty() || i == 1) {
      name_offsets.push_back(static_cast<uint32_t>(names.size()));
      names += (name.empty() ? ".s" + std::to_string(i) : name) + '\0';
    } else {
      name_offsets.push_back(name_offsets.front());  // every section shares one name
    }
  }
  const auto shstrtab_name = static_cast<uint32_t>(names.size());
  names += std::string(".shstrtab") + '\0';
  const uint64_t phoff = 64, data_off = phoff + 56 * phnum, names_off = data_off + count - 2;
  const uint64_t shoff = (names_off + names.size() + 7) & ~uint64_t{7};
  Bytes b;
  b.u8(0x7f).raw("ELF").u8(2).u8(1).u8(1).u8(0).zeros(8);
  b.le(1, 2).le(62, 2).le(1, 4).le(0, 8).le(phnum != 0 ? phoff : 0, 8).le(shoff, 8).le(0, 4);
  b.le(64, 2).le(56, 2).le(std::min<uint64_t>(phnum, 0xFFFF), 2).le(64, 2).le(0, 2).le(0xFFFF, 2);
  for (uint64_t i = 0; i < phnum; ++i)  // PT_NOTE R: no bytes of their own
    b.le(4, 4).le(4, 4).le(0, 8).le(0, 8).le(0, 8).le(0, 8).le(0, 8).le(4, 8);
  for (uint64_t i = 0; i + 2 < count; ++i) b.u8(i & 0xFF);
  b.raw(names).pad_to(8);
  const auto shdr = [&b](uint64_t name_off, uint64_t type, uint64_t off, uint64_t size,
                         uint64_t link, uint64_t info) {
    b.le(name_off, 4).le(type, 4).le(type == 1 ? 2 : 0, 8).le(0, 8).le(off, 8).le(size, 8);
    b.le(link, 4).le(info, 4).le(1, 8).le(0, 8);
  };
  shdr(0, 0, 0, count, count - 1, phnum >= 0xFFFF ? phnum : 0);
  for (uint64_t i = 1; i + 1 < count; ++i) shdr(name_offsets[i - 1], 1, data_off + i - 1, 1, 0, 0);
  shdr(shstrtab_name, 3, names_off, names.size(), 0, 0);
  return {b.data(), shoff};
}

TEST(ElfLimits, SixtyFiveThousandSectionsAreListedAndSlicedWithinLimits) {
  const ManySections elf65k = many_sections(65535);
  EXPECT_GT(elf65k.bytes.size(), 4'500'000u);
  const Layout layout = testing::parse_bytes(elf(), elf65k.bytes);
  const Json& h = layout.header;
  EXPECT_EQ(h["shnum"], 65535);
  EXPECT_EQ(h["shstrndx"], 65534);
  ASSERT_EQ(h["sections"].size(), 2048u);  // kMaxListedSections
  EXPECT_EQ(h["sections"][2047]["name"], ".s2047");
  EXPECT_EQ(h["sections_truncated"], true);
  ASSERT_EQ(layout.slices.size(), 16384u);  // kMaxSectionSlices
  EXPECT_EQ(layout.slices.back().name, ".s16384");
  EXPECT_EQ(layout.slices.back().attributes.size(), 5u);
  EXPECT_EQ(layout.errors.size(), 2u) << testing::first_error(layout);
  EXPECT_TRUE(has_error(layout, "65535 sections: header.json lists the first 2048"));
  EXPECT_TRUE(has_error(layout, "65534 sections occupy the file: the first 16384 are slices"));
  EXPECT_TRUE(has_error(layout, "; 49150 are not"));
  // The rendered header stays small: about 320 bytes a listed section.
  EXPECT_LT(h.dump(2).size(), size_t{1} << 20);
  // Every slice's attributes hold exactly their five members (no capacity to spare).
  EXPECT_EQ(layout.slices[0].attributes.get_ref<const Json::object_t&>().capacity(), 5u);
}

TEST(ElfLimits, FewSectionsAreNotCut) {
  const Layout layout = testing::parse_bytes(elf(), many_sections(2048).bytes);
  EXPECT_TRUE(layout.errors.empty()) << testing::first_error(layout);
  EXPECT_EQ(layout.header["sections"].size(), 2048u);
  EXPECT_FALSE(layout.header.contains("sections_truncated"));
  EXPECT_EQ(layout.slices.size(), 2047u);
}

TEST(ElfLimits, LongNamesSpendTheTextBudgets) {
  // 3000 sections sharing one 4000-byte name: header.json lists what fits in 1 MiB of text,
  // and names totalling 4 MiB are made slices.
  const std::string name = "." + std::string(3999, 'n');
  const Layout layout = testing::parse_bytes(elf(), many_sections(3000, name).bytes);
  const uint64_t listed = layout.header["sections"].size();
  EXPECT_GT(listed, 200u);
  EXPECT_LT(listed, 260u);  // 1 MiB / (320 + 4000)
  EXPECT_EQ(layout.slices.size(), (uint64_t{4} << 20) / 4000);
  EXPECT_EQ(layout.slices[1].name, name);
  EXPECT_TRUE(
      has_error(layout, "3000 sections: header.json lists the first " + std::to_string(listed)));
  EXPECT_TRUE(has_error(layout, "4194304 bytes of names"));
}

TEST(ElfLimits, DeeplyNestedNamesCostTheirDirectories) {
  // A name 1000 directories deep costs its 1999 bytes and 999 directories of 256 bytes
  // (257,743 bytes): sixteen of them fill the 4 MiB name budget.
  std::string deep;
  for (int i = 0; i < 999; ++i) deep += "d/";
  deep += "x";
  const Layout layout = testing::parse_bytes(elf(), many_sections(50, deep).bytes);
  EXPECT_EQ(layout.slices.size(), 16u);
  EXPECT_TRUE(has_error(layout, "49 sections occupy the file: the first 16 are slices"));
  EXPECT_EQ(layout.header["sections"].size(), 50u);  // listing them is cheap
}

TEST(ElfLimits, ErrorsAboutSingleSectionsAreCounted) {
  ManySections built = many_sections(1000);
  for (uint64_t i = 1; i + 1 < 1000; ++i)  // every data section's offset past the end
    set(built.bytes, built.shoff + i * 64 + 24, built.bytes.size() + i, 8);
  const Layout layout = testing::parse_bytes(elf(), built.bytes);
  EXPECT_EQ(layout.slices.size(), 1u);  // .shstrtab
  EXPECT_EQ(layout.errors.size(), 65u);
  EXPECT_TRUE(has_error(layout, "934 more errors about single sections are not listed"));
}

TEST(ElfLimits, ManyProgramHeadersAreListedWithinTheLimit) {
  const Layout layout = testing::parse_bytes(elf(), many_sections(3, "", 70000).bytes);
  EXPECT_EQ(layout.header["phnum"], 70000);
  EXPECT_EQ(layout.header["segments"].size(), 2048u);
  EXPECT_EQ(layout.header["segments"][0]["type"], "PT_NOTE");
  EXPECT_EQ(layout.header["segments_truncated"], true);
  EXPECT_EQ(layout.errors.size(), 1u) << testing::first_error(layout);
  EXPECT_TRUE(has_error(layout, "70000 program headers: header.json lists the first 2048"));
  EXPECT_EQ(layout.slices.size(), 2u);
}

TEST(ElfDetect, MagicOnly) {
  EXPECT_TRUE(elf().detect(to_bytes("\x7f"
                                    "ELF"),
                           4));
  EXPECT_TRUE(elf().detect(build(false, true, kSections).bytes, 1000));
  EXPECT_FALSE(elf().detect(to_bytes("\x7f"
                                     "EL"),
                            3));
  EXPECT_FALSE(elf().detect(to_bytes("\x7f"
                                     "elf"),
                            4));
  EXPECT_FALSE(elf().detect(to_bytes("MZ\x90\x00"), 4));
  EXPECT_FALSE(elf().detect({}, 0));
}

// ---------------------------------------------------------------- robustness

TEST(ElfRobustness, MutatedFilesStayInBounds) {
  std::vector<std::vector<std::byte>> seeds = {build(true, false, kSections).bytes,
                                               build(false, true, kSections).bytes};
  const std::string dir = testing::fixtures_dir() + "/elf";
  for (const char* name : {"hello.o", "be32", "hello32.o"}) {
    if (!testing::fixtures_dir().empty() && std::filesystem::exists(dir + "/" + name))
      seeds.push_back(testing::read_file(dir + "/" + name));
  }
  std::mt19937_64 rng(0xE1F);
  for (int iter = 0; iter < 3000; ++iter) {
    std::vector<std::byte> b = seeds[static_cast<size_t>(iter) % seeds.size()];
    const int edits = 1 + static_cast<int>(rng() % 8);
    for (int e = 0; e < edits; ++e) {
      // Hit the headers (first 64 bytes, and the tail where section headers live) more often.
      const uint64_t pick = rng() % 3;
      const uint64_t pos = (pick == 0   ? rng() % 64
                            : pick == 1 ? b.size() - 1 - rng() % std::min<size_t>(b.size(), 512)
                                        : rng()) %
                           b.size();
      const uint64_t kind = rng() % 4;
      if (kind == 0)
        b[pos] = static_cast<std::byte>(rng());
      else if (kind == 1)
        b[pos] = std::byte{0xFF};
      else if (kind == 2)
        b[pos] = std::byte{0};
      else
        b.resize(std::max<size_t>(1, static_cast<size_t>(rng() % b.size())));
      if (b.empty()) break;
    }
    const Layout layout = testing::parse_bytes(elf(), b);
    for (const auto& s : layout.slices)
      ASSERT_TRUE(range_within(s.range.offset, s.range.length, b.size())) << iter;
    (void)layout.header.dump(-1, ' ', false, Json::error_handler_t::strict);
  }
}

}  // namespace
}  // namespace payloadfs

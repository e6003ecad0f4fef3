// ELF object files, 32- and 64-bit, little- and big-endian: System V ABI "gABI", chapter 4
// (Object Files: ELF Header, Sections, Program Header), including the extended numbering of
// sections and program headers (e_shnum == 0, e_shstrndx == SHN_XINDEX, e_phnum == PN_XNUM take
// their real values from section header 0). Names of constants follow <elf.h>; section flag
// letters follow binutils readelf -S.

#include <algorithm>
#include <array>
#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include "core/formats/builtin.hpp"
#include "core/formats/support/elf_names.hpp"
#include "core/formats/support/signature.hpp"
#include "core/io/binary_reader.hpp"
#include "core/io/checked_math.hpp"
#include "core/render/json_text.hpp"

namespace payloadfs::formats {
namespace {

constexpr auto kMagic = byte_string(
    "\x7f"
    "ELF");
// Hard caps against hostile counts. Ordinary numbering reaches at most 0xfeff sections and
// 0xfffe program headers; libmagic (elf_shnum/elf_phnum) stops at 32768 and 2048 by default.
constexpr uint64_t kMaxSections = 65536;
constexpr uint64_t kMaxNameBytes = 4096;
// What a payload holds and renders is bounded too, whatever the file declares: header.json
// lists at most kMaxListedSections sections and about kMaxListedSectionBytes of their text
// (each costs about kListedSectionBytes plus its name, pretty-printed), and kMaxListedSegments
// program headers; at most kMaxSectionSlices sections, whose names total at most
// kMaxSliceNameBytes (with the directories they make: see tree_cost), become slices (each
// slice costs about 800 bytes held: its attributes, its raw/ node and its line of slices.json).
// Past a limit the rest are counted, with an error.
constexpr uint64_t kMaxListedSections = 2048;
constexpr uint64_t kMaxListedSectionBytes = 1 << 20;
constexpr uint64_t kListedSectionBytes = 320;
constexpr uint64_t kMaxListedSegments = 2048;
constexpr uint64_t kMaxSectionSlices = 16384;
constexpr uint64_t kMaxSliceNameBytes = 4 << 20;
// Errors about single sections (bad names, bytes past the end): the first ones, then a count.
constexpr uint64_t kMaxSectionErrors = 64;

constexpr uint16_t kShnLoreserve = 0xff00;
constexpr uint16_t kShnXindex = 0xffff;
constexpr uint16_t kPnXnum = 0xffff;
constexpr uint32_t kShtNull = 0;
constexpr uint32_t kShtNobits = 8;

// A constant's name when we know it, otherwise its number.
Json name_or_number(std::optional<std::string_view> name, uint64_t value) {
  if (name) return std::string(*name);
  return value;
}

struct SectionHeader {
  uint32_t name = 0;
  uint32_t type = 0;
  uint64_t flags = 0;
  uint64_t addr = 0;
  uint64_t offset = 0;
  uint64_t size = 0;
  uint32_t link = 0;
  uint32_t info = 0;
  uint64_t align = 0;
  uint64_t entsize = 0;
};

struct ProgramHeader {
  uint32_t type = 0;
  uint32_t flags = 0;
  uint64_t offset = 0;
  uint64_t vaddr = 0;
  uint64_t paddr = 0;
  uint64_t filesz = 0;
  uint64_t memsz = 0;
  uint64_t align = 0;
};

class ElfReader {
 public:
  ElfReader(BinaryReader& reader, bool is64) : r_(reader), is64_(is64) {}
  uint64_t word() { return is64_ ? r_.u64() : r_.u32(); }  // Elf_Addr, Elf_Off, Elf64_Xword

  SectionHeader section() {
    SectionHeader s;
    s.name = r_.u32();
    s.type = r_.u32();
    s.flags = word();
    s.addr = word();
    s.offset = word();
    s.size = word();
    s.link = r_.u32();
    s.info = r_.u32();
    s.align = word();
    s.entsize = word();
    return s;
  }

  ProgramHeader segment() {
    ProgramHeader p;
    p.type = r_.u32();
    if (is64_) p.flags = r_.u32();
    p.offset = word();
    p.vaddr = word();
    p.paddr = word();
    p.filesz = word();
    p.memsz = word();
    if (!is64_) p.flags = r_.u32();
    p.align = word();
    return p;
  }

 private:
  BinaryReader& r_;
  bool is64_;
};

// What a slice name costs as the payload holds it: its bytes, and each directory its '/' make
// under raw/ (a node of about kDirectoryBytes). A 4096-byte "x/x/x/..." name makes 2048
// directories: it costs about 512 KiB, not 4 KiB.
constexpr uint64_t kDirectoryBytes = 256;
uint64_t tree_cost(std::string_view name) {
  return name.size() +
         kDirectoryBytes * static_cast<uint64_t>(std::count(name.begin(), name.end(), '/'));
}

// How many whole table entries of `entsize` bytes at `offset` the file holds, up to `count`.
uint64_t entries_in_file(uint64_t offset, uint64_t entsize, uint64_t count, uint64_t file_size) {
  if (offset >= file_size || entsize == 0) return 0;
  return std::min(count, (file_size - offset) / entsize);
}

class Elf final : public Format {
 public:
  std::string_view name() const noexcept override { return "elf"; }
  std::string_view description() const noexcept override {
    return "ELF object file, executable, shared library or core dump (32/64-bit, LE/BE)";
  }
  std::string_view signature() const noexcept override { return "7f 45 4c 46 ('\\x7fELF') at 0"; }

  bool detect(std::span<const std::byte> head, uint64_t) const override {
    return starts_with(head, kMagic);
  }

  Layout parse(const ByteSource& source) const override {
    Layout layout;
    layout.magic = magic_at_start(kMagic);
    auto& h = layout.header;
    BinaryReader reader(source, Endian::little);
    std::array<std::byte, 16> ident{};
    if (!reader.read_into(ident)) {
      layout.add_error("truncated e_ident: " + *reader.error());
      return layout;
    }
    const auto id = [&](size_t i) { return std::to_integer<uint8_t>(ident[i]); };
    const uint8_t cls = id(4), data = id(5), osabi = id(7);
    if (cls == 1 || cls == 2) {
      h["class"] = cls == 1 ? "ELF32" : "ELF64";
    } else {
      h["class"] = cls;
      layout.add_error("invalid EI_CLASS " + std::to_string(cls) + " (expected 1 or 2)");
    }
    if (data == 1 || data == 2) {
      h["data"] = data == 1 ? "little endian" : "big endian";
    } else {
      h["data"] = data;
      layout.add_error("invalid EI_DATA " + std::to_string(data) + " (expected 1 or 2)");
    }
    h["ident_version"] = id(6);
    if (!layout.errors.empty()) return layout;
    const bool is64 = cls == 2;
    reader.set_endian(data == 1 ? Endian::little : Endian::big);
    ElfReader elf(reader, is64);

    const uint16_t type = reader.u16();
    const uint16_t machine = reader.u16();
    const uint32_t version = reader.u32();
    const uint64_t entry = elf.word();
    const uint64_t phoff = elf.word();
    const uint64_t shoff = elf.word();
    const uint32_t flags = reader.u32();
    const uint16_t ehsize = reader.u16();
    const uint16_t phentsize = reader.u16();
    const uint16_t e_phnum = reader.u16();
    const uint16_t shentsize = reader.u16();
    const uint16_t e_shnum = reader.u16();
    const uint16_t e_shstrndx = reader.u16();
    if (!reader.ok()) {
      layout.add_error("truncated ELF header: " + *reader.error());
      return layout;
    }
    h["osabi"] = name_or_number(elf::osabi_name(osabi, machine), osabi);
    h["osabi_number"] = osabi;
    h["abi_version"] = id(8);
    h["type"] = name_or_number(elf::type_name(type), type);
    h["type_number"] = type;
    h["machine"] = name_or_number(elf::machine_name(machine), machine);
    h["machine_number"] = machine;
    h["version"] = version;
    h["entry"] = entry;
    h["flags"] = flags;
    h["ehsize"] = ehsize;
    h["phoff"] = phoff;
    h["phentsize"] = phentsize;
    h["shoff"] = shoff;
    h["shentsize"] = shentsize;
    const uint64_t shdr_size = is64 ? 64 : 40;
    const uint64_t phdr_size = is64 ? 56 : 32;

    // Section header 0 holds the real counts when they do not fit the ELF header's fields.
    std::optional<SectionHeader> section0;
    const bool sections_usable = shoff != 0 && shentsize >= shdr_size;
    if (shoff != 0 && shentsize < shdr_size) {
      layout.add_error("e_shentsize " + std::to_string(shentsize) +
                       " is smaller than a section header (" + std::to_string(shdr_size) +
                       " bytes); sections ignored");
    }
    if (sections_usable) {
      BinaryReader r0(source, reader.endian());
      ElfReader e0(r0, is64);
      r0.seek(shoff);
      const SectionHeader s = e0.section();
      if (r0.ok()) {
        section0 = s;
      } else {
        layout.add_error("section header table at " + std::to_string(shoff) +
                         " lies outside the file");
      }
    }
    uint64_t shnum = e_shnum;
    if (e_shnum == 0 && section0) shnum = section0->size;
    if (!section0) shnum = 0;
    uint64_t shstrndx = e_shstrndx;
    if (e_shstrndx == kShnXindex) {
      if (section0) {
        shstrndx = section0->link;
      } else {
        layout.add_error("e_shstrndx is SHN_XINDEX but there is no section header 0");
        shstrndx = 0;
      }
    } else if (e_shstrndx >= kShnLoreserve) {
      layout.add_error("e_shstrndx " + std::to_string(e_shstrndx) + " is a reserved index");
      shstrndx = 0;
    }
    uint64_t phnum = e_phnum;
    if (e_phnum == kPnXnum) {
      if (section0) {
        phnum = section0->info;
      } else {
        layout.add_error("e_phnum is PN_XNUM but there is no section header 0 to hold the count");
        phnum = 0;
      }
    }
    if (phnum != 0 && phentsize < phdr_size) {
      layout.add_error("e_phentsize " + std::to_string(phentsize) +
                       " is smaller than a program header (" + std::to_string(phdr_size) +
                       " bytes); program headers ignored");
      phnum = 0;
    }
    h["phnum"] = phnum;
    h["shnum"] = shnum;
    h["shstrndx"] = shstrndx;

    h["segments"] = Json::array();
    read_segments(source, reader.endian(), is64, phoff, phentsize, phnum, machine, layout);
    h["sections"] = Json::array();
    read_sections(source, reader.endian(), is64, shoff, shentsize, shnum, shstrndx, machine, osabi,
                  layout);
    return layout;
  }

 private:
  static void read_segments(const ByteSource& source, Endian endian, bool is64, uint64_t phoff,
                            uint64_t phentsize, uint64_t phnum, uint16_t machine, Layout& layout) {
    if (phnum == 0) return;
    const uint64_t present = entries_in_file(phoff, phentsize, phnum, source.size());
    if (present < phnum) {
      layout.add_error("program header table (" + std::to_string(phnum) + " entries of " +
                       std::to_string(phentsize) + " bytes at " + std::to_string(phoff) +
                       ") runs past the end of the file; " + std::to_string(present) +
                       " entries in the file");
    }
    // Program headers are listed, not sliced: the ones past the listing limit are not read.
    const uint64_t listed = std::min(present, kMaxListedSegments);
    if (listed < present) {
      layout.add_error(std::to_string(present) + " program headers: header.json lists the first " +
                       std::to_string(kMaxListedSegments) + " (segments_truncated)");
      layout.header["segments_truncated"] = true;
    }
    BinaryReader r(source, endian);
    ElfReader elf(r, is64);
    for (uint64_t i = 0; i < listed; ++i) {
      r.seek(phoff + i * phentsize);  // cannot overflow: inside the file (entries_in_file)
      const ProgramHeader p = elf.segment();
      if (!r.ok()) {
        layout.add_error("cannot read program header " + std::to_string(i) + ": " + *r.error());
        break;
      }
      layout.header["segments"].push_back(
          Json{{"type", name_or_number(elf::segment_type_name(p.type, machine), p.type)},
               {"type_number", p.type},
               {"flags", elf::segment_flag_letters(p.flags)},
               {"flags_number", p.flags},
               {"offset", p.offset},
               {"vaddr", p.vaddr},
               {"paddr", p.paddr},
               {"filesz", p.filesz},
               {"memsz", p.memsz},
               {"align", p.align}});
    }
  }

  // The NUL-terminated name at `offset` in the string table [table, table + table_size).
  static std::optional<std::string> read_name(BinaryReader& r, uint64_t table, uint64_t table_size,
                                              uint64_t offset, bool& terminated) {
    terminated = true;
    if (offset >= table_size) return std::nullopt;
    const uint64_t limit = std::min(table_size - offset, kMaxNameBytes);
    std::string name;
    std::array<std::byte, 64> chunk{};
    r.seek(table + offset);
    while (name.size() < limit) {
      const auto n = static_cast<size_t>(std::min<uint64_t>(chunk.size(), limit - name.size()));
      if (!r.read_into(std::span(chunk).first(n))) return std::nullopt;
      for (size_t i = 0; i < n; ++i) {
        if (chunk[i] == std::byte{0}) return name;
        name.push_back(static_cast<char>(chunk[i]));
      }
    }
    terminated = false;
    return name;
  }

  static void read_sections(const ByteSource& source, Endian endian, bool is64, uint64_t shoff,
                            uint64_t shentsize, uint64_t shnum, uint64_t shstrndx, uint16_t machine,
                            uint8_t osabi, Layout& layout) {
    if (shnum == 0) return;
    uint64_t count = shnum;
    if (count > kMaxSections) {
      layout.add_error(std::to_string(shnum) + " sections exceed the limit of " +
                       std::to_string(kMaxSections) + "; only the first are shown");
      count = kMaxSections;
    }
    const uint64_t present = entries_in_file(shoff, shentsize, count, source.size());
    if (present < count) {
      layout.add_error("section header table (" + std::to_string(shnum) + " entries of " +
                       std::to_string(shentsize) + " bytes at " + std::to_string(shoff) +
                       ") runs past the end of the file; " + std::to_string(present) +
                       " entries read");
    }
    std::vector<SectionHeader> sections;
    sections.reserve(static_cast<size_t>(present));
    {
      BinaryReader r(source, endian);
      ElfReader elf(r, is64);
      for (uint64_t i = 0; i < present; ++i) {
        r.seek(shoff + i * shentsize);  // inside the file (entries_in_file)
        const SectionHeader s = elf.section();
        if (!r.ok()) {
          layout.add_error("cannot read section header " + std::to_string(i) + ": " + *r.error());
          break;
        }
        sections.push_back(s);
      }
    }

    // The section name string table, clipped to the file.
    uint64_t strtab = 0, strtab_size = 0;
    bool have_names = false;
    if (shstrndx != 0) {
      if (shstrndx >= sections.size()) {
        layout.add_error("section name table index " + std::to_string(shstrndx) +
                         " is not a section that was read");
      } else if (const auto& s = sections[static_cast<size_t>(shstrndx)]; s.type == kShtNobits) {
        layout.add_error("section name table (section " + std::to_string(shstrndx) +
                         ") has no bytes in the file");
      } else if (s.offset > source.size()) {
        layout.add_error("section name table offset " + std::to_string(s.offset) +
                         " lies past the end of the file");
      } else {
        strtab = s.offset;
        strtab_size = std::min(s.size, source.size() - s.offset);
        if (strtab_size < s.size)
          layout.add_error("section name table runs past the end of the file");
        have_names = true;
      }
    }

    // header.json lists the first sections, within a count and a text budget; the first
    // sections that occupy the file become slices, within a count and a name budget. Errors
    // about single sections are reported for the first kMaxSectionErrors of them.
    BinaryReader names(source, endian);
    Json& out = layout.header["sections"];
    out.get_ref<Json::array_t&>().reserve(
        static_cast<size_t>(std::min<uint64_t>(sections.size(), kMaxListedSections)));
    uint64_t listed = 0, listed_bytes = 0, sliced = 0, slice_name_bytes = 0, unsliced = 0;
    bool listing = true;
    uint64_t section_errors = 0;
    const auto section_error = [&](std::string message) {
      if (++section_errors <= kMaxSectionErrors) layout.add_error(std::move(message));
    };
    for (size_t i = 0; i < sections.size(); ++i) {
      const SectionHeader& s = sections[i];
      // Section 0 and other SHT_NULL sections are inactive; SHT_NOBITS occupy no file bytes.
      // Every other section is a slice, empty ones included (.data and .note.GNU-stack of a
      // g++ -c object have no bytes, and are sections all the same).
      const bool sliceable = i != 0 && s.type != kShtNull && s.type != kShtNobits;
      const bool slicing = sliced < kMaxSectionSlices && slice_name_bytes <= kMaxSliceNameBytes;
      if (!listing && !(sliceable && slicing)) {
        if (sliceable) ++unsliced;
        continue;
      }
      Json name = nullptr;
      std::string slice_name;
      if (have_names) {
        bool terminated = true;
        const auto text = read_name(names, strtab, strtab_size, s.name, terminated);
        if (text) {
          slice_name = utf8_or_escaped(*text);
          name = slice_name;
          if (!terminated)
            section_error("name of section " + std::to_string(i) +
                          " is not NUL-terminated within " + std::to_string(kMaxNameBytes) +
                          " bytes of the name table");
        } else {
          section_error("name offset " + std::to_string(s.name) + " of section " +
                        std::to_string(i) + " lies outside the section name table");
        }
      }
      const Json type = name_or_number(elf::section_type_name(s.type, machine), s.type);
      const std::string letters = elf::section_flag_letters(s.flags, machine, osabi);
      if (listing) {
        listed_bytes += kListedSectionBytes + slice_name.size();
        if (listed == kMaxListedSections || listed_bytes > kMaxListedSectionBytes) {
          listing = false;
        } else {
          ++listed;
          out.push_back(Json{{"index", i},
                             {"name", name},
                             {"type", type},
                             {"type_number", s.type},
                             {"flags", letters},
                             {"flags_number", s.flags},
                             {"addr", s.addr},
                             {"offset", s.offset},
                             {"size", s.size},
                             {"link", s.link},
                             {"info", s.info},
                             {"align", s.align},
                             {"entsize", s.entsize}});
        }
      }
      if (!sliceable) continue;
      if (!range_within(s.offset, s.size, source.size())) {
        section_error("section " + std::to_string(i) + " (" +
                      (name.is_string() ? slice_name : "?") + ") [" + std::to_string(s.offset) +
                      "+" + std::to_string(s.size) + "] runs past the end of the file");
        continue;
      }
      if (slice_name.empty()) slice_name = "section_" + std::to_string(i);
      slice_name_bytes += tree_cost(slice_name);
      if (!slicing || slice_name_bytes > kMaxSliceNameBytes) {
        ++unsliced;
        continue;
      }
      ++sliced;
      // Thousands of these are held for the payload's life: exactly five members, no spare
      // capacity (an object grown one key at a time keeps room for eight).
      Json attributes = Json::object();
      auto& members = attributes.get_ref<Json::object_t&>();
      members.reserve(5);
      members.emplace("index", Json(i));
      members.emplace("type", Json(type));
      members.emplace("flags", Json(letters));
      members.emplace("addr", Json(s.addr));
      members.emplace("align", Json(s.align));
      layout.slices.push_back(
          Slice{std::move(slice_name), {s.offset, s.size}, std::move(attributes)});
    }
    if (section_errors > kMaxSectionErrors) {
      layout.add_error(std::to_string(section_errors - kMaxSectionErrors) +
                       " more errors about single sections are not listed");
    }
    if (listed < sections.size()) {
      layout.header["sections_truncated"] = true;
      layout.add_error(std::to_string(sections.size()) + " sections: header.json lists the first " +
                       std::to_string(listed) + " (limits: " + std::to_string(kMaxListedSections) +
                       " sections, " + std::to_string(kMaxListedSectionBytes) +
                       " bytes of text; sections_truncated)");
    }
    if (unsliced != 0) {
      layout.add_error(std::to_string(sliced + unsliced) + " sections occupy the file: the first " +
                       std::to_string(sliced) +
                       " are slices (limits: " + std::to_string(kMaxSectionSlices) + " slices, " +
                       std::to_string(kMaxSliceNameBytes) + " bytes of names); " +
                       std::to_string(unsliced) + " are not");
    }
  }
};

}  // namespace

std::unique_ptr<Format> make_elf() {
  return std::make_unique<Elf>();
}

}  // namespace payloadfs::formats

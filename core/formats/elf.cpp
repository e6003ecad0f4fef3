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

// The NUL-terminated name at `offset` in the string table [table, table + table_size).
std::optional<std::string> read_name(BinaryReader& r, uint64_t table, uint64_t table_size,
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

// The section name string table, clipped to the file.
struct NameTable {
  uint64_t offset = 0;
  uint64_t size = 0;
};

std::optional<NameTable> name_table(const std::vector<SectionHeader>& sections, uint64_t shstrndx,
                                    uint64_t file_size, Layout& layout) {
  if (shstrndx == 0) return std::nullopt;
  if (shstrndx >= sections.size()) {
    layout.add_error("section name table index " + std::to_string(shstrndx) +
                     " is not a section that was read");
    return std::nullopt;
  }
  const auto& s = sections[static_cast<size_t>(shstrndx)];
  if (s.type == kShtNobits) {
    layout.add_error("section name table (section " + std::to_string(shstrndx) +
                     ") has no bytes in the file");
    return std::nullopt;
  }
  if (s.offset > file_size) {
    layout.add_error("section name table offset " + std::to_string(s.offset) +
                     " lies past the end of the file");
    return std::nullopt;
  }
  const NameTable table{s.offset, std::min(s.size, file_size - s.offset)};
  if (table.size < s.size) layout.add_error("section name table runs past the end of the file");
  return table;
}

// Lists and slices the sections that were read. header.json lists the first sections, within
// a count and a text budget; the first sections that occupy the file become slices, within a
// count and a name budget. Errors about single sections are reported for the first
// kMaxSectionErrors of them.
class SectionWalk {
 public:
  SectionWalk(const ByteSource& source, Endian endian, std::optional<NameTable> names,
              uint16_t machine, uint8_t osabi, Layout& layout)
      : file_size_(source.size()),
        names_reader_(source, endian),
        names_(names),
        machine_(machine),
        osabi_(osabi),
        layout_(layout) {}

  void run(const std::vector<SectionHeader>& sections) {
    Json& out = layout_.header["sections"];
    out.get_ref<Json::array_t&>().reserve(
        static_cast<size_t>(std::min<uint64_t>(sections.size(), kMaxListedSections)));
    for (size_t i = 0; i < sections.size(); ++i) walk(i, sections[i], out);
    report(sections.size());
  }

 private:
  void walk(size_t i, const SectionHeader& s, Json& out) {
    // Section 0 and other SHT_NULL sections are inactive; SHT_NOBITS occupy no file bytes.
    // Every other section is a slice, empty ones included (.data and .note.GNU-stack of a
    // g++ -c object have no bytes, and are sections all the same).
    const bool sliceable = i != 0 && s.type != kShtNull && s.type != kShtNobits;
    const bool slicing = sliced_ < kMaxSectionSlices && slice_name_bytes_ <= kMaxSliceNameBytes;
    if (!listing_ && !(sliceable && slicing)) {
      if (sliceable) ++unsliced_;
      return;
    }
    std::string slice_name;
    const Json name = name_of(i, s, slice_name);
    const Json type = name_or_number(elf::section_type_name(s.type, machine_), s.type);
    const std::string letters = elf::section_flag_letters(s.flags, machine_, osabi_);
    if (listing_) list(i, s, name, type, letters, slice_name.size(), out);
    if (!sliceable) return;
    slice(i, s, name, std::move(slice_name), type, letters, slicing);
  }

  void section_error(std::string message) {
    if (++section_errors_ <= kMaxSectionErrors) layout_.add_error(std::move(message));
  }

  // The section's name (null without a name table), and as text in slice_name.
  Json name_of(size_t i, const SectionHeader& s, std::string& slice_name) {
    Json name = nullptr;
    if (!names_) return name;
    bool terminated = true;
    const auto text = read_name(names_reader_, names_->offset, names_->size, s.name, terminated);
    if (text) {
      slice_name = utf8_or_escaped(*text);
      name = slice_name;
      if (!terminated)
        section_error("name of section " + std::to_string(i) + " is not NUL-terminated within " +
                      std::to_string(kMaxNameBytes) + " bytes of the name table");
    } else {
      section_error("name offset " + std::to_string(s.name) + " of section " + std::to_string(i) +
                    " lies outside the section name table");
    }
    return name;
  }

  void list(size_t i, const SectionHeader& s, const Json& name, const Json& type,
            const std::string& letters, size_t name_bytes, Json& out) {
    listed_bytes_ += kListedSectionBytes + name_bytes;
    if (listed_ == kMaxListedSections || listed_bytes_ > kMaxListedSectionBytes) {
      listing_ = false;
      return;
    }
    ++listed_;
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

  void slice(size_t i, const SectionHeader& s, const Json& name, std::string slice_name,
             const Json& type, const std::string& letters, bool slicing) {
    if (!range_within(s.offset, s.size, file_size_)) {
      section_error("section " + std::to_string(i) + " (" + (name.is_string() ? slice_name : "?") +
                    ") [" + std::to_string(s.offset) + "+" + std::to_string(s.size) +
                    "] runs past the end of the file");
      return;
    }
    if (slice_name.empty()) slice_name = "section_" + std::to_string(i);
    slice_name_bytes_ += tree_cost(slice_name);
    if (!slicing || slice_name_bytes_ > kMaxSliceNameBytes) {
      ++unsliced_;
      return;
    }
    ++sliced_;
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
    layout_.slices.push_back(
        Slice{std::move(slice_name), {s.offset, s.size}, std::move(attributes)});
  }

  void report(size_t count) {
    if (section_errors_ > kMaxSectionErrors) {
      layout_.add_error(std::to_string(section_errors_ - kMaxSectionErrors) +
                        " more errors about single sections are not listed");
    }
    if (listed_ < count) {
      layout_.header["sections_truncated"] = true;
      layout_.add_error(std::to_string(count) + " sections: header.json lists the first " +
                        std::to_string(listed_) +
                        " (limits: " + std::to_string(kMaxListedSections) + " sections, " +
                        std::to_string(kMaxListedSectionBytes) +
                        " bytes of text; sections_truncated)");
    }
    if (unsliced_ != 0) {
      layout_.add_error(std::to_string(sliced_ + unsliced_) +
                        " sections occupy the file: the first " + std::to_string(sliced_) +
                        " are slices (limits: " + std::to_string(kMaxSectionSlices) + " slices, " +
                        std::to_string(kMaxSliceNameBytes) + " bytes of names); " +
                        std::to_string(unsliced_) + " are not");
    }
  }

  const uint64_t file_size_;
  BinaryReader names_reader_;
  const std::optional<NameTable> names_;
  const uint16_t machine_;
  const uint8_t osabi_;
  Layout& layout_;
  uint64_t listed_ = 0, listed_bytes_ = 0, sliced_ = 0, slice_name_bytes_ = 0, unsliced_ = 0;
  bool listing_ = true;
  uint64_t section_errors_ = 0;
};

// The ELF header's fields.
struct ElfHeader {
  uint8_t cls = 0, data = 0, osabi = 0;
  bool is64 = false;
  uint16_t type = 0, machine = 0;
  uint32_t version = 0;
  uint64_t entry = 0, phoff = 0, shoff = 0;
  uint32_t flags = 0;
  uint16_t ehsize = 0, phentsize = 0, e_phnum = 0, shentsize = 0, e_shnum = 0, e_shstrndx = 0;
};

// The section and program header counts and the name table index, after extended numbering.
struct Counts {
  uint64_t shnum = 0;
  uint64_t shstrndx = 0;
  uint64_t phnum = 0;
};

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
    ElfHeader eh;
    if (!check_ident(ident, eh, layout)) return layout;
    reader.set_endian(eh.data == 1 ? Endian::little : Endian::big);
    if (!read_header(reader, eh, layout)) return layout;
    describe_header(eh, std::to_integer<uint8_t>(ident[8]), h);

    const Counts counts = resolve_counts(source, reader.endian(), eh, layout);
    h["phnum"] = counts.phnum;
    h["shnum"] = counts.shnum;
    h["shstrndx"] = counts.shstrndx;

    h["segments"] = Json::array();
    read_segments(source, reader.endian(), eh.is64, eh.phoff, eh.phentsize, counts.phnum,
                  eh.machine, layout);
    h["sections"] = Json::array();
    read_sections(source, reader.endian(), eh.is64, eh.shoff, eh.shentsize, counts.shnum,
                  counts.shstrndx, eh.machine, eh.osabi, layout);
    return layout;
  }

 private:
  // EI_CLASS and EI_DATA; false (with the errors added) when either is invalid.
  static bool check_ident(const std::array<std::byte, 16>& ident, ElfHeader& eh, Layout& layout) {
    auto& h = layout.header;
    const auto id = [&](size_t i) { return std::to_integer<uint8_t>(ident[i]); };
    eh.cls = id(4);
    eh.data = id(5);
    eh.osabi = id(7);
    if (eh.cls == 1 || eh.cls == 2) {
      h["class"] = eh.cls == 1 ? "ELF32" : "ELF64";
    } else {
      h["class"] = eh.cls;
      layout.add_error("invalid EI_CLASS " + std::to_string(eh.cls) + " (expected 1 or 2)");
    }
    if (eh.data == 1 || eh.data == 2) {
      h["data"] = eh.data == 1 ? "little endian" : "big endian";
    } else {
      h["data"] = eh.data;
      layout.add_error("invalid EI_DATA " + std::to_string(eh.data) + " (expected 1 or 2)");
    }
    h["ident_version"] = id(6);
    if (!layout.errors.empty()) return false;
    eh.is64 = eh.cls == 2;
    return true;
  }

  // The fields after e_ident; false (with the error added) when the header is truncated.
  static bool read_header(BinaryReader& reader, ElfHeader& eh, Layout& layout) {
    ElfReader elf(reader, eh.is64);
    eh.type = reader.u16();
    eh.machine = reader.u16();
    eh.version = reader.u32();
    eh.entry = elf.word();
    eh.phoff = elf.word();
    eh.shoff = elf.word();
    eh.flags = reader.u32();
    eh.ehsize = reader.u16();
    eh.phentsize = reader.u16();
    eh.e_phnum = reader.u16();
    eh.shentsize = reader.u16();
    eh.e_shnum = reader.u16();
    eh.e_shstrndx = reader.u16();
    if (!reader.ok()) {
      layout.add_error("truncated ELF header: " + *reader.error());
      return false;
    }
    return true;
  }

  static void describe_header(const ElfHeader& eh, uint8_t abi_version, Json& h) {
    h["osabi"] = name_or_number(elf::osabi_name(eh.osabi, eh.machine), eh.osabi);
    h["osabi_number"] = eh.osabi;
    h["abi_version"] = abi_version;
    h["type"] = name_or_number(elf::type_name(eh.type), eh.type);
    h["type_number"] = eh.type;
    h["machine"] = name_or_number(elf::machine_name(eh.machine), eh.machine);
    h["machine_number"] = eh.machine;
    h["version"] = eh.version;
    h["entry"] = eh.entry;
    h["flags"] = eh.flags;
    h["ehsize"] = eh.ehsize;
    h["phoff"] = eh.phoff;
    h["phentsize"] = eh.phentsize;
    h["shoff"] = eh.shoff;
    h["shentsize"] = eh.shentsize;
  }

  // Section header 0 holds the real counts when they do not fit the ELF header's fields.
  static std::optional<SectionHeader> read_section0(const ByteSource& source, Endian endian,
                                                    const ElfHeader& eh, Layout& layout) {
    const uint64_t shdr_size = eh.is64 ? 64 : 40;
    if (eh.shoff != 0 && eh.shentsize < shdr_size) {
      layout.add_error("e_shentsize " + std::to_string(eh.shentsize) +
                       " is smaller than a section header (" + std::to_string(shdr_size) +
                       " bytes); sections ignored");
    }
    if (eh.shoff == 0 || eh.shentsize < shdr_size) return std::nullopt;
    BinaryReader r0(source, endian);
    ElfReader e0(r0, eh.is64);
    r0.seek(eh.shoff);
    const SectionHeader s = e0.section();
    if (r0.ok()) return s;
    layout.add_error("section header table at " + std::to_string(eh.shoff) +
                     " lies outside the file");
    return std::nullopt;
  }

  static Counts resolve_counts(const ByteSource& source, Endian endian, const ElfHeader& eh,
                               Layout& layout) {
    const std::optional<SectionHeader> section0 = read_section0(source, endian, eh, layout);
    Counts c;
    c.shnum = eh.e_shnum;
    if (eh.e_shnum == 0 && section0) c.shnum = section0->size;
    if (!section0) c.shnum = 0;
    c.shstrndx = eh.e_shstrndx;
    if (eh.e_shstrndx == kShnXindex) {
      if (section0) {
        c.shstrndx = section0->link;
      } else {
        layout.add_error("e_shstrndx is SHN_XINDEX but there is no section header 0");
        c.shstrndx = 0;
      }
    } else if (eh.e_shstrndx >= kShnLoreserve) {
      layout.add_error("e_shstrndx " + std::to_string(eh.e_shstrndx) + " is a reserved index");
      c.shstrndx = 0;
    }
    c.phnum = eh.e_phnum;
    if (eh.e_phnum == kPnXnum) {
      if (section0) {
        c.phnum = section0->info;
      } else {
        layout.add_error("e_phnum is PN_XNUM but there is no section header 0 to hold the count");
        c.phnum = 0;
      }
    }
    const uint64_t phdr_size = eh.is64 ? 56 : 32;
    if (c.phnum != 0 && eh.phentsize < phdr_size) {
      layout.add_error("e_phentsize " + std::to_string(eh.phentsize) +
                       " is smaller than a program header (" + std::to_string(phdr_size) +
                       " bytes); program headers ignored");
      c.phnum = 0;
    }
    return c;
  }

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

  static void read_sections(const ByteSource& source, Endian endian, bool is64, uint64_t shoff,
                            uint64_t shentsize, uint64_t shnum, uint64_t shstrndx, uint16_t machine,
                            uint8_t osabi, Layout& layout) {
    if (shnum == 0) return;
    const std::vector<SectionHeader> sections =
        read_section_headers(source, endian, is64, shoff, shentsize, shnum, layout);
    const auto names = name_table(sections, shstrndx, source.size(), layout);
    SectionWalk(source, endian, names, machine, osabi, layout).run(sections);
  }

  static std::vector<SectionHeader> read_section_headers(const ByteSource& source, Endian endian,
                                                         bool is64, uint64_t shoff,
                                                         uint64_t shentsize, uint64_t shnum,
                                                         Layout& layout) {
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
    return sections;
  }
};

}  // namespace

std::unique_ptr<Format> make_elf() {
  return std::make_unique<Elf>();
}

}  // namespace payloadfs::formats

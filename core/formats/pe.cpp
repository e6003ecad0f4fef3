// PE images (PE32 and PE32+ executables and DLLs) and COFF object files: Microsoft "PE Format"
// specification. An image opens with the MS-DOS header ("MZ", e_lfanew at 0x3C) that points at
// "PE\0\0", the COFF file header, the optional header (magic 0x10B or 0x20B, then the Windows
// fields and the data directories) and the section table; an object file opens with the COFF
// file header itself. Section names of the form "/<n>" (objects, and MinGW images with debug
// sections) are offsets into the string table after the COFF symbol table. Names of constants
// follow winnt.h; data directory names follow pefile.

#include <algorithm>
#include <array>
#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include "core/formats/builtin.hpp"
#include "core/formats/support/ascii_number.hpp"
#include "core/formats/support/pe_names.hpp"
#include "core/formats/support/signature.hpp"
#include "core/io/binary_reader.hpp"
#include "core/io/checked_math.hpp"
#include "core/io/endian.hpp"
#include "core/render/json_text.hpp"

namespace payloadfs::formats {
namespace {

constexpr auto kDosMagic = byte_string("MZ");
constexpr auto kPeMagic = byte_string("PE\0\0");
constexpr uint64_t kDosHeaderBytes = 64;
constexpr uint64_t kLfanewOffset = 0x3C;
constexpr uint64_t kCoffHeaderBytes = 20;
constexpr uint64_t kSectionHeaderBytes = 40;
constexpr uint64_t kSymbolBytes = 18;
constexpr uint16_t kMagicPe32 = 0x10B;
constexpr uint16_t kMagicPe32Plus = 0x20B;
constexpr uint16_t kFileExecutable = 0x0002;
constexpr uint16_t kFileDll = 0x2000;
constexpr uint32_t kSecurityDirectory = 4;  // its "RVA" is a file offset
// The loader refuses more than 96 sections; data directories are 16.
constexpr uint64_t kMaxSections = 96;
constexpr uint32_t kMaxDirectories = 16;
// Names read from the string table, import and export tables; how many are listed.
constexpr uint64_t kMaxNameBytes = 1024;
constexpr uint64_t kMaxImports = 1024;
constexpr uint64_t kMaxExportNames = 4096;
// Section header bits no object file sets (reserved by the specification).
constexpr uint32_t kReservedSectionBits = 0x00000417;

std::string hex(uint64_t value, int digits) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "0x%0*llx", digits, static_cast<unsigned long long>(value));
  return buf;
}

Json names_json(const std::vector<std::string_view>& names) {
  Json out = Json::array();
  for (const auto n : names) out.push_back(std::string(n));
  return out;
}

Json named_value(std::optional<std::string_view> name, uint64_t value) {
  return Json{{"name", name ? Json(std::string(*name)) : Json(nullptr)}, {"value", value}};
}

std::string version(uint16_t major, uint16_t minor) {
  return std::to_string(major) + "." + std::to_string(minor);
}

// Printable ASCII, NUL-padded, or "/<digits>" (a string table offset).
bool plausible_object_name(std::span<const std::byte> name) {
  size_t length = 0;
  while (length < name.size() && name[length] != std::byte{0}) ++length;
  if (length == 0) return false;
  for (size_t i = length; i < name.size(); ++i)
    if (name[i] != std::byte{0}) return false;
  for (size_t i = 0; i < length; ++i) {
    const auto c = static_cast<unsigned char>(name[i]);
    if (c <= 0x20 || c >= 0x7F) return false;
  }
  return true;
}

// A COFF object: a machine we know (not UNKNOWN), no optional header, 1..96 sections whose
// headers lie in `head` and look like an assembler's (names, no addresses, raw data inside the
// file, no reserved bits), a symbol table inside the file.
bool detect_object(std::span<const std::byte> head, uint64_t size) {
  if (head.size() < kCoffHeaderBytes) return false;
  const auto* p = head.data();
  const uint16_t machine = read_le<uint16_t>(p);
  const uint16_t sections = read_le<uint16_t>(p + 2);
  const uint32_t symbols_at = read_le<uint32_t>(p + 8);
  const uint32_t symbols = read_le<uint32_t>(p + 12);
  const uint16_t optional_size = read_le<uint16_t>(p + 16);
  const uint16_t flags = read_le<uint16_t>(p + 18);
  if (machine == 0 || !pe::machine_name(machine) || optional_size != 0) return false;
  if (sections == 0 || sections > kMaxSections || (flags & (kFileExecutable | kFileDll)) != 0)
    return false;
  const uint64_t table_end = kCoffHeaderBytes + uint64_t{sections} * kSectionHeaderBytes;
  if (table_end > head.size() || table_end > size) return false;
  if (symbols_at != 0 &&
      (symbols_at < table_end || !range_within(symbols_at, uint64_t{symbols} * kSymbolBytes, size)))
    return false;
  for (uint64_t i = 0; i < sections; ++i) {
    const auto* s = p + kCoffHeaderBytes + i * kSectionHeaderBytes;
    const uint32_t raw_size = read_le<uint32_t>(s + 16);
    const uint32_t raw_at = read_le<uint32_t>(s + 20);
    if (!plausible_object_name({s, 8}) || read_le<uint32_t>(s + 8) != 0 ||
        read_le<uint32_t>(s + 12) != 0 || (read_le<uint32_t>(s + 36) & kReservedSectionBits) != 0)
      return false;
    if (raw_size != 0 && (raw_at < table_end || !range_within(raw_at, raw_size, size)))
      return false;
  }
  return true;
}

struct Section {
  std::string name;
  uint32_t virtual_size = 0;
  uint32_t virtual_address = 0;
  uint32_t raw_size = 0;
  uint32_t raw_at = 0;
  uint32_t characteristics = 0;
};

struct Coff {
  uint64_t at = 0;  // the COFF file header's offset
  uint16_t machine = 0;
  uint16_t sections = 0;
  uint32_t timestamp = 0;
  uint32_t symbols_at = 0;
  uint32_t symbols = 0;
  uint16_t optional_size = 0;
  uint16_t characteristics = 0;
};

class PeParser {
 public:
  PeParser(const ByteSource& source, Layout& layout)
      : r_(source, Endian::little), layout_(layout) {}

  void run(bool image) {
    if (image && !find_pe_header()) return;
    if (!read_coff()) return;
    if (coff_.optional_size != 0) read_optional_header();
    read_string_table();
    read_sections();
    list_directories();
    if (import_at_) read_imports();
    if (export_at_) read_exports();
  }

 private:
  bool find_pe_header() {
    layout_.magic = magic_at_start(kDosMagic);
    if (r_.size() < kDosHeaderBytes) {
      layout_.add_error("file too short for the 64-byte MS-DOS header");
      return false;
    }
    r_.seek(kLfanewOffset);
    const uint32_t lfanew = r_.u32();
    layout_.header["e_lfanew"] = lfanew;
    std::array<std::byte, 4> sig{};
    if (!range_within(lfanew, kPeMagic.size(), r_.size())) {
      layout_.add_error("e_lfanew " + std::to_string(lfanew) + " points past the end of the file");
      return false;
    }
    r_.seek(lfanew);
    if (!r_.read_into(sig) || sig != kPeMagic) {
      layout_.add_error("no \"PE\\0\\0\" signature at e_lfanew " + std::to_string(lfanew) +
                        " (an MS-DOS executable, not a PE image)");
      return false;
    }
    coff_.at = lfanew + kPeMagic.size();
    return true;
  }

  bool read_coff() {
    r_.seek(coff_.at);
    coff_.machine = r_.u16();
    coff_.sections = r_.u16();
    coff_.timestamp = r_.u32();
    coff_.symbols_at = r_.u32();
    coff_.symbols = r_.u32();
    coff_.optional_size = r_.u16();
    coff_.characteristics = r_.u16();
    if (!r_.ok()) {
      layout_.add_error("file cut inside the COFF file header at offset " +
                        std::to_string(coff_.at));
      return false;
    }
    auto& h = layout_.header;
    h["machine"] = named_value(pe::machine_name(coff_.machine), coff_.machine);
    h["timestamp"] = coff_.timestamp;
    h["characteristics"] = hex(coff_.characteristics, 4);
    h["characteristics_flags"] = names_json(pe::file_flags(coff_.characteristics));
    h["number_of_sections"] = coff_.sections;
    h["pointer_to_symbol_table"] = coff_.symbols_at;
    h["number_of_symbols"] = coff_.symbols;
    h["size_of_optional_header"] = coff_.optional_size;
    return true;
  }

  void read_optional_header() {
    BinaryReader o = r_.sub(coff_.at + kCoffHeaderBytes, coff_.optional_size);
    const uint16_t magic = o.u16();
    if (!o.ok() || (magic != kMagicPe32 && magic != kMagicPe32Plus)) {
      layout_.add_error("unknown optional header magic " + hex(magic, 4) +
                        " (or the header is cut)");
      return;
    }
    const bool plus = magic == kMagicPe32Plus;
    const auto word = [&] { return plus ? o.u64() : uint64_t{o.u32()}; };
    Json h = Json::object();
    h["magic"] = plus ? "PE32+" : "PE32";
    h["magic_value"] = magic;
    const uint8_t linker_major = o.u8();
    h["linker_version"] = version(linker_major, o.u8());
    h["size_of_code"] = o.u32();
    h["size_of_initialized_data"] = o.u32();
    h["size_of_uninitialized_data"] = o.u32();
    h["address_of_entry_point"] = o.u32();
    h["base_of_code"] = o.u32();
    if (!plus) h["base_of_data"] = o.u32();
    h["image_base"] = word();
    h["section_alignment"] = o.u32();
    h["file_alignment"] = o.u32();
    const auto pair = [&] {
      const uint16_t major = o.u16();
      return version(major, o.u16());
    };
    h["os_version"] = pair();
    h["image_version"] = pair();
    h["subsystem_version"] = pair();
    h["win32_version_value"] = o.u32();
    h["size_of_image"] = o.u32();
    h["size_of_headers"] = o.u32();
    h["checksum"] = o.u32();
    const uint16_t subsystem = o.u16();
    h["subsystem"] = named_value(pe::subsystem_name(subsystem), subsystem);
    const uint16_t dll = o.u16();
    h["dll_characteristics"] = hex(dll, 4);
    h["dll_characteristics_flags"] = names_json(pe::dll_flags(dll));
    h["size_of_stack_reserve"] = word();
    h["size_of_stack_commit"] = word();
    h["size_of_heap_reserve"] = word();
    h["size_of_heap_commit"] = word();
    h["loader_flags"] = o.u32();
    const uint32_t directories = o.u32();
    h["number_of_rva_and_sizes"] = directories;
    if (!o.ok()) {
      layout_.add_error("optional header cut: SizeOfOptionalHeader " +
                        std::to_string(coff_.optional_size) + " is too small for its fields");
    } else {
      read_directory_entries(o, directories);
    }
    layout_.header["optional_header"] = std::move(h);
  }

  void read_string_table() {
    if (coff_.symbols_at == 0) return;
    const auto at = checked_add(coff_.symbols_at, uint64_t{coff_.symbols} * kSymbolBytes);
    if (!at || !range_within(*at, 4, r_.size())) return;  // names "/<n>" then stay unresolved
    r_.seek(*at);
    const uint32_t size = r_.u32();
    if (size >= 4 && range_within(*at, size, r_.size())) strings_ = {*at, size};
  }

  // The NUL-terminated string at `offset` (at most `limit` bytes up to the first NUL).
  std::optional<std::string> string_at(uint64_t offset, uint64_t limit) {
    if (offset >= r_.size()) return std::nullopt;
    BinaryReader s = r_.sub(offset, std::min({limit, kMaxNameBytes, r_.size() - offset}));
    std::string text;
    while (s.remaining() > 0) {
      const uint8_t c = s.u8();
      if (!s.ok()) return std::nullopt;
      if (c == 0) return utf8_or_escaped(text);
      text.push_back(static_cast<char>(c));
    }
    return std::nullopt;
  }

  std::string section_name(const std::array<char, 8>& field, size_t index, Json& attributes) {
    const std::string raw(field.data(), strnlen(field.data(), field.size()));
    if (raw.size() > 1 && raw[0] == '/') {
      const auto offset = parse_digits(std::string_view(raw).substr(1), 10);
      if (offset && strings_.length != 0 && *offset < strings_.length) {
        if (auto name = string_at(strings_.offset + *offset, strings_.length - *offset)) {
          attributes["header_name"] = utf8_or_escaped(raw);
          if (!name->empty()) return *name;
        }
      } else {
        layout_.add_error("section " + std::to_string(index) + ": long name " + raw +
                          " is not in the string table");
      }
    }
    return raw.empty() ? "section_" + std::to_string(index) : utf8_or_escaped(raw);
  }

  void read_sections() {
    const uint64_t table = coff_.at + kCoffHeaderBytes + coff_.optional_size;
    uint64_t count = coff_.sections;
    if (count > kMaxSections) {
      layout_.add_error("NumberOfSections " + std::to_string(count) + " is more than " +
                        std::to_string(kMaxSections) + "; only the first " +
                        std::to_string(kMaxSections) + " are read");
      count = kMaxSections;
    }
    for (uint64_t i = 0; i < count; ++i) {
      // A sub-reader per header: a cut table must not fail the reader the rest reads through.
      BinaryReader h = r_.sub(table + i * kSectionHeaderBytes, kSectionHeaderBytes);
      std::array<char, 8> name{};
      h.read_into(std::as_writable_bytes(std::span(name)));
      Section s;
      s.virtual_size = h.u32();
      s.virtual_address = h.u32();
      s.raw_size = h.u32();
      s.raw_at = h.u32();
      h.skip(12);  // relocations, line numbers and their counts
      s.characteristics = h.u32();
      if (!h.ok()) {
        layout_.add_error("section table cut at section " + std::to_string(i) + " of " +
                          std::to_string(coff_.sections));
        return;
      }
      Json a = Json::object();
      s.name = section_name(name, i, a);
      add_section_slice(i, s, std::move(a));
      sections_.push_back(std::move(s));
    }
  }

  void add_section_slice(uint64_t index, const Section& s, Json a) {
    uint64_t length = s.raw_size;
    if (s.raw_size == 0) {
      length = 0;  // no raw data (.bss): an empty slice
    } else if (s.raw_at >= r_.size()) {
      layout_.add_error("section " + std::to_string(index) + " (" + s.name +
                        "): PointerToRawData " + std::to_string(s.raw_at) +
                        " is past the end of the file");
      length = 0;
    } else if (!range_within(s.raw_at, length, r_.size())) {
      length = r_.size() - s.raw_at;
      layout_.add_error("section " + std::to_string(index) + " (" + s.name + "): its " +
                        std::to_string(s.raw_size) + " bytes of raw data run past the end of " +
                        "the file; " + std::to_string(length) + " are shown");
    }
    a["index"] = index;
    a["virtual_address"] = s.virtual_address;
    a["virtual_size"] = s.virtual_size;
    a["pointer_to_raw_data"] = s.raw_at;
    a["size_of_raw_data"] = s.raw_size;
    a["characteristics"] = hex(s.characteristics, 8);
    a["characteristics_flags"] = names_json(pe::section_flags(s.characteristics));
    const uint64_t offset = length == 0 ? std::min<uint64_t>(s.raw_at, r_.size()) : s.raw_at;
    layout_.slices.push_back(Slice{s.name, {offset, length}, std::move(a)});
  }

  // The file offset an RVA maps to through the section whose raw data holds it.
  std::optional<uint64_t> file_offset(uint64_t rva) const {
    for (const auto& s : sections_) {
      if (rva >= s.virtual_address && rva - s.virtual_address < s.raw_size) {
        const uint64_t offset = s.raw_at + (rva - s.virtual_address);
        if (offset < r_.size()) return offset;
      }
    }
    return std::nullopt;
  }

  // The data directory entries at the end of the optional header `o` (positioned there).
  void read_directory_entries(BinaryReader& o, uint32_t count) {
    if (count > kMaxDirectories) {
      layout_.add_error("NumberOfRvaAndSizes " + std::to_string(count) + " is more than " +
                        std::to_string(kMaxDirectories) + "; the first " +
                        std::to_string(kMaxDirectories) + " are read");
      count = kMaxDirectories;
    }
    for (uint32_t i = 0; i < count; ++i) {
      const uint32_t rva = o.u32();
      const uint32_t size = o.u32();
      if (!o.ok()) {
        layout_.add_error("optional header cut inside data directory " + std::to_string(i));
        return;
      }
      directories_.push_back({rva, size});
    }
  }

  // The directories with the file offsets their RVAs map to (through the sections).
  void list_directories() {
    if (directories_.empty()) return;
    Json list = Json::array();
    for (uint32_t i = 0; i < directories_.size(); ++i) {
      const auto [rva, size] = directories_[i];
      std::optional<uint64_t> offset;
      if (i == kSecurityDirectory) {
        if (rva != 0 && rva < r_.size()) offset = rva;
      } else if (rva != 0) {
        offset = file_offset(rva);
      }
      if (i == 0 && size != 0 && offset) export_at_ = offset;
      if (i == 1 && size != 0 && offset) import_at_ = offset;
      list.push_back(Json{{"name", std::string(pe::directory_name(i))},
                          {"index", i},
                          {"rva", rva},
                          {"size", size},
                          {"file_offset", offset ? Json(*offset) : Json(nullptr)}});
    }
    layout_.header["data_directories"] = std::move(list);
  }

  std::optional<std::string> string_at_rva(uint32_t rva) {
    const auto offset = file_offset(rva);
    return offset ? string_at(*offset, kMaxNameBytes) : std::nullopt;
  }

  void read_imports() {
    Json dlls = Json::array();
    for (uint64_t i = 0;; ++i) {
      if (i == kMaxImports) {
        layout_.add_error("more than " + std::to_string(kMaxImports) +
                          " import descriptors; the list is cut");
        break;
      }
      BinaryReader e = r_.sub(*import_at_ + i * 20, 20);
      const uint32_t lookup = e.u32();
      e.skip(8);
      const uint32_t name = e.u32();
      const uint32_t thunks = e.u32();
      if (!e.ok()) {
        layout_.add_error("import directory runs past the end of the file");
        break;
      }
      if (lookup == 0 && name == 0 && thunks == 0) break;
      const auto text = string_at_rva(name);
      if (text)
        dlls.push_back(*text);
      else
        layout_.add_error("import descriptor " + std::to_string(i) + ": unreadable DLL name");
    }
    layout_.header["imports"] = std::move(dlls);
  }

  void read_exports() {
    BinaryReader e = r_.sub(*export_at_, 40);
    e.skip(12);
    const uint32_t name = e.u32();
    const uint32_t base = e.u32();
    const uint32_t functions = e.u32();
    const uint32_t names = e.u32();
    e.skip(4);
    const uint32_t names_rva = e.u32();
    if (!e.ok()) {
      layout_.add_error("export directory runs past the end of the file");
      return;
    }
    auto& h = layout_.header;
    const auto text = string_at_rva(name);
    h["export_name"] = text ? Json(*text) : Json(nullptr);
    h["export_ordinal_base"] = base;
    h["export_function_count"] = functions;
    Json list = Json::array();
    const auto table = file_offset(names_rva);
    const uint64_t listed = std::min<uint64_t>(names, kMaxExportNames);
    if (names > kMaxExportNames)
      layout_.add_error(std::to_string(names) + " export names; the first " +
                        std::to_string(kMaxExportNames) + " are listed");
    for (uint64_t i = 0; table && i < listed; ++i) {
      BinaryReader n = r_.sub(*table + i * 4, 4);
      const auto export_name = string_at_rva(n.u32());
      if (!n.ok() || !export_name) {
        layout_.add_error("export name " + std::to_string(i) + " is unreadable");
        break;
      }
      list.push_back(*export_name);
    }
    h["exports"] = std::move(list);
  }

  BinaryReader r_;
  Layout& layout_;
  Coff coff_;
  std::vector<std::pair<uint32_t, uint32_t>> directories_;  // RVA, size
  ByteRange strings_;
  std::vector<Section> sections_;
  std::optional<uint64_t> import_at_;
  std::optional<uint64_t> export_at_;
};

class Pe final : public Format {
 public:
  std::string_view name() const noexcept override { return "pe"; }
  std::string_view description() const noexcept override {
    return "PE32/PE32+ executable or DLL, or COFF object file";
  }
  std::string_view signature() const noexcept override {
    return "\"MZ\" at 0 with \"PE\\0\\0\" at e_lfanew; or a COFF object header (a known machine, "
           "no optional header, plausible section headers)";
  }

  bool detect(std::span<const std::byte> head, uint64_t size) const override {
    if (starts_with(head, kDosMagic) && head.size() >= kDosHeaderBytes) {
      const uint32_t lfanew = read_le<uint32_t>(head.data() + kLfanewOffset);
      // Past what detection sees: parse() tells whether the signature is there.
      if (uint64_t{lfanew} + kPeMagic.size() > head.size()) return true;
      return matches_at(head, lfanew, kPeMagic);
    }
    return detect_object(head, size);
  }

  Layout parse(const ByteSource& source) const override {
    Layout layout;
    std::array<std::byte, 2> first{};
    const bool image = source.read_exact(0, first) && first == kDosMagic;
    PeParser parser(source, layout);
    parser.run(image);
    layout.header = reorder(std::move(layout.header), image);
    return layout;
  }

 private:
  // "kind" first, so a reader sees what the file is before the fields.
  static Json reorder(Json header, bool image) {
    Json out = Json::object();
    std::string kind = "COFF object";
    if (image) {
      kind = "PE image";
      if (header.contains("optional_header") && header["optional_header"].contains("magic"))
        kind = header["optional_header"]["magic"].get<std::string>();
    }
    out["kind"] = kind;
    for (auto& [key, value] : header.items()) out[key] = std::move(value);
    return out;
  }
};

}  // namespace

std::unique_ptr<Format> make_pe() {
  return std::make_unique<Pe>();
}

}  // namespace payloadfs::formats

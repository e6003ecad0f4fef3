// WebAssembly binary modules (WebAssembly Core Specification, "Binary Format", version 1
// modules; section 13 from the exception-handling proposal): "\0asm", a u32 version 1, then
// sections, each an id byte, a u32 LEB128 payload size and the payload. Custom sections (id 0)
// open with a name (LEB128 length and UTF-8 bytes). The import and export sections are read
// for their counts and names; the rest of a section is not decoded.

#include <array>
#include <optional>
#include <string>

#include "core/formats/builtin.hpp"
#include "core/formats/support/signature.hpp"
#include "core/io/binary_reader.hpp"
#include "core/io/checked_math.hpp"
#include "core/render/json_text.hpp"

namespace payloadfs::formats {
namespace {

constexpr auto kMagic = byte_string("\0asm\x01\0\0\0");
constexpr uint64_t kPreambleBytes = 8;
constexpr uint64_t kMaxLeb128Bytes = 5;  // a u32

// Sections shown (a slice each) and imports/exports listed by name in header.json.
constexpr uint64_t kMaxSections = 4096;
constexpr uint64_t kMaxListedEntries = 4096;
constexpr uint64_t kMaxNameBytes = 4096;

constexpr std::array<std::string_view, 14> kSectionNames = {
    "custom", "type",  "import",  "function", "table", "memory",     "global",
    "export", "start", "element", "code",     "data",  "data_count", "tag"};
// Where each known section may appear (the binary format's order, tag after memory).
constexpr std::array<int, 14> kSectionRank = {0, 1, 2, 3, 4, 5, 7, 8, 9, 10, 12, 13, 11, 6};
// Sections whose payload opens with a vector count (start opens with a function index).
constexpr std::array<bool, 14> kHasCount = {false, true,  true, true, true, true,  true,
                                            true,  false, true, true, true, false, true};
constexpr std::array<std::string_view, 5> kExternalKinds = {"func", "table", "memory", "global",
                                                            "tag"};

// An unsigned LEB128 of at most 32 bits; nullopt when malformed or cut.
std::optional<uint32_t> read_u32_leb(BinaryReader& r) {
  uint64_t value = 0;
  for (uint64_t i = 0; i < kMaxLeb128Bytes; ++i) {
    const uint8_t b = r.u8();
    if (!r.ok()) return std::nullopt;
    value |= uint64_t{b & 0x7Fu} << (7 * i);
    if ((b & 0x80) == 0) {
      if (value > UINT32_MAX) return std::nullopt;
      return static_cast<uint32_t>(value);
    }
  }
  return std::nullopt;
}

// A name: LEB128 length and that many bytes (shown UTF-8-safe); nullopt when cut or too long.
std::optional<std::string> read_name(BinaryReader& r) {
  const auto length = read_u32_leb(r);
  if (!length || *length > r.remaining() || *length > kMaxNameBytes) return std::nullopt;
  std::string text = r.text(*length);
  if (!r.ok()) return std::nullopt;
  return utf8_or_escaped(text);
}

std::string kind_name(uint8_t kind) {
  return kind < kExternalKinds.size() ? std::string(kExternalKinds[kind])
                                      : "kind " + std::to_string(kind);
}

// Skips an import's description (the part after its kind byte).
bool skip_import_description(BinaryReader& r, uint8_t kind) {
  const auto limits = [&] {
    const uint8_t flags = r.u8();
    if (!read_u32_leb(r)) return false;
    return (flags & 1) == 0 || read_u32_leb(r).has_value();
  };
  switch (kind) {
    case 0:  // func: a type index
      return read_u32_leb(r).has_value();
    case 1:  // table: a reference type and limits
      r.u8();
      return limits();
    case 2:  // memory: limits
      return limits();
    case 3:  // global: a value type and mutability
      r.skip(2);
      return r.ok();
    case 4:  // tag: an attribute byte and a type index
      r.u8();
      return read_u32_leb(r).has_value();
    default:
      return false;
  }
}

// The import or export section's entries (names, kinds) into `list`; false when malformed.
bool read_entries(BinaryReader& r, bool imports, Json& list, uint32_t& count) {
  const auto n = read_u32_leb(r);
  if (!n) return false;
  count = *n;
  for (uint32_t i = 0; i < *n; ++i) {
    Json entry = Json::object();
    if (imports) {
      const auto module = read_name(r);
      if (!module) return false;
      entry["module"] = *module;
    }
    const auto name = read_name(r);
    const uint8_t kind = r.u8();
    if (!name || !r.ok()) return false;
    entry["name"] = *name;
    entry["kind"] = kind_name(kind);
    if (imports) {
      if (!skip_import_description(r, kind)) return false;
    } else {
      const auto index = read_u32_leb(r);
      if (!index) return false;
      entry["index"] = *index;
    }
    if (list.size() < kMaxListedEntries) list.push_back(std::move(entry));
  }
  return r.ok();
}

struct Module {
  Json sections = Json::array();
  Json imports = Json::array();
  Json exports = Json::array();
  std::optional<uint32_t> import_count;
  std::optional<uint32_t> export_count;
  int last_rank = 0;
  uint32_t seen = 0;  // known section ids met, as bits
};

// Attributes and name of a section whose payload is [start, start + size).
Slice describe_section(BinaryReader& file, uint8_t id, uint64_t start, uint32_t size,
                       const std::string& where, Module& m, Layout& layout) {
  Json a = {{"id", id}, {"size", size}};
  BinaryReader r = file.sub(start, size);
  std::string name =
      id < kSectionNames.size() ? std::string(kSectionNames[id]) : "unknown/" + std::to_string(id);
  if (id == 0) {
    const auto custom = read_name(r);
    if (!custom) {
      layout.add_error(where + "custom section without a valid name");
    } else {
      name = "custom/" + *custom;
      a["name"] = *custom;
      a["content_offset"] = r.tell();
      a["content_size"] = start + size - r.tell();
    }
  } else if (id == 2 || id == 7) {
    uint32_t count = 0;
    const bool ok = read_entries(r, id == 2, id == 2 ? m.imports : m.exports, count);
    (id == 2 ? m.import_count : m.export_count) = count;
    a["count"] = count;
    if (!ok) layout.add_error(where + "malformed " + name + " section");
  } else if (id < kHasCount.size() && kHasCount[id]) {
    if (const auto count = read_u32_leb(r)) {
      a["count"] = *count;
    } else {
      layout.add_error(where + "bad LEB128 count at the start of the " + name + " section");
    }
  } else if (id == 8 || id == 12) {
    if (const auto value = read_u32_leb(r)) a[id == 8 ? "function_index" : "count"] = *value;
  }
  return Slice{name, {start, size}, std::move(a)};
}

// The order of known sections: each at most once, in the binary format's order.
void check_order(uint8_t id, const std::string& where, Module& m, Layout& layout) {
  if (id == 0) return;
  if (id >= kSectionNames.size()) {
    layout.add_error(where + "unknown section id " + std::to_string(id));
    return;
  }
  if ((m.seen & (1u << id)) != 0) {
    layout.add_error(where + "a second " + std::string(kSectionNames[id]) + " section");
  } else if (kSectionRank[id] < m.last_rank) {
    layout.add_error(where + "the " + std::string(kSectionNames[id]) + " section is out of order");
  }
  m.seen |= 1u << id;
  m.last_rank = std::max(m.last_rank, kSectionRank[id]);
}

// Walks the sections after the preamble into slices.
void read_sections(const ByteSource& source, Module& m, Layout& layout) {
  BinaryReader r(source, Endian::little);
  r.seek(kPreambleBytes);
  while (r.ok() && r.remaining() > 0) {
    const uint64_t at = r.tell();
    const std::string where = "section at offset " + std::to_string(at) + ": ";
    if (layout.slices.size() == kMaxSections) {
      layout.add_error("more than " + std::to_string(kMaxSections) +
                       " sections; the rest of the file from offset " + std::to_string(at) +
                       " is not shown");
      return;
    }
    const uint8_t id = r.u8();
    const auto size = read_u32_leb(r);
    if (!size) {
      layout.add_error(where + "bad or cut LEB128 section size");
      return;
    }
    const uint64_t start = r.tell();
    if (*size > r.remaining()) {
      layout.add_error(where + "its size " + std::to_string(*size) + " runs past the end of the " +
                       "file (" + std::to_string(r.remaining()) + " bytes remain)");
      return;
    }
    check_order(id, where, m, layout);
    Slice slice = describe_section(r, id, start, *size, where, m, layout);
    m.sections.push_back(
        Json{{"name", slice.name}, {"id", id}, {"offset", start}, {"size", *size}});
    layout.slices.push_back(std::move(slice));
    r.seek(start + *size);
  }
}

class Wasm final : public Format {
 public:
  std::string_view name() const noexcept override { return "wasm"; }
  std::string_view description() const noexcept override {
    return "WebAssembly binary module (version 1)";
  }
  std::string_view signature() const noexcept override {
    return "00 61 73 6d 01 00 00 00 (\"\\0asm\", version 1) at 0";
  }

  bool detect(std::span<const std::byte> head, uint64_t) const override {
    return starts_with(head, kMagic);
  }

  Layout parse(const ByteSource& source) const override {
    Layout layout;
    layout.magic = magic_at_start(kMagic);
    Module m;
    if (source.size() < kPreambleBytes) {
      layout.add_error("file too short for the 8-byte preamble");
      return layout;
    }
    read_sections(source, m, layout);
    auto& h = layout.header;
    h["version"] = 1;
    h["section_count"] = m.sections.size();
    h["sections"] = std::move(m.sections);
    h["import_count"] = m.import_count.value_or(0);
    h["export_count"] = m.export_count.value_or(0);
    h["imports"] = std::move(m.imports);
    h["exports"] = std::move(m.exports);
    if (m.import_count.value_or(0) > kMaxListedEntries ||
        m.export_count.value_or(0) > kMaxListedEntries)
      layout.add_error("more than " + std::to_string(kMaxListedEntries) +
                       " imports or exports; the lists in the header are cut");
    return layout;
  }
};

}  // namespace

std::unique_ptr<Format> make_wasm() {
  return std::make_unique<Wasm>();
}

}  // namespace payloadfs::formats

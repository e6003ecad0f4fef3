// ar archives: static libraries (.a) and Debian packages (.deb). The common format (ar(5),
// FreeBSD's ar(5) and binutils' include/aout/ar.h): the global header "!<arch>\n", then members,
// each a 60-byte header
//   name[16] mtime[12] uid[6] gid[6] mode[8] (octal) size[10] (decimal) "`\n"
// and its data, padded with '\n' to an even offset. Extensions, as GNU ar and llvm-ar write
// and read them:
// - GNU (System V): a short name ends with '/'; "//" is the long-name table (names ending
//   "/\n"), a member "/<offset>" names itself from it; "/" is the symbol table (big-endian u32
//   count, count u32 member-header offsets, then count NUL-terminated names) and "/SYM64/" the
//   same with u64 count and offsets.
// - BSD (4.4BSD, macOS): "#1/<len>" puts the name in the first <len> bytes of the data (counted
//   in size, NUL-padded); "__.SYMDEF" (or "__.SYMDEF SORTED") is the symbol table: a u32 byte
//   count of ranlib entries (u32 name index, u32 member-header offset), then a u32 byte count
//   of names and the names; "__.SYMDEF_64" the same with u64 fields. Its byte order is the
//   target's, so we take the one whose counts fit.

#include <algorithm>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/formats/builtin.hpp"
#include "core/formats/support/ascii_number.hpp"
#include "core/formats/support/signature.hpp"
#include "core/io/binary_reader.hpp"
#include "core/io/checked_math.hpp"
#include "core/render/json_text.hpp"

namespace payloadfs::formats {
namespace {

constexpr auto kSignature = byte_string("!<arch>\n");
constexpr uint64_t kHeaderBytes = 60;
// Limits on hostile input: member headers walked (tables included), bytes of one member name (a
// BSD "#1/" name or a GNU long name; PATH_MAX), symbols listed by name in header.json, bytes of
// symbol names read, and errors listed.
constexpr uint64_t kMaxMembers = 1'000'000;
constexpr uint64_t kMaxNameBytes = 4096;
constexpr uint64_t kMaxListedSymbols = 10'000;
constexpr uint64_t kMaxSymbolNameBytes = 1 << 20;
constexpr size_t kMaxListedErrors = 1000;

struct Field {
  size_t offset;
  size_t width;
};
constexpr Field kName{0, 16}, kMtime{16, 12}, kUid{28, 6}, kGid{34, 6}, kMode{40, 8}, kSize{48, 10},
    kFmag{58, 2};

std::string_view field(std::string_view header, Field f) {
  return header.substr(f.offset, f.width);
}

std::string_view trim_right(std::string_view s, char c) {
  while (!s.empty() && s.back() == c) s.remove_suffix(1);
  return s;
}

enum class Special { none, gnu_symbols, gnu_symbols64, long_names, bsd_symbols, bsd_symbols64 };

// What a member header says once its name is resolved.
struct Member {
  uint64_t header_offset = 0;
  std::string header;  // the 60 header bytes
  std::string name;
  uint64_t data_offset = 0;  // after a BSD name
  uint64_t data_size = 0;
  Special special = Special::none;
};

// A symbol listed in header.json: its name and the header offset of the member defining it.
struct Symbol {
  std::string name;
  uint64_t member_offset = 0;
};

struct SymbolTable {
  std::string member_name;
  std::string kind;
  uint64_t offset = 0, size = 0, count = 0;
  std::vector<Symbol> listed;
  bool names_cut = false;
};

Special bsd_special(std::string_view name) {
  if (name == "__.SYMDEF" || name == "__.SYMDEF SORTED") return Special::bsd_symbols;
  if (name == "__.SYMDEF_64" || name == "__.SYMDEF_64 SORTED") return Special::bsd_symbols64;
  return Special::none;
}

// The names of up to `count` NUL-terminated strings at the start of `text` (a table cut at a
// limit may hold fewer).
std::vector<std::string> split_names(std::string_view text, uint64_t count) {
  std::vector<std::string> names;
  size_t p = 0;
  while (names.size() < count && p < text.size()) {
    const size_t end = text.find('\0', p);
    if (end == std::string_view::npos) break;
    names.emplace_back(text.substr(p, end - p));
    p = end + 1;
  }
  return names;
}

// The walk over the members after the global header, and what it finds.
class ArWalk {
 public:
  ArWalk(const ByteSource& source, Layout& layout)
      : reader_(source), size_(source.size()), layout_(layout) {}

  void run() {
    pos_ = kSignature.size();
    while (pos_ < size_ && step()) {
    }
    summarize();
  }

 private:
  // Walks one member; false when the walk stops.
  bool step() {
    if (headers_ == kMaxMembers) {
      fail("more than " + std::to_string(kMaxMembers) + " members; stopped at offset " +
           std::to_string(pos_));
      return false;
    }
    ++headers_;
    auto member = read_member_header();
    if (!member || !resolve_name(*member)) return false;
    Member& m = *member;
    const uint64_t end = m.data_offset + m.data_size;  // read_member_header checked the sum
    if (end > size_) {
      fail("member '" + utf8_or_escaped(m.name) + "' at offset " + std::to_string(m.header_offset) +
           ": its data (" + std::to_string(m.data_size) + " bytes at offset " +
           std::to_string(m.data_offset) + ") runs past the end of the file");
      return false;
    }
    switch (m.special) {
      case Special::none:
        add_member(m);
        break;
      case Special::long_names:
        note_long_names(m);
        break;
      default:
        read_symbol_table(m);
        break;
    }
    pos_ = end + (end & 1);  // data is padded to an even offset
    return true;
  }

  // Errors that do not stop the walk (a bad field, a bad long-name reference) can come with every
  // member, so only the first kMaxListedErrors are kept and the rest counted.
  void fail(std::string message) {
    if (layout_.errors.size() < kMaxListedErrors)
      layout_.add_error(std::move(message));
    else
      ++dropped_errors_;
  }

  // Reads and checks the 60-byte header at pos_; nullopt (with the error) when the walk stops.
  std::optional<Member> read_member_header() {
    Member m;
    m.header_offset = pos_;
    const std::string where = "member header at offset " + std::to_string(pos_);
    if (size_ - pos_ < kHeaderBytes) {
      fail("truncated " + where + " (" + std::to_string(size_ - pos_) + " of " +
           std::to_string(kHeaderBytes) + " bytes)");
      return std::nullopt;
    }
    BinaryReader record = reader_.sub(pos_, kHeaderBytes);
    m.header = record.text(kHeaderBytes);
    if (!record.ok()) {
      fail("cannot read the " + where + ": " + record.error().value_or(""));
      return std::nullopt;
    }
    if (field(m.header, kFmag) != "`\n") {
      fail(where + " does not end with \"`\\n\"");
      return std::nullopt;
    }
    const PaddedNumber size = parse_padded(field(m.header, kSize), 10);
    if (!size.value) {
      fail(where + ": the size field '" + utf8_or_escaped(field(m.header, kSize)) +
           "' is not a decimal number");
      return std::nullopt;
    }
    m.data_offset = pos_ + kHeaderBytes;
    m.data_size = *size.value;
    if (!checked_add(m.data_offset, m.data_size)) {
      fail(where + ": its size " + std::to_string(m.data_size) + " overflows");
      return std::nullopt;
    }
    return m;
  }

  // Sets the member's name, kind and (for a BSD name) data range; false when the walk stops.
  bool resolve_name(Member& m) {
    const std::string_view raw = field(m.header, kName);
    const std::string_view trimmed = trim_right(raw, ' ');
    if (trimmed.starts_with("#1/")) return read_bsd_name(m, trimmed.substr(3));
    if (trimmed == "/") {
      m.special = Special::gnu_symbols;
    } else if (trimmed == "/SYM64/") {
      m.special = Special::gnu_symbols64;
    } else if (trimmed == "//") {
      m.special = Special::long_names;
    } else if (trimmed.starts_with('/')) {
      m.name = long_name(m, trimmed);
    } else if (const size_t slash = trimmed.find('/'); slash != std::string_view::npos) {
      gnu_ = true;  // GNU short names end with '/'; the rest of the field is padding
      m.name = std::string(trimmed.substr(0, slash));
    } else {
      m.name = std::string(trimmed);
      m.special = bsd_special(m.name);
      if (m.special != Special::none) bsd_ = true;
    }
    if (m.special != Special::none && m.name.empty()) m.name = std::string(trimmed);
    if (m.special == Special::gnu_symbols || m.special == Special::gnu_symbols64 ||
        m.special == Special::long_names)
      gnu_ = true;
    return true;
  }

  // "#1/<len>": the name is the first <len> bytes of the data, NUL-padded.
  bool read_bsd_name(Member& m, std::string_view length_text) {
    bsd_ = true;
    const std::string where = "member header at offset " + std::to_string(m.header_offset);
    const auto length = parse_digits(length_text, 10);
    if (!length || *length > m.data_size) {
      fail(where + ": the BSD name length '" + utf8_or_escaped(length_text) + "' is not a number " +
           "within the member's " + std::to_string(m.data_size) + " bytes");
      return false;
    }
    if (*length > kMaxNameBytes) {
      fail(where + ": a BSD name of " + std::to_string(*length) + " bytes exceeds the limit of " +
           std::to_string(kMaxNameBytes));
      return false;
    }
    BinaryReader name_reader = reader_.sub(m.data_offset, *length);
    const std::string name = name_reader.text(*length);
    if (!name_reader.ok()) {
      fail(where + ": its BSD name runs past the end of the file");
      return false;
    }
    m.name = std::string(trim_right(name, '\0'));
    m.data_offset += *length;
    m.data_size -= *length;
    m.special = bsd_special(m.name);
    return true;
  }

  // "/<offset>": a name in the long-name table, ending with "/\n" (or "\n"). A bad reference
  // is an error; the member keeps the name as stored.
  std::string long_name(const Member& m, std::string_view stored) {
    gnu_ = true;
    const std::string where = "member header at offset " + std::to_string(m.header_offset);
    const auto offset = parse_digits(stored.substr(1), 10);
    if (!offset) {
      fail(where + ": unknown special name '" + utf8_or_escaped(stored) + "'");
      return std::string(stored);
    }
    if (!long_names_ || *offset >= long_names_->length) {
      fail(where + ": long-name offset " + std::to_string(*offset) +
           (long_names_ ? " is outside the long-name table (" +
                              std::to_string(long_names_->length) + " bytes)"
                        : " but the archive has no long-name table before it"));
      return std::string(stored);
    }
    const uint64_t available = long_names_->length - *offset;
    const uint64_t want = std::min(available, kMaxNameBytes + 2);
    BinaryReader table = reader_.sub(long_names_->offset + *offset, want);
    const std::string text = table.text(want);
    const size_t newline = text.find('\n');
    if (!table.ok() || newline == std::string::npos) {
      fail(where + ": the long name at table offset " + std::to_string(*offset) +
           (want < available ? " exceeds the limit of " + std::to_string(kMaxNameBytes) + " bytes"
                             : " does not end with a newline"));
      return std::string(stored);
    }
    return std::string(trim_right(std::string_view(text).substr(0, newline), '/'));
  }

  void note_long_names(const Member& m) {
    if (long_names_) {
      fail("a second long-name table at offset " + std::to_string(m.header_offset) + " (ignored)");
      return;
    }
    long_names_ = ByteRange{m.data_offset, m.data_size};
  }

  void add_member(const Member& m) {
    ++members_;
    const std::string where =
        "member '" + utf8_or_escaped(m.name) + "' at offset " + std::to_string(m.header_offset);
    auto number = [&](const char* key, Field f, unsigned base) -> uint64_t {
      const PaddedNumber n = parse_padded(field(m.header, f), base);
      if (!n.value && !n.blank)
        fail(where + ": the " + key + " field '" + utf8_or_escaped(field(m.header, f)) +
             "' is not a number");
      return n.value.value_or(0);
    };
    Json attributes = Json::object();
    attributes["mode"] = octal_text(number("mode", kMode, 8));
    attributes["mtime"] = number("mtime", kMtime, 10);
    attributes["uid"] = number("uid", kUid, 10);
    attributes["gid"] = number("gid", kGid, 10);
    attributes["size"] = m.data_size;
    attributes["header_offset"] = m.header_offset;
    member_offsets_.emplace_back(m.header_offset, layout_.slices.size());
    layout_.slices.push_back(Slice{m.name, {m.data_offset, m.data_size}, std::move(attributes)});
  }

  void read_symbol_table(const Member& m) {
    if (symbols_) {
      fail("a second symbol table ('" + utf8_or_escaped(m.name) + "') at offset " +
           std::to_string(m.header_offset) + " (ignored)");
      return;
    }
    symbols_ = SymbolTable{};
    SymbolTable& table = *symbols_;
    table.member_name = m.name;
    table.offset = m.data_offset;
    table.size = m.data_size;
    if (m.special == Special::gnu_symbols || m.special == Special::gnu_symbols64)
      read_gnu_symbols(m.special == Special::gnu_symbols64, table);
    else
      read_bsd_symbols(m.special == Special::bsd_symbols64, table);
  }

  // count, count offsets, then the names, all big-endian (u32, or u64 for /SYM64/).
  void read_gnu_symbols(bool wide, SymbolTable& table) {
    table.kind = wide ? "gnu64" : "gnu";
    BinaryReader data = reader_.sub(table.offset, table.size);
    data.set_endian(Endian::big);
    const uint64_t word = wide ? 8 : 4;
    const uint64_t claimed = wide ? data.u64() : data.u32();
    const uint64_t fits = data.remaining() / word;
    table.count = std::min(claimed, fits);
    if (!data.ok()) {
      fail("symbol table '" + table.member_name + "' has " + std::to_string(table.size) +
           " bytes, too few for its symbol count");
      return;
    }
    if (claimed > fits) {
      fail("symbol table '" + table.member_name + "' claims " + std::to_string(claimed) +
           " symbols, more than its " + std::to_string(table.size) + " bytes hold");
    }
    const uint64_t listed = std::min(table.count, kMaxListedSymbols);
    std::vector<uint64_t> offsets;
    for (uint64_t i = 0; i < listed; ++i) offsets.push_back(wide ? data.u64() : data.u32());
    data.skip((table.count - listed) * word);
    const uint64_t name_bytes = data.remaining();
    const std::string text = data.text(std::min(name_bytes, kMaxSymbolNameBytes));
    const auto names = split_names(text, listed);
    if (names.size() < listed && name_bytes <= kMaxSymbolNameBytes)
      fail("symbol table '" + table.member_name + "' has " + std::to_string(names.size()) +
           " names for " + std::to_string(table.count) + " symbols");
    table.names_cut = names.size() < table.count;
    for (size_t i = 0; i < names.size(); ++i) table.listed.push_back({names[i], offsets[i]});
  }

  // The byte counts of a BSD symbol table read in `endian`: (ranlib bytes, string bytes), when
  // both fit the member.
  std::optional<std::pair<uint64_t, uint64_t>> bsd_counts(const SymbolTable& table, bool wide,
                                                          Endian endian) {
    BinaryReader data = reader_.sub(table.offset, table.size);
    data.set_endian(endian);
    const uint64_t word = wide ? 8 : 4;
    const uint64_t ranlib = wide ? data.u64() : data.u32();
    if (!data.ok() || ranlib % (2 * word) != 0 || ranlib > data.remaining()) return std::nullopt;
    data.skip(ranlib);
    const uint64_t strings = wide ? data.u64() : data.u32();
    if (!data.ok() || strings > data.remaining()) return std::nullopt;
    return std::make_pair(ranlib, strings);
  }

  // ranlib entries (name index, member offset), then the string table, in the target's byte
  // order: the one whose byte counts fit the member.
  void read_bsd_symbols(bool wide, SymbolTable& table) {
    table.kind = wide ? "bsd64" : "bsd";
    Endian endian = Endian::little;
    auto counts = bsd_counts(table, wide, endian);
    if (!counts) counts = bsd_counts(table, wide, endian = Endian::big);
    if (!counts) {
      fail("symbol table '" + table.member_name + "' at offset " + std::to_string(table.offset) +
           ": its byte counts do not fit its " + std::to_string(table.size) + " bytes");
      return;
    }
    const auto [ranlib, strings] = *counts;
    const uint64_t word = wide ? 8 : 4;
    BinaryReader data = reader_.sub(table.offset, table.size);
    data.set_endian(endian);
    data.skip(word);
    table.count = ranlib / (2 * word);
    const uint64_t listed = std::min(table.count, kMaxListedSymbols);
    std::vector<std::pair<uint64_t, uint64_t>> entries;  // (name index, member offset)
    for (uint64_t i = 0; i < listed; ++i) {
      const uint64_t strx = wide ? data.u64() : data.u32();
      entries.emplace_back(strx, wide ? data.u64() : data.u32());
    }
    data.seek(table.offset + 2 * word + ranlib);
    const std::string text = data.text(std::min(strings, kMaxSymbolNameBytes));
    table.names_cut = listed < table.count;
    for (const auto& [strx, member] : entries) {
      if (strx >= strings) {
        fail("symbol table '" + table.member_name + "': name index " + std::to_string(strx) +
             " is outside its " + std::to_string(strings) + "-byte string table");
        continue;
      }
      const size_t end = strx < text.size() ? text.find('\0', strx) : std::string::npos;
      if (end == std::string::npos) {
        table.names_cut = true;  // past the bytes we read, or unterminated
        continue;
      }
      table.listed.push_back({text.substr(strx, end - strx), member});
    }
  }

  // The name of the member whose header is at `offset`, or null.
  Json member_name_at(uint64_t offset) const {
    const auto it = std::lower_bound(member_offsets_.begin(), member_offsets_.end(),
                                     std::make_pair(offset, size_t{0}));
    if (it == member_offsets_.end() || it->first != offset) return nullptr;
    return utf8_or_escaped(layout_.slices[it->second].name);
  }

  Json symbol_table_json() {
    if (!symbols_) return nullptr;
    const SymbolTable& t = *symbols_;
    Json listed = Json::array();
    uint64_t unresolved = 0;
    for (const Symbol& s : t.listed) {
      Json member = member_name_at(s.member_offset);
      if (member.is_null()) ++unresolved;
      listed.push_back({{"name", utf8_or_escaped(s.name)}, {"member", std::move(member)}});
    }
    if (unresolved > 0)
      fail("symbol table '" + t.member_name + "': " + std::to_string(unresolved) +
           " symbols point at no member header");
    if (t.count > kMaxListedSymbols)
      fail("symbol table '" + t.member_name + "' has " + std::to_string(t.count) +
           " symbols; only the first " + std::to_string(kMaxListedSymbols) + " are listed");
    return {{"member", utf8_or_escaped(t.member_name)},
            {"kind", t.kind},
            {"offset", t.offset},
            {"size", t.size},
            {"count", t.count},
            {"symbols", std::move(listed)},
            {"symbols_complete", !t.names_cut && t.listed.size() == t.count}};
  }

  void summarize() {
    auto& h = layout_.header;
    h["variant"] = gnu_ && bsd_ ? "mixed" : gnu_ ? "gnu" : bsd_ ? "bsd" : "common";
    h["members"] = members_;
    h["symbol_count"] = symbols_ ? Json(symbols_->count) : Json(nullptr);
    h["symbol_table"] = symbol_table_json();
    h["long_name_table"] =
        long_names_ ? Json{{"offset", long_names_->offset}, {"size", long_names_->length}}
                    : Json(nullptr);
    layout_.magic = magic_at_start(kSignature);
    if (dropped_errors_ > 0)
      layout_.add_error(std::to_string(dropped_errors_) + " more errors after the first " +
                        std::to_string(kMaxListedErrors) + " are not listed");
  }

  BinaryReader reader_;
  const uint64_t size_;
  Layout& layout_;
  uint64_t pos_ = 0;
  uint64_t members_ = 0;
  uint64_t headers_ = 0;  // members, symbol and long-name tables: what the limit counts
  uint64_t dropped_errors_ = 0;
  bool gnu_ = false, bsd_ = false;
  std::optional<ByteRange> long_names_;
  std::optional<SymbolTable> symbols_;
  // (header offset, slice index) of every member slice, in file order (so sorted).
  std::vector<std::pair<uint64_t, size_t>> member_offsets_;
};

class Ar final : public Format {
 public:
  std::string_view name() const noexcept override { return "ar"; }
  std::string_view description() const noexcept override {
    return "ar archive (static libraries, .deb packages; GNU and BSD long names)";
  }
  std::string_view signature() const noexcept override { return "'!<arch>\\n' at 0"; }

  bool detect(std::span<const std::byte> head, uint64_t) const override {
    return starts_with(head, kSignature);
  }

  Layout parse(const ByteSource& source) const override {
    Layout layout;
    ArWalk(source, layout).run();
    return layout;
  }
};

}  // namespace

std::unique_ptr<Format> make_ar() {
  return std::make_unique<Ar>();
}

}  // namespace payloadfs::formats

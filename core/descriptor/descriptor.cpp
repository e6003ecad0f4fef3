// Format descriptors: loading and checking the JSON (every error names the file, the JSON path
// and the problem), then parsing files with it. The language is documented in
// docs/descriptors.md; expressions are in expression.cpp.

#include "core/descriptor/descriptor.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <dirent.h>
#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <set>

#include "core/io/binary_reader.hpp"
#include "core/io/checked_math.hpp"
#include "core/io/unique_fd.hpp"
#include "core/render/hex.hpp"
#include "core/render/json_text.hpp"

namespace payloadfs::descriptor {

enum class FieldType {
  u8,
  u16,
  u32,
  u64,
  i8,
  i16,
  i32,
  i64,
  f32,
  f64,
  boolean,
  str,
  bytes,
  computed
};

struct TypeInfo {
  std::string_view name;
  FieldType type;
  unsigned width;  // bytes; 0 for str/bytes (their length is an expression)
};
constexpr TypeInfo kTypes[] = {
    {"u8", FieldType::u8, 1},       {"u16", FieldType::u16, 2},      {"u32", FieldType::u32, 4},
    {"u64", FieldType::u64, 8},     {"i8", FieldType::i8, 1},        {"i16", FieldType::i16, 2},
    {"i32", FieldType::i32, 4},     {"i64", FieldType::i64, 8},      {"f32", FieldType::f32, 4},
    {"f64", FieldType::f64, 8},     {"bool", FieldType::boolean, 1}, {"str", FieldType::str, 0},
    {"bytes", FieldType::bytes, 0},
};

bool is_integer_type(FieldType t) {
  return t <= FieldType::i64 || t == FieldType::computed;
}
bool is_signed_type(FieldType t) {
  return (t >= FieldType::i8 && t <= FieldType::i64) || t == FieldType::computed;
}

struct FieldSpec {
  std::string name;
  FieldType type = FieldType::u8;
  unsigned width = 0;
  std::optional<Expression> offset;            // read fields
  std::optional<Expression> length;            // str and bytes
  std::optional<Expression> value;             // computed fields
  uint8_t endian = 0;                          // 0: the descriptor's default, 1 little, 2 big
  std::map<uint64_t, std::string> enum_names;  // value bits -> name
  std::map<unsigned, std::string> flag_names;  // bit number -> name
  size_t slot = 0;
};

struct Validation {
  Expression expr;
  std::string message;
};

enum class SliceKind { single, table, walk };

struct SliceSpec {
  SliceKind kind = SliceKind::single;
  std::string name;  // may contain {i}
  std::optional<Expression> offset, length, count, start, until, data_offset, data_length;
  std::vector<FieldSpec> fields;
  // Tables and walks named "<dir>/{i}" whose <dir> no other slices entry uses: <dir>, and their
  // records become a compact RecordTable; empty otherwise (one Slice per record).
  std::string table_dir;
  bool fields_use_index = false;  // a record field's expression uses `i`
};

struct MagicSpec {
  uint64_t offset = 0;
  std::vector<std::byte> bytes;
  std::optional<Endian> endian;
};

struct Compiled {
  std::string name, description, signature, source_path;
  Endian endian = Endian::little;
  std::vector<MagicSpec> magics;
  std::vector<FieldSpec> fields;
  std::vector<Validation> validations;
  std::vector<SliceSpec> slices;
  size_t slot_count = 0;
  Limits limits;
};

namespace {

constexpr size_t kSlotSize = 0, kSlotIndex = 1, kSlotAt = 2, kFirstFieldSlot = 3;
constexpr size_t kMaxMagicBytes = 64;  // what payload.cpp shows as the magic

// ---------------------------------------------------------------------------------------------
// Loading

struct DescriptorError {
  std::string path;  // JSON pointer
  std::string problem;
};

[[noreturn]] void fail(const std::string& path, std::string problem) {
  throw DescriptorError{path, std::move(problem)};
}

std::string type_name(const Json& j) {
  return j.type_name();
}

void require_object(const Json& j, const std::string& path) {
  if (!j.is_object()) fail(path, "expected an object, found " + type_name(j));
}

void check_keys(const Json& j, const std::string& path,
                std::initializer_list<std::string_view> allowed) {
  for (const auto& [key, value] : j.items()) {
    if (key == "comment") continue;  // documentation, ignored everywhere
    if (std::find(allowed.begin(), allowed.end(), key) == allowed.end()) {
      std::string list;
      for (const auto a : allowed) list += (list.empty() ? "" : ", ") + std::string(a);
      fail(path + "/" + key,
           "unknown key '" + utf8_or_escaped(key) + "' (allowed: " + list + ", comment)");
    }
  }
}

std::string get_string(const Json& j, const std::string& key, const std::string& path,
                       bool required, const std::string& fallback = {}) {
  if (!j.contains(key)) {
    if (required) fail(path, "missing key '" + key + "'");
    return fallback;
  }
  const Json& v = j.at(key);
  if (!v.is_string()) fail(path + "/" + key, "expected a string, found " + type_name(v));
  return v.get<std::string>();
}

bool valid_identifier(std::string_view s) {
  if (s.empty() || s.size() > 64) return false;
  if (!(std::isalpha(static_cast<unsigned char>(s[0])) != 0 || s[0] == '_')) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_';
  });
}

bool reserved_name(std::string_view s) {
  if (s == "size" || s == "i") return true;
  // reader functions: u8 .. i64, with optional le/be
  for (const char* base : {"u8", "u16", "u32", "u64", "i8", "i16", "i32", "i64"}) {
    const std::string b(base);
    if (s == b || s == b + "le" || s == b + "be") return true;
  }
  return false;
}

Endian parse_endian(const Json& j, const std::string& path) {
  if (!j.is_string()) fail(path, "expected \"little\" or \"big\", found " + type_name(j));
  const auto s = j.get<std::string>();
  if (s == "little") return Endian::little;
  if (s == "big") return Endian::big;
  fail(path, "expected \"little\" or \"big\", found \"" + utf8_or_escaped(s) + "\"");
}

std::optional<uint64_t> parse_u64_text(std::string_view s) {
  if (s.empty()) return std::nullopt;
  unsigned base = 10;
  if (s.starts_with("0x") || s.starts_with("0X")) {
    base = 16;
    s.remove_prefix(2);
    if (s.empty()) return std::nullopt;
  }
  uint64_t v = 0;
  for (const char c : s) {
    unsigned d = 0;
    if (c >= '0' && c <= '9') {
      d = static_cast<unsigned>(c - '0');
    } else if (base == 16 && std::isxdigit(static_cast<unsigned char>(c)) != 0) {
      d = static_cast<unsigned>(std::tolower(static_cast<unsigned char>(c)) - 'a' + 10);
    } else {
      return std::nullopt;
    }
    const auto m = checked_mul(v, base);
    const auto a = m ? checked_add(*m, d) : std::nullopt;
    if (!a) return std::nullopt;
    v = *a;
  }
  return v;
}

// Enum keys: decimal (optionally negative, for signed fields) or 0x hex; kept as the value's
// 64-bit pattern so they compare with what was read.
std::optional<uint64_t> parse_enum_key(std::string_view s) {
  if (s.starts_with("-")) {
    const auto m = parse_u64_text(s.substr(1));
    if (!m || *m > (uint64_t{1} << 63)) return std::nullopt;
    return ~*m + 1;  // two's complement of the magnitude
  }
  return parse_u64_text(s);
}

class Loader {
 public:
  Loader(const Limits& limits, Compiled& out) : limits_(limits), out_(out) {}

  void load(const Json& root) {
    require_object(root, "");
    check_keys(root, "",
               {"name", "description", "endian", "magic", "fields", "validate", "slices"});
    out_.name = get_string(root, "name", "", true);
    if (out_.name.empty() || out_.name.size() > 64 ||
        !std::all_of(out_.name.begin(), out_.name.end(), [](char c) {
          return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_' || c == '-' ||
                 c == '.';
        }))
      fail("/name", "a format name is 1 to 64 characters from A-Z a-z 0-9 _ - .");
    out_.description = get_string(root, "description", "", false,
                                  "format described by " + utf8_or_escaped(out_.source_path));
    if (root.contains("endian")) out_.endian = parse_endian(root.at("endian"), "/endian");
    load_magic(root);

    // Header fields see `size` and the fields before them.
    if (root.contains("fields")) {
      const Json& fields = root.at("fields");
      if (!fields.is_array()) fail("/fields", "expected an array, found " + type_name(fields));
      Scope scope = base_scope();
      for (size_t k = 0; k < fields.size(); ++k) {
        const auto& f = fields[k];
        if (f.is_object() && f.contains("name") && f.at("name").is_string())
          scope.forbid(f.at("name").get<std::string>(),
                       "field '" + utf8_or_escaped(f.at("name").get<std::string>()) +
                           "' is defined later: a field can use only the fields before it");
      }
      for (size_t k = 0; k < fields.size(); ++k) {
        const std::string path = "/fields/" + std::to_string(k);
        FieldSpec spec = load_field(fields[k], path, scope, false);
        if (header_names_.count(spec.name) != 0)
          fail(path + "/name", "duplicate field name '" + spec.name + "'");
        spec.slot = kFirstFieldSlot + out_.fields.size();
        header_names_.insert(spec.name);
        if (is_integer_type(spec.type) || spec.type == FieldType::boolean) {
          scope.define(spec.name, spec.slot);
        } else {
          scope.forbid(spec.name, "field '" + spec.name +
                                      "' is not an integer and cannot be used in expressions");
        }
        out_.fields.push_back(std::move(spec));
      }
      header_scope_ = scope;
    } else {
      header_scope_ = base_scope();
    }
    out_.slot_count = kFirstFieldSlot + out_.fields.size();

    if (root.contains("validate")) {
      const Json& v = root.at("validate");
      if (!v.is_array()) fail("/validate", "expected an array, found " + type_name(v));
      for (size_t k = 0; k < v.size(); ++k) {
        const std::string path = "/validate/" + std::to_string(k);
        const Json& item = v[k];
        if (item.is_string()) {
          out_.validations.push_back({compile(item, path, header_scope_), {}});
        } else {
          require_object(item, path);
          check_keys(item, path, {"expr", "message"});
          if (!item.contains("expr")) fail(path, "missing key 'expr'");
          out_.validations.push_back({compile(item.at("expr"), path + "/expr", header_scope_),
                                      get_string(item, "message", path, false)});
        }
      }
    }

    if (root.contains("slices")) {
      const Json& s = root.at("slices");
      if (!s.is_array()) fail("/slices", "expected an array, found " + type_name(s));
      for (size_t k = 0; k < s.size(); ++k) load_slice(s[k], "/slices/" + std::to_string(k));
      choose_table_dirs();
    }
    build_signature();
  }

 private:
  Scope base_scope() const {
    Scope scope;
    scope.define("size", kSlotSize);
    scope.forbid("i", "'i' exists only in the slices of a table or a walked sequence");
    scope.forbid("@", "'@' exists only in slice lengths and slice fields");
    return scope;
  }

  Expression compile(const Json& j, const std::string& path, const Scope& scope) const {
    if (j.is_number_integer()) {
      if (j.is_number_unsigned() &&
          j.get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
        fail(path, "number does not fit in a signed 64-bit integer");
      return Expression::constant(j.get<int64_t>());
    }
    if (!j.is_string())
      fail(path, "expected an expression (a string or an integer), found " + type_name(j));
    const auto text = j.get<std::string>();
    auto parsed = Expression::parse(text, scope, limits_.expression);
    if (auto* err = std::get_if<ExprError>(&parsed))
      fail(path, "column " + std::to_string(err->position + 1) + ": " + err->message + " in \"" +
                     utf8_or_escaped(text) + "\"");
    return std::get<Expression>(std::move(parsed));
  }

  void load_magic(const Json& root) {
    if (!root.contains("magic")) fail("", "missing key 'magic'");
    const Json& m = root.at("magic");
    std::vector<std::pair<const Json*, std::string>> items;
    if (m.is_array()) {
      if (m.empty()) fail("/magic", "expected at least one magic");
      for (size_t k = 0; k < m.size(); ++k)
        items.emplace_back(&m[k], "/magic/" + std::to_string(k));
    } else {
      items.emplace_back(&m, "/magic");
    }
    for (const auto& [item, path] : items) {
      require_object(*item, path);
      check_keys(*item, path, {"offset", "ascii", "hex", "endian"});
      MagicSpec spec;
      if (item->contains("offset")) {
        const Json& o = item->at("offset");
        if (!o.is_number_unsigned()) fail(path + "/offset", "expected a non-negative integer");
        spec.offset = o.get<uint64_t>();
      }
      const bool ascii = item->contains("ascii"), hex = item->contains("hex");
      if (ascii == hex) fail(path, "give exactly one of 'ascii' and 'hex'");
      if (ascii) {
        const auto s = get_string(*item, "ascii", path, true);
        for (const char c : s) spec.bytes.push_back(static_cast<std::byte>(c));
      } else {
        const auto s = get_string(*item, "hex", path, true);
        std::string digits;
        for (const char c : s) {
          if (c == ' ' || c == ':') continue;
          if (std::isxdigit(static_cast<unsigned char>(c)) == 0)
            fail(path + "/hex", "'" + utf8_or_escaped(std::string(1, c)) + "' is not a hex digit");
          digits.push_back(c);
        }
        if (digits.size() % 2 != 0) fail(path + "/hex", "odd number of hex digits");
        for (size_t k = 0; k < digits.size(); k += 2)
          spec.bytes.push_back(
              static_cast<std::byte>(std::stoul(digits.substr(k, 2), nullptr, 16)));
      }
      if (spec.bytes.empty() || spec.bytes.size() > kMaxMagicBytes)
        fail(path, "magic must be 1 to " + std::to_string(kMaxMagicBytes) + " bytes");
      if (!range_within(spec.offset, spec.bytes.size(), kDetectHeadBytes))
        fail(path, "magic must lie within the first " + std::to_string(kDetectHeadBytes) +
                       " bytes (detection sees only those)");
      if (item->contains("endian"))
        spec.endian = parse_endian(item->at("endian"), path + "/endian");
      out_.magics.push_back(std::move(spec));
    }
  }

  FieldSpec load_field(const Json& f, const std::string& path, const Scope& scope, bool record) {
    require_object(f, path);
    FieldSpec spec;
    spec.name = get_string(f, "name", path, true);
    if (!valid_identifier(spec.name))
      fail(path + "/name",
           "a field name is a letter or '_' followed by letters, digits or '_' "
           "(at most 64)");
    if (reserved_name(spec.name))
      fail(path + "/name", "'" + spec.name + "' is reserved (size, i, and the reader functions)");
    if (record && header_names_.count(spec.name) != 0)
      fail(path + "/name", "'" + spec.name + "' is already a header field");
    if (f.contains("value")) {
      check_keys(f, path, {"name", "value", "enum", "flags"});
      spec.type = FieldType::computed;
      spec.value = compile(f.at("value"), path + "/value", scope);
    } else {
      check_keys(f, path, {"name", "offset", "type", "length", "endian", "enum", "flags"});
      const auto type = get_string(f, "type", path, true);
      const auto it = std::find_if(std::begin(kTypes), std::end(kTypes),
                                   [&](const TypeInfo& t) { return t.name == type; });
      if (it == std::end(kTypes))
        fail(path + "/type", "unknown type '" + utf8_or_escaped(type) +
                                 "' (u8 u16 u32 u64 i8 i16 i32 i64 f32 f64 bool str bytes)");
      spec.type = it->type;
      spec.width = it->width;
      if (!f.contains("offset")) fail(path, "missing key 'offset'");
      spec.offset = compile(f.at("offset"), path + "/offset", scope);
      const bool variable = spec.type == FieldType::str || spec.type == FieldType::bytes;
      if (variable) {
        if (!f.contains("length")) fail(path, "a " + type + " field needs a 'length'");
        spec.length = compile(f.at("length"), path + "/length", scope);
      } else if (f.contains("length")) {
        fail(path + "/length", "only str and bytes fields have a length");
      }
      if (f.contains("endian")) {
        if (spec.width < 2 || variable)
          fail(path + "/endian", "only multi-byte numeric fields have an endianness");
        spec.endian = parse_endian(f.at("endian"), path + "/endian") == Endian::little ? 1 : 2;
      }
    }
    const bool integer = is_integer_type(spec.type);
    if (f.contains("enum")) {
      if (!integer) fail(path + "/enum", "only integer fields can have enum names");
      if (f.contains("flags")) fail(path, "a field has either 'enum' or 'flags', not both");
      const Json& e = f.at("enum");
      require_object(e, path + "/enum");
      for (const auto& [key, name] : e.items()) {
        const auto v = parse_enum_key(key);
        if (!v) fail(path + "/enum/" + key, "enum keys are integers (decimal or 0x hex)");
        if (!name.is_string()) fail(path + "/enum/" + key, "expected a string name");
        spec.enum_names[*v] = utf8_or_escaped(name.get<std::string>());
      }
    }
    if (f.contains("flags")) {
      if (!integer) fail(path + "/flags", "only integer fields can have flags");
      const Json& e = f.at("flags");
      require_object(e, path + "/flags");
      for (const auto& [key, name] : e.items()) {
        const auto v = parse_u64_text(key);
        if (!v || *v > 63 || key.starts_with("0x"))
          fail(path + "/flags/" + key, "flag keys are bit numbers 0 to 63");
        if (!name.is_string()) fail(path + "/flags/" + key, "expected a string name");
        spec.flag_names[static_cast<unsigned>(*v)] = utf8_or_escaped(name.get<std::string>());
      }
    }
    return spec;
  }

  void load_slice(const Json& s, const std::string& path) {
    require_object(s, path);
    SliceSpec spec;
    if (s.contains("start")) {
      spec.kind = SliceKind::walk;
      check_keys(
          s, path,
          {"name", "start", "length", "until", "count", "data_offset", "data_length", "fields"});
    } else if (s.contains("count")) {
      spec.kind = SliceKind::table;
      check_keys(s, path, {"name", "count", "offset", "length", "fields"});
    } else {
      check_keys(s, path, {"name", "offset", "length", "fields"});
    }
    spec.name = get_string(s, "name", path, true);
    if (spec.name.empty()) fail(path + "/name", "empty slice name");
    const bool templated = spec.name.find("{i}") != std::string::npos;
    if (spec.kind == SliceKind::single && templated)
      fail(path + "/name", "{i} is only for tables (with 'count') and walks (with 'start')");

    // Expressions evaluated once per slices entry see the header; per-record ones also see `i`,
    // `@` (the record's start) and the record fields.
    Scope once = header_scope_;
    Scope per_record = header_scope_;
    if (spec.kind != SliceKind::single) per_record.define("i", kSlotIndex);
    Scope with_at = per_record;
    with_at.define("@", kSlotAt);

    // Record fields are read relative to `@`; each sees the ones before it.
    Scope fields_scope = with_at;
    if (s.contains("fields")) {
      const Json& fields = s.at("fields");
      if (!fields.is_array())
        fail(path + "/fields", "expected an array, found " + type_name(fields));
      std::set<std::string> names;
      for (size_t k = 0; k < fields.size(); ++k) {
        const std::string fpath = path + "/fields/" + std::to_string(k);
        FieldSpec field = load_field(fields[k], fpath, fields_scope, true);
        if (!names.insert(field.name).second)
          fail(fpath + "/name", "duplicate field name '" + field.name + "'");
        field.slot = kFirstFieldSlot + out_.fields.size() + spec.fields.size();
        if (is_integer_type(field.type) || field.type == FieldType::boolean) {
          fields_scope.define(field.name, field.slot);
        } else {
          fields_scope.forbid(field.name, "field '" + field.name +
                                              "' is not an integer and cannot be used in "
                                              "expressions");
        }
        spec.fields.push_back(std::move(field));
      }
      out_.slot_count =
          std::max(out_.slot_count, kFirstFieldSlot + out_.fields.size() + spec.fields.size());
    }
    auto need = [&](const char* key) -> const Json& {
      if (!s.contains(key)) fail(path, std::string("missing key '") + key + "'");
      return s.at(key);
    };
    switch (spec.kind) {
      case SliceKind::single:
        spec.offset = compile(need("offset"), path + "/offset", once);
        spec.length = compile(need("length"), path + "/length", fields_scope);
        break;
      case SliceKind::table:
        spec.count = compile(need("count"), path + "/count", once);
        spec.offset = compile(need("offset"), path + "/offset", per_record);
        spec.length = compile(need("length"), path + "/length", fields_scope);
        break;
      case SliceKind::walk:
        spec.start = compile(need("start"), path + "/start", once);
        spec.length = compile(need("length"), path + "/length", fields_scope);
        if (s.contains("until")) spec.until = compile(s.at("until"), path + "/until", once);
        if (s.contains("count")) spec.count = compile(s.at("count"), path + "/count", once);
        if (s.contains("data_offset"))
          spec.data_offset = compile(s.at("data_offset"), path + "/data_offset", fields_scope);
        if (s.contains("data_length"))
          spec.data_length = compile(s.at("data_length"), path + "/data_length", fields_scope);
        break;
    }
    out_.slices.push_back(std::move(spec));
  }

  // Tables and walks named "<dir>/{i}" ({i} the whole last component, <dir> without {i}) become
  // compact record tables, unless another slices entry's name is <dir> or lies under it (a
  // table owns its directory).
  void choose_table_dirs() {
    for (auto& spec : out_.slices) {
      if (spec.kind == SliceKind::single || !spec.name.ends_with("/{i}")) continue;
      const std::string dir = spec.name.substr(0, spec.name.size() - 4);
      if (dir.empty() || dir.find("{i}") != std::string::npos) continue;
      const bool shared =
          std::any_of(out_.slices.begin(), out_.slices.end(), [&](const SliceSpec& other) {
            return &other != &spec && (other.name == dir || other.name.starts_with(dir + "/"));
          });
      if (shared) continue;
      spec.table_dir = dir;
      for (const auto& f : spec.fields)
        for (const auto* e : {&f.offset, &f.length, &f.value})
          if (e->has_value() && (*e)->uses_slot(kSlotIndex)) spec.fields_use_index = true;
    }
  }

  void build_signature() {
    std::string sig;
    for (const auto& m : out_.magics) {
      if (!sig.empty()) sig += " or ";
      const bool printable = std::all_of(m.bytes.begin(), m.bytes.end(), [](std::byte b) {
        const auto c = std::to_integer<unsigned char>(b);
        return c >= 0x20 && c < 0x7f && c != '\'';
      });
      if (printable) {
        sig += "'";
        for (const auto b : m.bytes) sig.push_back(static_cast<char>(b));
        sig += "'";
      } else {
        sig += to_hex(m.bytes);
      }
      sig += " at " + std::to_string(m.offset);
      if (m.endian) sig += *m.endian == Endian::little ? " (little-endian)" : " (big-endian)";
    }
    out_.signature = sig;
  }

  const Limits& limits_;
  Compiled& out_;
  std::set<std::string> header_names_;
  Scope header_scope_;
};

// ---------------------------------------------------------------------------------------------
// Parsing files

std::string column_note(const Expression& e, const ExprError& err) {
  return err.message + " (in \"" + utf8_or_escaped(e.text()) + "\" at column " +
         std::to_string(err.position + 1) + ")";
}

// An error list with a cap. Messages are made by callables, only while under the cap, so a
// million failing records cost no string formatting.
class ErrorSink {
 public:
  ErrorSink(Layout& layout, uint64_t cap) : layout_(layout), cap_(cap) {}
  template <typename Make>
  void report(const Make& make) {
    if (count_++ < cap_) layout_.add_error(make());
  }
  void finish(const std::string& what) {
    if (count_ > cap_)
      layout_.add_error(what + ": " + std::to_string(count_ - cap_) + " more errors not listed");
  }
  [[nodiscard]] uint64_t count() const noexcept { return count_; }

 private:
  Layout& layout_;
  uint64_t cap_;
  uint64_t count_ = 0;
};

// Discards problems: used when a record table's attributes are read back, after parsing has
// already reported them.
struct NullSink {
  template <typename Make>
  void report(const Make&) {}
};

// Reads fields and evaluates expressions against one file: the header's and the records' when
// parsing, a record's when a record table's attributes are read back. Slots hold `size`, `i`,
// `@` and the fields' values.
class FieldReader {
 public:
  FieldReader(const ByteSource& source, BinaryReader& reader, std::vector<Slot> slots,
              Endian endian, uint64_t max_reads, uint64_t max_field_bytes)
      : source_(source),
        reader_(reader),
        slots_(std::move(slots)),
        reads_left_(max_reads),
        max_field_bytes_(max_field_bytes) {
    ctx_.reader = &reader_;
    ctx_.default_endian = endian;
    ctx_.slots = slots_;
    ctx_.reads_left = &reads_left_;
  }
  FieldReader(const FieldReader&) = delete;
  FieldReader& operator=(const FieldReader&) = delete;

  template <typename Where, typename Sink>
  std::optional<int64_t> eval(const Expression& e, const Where& where, const char* what,
                              Sink& sink) {
    auto r = e.evaluate(ctx_);
    if (const auto* err = std::get_if<ExprError>(&r)) {
      sink.report([&] { return where() + " " + what + ": " + column_note(e, *err); });
      return std::nullopt;
    }
    return std::get<int64_t>(r);
  }

  static Json render_integer(const FieldSpec& f, uint64_t bits) {
    Json value = is_signed_type(f.type) ? Json(static_cast<int64_t>(bits)) : Json(bits);
    if (!f.enum_names.empty()) {
      const auto it = f.enum_names.find(bits);
      return Json{{"value", value},
                  {"name", it != f.enum_names.end() ? Json(it->second) : Json(nullptr)}};
    }
    if (!f.flag_names.empty()) {
      Json names = Json::array();
      for (unsigned b = 0; b < 64; ++b) {
        if (((bits >> b) & 1U) == 0) continue;
        const auto it = f.flag_names.find(b);
        names.push_back(it != f.flag_names.end() ? it->second : "bit" + std::to_string(b));
      }
      return Json{{"value", value}, {"flags", std::move(names)}};
    }
    return value;
  }

  static Json render_float(double v) {
    if (std::isnan(v)) return "NaN";
    if (std::isinf(v)) return v > 0 ? "Infinity" : "-Infinity";
    return v;
  }

  // Reads one field (header: base 0; record: base = @), sets its slot and renders its value.
  // A problem is reported and gives nullopt.
  template <typename Where, typename Sink>
  std::optional<Json> read_field(const FieldSpec& f, uint64_t base, const Where& where,
                                 Sink& sink) {
    slots_[f.slot] = Slot{};
    auto fail = [&](auto make) -> std::optional<Json> {
      sink.report([&] { return where() + ": " + make(); });
      return std::nullopt;
    };
    if (f.type == FieldType::computed) {
      const auto v = eval(*f.value, where, "value", sink);
      if (!v) return std::nullopt;
      slots_[f.slot] = Slot::of(*v);
      return render_integer(f, static_cast<uint64_t>(*v));
    }
    const auto rel = eval(*f.offset, where, "offset", sink);
    if (!rel) return std::nullopt;
    if (*rel < 0) return fail([&] { return "negative offset " + std::to_string(*rel); });
    const auto offset = checked_add(base, static_cast<uint64_t>(*rel));
    if (!offset) return fail([] { return std::string("offset overflows 64 bits"); });
    uint64_t length = f.width;
    if (f.length) {
      const auto len = eval(*f.length, where, "length", sink);
      if (!len) return std::nullopt;
      if (*len < 0 || static_cast<uint64_t>(*len) > max_field_bytes_)
        return fail([&] {
          return "length " + std::to_string(*len) + " is outside 0.." +
                 std::to_string(max_field_bytes_);
        });
      length = static_cast<uint64_t>(*len);
    }
    if (!range_within(*offset, length, source_.size()))
      return fail([&] {
        return std::to_string(length) + " bytes at offset " + std::to_string(*offset) +
               " run past the end of the file (size " + std::to_string(source_.size()) + ")";
      });
    if (reads_left_ == 0)
      return fail([] { return std::string("the limit on reads per file is exhausted"); });
    --reads_left_;
    reader_.seek(*offset);
    reader_.set_endian(f.endian == 0   ? ctx_.default_endian
                       : f.endian == 1 ? Endian::little
                                       : Endian::big);
    Json out;
    uint64_t bits = 0;
    switch (f.type) {
      case FieldType::str: {
        std::string text = reader_.text(length, max_field_bytes_);
        const auto nul = text.find('\0');
        if (nul != std::string::npos) text.resize(nul);
        out = utf8_or_escaped(text);
        break;
      }
      case FieldType::bytes: {
        std::vector<std::byte> bytes(static_cast<size_t>(length));
        (void)reader_.read_into(bytes);
        out = to_hex(bytes);
        break;
      }
      case FieldType::f32:
        out = render_float(static_cast<double>(reader_.f32()));
        break;
      case FieldType::f64:
        out = render_float(reader_.f64());
        break;
      case FieldType::boolean: {
        const bool b = reader_.u8() != 0;
        slots_[f.slot] = Slot::of(b ? 1 : 0);
        out = b;
        break;
      }
      default: {
        switch (f.width) {
          case 1:
            bits = reader_.u8();
            break;
          case 2:
            bits = reader_.u16();
            break;
          case 4:
            bits = reader_.u32();
            break;
          default:
            bits = reader_.u64();
            break;
        }
        if (is_signed_type(f.type) && f.width < 8 && ((bits >> (f.width * 8 - 1)) & 1U) != 0)
          bits |= ~uint64_t{0} << (f.width * 8);
        if (!is_signed_type(f.type) &&
            bits > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
          slots_[f.slot] = Slot{0, SlotState::too_large};
        } else {
          slots_[f.slot] = Slot::of(static_cast<int64_t>(bits));
        }
        out = render_integer(f, bits);
        break;
      }
    }
    if (!reader_.ok()) {
      slots_[f.slot] = Slot{};
      return fail([&] { return *reader_.error(); });
    }
    return out;
  }

  // Reads a record's fields relative to `at`, into `attributes` unless it is null; false (with
  // the problem reported) when one fails.
  template <typename Where, typename Sink>
  bool record_fields(const std::vector<FieldSpec>& fields, uint64_t at, const Where& where,
                     Json* attributes, Sink& sink) {
    for (const auto& f : fields) {
      auto field_where = [&] { return where() + " field '" + f.name + "'"; };
      auto v = read_field(f, at, field_where, sink);
      if (!v) return false;
      if (attributes != nullptr) (*attributes)[f.name] = std::move(*v);
    }
    return true;
  }

  void set_index(std::optional<uint64_t> i) {
    slots_[kSlotIndex] = i ? Slot::of(static_cast<int64_t>(*i)) : Slot{};
  }
  void set_at(uint64_t at) { slots_[kSlotAt] = Slot::of(static_cast<int64_t>(at)); }

 protected:
  const ByteSource& source_;
  BinaryReader& reader_;
  std::vector<Slot> slots_;
  uint64_t reads_left_ = 0;
  uint64_t max_field_bytes_ = 0;
  EvalContext ctx_;
};

// A ByteSource that reads through another one, which can change between uses.
class ForwardingSource final : public ByteSource {
 public:
  const ByteSource* to = nullptr;
  [[nodiscard]] uint64_t size() const noexcept override { return to->size(); }
  [[nodiscard]] bool read_exact(uint64_t offset, std::span<std::byte> out) const noexcept override {
    return to->read_exact(offset, out);
  }
};

// The reader used to read a table's attributes back, one per thread, kept from call to call
// while the same table is read so that its 16 KiB window serves the neighbouring records of a
// slices.json chunk (a fresh reader per record would read 16 KiB per record). The window is
// only reused for the table (`id`) it was filled for, i.e. for the same file.
BinaryReader& thread_reader(uint64_t id, const ByteSource& source, Endian endian) {
  struct Cache {
    uint64_t id = 0;
    uint64_t size = 0;
    ForwardingSource forward;
    std::optional<BinaryReader> reader;
  };
  thread_local Cache cache;
  cache.forward.to = &source;
  if (!cache.reader || cache.id != id || cache.size != source.size() || !cache.reader->ok()) {
    cache.reader.emplace(cache.forward, endian);
    cache.id = id;
    cache.size = source.size();
  }
  return *cache.reader;
}

// How a compact table's 16-byte records encode what reading the fields back needs: the
// record's start `@` (the base of field offsets) and its number `i`.
//
//   Record::offset, Record::length: the slice (for walks, the data range).
//   index mode: Record::tag = i, and @ = offset - delta with one `delta` for the whole table
//     (tables: 0, since a table's slice starts at @; walks: data_offset - @, which must then
//     be the same for every record, as with "data_offset": "@ + 16").
//   delta mode: Record::tag = offset - @ (0 .. 2^32-1), i unknown. Only for walks whose record
//     fields do not use `i`; used when data_offset - @ varies from record to record.
//
// Both are exact: the fields are read back from the same @ (and i) as when parsing. A table
// that fits neither falls back to one Slice per record (see FileParser::spill).
enum class TagMode : uint8_t { index, delta };

// What a record table's attributes callback needs, shared by the callback's copies and
// immutable once parsing is done, so the callback can run on several threads at once.
struct TableFields {
  uint64_t id = 0;  // unique per table made: keys the per-thread reader
  std::vector<FieldSpec> fields;
  std::vector<Slot> slots;  // `size` and the header fields; i, @ and record fields unset
  Endian endian = Endian::little;
  uint64_t max_reads = 0;  // per call
  uint64_t max_field_bytes = 0;
  TagMode mode = TagMode::index;
  int64_t delta = 0;  // index mode: data offset - @

  // The fields of the record starting at `at` (number `index`, when known), as parsing read
  // them. A field that cannot be read now (the file changed, an I/O error) is null.
  Json read(const ByteSource& source, uint64_t at, std::optional<uint64_t> index) const {
    FieldReader r(source, thread_reader(id, source, endian), slots, endian, max_reads,
                  max_field_bytes);
    r.set_index(index);
    r.set_at(at);
    NullSink sink;
    auto where = [] { return std::string(); };
    Json out = Json::object();
    for (const auto& f : fields) out[f.name] = r.read_field(f, at, where, sink).value_or(nullptr);
    return out;
  }

  Json operator()(const ByteSource& source, const Record& record) const {
    if (mode == TagMode::delta) return read(source, record.offset - record.tag, std::nullopt);
    const int64_t at = static_cast<int64_t>(record.offset) - delta;
    if (at < 0) return Json::object();  // not made by this table
    return read(source, static_cast<uint64_t>(at), record.tag);
  }
};

// Holds the parse-time reader, so it exists before the FieldReader base that refers to it.
struct ParseReader {
  ParseReader(const ByteSource& source, Endian endian) : parse_reader(source, endian) {}
  BinaryReader parse_reader;
};

class FileParser : private ParseReader, private FieldReader {
 public:
  FileParser(const Compiled& d, const ByteSource& source)
      : ParseReader(source, d.endian),
        FieldReader(source, parse_reader, std::vector<Slot>(d.slot_count), d.endian,
                    d.limits.max_reads, d.limits.max_field_bytes),
        d_(d) {
    const uint64_t size = source.size();
    slots_[kSlotSize] = size > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())
                            ? Slot{0, SlotState::too_large}
                            : Slot::of(static_cast<int64_t>(size));
  }

  Layout run() {
    match_magic();
    ErrorSink header_errors(layout_, std::numeric_limits<uint64_t>::max());
    for (const auto& f : d_.fields) {
      auto where = [&] { return "field '" + f.name + "'"; };
      layout_.header[f.name] = read_field(f, 0, where, header_errors).value_or(Json(nullptr));
    }
    for (const auto& v : d_.validations) {
      auto r = v.expr.evaluate(ctx_);
      if (const auto* err = std::get_if<ExprError>(&r)) {
        layout_.add_error("validation \"" + utf8_or_escaped(v.expr.text()) +
                          "\" could not be evaluated: " + column_note(v.expr, *err));
      } else if (std::get<int64_t>(r) == 0) {
        layout_.add_error("validation failed: " + (v.message.empty()
                                                       ? utf8_or_escaped(v.expr.text())
                                                       : utf8_or_escaped(v.message)));
      }
    }
    for (const auto& s : d_.slices) {
      ErrorSink sink(layout_, d_.limits.max_errors_per_slice);
      switch (s.kind) {
        case SliceKind::single:
          single(s, sink);
          break;
        case SliceKind::table:
          table(s, sink);
          break;
        case SliceKind::walk:
          walk(s, sink);
          break;
      }
      sink.finish("slice '" + utf8_or_escaped(s.name) + "'");
    }
    return std::move(layout_);
  }

 private:
  void match_magic() {
    for (const auto& m : d_.magics) {
      std::vector<std::byte> got(m.bytes.size());
      if (range_within(m.offset, got.size(), source_.size()) && source_.read_exact(m.offset, got) &&
          got == m.bytes) {
        layout_.magic = ByteRange{m.offset, m.bytes.size()};
        if (m.endian) ctx_.default_endian = *m.endian;
        return;
      }
    }
    layout_.add_error("the file does not start with the descriptor's magic (" + d_.signature + ")");
    layout_.magic = ByteRange{d_.magics.front().offset, d_.magics.front().bytes.size()};
  }

  // `{i}` zero-padded to the digits of the largest index, so `ls` sorts the records (the same
  // rule as the built-in record tables: 10 records are 0..9, 11 are 00..10).
  static std::string name_of(const std::string& tmpl, uint64_t index, uint64_t count) {
    const size_t width = std::to_string(count == 0 ? 0 : count - 1).size();
    std::string digits = std::to_string(index);
    if (digits.size() < width) digits.insert(0, width - digits.size(), '0');
    std::string out;
    size_t from = 0;
    for (size_t at; (at = tmpl.find("{i}", from)) != std::string::npos; from = at + 3)
      out += tmpl.substr(from, at - from) + digits;
    return out + tmpl.substr(from);
  }

  // An evaluated offset and length as a slice, when it lies inside the file.
  template <typename Where>
  bool in_file(int64_t offset, int64_t length, const Where& where, ErrorSink& sink) {
    if (offset < 0 || length < 0) {
      sink.report([&] {
        return where() + ": negative " +
               (offset < 0 ? "offset " + std::to_string(offset)
                           : "length " + std::to_string(length));
      });
      return false;
    }
    if (!range_within(static_cast<uint64_t>(offset), static_cast<uint64_t>(length),
                      source_.size())) {
      sink.report([&] {
        return where() + " [" + std::to_string(offset) + "+" + std::to_string(length) +
               "] lies outside the file (size " + std::to_string(source_.size()) + ")";
      });
      return false;
    }
    return true;
  }

  // One record of a single slice or a table: offset, fields (into `attributes` unless null),
  // length. The slice, or nullopt when the record fails.
  template <typename Name>
  std::optional<ByteRange> fixed_record(const SliceSpec& s, const Name& name, Json* attributes,
                                        ErrorSink& sink) {
    auto where = [&] { return "slice '" + utf8_or_escaped(name()) + "'"; };
    const auto offset = eval(*s.offset, where, "offset", sink);
    if (!offset) return std::nullopt;
    if (*offset < 0) {
      sink.report([&] { return where() + ": negative offset " + std::to_string(*offset); });
      return std::nullopt;
    }
    set_at(static_cast<uint64_t>(*offset));
    if (!record_fields(s.fields, static_cast<uint64_t>(*offset), where, attributes, sink))
      return std::nullopt;
    const auto length = eval(*s.length, where, "length", sink);
    if (!length || !in_file(*offset, *length, where, sink)) return std::nullopt;
    return ByteRange{static_cast<uint64_t>(*offset), static_cast<uint64_t>(*length)};
  }

  void single(const SliceSpec& s, ErrorSink& sink) {
    set_index(std::nullopt);
    Json attributes = Json::object();
    const auto range = fixed_record(
        s, [&] { return s.name; }, &attributes, sink);
    if (range) layout_.slices.push_back(Slice{s.name, *range, std::move(attributes)});
  }

  // A count expression, checked and capped.
  template <typename Where>
  std::optional<uint64_t> count_of(const SliceSpec& s, const Where& where, ErrorSink& sink) {
    const auto count = eval(*s.count, where, "count", sink);
    if (!count) return std::nullopt;
    if (*count < 0) {
      sink.report([&] { return where() + ": negative count " + std::to_string(*count); });
      return std::nullopt;
    }
    auto n = static_cast<uint64_t>(*count);
    if (n > d_.limits.max_records) {
      sink.report([&] {
        return where() + ": count " + std::to_string(n) + " exceeds the limit of " +
               std::to_string(d_.limits.max_records) + " records; only those are listed";
      });
      n = d_.limits.max_records;
    }
    return n;
  }

  // The records of one table or walk as they are found: a compact RecordTable (16 bytes a
  // record, attributes read back through TableFields) while the records are numbered 0, 1, 2,
  // ... without gaps and fit the encoding; otherwise one Slice each (`spilled`).
  struct Collected {
    std::shared_ptr<TableFields> fields;  // null: Slices from the start
    std::vector<Record> records;
    bool spilled = false;
    size_t first_slice = 0;         // where this entry's slices begin in layout_.slices
    std::vector<uint64_t> indices;  // record numbers of those slices, for their names
    bool have_delta = false;        // index mode of a walk: `delta` set by the first record
  };

  Collected collect(const SliceSpec& s) {
    Collected c;
    c.first_slice = layout_.slices.size();
    if (s.table_dir.empty()) {
      c.spilled = true;
      return c;
    }
    static std::atomic<uint64_t> next_id{1};
    c.fields = std::make_shared<TableFields>();
    c.fields->id = next_id.fetch_add(1, std::memory_order_relaxed);
    c.fields->fields = s.fields;
    c.fields->slots = slots_;
    c.fields->slots[kSlotIndex] = Slot{};
    c.fields->slots[kSlotAt] = Slot{};
    for (size_t k = kFirstFieldSlot + d_.fields.size(); k < c.fields->slots.size(); ++k)
      c.fields->slots[k] = Slot{};
    c.fields->endian = ctx_.default_endian;
    c.fields->max_reads = d_.limits.max_reads;
    c.fields->max_field_bytes = d_.limits.max_field_bytes;
    c.fields->delta = 0;
    c.have_delta = s.kind == SliceKind::table;  // a table's slice starts at @
    return c;
  }

  // Whether record `index` (starting at `at`, slice `range`) can join the compact table.
  static bool fits(Collected& c, const SliceSpec& s, uint64_t index, uint64_t at, ByteRange range) {
    if (index != c.records.size() || range.length > std::numeric_limits<uint32_t>::max())
      return false;
    const int64_t delta = static_cast<int64_t>(range.offset) - static_cast<int64_t>(at);
    TableFields& f = *c.fields;
    if (f.mode == TagMode::index) {
      if (index > std::numeric_limits<uint32_t>::max()) return false;
      if (!c.have_delta) {
        f.delta = delta;
        c.have_delta = true;
      }
      if (delta == f.delta) return true;
      // data_offset - @ varies: tags can hold it instead of i when no field uses i.
      if (s.fields_use_index || f.delta < 0 || f.delta > std::numeric_limits<uint32_t>::max())
        return false;
      for (auto& r : c.records) r.tag = static_cast<uint32_t>(f.delta);
      f.mode = TagMode::delta;
    }
    return delta >= 0 && delta <= std::numeric_limits<uint32_t>::max();
  }

  // Adds record `index`; `attributes` are its fields when already read (they are when the
  // records are Slices), else nullopt.
  void add(Collected& c, const SliceSpec& s, uint64_t index, uint64_t at, ByteRange range,
           std::optional<Json> attributes) {
    if (!c.spilled && fits(c, s, index, at, range)) {
      const TableFields& f = *c.fields;
      const uint64_t tag = f.mode == TagMode::index ? index : range.offset - at;  // see TagMode
      c.records.push_back(
          Record{range.offset, static_cast<uint32_t>(range.length), static_cast<uint32_t>(tag)});
      return;
    }
    if (!c.spilled) spill(c);
    if (!attributes) attributes = c.fields->read(source_, at, index);
    layout_.slices.push_back(Slice{{}, range, std::move(*attributes)});
    c.indices.push_back(index);
  }

  // Turns the records collected so far (numbered 0..n-1) into Slices, reading their fields
  // back as the table would: a gap in the numbering (a record in the middle failed), a data
  // length of 4 GiB or more, or a data offset the tags cannot encode.
  void spill(Collected& c) {
    for (size_t k = 0; k < c.records.size(); ++k) {
      const Record& r = c.records[k];
      layout_.slices.push_back(Slice{{}, {r.offset, r.length}, (*c.fields)(source_, r)});
      c.indices.push_back(k);
    }
    c.records = {};
    c.spilled = true;
  }

  // Names the Slices (`total` records, for the padding of {i}), or adds the compact table.
  void finish(Collected& c, const SliceSpec& s, uint64_t total) {
    if (c.spilled) {
      for (size_t k = c.first_slice; k < layout_.slices.size(); ++k)
        layout_.slices[k].name = name_of(s.name, c.indices[k - c.first_slice], total);
      return;
    }
    if (c.records.empty()) return;
    c.records.shrink_to_fit();
    std::shared_ptr<const TableFields> fields = std::move(c.fields);
    layout_.tables.push_back(RecordTable{s.table_dir, std::move(c.records),
                                         [fields](const ByteSource& source, const Record& record) {
                                           return (*fields)(source, record);
                                         }});
  }

  void table(const SliceSpec& s, ErrorSink& sink) {
    auto where = [&] { return "slice '" + utf8_or_escaped(s.name) + "'"; };
    slots_[kSlotIndex] = Slot{};
    slots_[kSlotAt] = Slot{};
    const auto count = count_of(s, where, sink);
    if (!count) return;
    Collected c = collect(s);
    if (!c.spilled) c.records.reserve(static_cast<size_t>(*count));
    for (uint64_t i = 0; i < *count; ++i) {
      set_index(i);
      Json attributes = Json::object();
      const auto range = fixed_record(
          s, [&] { return name_of(s.name, i, *count); }, c.spilled ? &attributes : nullptr, sink);
      if (range) {
        add(c, s, i, range->offset, *range,
            c.spilled ? std::optional<Json>(std::move(attributes)) : std::nullopt);
      } else if (reads_left_ == 0) {
        // Once the read budget is gone every further record would fail the same way.
        sink.report([&] {
          return where() + ": the limit on reads per file is exhausted at record " +
                 std::to_string(i);
        });
        break;
      }
    }
    finish(c, s, *count);
  }

  void walk(const SliceSpec& s, ErrorSink& sink) {
    auto where = [&] { return "slice '" + utf8_or_escaped(s.name) + "'"; };
    slots_[kSlotIndex] = Slot{};
    slots_[kSlotAt] = Slot{};
    const auto start = eval(*s.start, where, "start", sink);
    if (!start) return;
    if (*start < 0) {
      sink.report([&] { return where() + ": negative start " + std::to_string(*start); });
      return;
    }
    uint64_t until = source_.size();
    bool explicit_until = false;
    if (s.until) {
      const auto u = eval(*s.until, where, "until", sink);
      if (!u) return;
      if (*u < 0) {
        sink.report([&] { return where() + ": negative until " + std::to_string(*u); });
        return;
      }
      until = static_cast<uint64_t>(*u);
      explicit_until = true;
    }
    std::optional<uint64_t> count;
    if (s.count) {
      count = count_of(s, where, sink);
      if (!count) return;
    }
    Collected c = collect(s);
    auto pos = static_cast<uint64_t>(*start);
    uint64_t n = 0;
    for (;; ++n) {
      if (count ? n >= *count : pos >= until) break;
      if (explicit_until && pos >= until) break;
      if (n >= d_.limits.max_records) {
        sink.report([&] {
          return where() + ": stopped after " + std::to_string(n) + " records (the limit)";
        });
        break;
      }
      set_index(n);
      set_at(pos);
      auto rec = [&] {
        return where() + " record " + std::to_string(n) + " at offset " + std::to_string(pos);
      };
      Json attributes = Json::object();
      if (!record_fields(s.fields, pos, rec, c.spilled ? &attributes : nullptr, sink)) break;
      const auto length = eval(*s.length, rec, "length", sink);
      if (!length) break;
      if (*length <= 0) {
        sink.report([&] {
          return rec() + ": length " + std::to_string(*length) +
                 " does not advance the walk; stopped";
        });
        break;
      }
      const auto end = checked_add(pos, static_cast<uint64_t>(*length));
      if (!end || *end > std::min(until, source_.size())) {
        sink.report([&] {
          return rec() + ": length " + std::to_string(*length) + " runs past " +
                 (explicit_until && until < source_.size()
                      ? "the end of the sequence (" + std::to_string(until) + ")"
                      : "the end of the file (size " + std::to_string(source_.size()) + ")") +
                 "; stopped";
        });
        break;
      }
      std::optional<int64_t> data_offset = static_cast<int64_t>(pos);
      std::optional<int64_t> data_length = *length;
      if (s.data_offset) data_offset = eval(*s.data_offset, rec, "data_offset", sink);
      if (data_offset && s.data_length)
        data_length = eval(*s.data_length, rec, "data_length", sink);
      // The record itself is sound, so a bad data range loses only this slice.
      auto data_where = [&] { return rec() + " data"; };
      if (data_offset && data_length && in_file(*data_offset, *data_length, data_where, sink)) {
        add(c, s, n, pos,
            ByteRange{static_cast<uint64_t>(*data_offset), static_cast<uint64_t>(*data_length)},
            c.spilled ? std::optional<Json>(std::move(attributes)) : std::nullopt);
      }
      pos = *end;
    }
    // Names are known once the number of records is.
    finish(c, s, count ? *count : n);
  }

  const Compiled& d_;
  Layout layout_;
};

}  // namespace

// ---------------------------------------------------------------------------------------------

DescriptorFormat::DescriptorFormat(std::unique_ptr<const Compiled> compiled)
    : compiled_(std::move(compiled)) {}
DescriptorFormat::~DescriptorFormat() = default;

std::string_view DescriptorFormat::name() const noexcept {
  return compiled_->name;
}
std::string_view DescriptorFormat::description() const noexcept {
  return compiled_->description;
}
std::string_view DescriptorFormat::signature() const noexcept {
  return compiled_->signature;
}
const std::string& DescriptorFormat::source_path() const noexcept {
  return compiled_->source_path;
}

bool DescriptorFormat::detect(std::span<const std::byte> head, uint64_t) const {
  for (const auto& m : compiled_->magics) {
    if (range_within(m.offset, m.bytes.size(), head.size()) &&
        std::equal(m.bytes.begin(), m.bytes.end(),
                   head.begin() + static_cast<std::ptrdiff_t>(m.offset)))
      return true;
  }
  return false;
}

Layout DescriptorFormat::parse(const ByteSource& source) const {
  return FileParser(*compiled_, source).run();
}

std::variant<std::unique_ptr<DescriptorFormat>, LoadError> parse_descriptor(
    std::string_view json_text, const std::string& source_path, const Limits& limits) {
  const std::string file = utf8_or_escaped(source_path);
  if (json_text.size() > limits.max_descriptor_bytes)
    return LoadError{file + ": larger than " + std::to_string(limits.max_descriptor_bytes) +
                     " bytes"};
  if (json_depth(json_text) > limits.max_json_depth)
    return LoadError{file + ": JSON nests deeper than " + std::to_string(limits.max_json_depth) +
                     " levels"};
  Json root;
  try {
    root = Json::parse(json_text);
  } catch (const Json::exception& e) {  // parse_error, and out_of_range (406) for numbers
    return LoadError{file + ": invalid JSON: " + e.what()};
  }
  auto compiled = std::make_unique<Compiled>();
  compiled->source_path = source_path;
  compiled->limits = limits;
  try {
    Loader(limits, *compiled).load(root);
  } catch (const DescriptorError& e) {
    return LoadError{file + ": " + (e.path.empty() ? "/" : utf8_or_escaped(e.path)) + ": " +
                     e.problem};
  } catch (const Json::exception& e) {  // a wrong JSON type we did not anticipate
    return LoadError{file + ": " + e.what()};
  }
  return std::make_unique<DescriptorFormat>(std::move(compiled));
}

std::variant<std::unique_ptr<DescriptorFormat>, LoadError> load_descriptor_file(
    const std::string& path, const Limits& limits) {
  const std::string file = utf8_or_escaped(path);
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return LoadError{file + ": cannot open: " + std::strerror(errno)};
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0)
    return LoadError{file + ": cannot stat: " + std::strerror(errno)};
  if (!S_ISREG(st.st_mode)) return LoadError{file + ": not a regular file"};
  if (static_cast<uint64_t>(st.st_size) > limits.max_descriptor_bytes)
    return LoadError{file + ": larger than " + std::to_string(limits.max_descriptor_bytes) +
                     " bytes"};
  std::string text(static_cast<size_t>(st.st_size), '\0');
  size_t done = 0;
  while (done < text.size()) {
    const ssize_t n =
        ::pread(fd.get(), text.data() + done, text.size() - done, static_cast<off_t>(done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0)
      return LoadError{file + ": cannot read: " + (n < 0 ? std::strerror(errno) : "short read")};
    done += static_cast<size_t>(n);
  }
  return parse_descriptor(text, path, limits);
}

std::variant<LoadedDescriptors, LoadError> load_descriptors(const std::vector<std::string>& dirs,
                                                            const Limits& limits) {
  LoadedDescriptors out;
  std::map<std::string, std::string> owner;  // name -> file
  for (const auto& dir : dirs) {
    struct stat st {};
    if (::stat(dir.c_str(), &st) != 0) {
      if (errno == ENOENT) continue;
      return LoadError{utf8_or_escaped(dir) + ": " + std::strerror(errno)};
    }
    if (!S_ISDIR(st.st_mode)) return LoadError{utf8_or_escaped(dir) + ": not a directory"};
    DIR* d = ::opendir(dir.c_str());
    if (d == nullptr) return LoadError{utf8_or_escaped(dir) + ": " + std::strerror(errno)};
    std::vector<std::string> names;
    while (const dirent* e = ::readdir(d)) {
      const std::string_view n = e->d_name;
      if (n.size() > 5 && n.ends_with(".json") && !n.starts_with(".")) names.emplace_back(n);
    }
    ::closedir(d);
    std::sort(names.begin(), names.end());
    if (names.size() > limits.max_files_per_dir)
      return LoadError{utf8_or_escaped(dir) + ": more than " +
                       std::to_string(limits.max_files_per_dir) + " descriptor files"};
    std::set<std::string> here;
    for (const auto& n : names) {
      const std::string path = dir + (dir.ends_with("/") ? "" : "/") + n;
      auto loaded = load_descriptor_file(path, limits);
      if (auto* err = std::get_if<LoadError>(&loaded)) return *err;
      auto format = std::get<std::unique_ptr<DescriptorFormat>>(std::move(loaded));
      const std::string name(format->name());
      if (here.count(name) != 0)
        return LoadError{utf8_or_escaped(path) + ": /name: format '" + name +
                         "' is already defined by " + utf8_or_escaped(owner[name])};
      if (owner.count(name) != 0) {
        out.shadowed.push_back(utf8_or_escaped(path) + ": format '" + name + "' is shadowed by " +
                               utf8_or_escaped(owner[name]));
        continue;
      }
      here.insert(name);
      owner[name] = path;
      out.formats.push_back(std::move(format));
    }
  }
  return out;
}

}  // namespace payloadfs::descriptor

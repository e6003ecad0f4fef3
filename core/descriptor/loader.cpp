// Loading and checking a descriptor's JSON. A problem is thrown as a DescriptorError from deep
// inside the Loader (so each check is one line) and caught once, in load_spec, where it becomes
// "FILE: /json/path: problem". The language is documented in docs/descriptors.md.

#include "core/descriptor/loader.hpp"

#include <algorithm>
#include <cctype>
#include <initializer_list>
#include <limits>
#include <set>
#include <utility>
#include <vector>

#include "core/io/checked_math.hpp"
#include "core/model/format.hpp"
#include "core/render/hex.hpp"
#include "core/render/json_text.hpp"

namespace payloadfs::descriptor::detail {
namespace {

constexpr size_t kMaxMagicBytes = 64;  // what payload.cpp shows as the magic

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

// "0a:0B 0c" -> its bytes; separators ' ' and ':' are allowed between digits.
std::vector<std::byte> parse_hex_bytes(const std::string& s, const std::string& path) {
  std::string digits;
  for (const char c : s) {
    if (c == ' ' || c == ':') continue;
    if (std::isxdigit(static_cast<unsigned char>(c)) == 0)
      fail(path, "'" + utf8_or_escaped(std::string(1, c)) + "' is not a hex digit");
    digits.push_back(c);
  }
  if (digits.size() % 2 != 0) fail(path, "odd number of hex digits");
  std::vector<std::byte> bytes;
  for (size_t k = 0; k < digits.size(); k += 2)
    bytes.push_back(static_cast<std::byte>(std::stoul(digits.substr(k, 2), nullptr, 16)));
  return bytes;
}

// Makes a field usable by the expressions after it; only integers (and bools) have a value
// there.
void expose(Scope& scope, const FieldSpec& field) {
  if (is_integer_type(field.type) || field.type == FieldType::boolean) {
    scope.define(field.name, field.slot);
  } else {
    scope.forbid(field.name,
                 "field '" + field.name + "' is not an integer and cannot be used in expressions");
  }
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
    load_header_fields(root);
    out_.slot_count = kFirstFieldSlot + out_.fields.size();
    load_validations(root);
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
        spec.bytes = parse_hex_bytes(get_string(*item, "hex", path, true), path + "/hex");
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

  // Header fields see `size` and the fields before them.
  void load_header_fields(const Json& root) {
    header_scope_ = base_scope();
    if (!root.contains("fields")) return;
    const Json& fields = root.at("fields");
    if (!fields.is_array()) fail("/fields", "expected an array, found " + type_name(fields));
    Scope scope = base_scope();
    // A later field's name gets a clearer message than "unknown name".
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
      expose(scope, spec);
      out_.fields.push_back(std::move(spec));
    }
    header_scope_ = scope;
  }

  void load_validations(const Json& root) {
    if (!root.contains("validate")) return;
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
      load_read_field(f, path, scope, spec);
    }
    load_value_names(f, path, spec);
    return spec;
  }

  // A field read from the file: its type, offset, length and endianness.
  void load_read_field(const Json& f, const std::string& path, const Scope& scope,
                       FieldSpec& spec) const {
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

  // A field's "enum" or "flags": names for its values or its bits.
  static void load_value_names(const Json& f, const std::string& path, FieldSpec& spec) {
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
    Scope fields_scope = with_at;
    load_record_fields(s, path, fields_scope, spec);
    compile_slice_expressions(s, path, once, per_record, fields_scope, spec);
    out_.slices.push_back(std::move(spec));
  }

  // Record fields are read relative to `@`; each sees the ones before it (added to `scope`).
  void load_record_fields(const Json& s, const std::string& path, Scope& scope, SliceSpec& spec) {
    if (!s.contains("fields")) return;
    const Json& fields = s.at("fields");
    if (!fields.is_array()) fail(path + "/fields", "expected an array, found " + type_name(fields));
    std::set<std::string> names;
    for (size_t k = 0; k < fields.size(); ++k) {
      const std::string fpath = path + "/fields/" + std::to_string(k);
      FieldSpec field = load_field(fields[k], fpath, scope, true);
      if (!names.insert(field.name).second)
        fail(fpath + "/name", "duplicate field name '" + field.name + "'");
      field.slot = kFirstFieldSlot + out_.fields.size() + spec.fields.size();
      expose(scope, field);
      spec.fields.push_back(std::move(field));
    }
    out_.slot_count =
        std::max(out_.slot_count, kFirstFieldSlot + out_.fields.size() + spec.fields.size());
  }

  // The entry's own expressions, each in the scope of when it is evaluated.
  void compile_slice_expressions(const Json& s, const std::string& path, const Scope& once,
                                 const Scope& per_record, const Scope& fields_scope,
                                 SliceSpec& spec) const {
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

}  // namespace

std::variant<std::unique_ptr<Compiled>, LoadError> load_spec(std::string_view json_text,
                                                             const std::string& source_path,
                                                             const Limits& limits) {
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
  return compiled;
}

}  // namespace payloadfs::descriptor::detail

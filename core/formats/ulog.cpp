// PX4 ULog flight logs (docs.px4.io, "ULog File Format"): a 16-byte header (the magic
// "ULog" 01 12 35, a version byte, a u64 timestamp in microseconds), then messages, each a
// 3-byte header (msg_size u16, msg_type u8) and msg_size bytes: 'B' flag bits, 'F' format
// ("name:type field;type field;..."), 'I' info and 'M' multi info (key_len u8, "type name",
// value), 'P' parameter and 'Q' default parameter, 'A' add subscription (multi_id u8, msg_id
// u16, name), 'R' remove, 'D' data (msg_id u16, payload), 'L' and 'C' logged strings, 'S'
// sync, 'O' dropout (duration u16 ms). Integers are little-endian.

#include <algorithm>
#include <array>
#include <bit>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "core/formats/builtin.hpp"
#include "core/formats/support/signature.hpp"
#include "core/io/binary_reader.hpp"
#include "core/io/checked_math.hpp"
#include "core/render/hex.hpp"
#include "core/render/json_text.hpp"

namespace payloadfs::formats {
namespace {

constexpr auto kMagic = byte_string("ULog\x01\x12\x35");
constexpr uint64_t kHeaderBytes = 16;
constexpr uint64_t kMessageHeaderBytes = 3;

// Hard caps: messages walked, data messages listed, formats, subscriptions, info and parameter
// entries, the nesting depth of formats inside formats, and elements of an array value shown.
constexpr uint64_t kMaxMessages = 20'000'000;
constexpr uint64_t kMaxDataMessages = 10'000'000;
constexpr uint64_t kMaxFormats = 10'000;
constexpr uint64_t kMaxSubscriptions = 65'536;
constexpr uint64_t kMaxEntries = 100'000;
constexpr int kMaxFormatDepth = 32;
constexpr uint64_t kMaxArrayElements = 4096;

struct Field {
  std::string type;    // base type, without [n]
  uint64_t array = 0;  // 0: not an array
  std::string name;
};

struct Subscription {
  std::string name;
  uint8_t multi_id = 0;
  size_t table = 0;  // index in layout.tables
  uint64_t messages = 0;
};

struct State {
  Layout& layout;
  BinaryReader reader;
  std::map<std::string, std::vector<Field>> formats;
  Json formats_json = Json::object();
  std::unordered_map<uint16_t, Subscription> subscriptions;
  Json subscriptions_json = Json::object();
  std::map<std::pair<std::string, int>, size_t> table_of;  // (name, multi_id) -> table
  std::unordered_set<std::string> table_dirs;
  Json info = Json::object();
  Json info_multi = Json::object();
  Json parameters = Json::object();
  Json default_parameters = Json::object();
  Json flag_bits = nullptr;
  uint64_t entries = 0;
  uint64_t data_messages = 0;
  uint64_t unknown_msg_id = 0;
  uint64_t logged_strings = 0;
  uint64_t dropouts = 0;
  uint64_t dropout_ms = 0;
  uint64_t syncs = 0;
  bool data_capped = false;

  State(Layout& l, const ByteSource& source) : layout(l), reader(source) {}
};

std::string at(uint64_t offset) {
  return "message at offset " + std::to_string(offset);
}

// "float[3]" -> {"float", 3}; "char" -> {"char", 0}.
std::pair<std::string, uint64_t> split_array(const std::string& type) {
  const auto open = type.find('[');
  if (open == std::string::npos || type.back() != ']') return {type, 0};
  uint64_t n = 0;
  for (size_t i = open + 1; i + 1 < type.size(); ++i) {
    if (type[i] < '0' || type[i] > '9' || n > 1'000'000'000) return {type, 0};
    n = n * 10 + static_cast<uint64_t>(type[i] - '0');
  }
  return {type.substr(0, open), n};
}

// Size of a primitive type; 0 for a type that is not one.
uint64_t primitive_size(const std::string& t) {
  static const std::map<std::string, uint64_t> sizes = {
      {"int8_t", 1},  {"uint8_t", 1},  {"bool", 1},     {"char", 1},
      {"int16_t", 2}, {"uint16_t", 2}, {"int32_t", 4},  {"uint32_t", 4},
      {"float", 4},   {"int64_t", 8},  {"uint64_t", 8}, {"double", 8}};
  const auto found = sizes.find(t);
  return found == sizes.end() ? 0 : found->second;
}

// One primitive value at p (size checked by the caller).
Json primitive(const std::string& t, const std::byte* p) {
  if (t == "int8_t") return static_cast<int8_t>(p[0]);
  if (t == "uint8_t") return static_cast<uint8_t>(p[0]);
  if (t == "bool") return p[0] != std::byte{0};
  if (t == "char") return std::string(1, static_cast<char>(p[0]));
  if (t == "int16_t") return static_cast<int16_t>(read_le<uint16_t>(p));
  if (t == "uint16_t") return read_le<uint16_t>(p);
  if (t == "int32_t") return static_cast<int32_t>(read_le<uint32_t>(p));
  if (t == "uint32_t") return read_le<uint32_t>(p);
  if (t == "int64_t") return static_cast<int64_t>(read_le<uint64_t>(p));
  if (t == "uint64_t") return read_le<uint64_t>(p);
  const uint32_t f = read_le<uint32_t>(p);
  if (t == "float") return std::bit_cast<float>(f);
  return std::bit_cast<double>(read_le<uint64_t>(p));
}

// A typed value ("char[10]" is text; other arrays are lists); nullopt when the bytes do not
// fit the type, or the type is not a primitive.
std::optional<Json> typed_value(const std::string& type, const std::vector<std::byte>& bytes) {
  const auto [base, array] = split_array(type);
  const uint64_t size = primitive_size(base);
  if (size == 0) return std::nullopt;
  if (base == "char")
    return Json(utf8_or_escaped(
        std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size())));
  const uint64_t n = array == 0 ? 1 : array;
  if (bytes.size() != size * n) return std::nullopt;
  if (array == 0) return primitive(base, bytes.data());
  Json list = Json::array();
  for (uint64_t i = 0; i < n && i < kMaxArrayElements; ++i)
    list.push_back(primitive(base, bytes.data() + i * size));
  return list;
}

bool add_entry(State& s) {
  if (s.entries++ < kMaxEntries) return true;
  if (s.entries == kMaxEntries + 1)
    s.layout.add_error("more than " + std::to_string(kMaxEntries) +
                       " info and parameter entries; later ones are not shown");
  return false;
}

// An 'I', 'M', 'P' or 'Q' message after its own leading bytes: key_len u8, "type name", value.
// Returns {name, value}; the value is hex text when its type is not a primitive or it does not
// fit.
std::optional<std::pair<std::string, Json>> key_value(BinaryReader& m, uint64_t pos, State& s) {
  const uint8_t key_len = m.u8();
  const std::string key = m.text(key_len);
  std::vector<std::byte> value(m.remaining());
  if (!m.ok() || !m.read_into(value)) {
    s.layout.add_error(at(pos) + ": key runs past its message");
    return std::nullopt;
  }
  const auto space = key.rfind(' ');
  if (space == std::string::npos) {
    s.layout.add_error(at(pos) + ": key '" + utf8_or_escaped(key) + "' has no type");
    return std::nullopt;
  }
  auto typed = typed_value(key.substr(0, space), value);
  if (!typed) {
    s.layout.add_error(at(pos) + ": value of '" + utf8_or_escaped(key) +
                       "' does not fit its type; shown as hex");
    typed = to_hex(value);
  }
  return std::make_pair(utf8_or_escaped(key.substr(space + 1)), std::move(*typed));
}

// "name:type field;type field;"
void read_format(State& s, BinaryReader& m, uint64_t pos) {
  const std::string text = m.text(m.remaining());
  const auto colon = text.find(':');
  if (colon == std::string::npos || colon == 0) {
    s.layout.add_error(at(pos) + ": format without a name");
    return;
  }
  if (s.formats.size() >= kMaxFormats) {
    if (s.formats.size() == kMaxFormats)
      s.layout.add_error("more than " + std::to_string(kMaxFormats) + " formats");
    return;
  }
  const std::string name = utf8_or_escaped(text.substr(0, colon));
  std::vector<Field> fields;
  Json json = Json::array();
  size_t start = colon + 1;
  while (start < text.size()) {
    size_t end = text.find(';', start);
    if (end == std::string::npos) end = text.size();
    const std::string item = text.substr(start, end - start);
    start = end + 1;
    if (item.empty()) continue;
    const auto space = item.find(' ');
    if (space == std::string::npos) {
      s.layout.add_error(at(pos) + ": format field '" + utf8_or_escaped(item) + "' has no name");
      continue;
    }
    const std::string type = item.substr(0, space);
    auto [base, array] = split_array(type);
    fields.push_back(Field{base, array, item.substr(space + 1)});
    json.push_back(
        Json{{"type", utf8_or_escaped(type)}, {"name", utf8_or_escaped(item.substr(space + 1))}});
  }
  s.formats[name] = std::move(fields);
  s.formats_json[name] = std::move(json);
}

void read_subscription(State& s, BinaryReader& m) {
  const uint8_t multi_id = m.u8();
  const uint16_t msg_id = m.u16();
  const std::string name = utf8_or_escaped(m.text(m.remaining()));
  if (!m.ok()) return;
  if (s.subscriptions.size() >= kMaxSubscriptions && !s.subscriptions.contains(msg_id)) return;
  auto [t, added] = s.table_of.try_emplace({name, multi_id}, s.layout.tables.size());
  if (added) {
    RecordTable table;
    table.dir = "message/" + name + (multi_id > 0 ? "~" + std::to_string(multi_id) : "");
    // A name that ends like an instance ("a~1" beside instance 1 of "a") gets another suffix.
    while (!s.table_dirs.insert(table.dir).second) table.dir += "~" + std::to_string(multi_id);
    s.layout.tables.push_back(std::move(table));
  }
  s.subscriptions[msg_id] = Subscription{name, multi_id, t->second, 0};
  s.subscriptions_json[std::to_string(msg_id)] =
      Json{{"name", name}, {"multi_id", multi_id}, {"message_count", 0}};
}

void read_data(State& s, BinaryReader& m, uint64_t pos) {
  const uint16_t msg_id = m.u16();
  if (!m.ok()) {
    s.layout.add_error(at(pos) + ": data message too short for a msg_id");
    return;
  }
  const auto sub = s.subscriptions.find(msg_id);
  if (sub == s.subscriptions.end()) {
    ++s.unknown_msg_id;
    return;
  }
  if (s.data_messages >= kMaxDataMessages) {
    if (!s.data_capped)
      s.layout.add_error("more than " + std::to_string(kMaxDataMessages) +
                         " data messages; later ones are not listed");
    s.data_capped = true;
    return;
  }
  ++s.data_messages;
  ++sub->second.messages;
  s.layout.tables[sub->second.table].records.push_back(
      Record{m.tell(), static_cast<uint32_t>(m.remaining()), msg_id});
}

void read_flag_bits(State& s, BinaryReader& m) {
  Json compat = Json::array(), incompat = Json::array(), appended = Json::array();
  for (int i = 0; i < 8; ++i) compat.push_back(m.u8());
  for (int i = 0; i < 8; ++i) incompat.push_back(m.u8());
  for (int i = 0; i < 3; ++i) appended.push_back(m.u64());
  if (!m.ok()) return;
  s.flag_bits = Json{{"compat_flags", std::move(compat)},
                     {"incompat_flags", std::move(incompat)},
                     {"appended_offsets", std::move(appended)}};
}

void read_message(State& s, uint8_t type, uint64_t pos, uint64_t content, uint64_t size) {
  BinaryReader m = s.reader.sub(content, size);
  switch (type) {
    case 'B':
      read_flag_bits(s, m);
      break;
    case 'F':
      read_format(s, m, pos);
      break;
    case 'I':
    case 'P':
      if (auto kv = key_value(m, pos, s); kv && add_entry(s))
        (type == 'I' ? s.info : s.parameters)[kv->first] = std::move(kv->second);
      return;
    case 'M': {
      const uint8_t continued = m.u8();
      if (auto kv = key_value(m, pos, s); kv && add_entry(s)) {
        Json& list = s.info_multi[kv->first];
        if (list.is_null()) list = Json::array();
        if (continued == 0 || list.empty()) list.push_back(Json::array());
        list.back().push_back(std::move(kv->second));
      }
      return;
    }
    case 'Q': {
      const uint8_t default_types = m.u8();
      if (auto kv = key_value(m, pos, s); kv && add_entry(s))
        s.default_parameters[kv->first] =
            Json{{"value", std::move(kv->second)}, {"default_types", default_types}};
      return;
    }
    case 'A':
      read_subscription(s, m);
      break;
    case 'R': {
      const uint16_t msg_id = m.u16();
      const auto sub = s.subscriptions.find(msg_id);
      if (!m.ok() || sub == s.subscriptions.end()) break;
      s.subscriptions_json[std::to_string(msg_id)]["message_count"] = sub->second.messages;
      s.subscriptions.erase(sub);
      break;
    }
    case 'D':
      read_data(s, m, pos);
      return;
    case 'L':
    case 'C':
      ++s.logged_strings;
      return;
    case 'S':
      ++s.syncs;
      return;
    case 'O':
      ++s.dropouts;
      s.dropout_ms += m.u16();
      break;
    default:
      return;  // unknown message types are skipped by their size, as the specification says
  }
  if (!m.ok())
    s.layout.add_error(at(pos) + " ('" + std::string(1, static_cast<char>(type)) +
                       "'): malformed or truncated");
}

void walk(State& s) {
  const uint64_t end = s.reader.size();
  uint64_t pos = kHeaderBytes;
  for (uint64_t n = 0; pos < end; ++n) {
    if (n >= kMaxMessages) {
      s.layout.add_error("more than " + std::to_string(kMaxMessages) +
                         " messages; the rest of the file is not indexed");
      return;
    }
    if (end - pos < kMessageHeaderBytes) {
      s.layout.add_error(at(pos) + ": " + std::to_string(end - pos) +
                         " bytes are too few for a message header (truncated)");
      return;
    }
    s.reader.seek(pos);
    const uint16_t size = s.reader.u16();
    const uint8_t type = s.reader.u8();
    if (!s.reader.ok()) {
      s.layout.add_error(at(pos) + ": " + *s.reader.error());
      return;
    }
    const uint64_t content = pos + kMessageHeaderBytes;
    if (size > end - content) {
      s.layout.add_error(at(pos) + ": size " + std::to_string(size) +
                         " runs past the end of the file (truncated)");
      return;
    }
    read_message(s, type, pos, content, size);
    pos = content + size;
  }
}

// Byte offset of the `timestamp` field in a format's payload; nullopt when it has none or a
// field before it has no known size. Nested formats are followed kMaxFormatDepth deep.
std::optional<uint64_t> struct_size(const State& s, const std::string& name, int depth, bool& loop);

std::optional<uint64_t> field_size(const State& s, const Field& f, int depth, bool& loop) {
  uint64_t one = primitive_size(f.type);
  if (one == 0) {
    const auto nested = struct_size(s, f.type, depth + 1, loop);
    if (!nested) return std::nullopt;
    one = *nested;
  }
  return checked_mul(one, f.array == 0 ? 1 : f.array);
}

std::optional<uint64_t> struct_size(const State& s, const std::string& name, int depth,
                                    bool& loop) {
  if (depth > kMaxFormatDepth) {
    loop = true;
    return std::nullopt;
  }
  const auto format = s.formats.find(name);
  if (format == s.formats.end()) return std::nullopt;
  uint64_t total = 0;
  for (const auto& f : format->second) {
    const auto size = field_size(s, f, depth, loop);
    if (!size || !checked_add(total, *size)) return std::nullopt;
    total += *size;
  }
  return total;
}

std::optional<uint64_t> timestamp_offset(State& s, const std::string& name) {
  const auto format = s.formats.find(name);
  if (format == s.formats.end()) return std::nullopt;
  uint64_t offset = 0;
  bool loop = false;
  for (const auto& f : format->second) {
    if (f.name == "timestamp" && f.type == "uint64_t" && f.array == 0) return offset;
    const auto size = field_size(s, f, 0, loop);
    if (loop)
      s.layout.add_error("format '" + name + "' nests formats more than " +
                         std::to_string(kMaxFormatDepth) + " deep (a loop?)");
    if (!size || !checked_add(offset, *size)) return std::nullopt;
    offset += *size;
  }
  return std::nullopt;
}

void finish_tables(State& s) {
  for (const auto& [key, index] : s.table_of) {
    RecordTable& table = s.layout.tables[index];
    const auto offset = timestamp_offset(s, key.first);
    if (!offset && s.formats.contains(key.first))
      s.layout.add_error("format '" + key.first + "' has no uint64_t timestamp field");
    if (!s.formats.contains(key.first))
      s.layout.add_error("subscription '" + key.first + "' has no format");
    const int multi_id = key.second;
    table.attributes = [offset, multi_id](const ByteSource& source, const Record& r) {
      Json a = Json::object();
      std::array<std::byte, 8> raw{};
      if (offset && *offset <= r.length && r.length - *offset >= 8 &&
          source.read_exact(r.offset + *offset, raw))
        a["timestamp"] = read_le<uint64_t>(raw.data());
      a["msg_id"] = r.tag;
      a["multi_id"] = multi_id;
      return a;
    };
    if (table.records.capacity() - table.records.size() > table.records.size() / 8)
      table.records.shrink_to_fit();
  }
  for (auto& [id, sub] : s.subscriptions)
    s.subscriptions_json[std::to_string(id)]["message_count"] = sub.messages;
  auto& tables = s.layout.tables;  // a subscription without data messages has no directory
  tables.erase(std::remove_if(tables.begin(), tables.end(),
                              [](const RecordTable& t) { return t.records.empty(); }),
               tables.end());
}

class Ulog final : public Format {
 public:
  std::string_view name() const noexcept override { return "ulog"; }
  std::string_view description() const noexcept override { return "PX4 ULog flight log"; }
  std::string_view signature() const noexcept override {
    return "55 4c 6f 67 01 12 35 ('ULog' 01 12 35) at 0";
  }

  bool detect(std::span<const std::byte> head, uint64_t) const override {
    return starts_with(head, kMagic);
  }

  Layout parse(const ByteSource& source) const override {
    Layout layout;
    layout.magic = magic_at_start(kMagic);
    State s(layout, source);
    std::array<std::byte, kHeaderBytes> head{};
    if (source.size() < kHeaderBytes || !source.read_exact(0, head) ||
        !detect(head, source.size())) {
      layout.add_error("missing the ULog header (16 bytes)");
      return layout;
    }
    walk(s);
    finish_tables(s);
    if (s.unknown_msg_id > 0)
      layout.add_error(std::to_string(s.unknown_msg_id) +
                       " data message(s) name a msg_id with no subscription; not listed");
    Json& h = layout.header;
    h["version"] = static_cast<uint8_t>(head[7]);
    h["timestamp"] = read_le<uint64_t>(head.data() + 8);
    h["flag_bits"] = std::move(s.flag_bits);
    h["info"] = std::move(s.info);
    h["info_multi"] = std::move(s.info_multi);
    h["formats"] = std::move(s.formats_json);
    h["subscriptions"] = std::move(s.subscriptions_json);
    h["parameters"] = std::move(s.parameters);
    h["default_parameters"] = std::move(s.default_parameters);
    h["data_message_count"] = s.data_messages;
    h["logged_string_count"] = s.logged_strings;
    h["dropouts"] = Json{{"count", s.dropouts}, {"total_duration_ms", s.dropout_ms}};
    h["sync_count"] = s.syncs;
    return layout;
  }
};

}  // namespace

std::unique_ptr<Format> make_ulog() {
  return std::make_unique<Ulog>();
}

}  // namespace payloadfs::formats

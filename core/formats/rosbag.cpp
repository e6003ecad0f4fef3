// ROS 1 bags, format version 2.0 (wiki.ros.org/Bags/Format/2.0): the line "#ROSBAG V2.0\n",
// then records: header_len u32, a header of fields (field_len u32, "name=value"), data_len
// u32, data. The header's `op` field says the record's kind: 0x03 bag header, 0x05 chunk
// (its data holds connection and message data records, compressed with `compression`), 0x07
// connection (its data is another field list: topic, type, md5sum, message_definition, ...),
// 0x02 message data (`conn`, `time`), 0x04 index data and 0x06 chunk info. Times are u32
// seconds and u32 nanoseconds; integers are little-endian.

#include <algorithm>
#include <array>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "core/formats/builtin.hpp"
#include "core/formats/support/record_fields.hpp"
#include "core/formats/support/signature.hpp"
#include "core/io/binary_reader.hpp"
#include "core/io/checked_math.hpp"
#include "core/render/json_text.hpp"
#include "core/vfs/record_names.hpp"

namespace payloadfs::formats {
namespace {

constexpr auto kMagic = byte_string("#ROSBAG V2.0\n");

enum Op : uint8_t {
  kMessageData = 0x02,
  kBagHeader = 0x03,
  kIndexData = 0x04,
  kChunk = 0x05,
  kChunkInfo = 0x06,
  kConnection = 0x07,
};

// Hard caps: records walked (top level and inside uncompressed chunks), listed messages,
// chunks, connections, fields per header, bytes per field value kept as text.
constexpr uint64_t kMaxRecords = 20'000'000;
constexpr uint64_t kMaxMessages = 10'000'000;
constexpr uint64_t kMaxChunks = 1'000'000;
constexpr uint64_t kMaxConnections = 65'536;
constexpr uint64_t kMaxHeaderFields = 1'000;
constexpr uint64_t kMaxValueBytes = 1 << 20;

// A message data record's `time` field as rosbag (Python and C++) writes it: the header's last
// field, just before data_len: field_len 13, "time=", secs u32, nsecs u32, then data_len u32.
constexpr uint64_t kTimeFieldTail = 4 + 5 + 8 + 4;

uint64_t time_ns(uint32_t secs, uint32_t nsecs) {
  return uint64_t{secs} * 1'000'000'000ULL + nsecs;
}

// The fields of one record header this parser uses; the rest are skipped.
struct Fields {
  int op = -1;
  uint32_t conn = 0;
  bool has_conn = false;
  uint64_t time = 0;
  uint64_t time_value_at = 0;  // file offset of the time value
  bool has_time = false;
  std::string compression;
  uint32_t size = 0;
  std::string topic;
  uint64_t index_pos = 0, start_time = 0, end_time = 0;
  uint32_t conn_count = 0, chunk_count = 0, count = 0;
};

struct Connection {
  uint32_t id = 0;
  Json fields = Json::object();  // topic, type, md5sum, message_definition, callerid, latching
  std::string topic;
  uint64_t walked = 0;   // messages seen in uncompressed chunks
  uint64_t indexed = 0;  // messages the chunk info records count
  std::vector<Record> records;
};

struct State {
  Layout& layout;
  BinaryReader reader;
  uint64_t records = 0;
  bool stopped = false;
  bool messages_capped = false;
  uint64_t message_count = 0;  // listed
  std::vector<Connection> connections;
  std::unordered_map<uint32_t, size_t> connection_slot;
  std::vector<Slice> chunks;
  uint64_t chunk_count = 0;
  std::map<std::string, uint64_t> compressions;
  bool chunk_info_seen = false;
  uint64_t start_time = UINT64_MAX, end_time = 0;
  Json bag_header = nullptr;
  // Times of messages whose `time` field is not where rosbag writes it: offset -> ns.
  std::shared_ptr<std::unordered_map<uint64_t, uint64_t>> odd_times =
      std::make_shared<std::unordered_map<uint64_t, uint64_t>>();

  State(Layout& l, const ByteSource& source) : layout(l), reader(source) {}
};

std::string at(uint64_t offset) {
  return "record at offset " + std::to_string(offset);
}

// Calls visit(name, value reader, value offset, value length) per field of [start, start+len).
template <typename Visit>
bool each_field(BinaryReader& r, uint64_t start, uint64_t len, std::string& error, Visit visit) {
  BinaryReader h = r.sub(start, len);
  for (uint64_t n = 0; h.remaining() > 0; ++n) {
    if (n >= kMaxHeaderFields) {
      error = "more than " + std::to_string(kMaxHeaderFields) + " header fields";
      return false;
    }
    const uint32_t field_len = h.u32();
    if (!h.ok() || field_len > h.remaining()) {
      error = "header field length runs past its header";
      return false;
    }
    const uint64_t field = h.tell();
    const std::string head = h.text(std::min<uint64_t>(field_len, 64));
    const auto eq = head.find('=');
    if (eq == std::string::npos) {
      error = "header field without '='";
      return false;
    }
    visit(head.substr(0, eq), field + eq + 1, field_len - eq - 1);
    h.seek(field + field_len);
  }
  if (!h.ok()) error = h.error().value_or("malformed header");
  return h.ok();
}

bool read_fields(State& s, uint64_t start, uint64_t len, Fields& f, std::string& error) {
  BinaryReader& r = s.reader;
  const auto read_time = [&r](uint64_t at_offset) {
    r.seek(at_offset);
    const uint32_t secs = r.u32();
    return time_ns(secs, r.u32());
  };
  return each_field(r, start, len, error, [&](const std::string& name, uint64_t v, uint64_t n) {
    r.seek(v);
    if (name == "op" && n == 1) {
      f.op = r.u8();
    } else if (name == "conn" && n == 4) {
      f.conn = r.u32();
      f.has_conn = true;
    } else if (name == "time" && n == 8) {
      f.time = read_time(v);
      f.time_value_at = v;
      f.has_time = true;
    } else if (name == "compression") {
      f.compression = utf8_or_escaped(r.text(std::min<uint64_t>(n, 64)));
    } else if (name == "size" && n == 4) {
      f.size = r.u32();
    } else if (name == "topic") {
      f.topic = utf8_or_escaped(r.text(std::min(n, kMaxValueBytes)));
    } else if ((name == "index_pos" || name == "chunk_pos") && n == 8) {
      f.index_pos = r.u64();
    } else if (name == "start_time" && n == 8) {
      f.start_time = read_time(v);
    } else if (name == "end_time" && n == 8) {
      f.end_time = read_time(v);
    } else if (name == "conn_count" && n == 4) {
      f.conn_count = r.u32();
    } else if (name == "chunk_count" && n == 4) {
      f.chunk_count = r.u32();
    } else if (name == "count" && n == 4) {
      f.count = r.u32();
    }
  });
}

Connection* connection(State& s, uint32_t id) {
  const auto found = s.connection_slot.find(id);
  if (found != s.connection_slot.end()) return &s.connections[found->second];
  if (s.connections.size() >= kMaxConnections) return nullptr;
  s.connection_slot.emplace(id, s.connections.size());
  s.connections.push_back(Connection{});
  s.connections.back().id = id;
  return &s.connections.back();
}

void read_connection(State& s, const Fields& f, uint64_t data, uint64_t data_len, uint64_t pos) {
  if (!f.has_conn) {
    s.layout.add_error(at(pos) + ": connection record without `conn`");
    return;
  }
  Connection* c = connection(s, f.conn);
  if (c == nullptr) {
    s.layout.add_error("more than " + std::to_string(kMaxConnections) + " connections");
    return;
  }
  if (!c->fields.empty()) return;  // connections repeat after the chunks: the first one counts
  c->topic = f.topic;
  std::string error;
  Json fields = Json::object();
  const bool ok = each_field(
      s.reader, data, data_len, error, [&](const std::string& name, uint64_t v, uint64_t n) {
        s.reader.seek(v);
        fields[utf8_or_escaped(name)] = utf8_or_escaped(s.reader.text(std::min(n, kMaxValueBytes)));
      });
  if (!ok) s.layout.add_error(at(pos) + ": connection data: " + error);
  if (!fields.contains("topic")) fields["topic"] = f.topic;
  c->fields = std::move(fields);
}

void read_message(State& s, const Fields& f, uint64_t data, uint64_t data_len, uint64_t pos) {
  if (!f.has_conn || !f.has_time) {
    s.layout.add_error(at(pos) + ": message data record without `conn` or `time`");
    return;
  }
  if (s.message_count >= kMaxMessages) {
    if (!s.messages_capped)
      s.layout.add_error("more than " + std::to_string(kMaxMessages) +
                         " messages; later ones are not listed");
    s.messages_capped = true;
    return;
  }
  Connection* c = connection(s, f.conn);
  if (c == nullptr) return;
  ++s.message_count;
  ++c->walked;
  s.start_time = std::min(s.start_time, f.time);
  s.end_time = std::max(s.end_time, f.time);
  if (f.time_value_at + 12 != data) s.odd_times->emplace(data, f.time);
  c->records.push_back(Record{data, static_cast<uint32_t>(data_len), f.conn});
}

void walk(State& s, uint64_t start, uint64_t end, bool in_chunk);

void read_chunk(State& s, const Fields& f, uint64_t data, uint64_t data_len, uint64_t pos,
                bool in_chunk) {
  if (in_chunk) {
    s.layout.add_error(at(pos) + ": chunk inside a chunk");
    return;
  }
  ++s.chunk_count;
  ++s.compressions[f.compression];
  if (s.chunks.size() >= kMaxChunks) {
    if (s.chunks.size() == kMaxChunks)
      s.layout.add_error("more than " + std::to_string(kMaxChunks) +
                         " chunks; later ones are not listed");
    return;
  }
  const bool none = f.compression == "none";
  Json a = Json::object();
  a["compression"] = f.compression;
  a["size"] = f.size;
  s.chunks.push_back(Slice{std::string(), {data, data_len}, std::move(a), none});
  if (!none) return;
  if (f.size != data_len)
    s.layout.add_error(at(pos) + ": uncompressed chunk of " + std::to_string(data_len) +
                       " bytes declares size " + std::to_string(f.size));
  walk(s, data, data + data_len, true);
}

void read_chunk_info(State& s, const Fields& f, uint64_t data, uint64_t data_len, uint64_t pos) {
  s.chunk_info_seen = true;
  s.start_time = std::min(s.start_time, f.start_time);
  s.end_time = std::max(s.end_time, f.end_time);
  BinaryReader d = s.reader.sub(data, data_len);
  for (uint32_t i = 0; i < f.count && d.ok(); ++i) {
    const uint32_t id = d.u32();
    const uint32_t count = d.u32();
    if (!d.ok()) break;
    if (Connection* c = connection(s, id)) c->indexed += count;
  }
  if (!d.ok()) s.layout.add_error(at(pos) + ": chunk info counts run past its data");
}

void record(State& s, const Fields& f, uint64_t data, uint64_t data_len, uint64_t pos,
            bool in_chunk) {
  switch (f.op) {
    case kMessageData:
      return read_message(s, f, data, data_len, pos);
    case kChunk:
      return read_chunk(s, f, data, data_len, pos, in_chunk);
    case kConnection:
      return read_connection(s, f, data, data_len, pos);
    case kChunkInfo:
      if (!in_chunk) read_chunk_info(s, f, data, data_len, pos);
      return;
    case kBagHeader:
      if (in_chunk || !s.bag_header.is_null()) {
        s.layout.add_error(at(pos) + ": unexpected bag header record");
        return;
      }
      s.bag_header = Json{
          {"index_pos", f.index_pos}, {"conn_count", f.conn_count}, {"chunk_count", f.chunk_count}};
      return;
    case kIndexData:
      return;
    default:
      s.layout.add_error(at(pos) + ": unknown or missing op " + std::to_string(f.op));
  }
}

// Walks the records in [start, end); stops at a bad length or a cap.
void walk(State& s, uint64_t start, uint64_t end, bool in_chunk) {
  const std::string where = in_chunk ? "its chunk" : "the end of the file";
  uint64_t pos = start;
  while (pos < end && !s.stopped) {
    if (s.records++ >= kMaxRecords) {
      s.layout.add_error("more than " + std::to_string(kMaxRecords) +
                         " records; the rest of the file is not indexed");
      s.stopped = true;
      return;
    }
    if (end - pos < 4) {
      s.layout.add_error(at(pos) + ": " + std::to_string(end - pos) +
                         " bytes are too few for a record (truncated)");
      return;
    }
    s.reader.seek(pos);
    const uint32_t header_len = s.reader.u32();
    const uint64_t header = pos + 4;
    if (!s.reader.ok() || header_len > end - header || end - header - header_len < 4) {
      s.layout.add_error(at(pos) + ": header_len runs past " + where + " (truncated)");
      return;
    }
    s.reader.seek(header + header_len);
    const uint32_t data_len = s.reader.u32();
    const uint64_t data = header + header_len + 4;
    if (!s.reader.ok() || data_len > end - data) {
      s.layout.add_error(at(pos) + ": data_len " + std::to_string(data_len) + " runs past " +
                         where + " (truncated)");
      return;
    }
    Fields f;
    std::string error;
    if (read_fields(s, header, header_len, f, error)) {
      record(s, f, data, data_len, pos, in_chunk);
    } else {
      s.layout.add_error(at(pos) + ": " + error);
    }
    if (!s.reader.ok()) {
      s.layout.add_error(at(pos) + ": " + *s.reader.error());
      s.stopped = true;
      return;
    }
    pos = data + data_len;
  }
}

// A message's attributes: its time (read back from the field before data_len) and connection.
Json message_attributes(const std::shared_ptr<std::unordered_map<uint64_t, uint64_t>>& odd,
                        const ByteSource& source, const Record& record) {
  Json a = Json::object();
  const auto known = odd->find(record.offset);
  if (known != odd->end()) {
    a["time"] = known->second;
  } else {
    std::array<std::byte, kTimeFieldTail> raw{};
    if (read_fields_before(source, record, raw))
      a["time"] = time_ns(read_le<uint32_t>(raw.data() + 9), read_le<uint32_t>(raw.data() + 13));
  }
  a["connection"] = record.tag;
  return a;
}

// One record table per topic, in the order of the topics' first connection; connections
// sharing a topic share its table, merged back into file order. The leading '/' of a topic is
// dropped (it would make an empty directory) unless that name is a topic too.
void add_message_tables(State& s) {
  std::unordered_set<std::string> topics;
  const auto topic_of = [](const Connection& c) {
    return c.fields.empty() ? "#" + std::to_string(c.id) : c.topic;
  };
  for (const auto& c : s.connections)
    if (!c.records.empty()) topics.insert(topic_of(c));
  std::unordered_map<std::string, size_t> table_of;
  uint64_t unknown = 0;
  auto& tables = s.layout.tables;
  for (auto& c : s.connections) {
    if (c.records.empty()) continue;
    if (c.fields.empty()) unknown += c.records.size();
    const std::string topic = topic_of(c);
    const auto [t, added] = table_of.try_emplace(topic, tables.size());
    if (added) {
      const bool strip = topic.starts_with('/') && !topics.contains(topic.substr(1));
      RecordTable table;
      table.dir = "message/" + (strip ? topic.substr(1) : topic);
      table.records = std::move(c.records);
      table.attributes = [odd = s.odd_times](const ByteSource& source, const Record& r) {
        return message_attributes(odd, source, r);
      };
      tables.push_back(std::move(table));
      continue;
    }
    auto& records = tables[t->second].records;
    const auto middle = static_cast<std::ptrdiff_t>(records.size());
    records.insert(records.end(), c.records.begin(), c.records.end());
    std::vector<Record>().swap(c.records);
    std::inplace_merge(records.begin(), records.begin() + middle, records.end(),
                       [](const Record& x, const Record& y) { return x.offset < y.offset; });
  }
  for (auto& table : tables)
    if (table.records.capacity() - table.records.size() > table.records.size() / 8)
      table.records.shrink_to_fit();
  if (unknown > 0)
    s.layout.add_error(std::to_string(unknown) +
                       " message(s) refer to a connection with no connection record; they are "
                       "listed under message/#<conn>/");
}

void fill_header(State& s) {
  Json& h = s.layout.header;
  h["version"] = "2.0";
  Json connections = Json::array();
  uint64_t total = 0;
  for (const auto& c : s.connections) {
    Json entry = Json::object();
    entry["id"] = c.id;
    for (const auto& key :
         {"topic", "type", "md5sum", "message_definition", "callerid", "latching"})
      if (c.fields.contains(key)) entry[key] = c.fields[key];
    const uint64_t count = s.chunk_info_seen ? c.indexed : c.walked;
    entry["message_count"] = count;
    total += count;
    connections.push_back(std::move(entry));
  }
  h["connections"] = std::move(connections);
  h["message_count"] = total;
  h["chunk_count"] = s.chunk_count;
  Json compression = Json::object();
  for (const auto& [name, n] : s.compressions) compression[name] = n;
  // One codec by name ("none", "bz2", "lz4"); several as codec -> chunk count; "" without chunks.
  h["compression"] = s.compressions.empty()       ? Json("")
                     : s.compressions.size() == 1 ? Json(s.compressions.begin()->first)
                                                  : Json(std::move(compression));
  h["start_time"] = s.start_time == UINT64_MAX ? 0 : s.start_time;
  h["end_time"] = s.end_time;
  h["bag_header"] = std::move(s.bag_header);
  if (!s.chunk_info_seen && s.chunk_count > 0)
    h["message_count_source"] = "no chunk info records: counted in uncompressed chunks only";
}

class Rosbag final : public Format {
 public:
  std::string_view name() const noexcept override { return "rosbag"; }
  std::string_view description() const noexcept override {
    return "ROS 1 bag, format version 2.0 (rosbag)";
  }
  std::string_view signature() const noexcept override { return "'#ROSBAG V2.0\\n' at 0"; }

  bool detect(std::span<const std::byte> head, uint64_t) const override {
    return starts_with(head, kMagic);
  }

  Layout parse(const ByteSource& source) const override {
    Layout layout;
    layout.magic = magic_at_start(kMagic);
    std::array<std::byte, kMagic.size()> magic{};
    if (source.size() < magic.size() || !source.read_exact(0, magic) ||
        !detect(magic, source.size())) {
      layout.add_error("missing the '#ROSBAG V2.0' line");
      return layout;
    }
    State s(layout, source);
    walk(s, magic.size(), source.size(), false);
    if (s.bag_header.is_null()) layout.add_error("no bag header record");
    const unsigned width = index_width(s.chunks.size());
    for (size_t i = 0; i < s.chunks.size(); ++i) s.chunks[i].name = numbered("chunk/", i, width);
    layout.slices = std::move(s.chunks);
    add_message_tables(s);
    fill_header(s);
    return layout;
  }
};

}  // namespace

std::unique_ptr<Format> make_rosbag() {
  return std::make_unique<Rosbag>();
}

}  // namespace payloadfs::formats

// MCAP recordings (mcap.dev/spec, format version "0"): the magic 89 'MCAP' '0' '\r' '\n', a
// sequence of records (opcode u8, content length u64 little-endian, content), and the magic
// again at the end. The data section (Header, Schema, Channel, Message, Chunk, Message Index,
// Attachment, Metadata, Data End) is followed by an optional summary section (Schema, Channel,
// Statistics and index records, then Summary Offset records) and the Footer, whose
// summary_start locates the summary. Strings are u32-length-prefixed UTF-8; maps are
// u32-byte-length-prefixed sequences of key/value pairs; chunk records and attachment data are
// u64-length-prefixed.

#include <algorithm>
#include <array>
#include <optional>
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

constexpr auto kMagic = byte_string("\x89MCAP0\r\n");
constexpr uint64_t kRecordHeaderBytes = 9;  // opcode + u64 length
constexpr uint64_t kFooterRecordBytes = kRecordHeaderBytes + 20;

enum Op : uint8_t {
  kHeader = 0x01,
  kFooter = 0x02,
  kSchema = 0x03,
  kChannel = 0x04,
  kMessage = 0x05,
  kChunk = 0x06,
  kAttachment = 0x09,
  kStatistics = 0x0B,
  kMetadata = 0x0C,
  kDataEnd = 0x0F,
};

// Hard caps: records walked (top level and inside uncompressed chunks), message slices,
// chunks, attachments, metadata records and entries per map, string bytes.
constexpr uint64_t kMaxRecords = 10'000'000;
constexpr uint64_t kMaxMessages = 10'000'000;
constexpr uint64_t kMaxChunks = 1'000'000;
constexpr uint64_t kMaxAttachments = 100'000;
constexpr uint64_t kMaxMetadata = 10'000;
constexpr uint64_t kMaxMapEntries = 10'000;
constexpr uint64_t kMaxStringBytes = 1 << 20;

// A record's fields are read through a sub-reader over its content (BinaryReader::sub): no
// read passes its end, and a malformed record fails only itself. This reads a
// u32-length-prefixed string of at most kMaxStringBytes.
std::string str(BinaryReader& f) {
  const uint32_t n = f.u32();
  return utf8_or_escaped(f.text(n, kMaxStringBytes));
}

// A Message record's fixed fields, just before its data: channel id u16, sequence u32,
// log_time u64, publish_time u64. Messages are indexed as Records {data offset, data length,
// tag = channel id} and these fields are read back from the file when listed.
constexpr uint64_t kMessageFixed = 22;

// The messages of one channel id, in file order.
struct ChannelMessages {
  uint16_t channel = 0;
  uint64_t count = 0;  // messages seen, listed or not
  std::vector<Record> records;
};

struct ChunkRef {
  uint64_t offset;
  uint64_t length;
  Json attributes;
};

// Everything one walk over the file collects.
struct State {
  Layout& layout;
  BinaryReader reader;
  uint64_t records = 0;
  bool in_summary = false;
  bool header_seen = false;
  bool stopped = false;  // a record cap was hit
  bool messages_capped = false;
  Json header = Json::object();
  Json data_schemas = Json::array();
  Json summary_schemas = Json::array();
  Json data_channels = Json::array();
  Json summary_channels = Json::array();
  std::unordered_map<uint16_t, std::string> topic_of;
  std::optional<Json> statistics;
  Json metadata = Json::array();
  uint64_t metadata_count = 0;
  uint64_t attachment_count = 0;
  uint64_t compressed_chunks = 0;
  // Per channel id (at most 65536), in the order of each channel's first message.
  std::vector<ChannelMessages> channels;
  std::unordered_map<uint16_t, size_t> channel_slot;
  uint64_t message_count = 0;  // listed (under the cap)
  uint64_t message_start = UINT64_MAX;
  uint64_t message_end = 0;
  std::vector<ChunkRef> chunks;
  uint64_t chunk_count = 0;
  std::vector<Slice> attachments;

  State(Layout& l, const ByteSource& source) : layout(l), reader(source) {}
};

std::string at(uint64_t offset) {
  return "record at offset " + std::to_string(offset);
}

Json string_map(BinaryReader& f, State& s, uint64_t record) {
  Json out = Json::object();
  const uint32_t bytes = f.u32();
  if (!f.need(bytes)) return out;
  const uint64_t end = f.tell() + bytes;
  for (uint64_t n = 0; f.ok() && f.tell() < end; ++n) {
    if (n >= kMaxMapEntries) {
      s.layout.add_error(at(record) + ": map with more than " + std::to_string(kMaxMapEntries) +
                         " entries; the rest is not shown");
      break;
    }
    std::string key = str(f);
    std::string value = str(f);
    if (!f.ok() || f.tell() > end) {
      s.layout.add_error(at(record) + ": malformed map entry");
      return out;
    }
    out[key] = std::move(value);
  }
  f.seek(end);
  return out;
}

void walk(State& s, uint64_t start, uint64_t end, bool in_chunk);

// The handlers of the larger records below return true when the record's content is then
// checked for a read error (the record's `break`), false when they are done (its `return`).
// A Message record: indexed under its channel.
bool read_message(State& s, BinaryReader& f, uint64_t record_offset) {
  auto& layout = s.layout;
  if (s.in_summary) return true;
  const uint16_t channel = f.u16();
  f.u32();  // sequence
  const uint64_t log_time = f.u64();
  f.u64();  // publish_time
  if (!f.ok()) return true;
  if (s.message_count >= kMaxMessages) {
    if (!s.messages_capped)
      layout.add_error("more than " + std::to_string(kMaxMessages) +
                       " messages; later ones are not listed");
    s.messages_capped = true;
    return false;
  }
  ++s.message_count;
  s.message_start = std::min(s.message_start, log_time);
  s.message_end = std::max(s.message_end, log_time);
  auto [slot, added] = s.channel_slot.try_emplace(channel, s.channels.size());
  if (added) s.channels.push_back(ChannelMessages{channel, 0, {}});
  ChannelMessages& messages = s.channels[slot->second];
  ++messages.count;
  const uint64_t data_length = f.remaining();
  if (data_length > UINT32_MAX) {
    layout.add_error(at(record_offset) + ": message data of " + std::to_string(data_length) +
                     " bytes is larger than a listed message may be (4 GiB); not listed");
    return false;
  }
  messages.records.push_back(
      Record{f.tell(), static_cast<uint32_t>(data_length), uint32_t{channel}});
  return false;
}

// A Chunk record: a slice; an uncompressed one is walked too.
bool read_chunk(State& s, BinaryReader& f, uint64_t record_offset, bool in_chunk) {
  auto& layout = s.layout;
  if (in_chunk || s.in_summary) {
    layout.add_error(at(record_offset) + ": Chunk record where none is allowed");
    return false;
  }
  const uint64_t start_time = f.u64();
  const uint64_t end_time = f.u64();
  const uint64_t uncompressed_size = f.u64();
  const uint32_t crc = f.u32();
  std::string compression = str(f);
  const uint64_t records_len = f.u64();
  if (!f.need(records_len)) return true;
  const uint64_t records = f.tell();
  ++s.chunk_count;
  if (s.chunks.size() >= kMaxChunks) {
    if (s.chunks.size() == kMaxChunks)
      layout.add_error("more than " + std::to_string(kMaxChunks) +
                       " chunks; later ones are not listed");
    return false;
  }
  Json a = Json::object();
  a["compression"] = compression;
  a["compressed_size"] = records_len;
  a["uncompressed_size"] = uncompressed_size;
  a["uncompressed_crc"] = crc;
  a["message_start_time"] = start_time;
  a["message_end_time"] = end_time;
  s.chunks.push_back(ChunkRef{records, records_len, std::move(a)});
  if (compression.empty()) {
    if (uncompressed_size != records_len)
      layout.add_error(at(record_offset) + ": uncompressed chunk of " +
                       std::to_string(records_len) + " bytes declares uncompressed_size " +
                       std::to_string(uncompressed_size));
    walk(s, records, records + records_len, true);
  } else {
    ++s.compressed_chunks;
  }
  return false;
}

// An Attachment record: a slice.
bool read_attachment(State& s, BinaryReader& f, bool in_chunk) {
  auto& layout = s.layout;
  if (in_chunk || s.in_summary) return true;
  const uint64_t log_time = f.u64();
  const uint64_t create_time = f.u64();
  const std::string name = str(f);
  std::string media_type = str(f);
  const uint64_t data_len = f.u64();
  const uint64_t data = f.tell();
  f.skip(data_len);
  const uint32_t crc = f.u32();
  if (!f.ok()) return true;
  if (s.attachment_count++ >= kMaxAttachments) {
    if (s.attachment_count == kMaxAttachments + 1)
      layout.add_error("more than " + std::to_string(kMaxAttachments) +
                       " attachments; later ones are not listed");
    return false;
  }
  Json a = Json::object();
  a["log_time"] = log_time;
  a["create_time"] = create_time;
  a["media_type"] = std::move(media_type);
  a["crc"] = crc;
  s.attachments.push_back(Slice{"attachment/" + name, {data, data_len}, std::move(a)});
  return false;
}

// A Statistics record: the first one is kept.
bool read_statistics(State& s, BinaryReader& f) {
  Json st = Json::object();
  st["message_count"] = f.u64();
  st["schema_count"] = f.u16();
  st["channel_count"] = f.u32();
  st["attachment_count"] = f.u32();
  st["metadata_count"] = f.u32();
  st["chunk_count"] = f.u32();
  st["message_start_time"] = f.u64();
  st["message_end_time"] = f.u64();
  Json counts = Json::object();
  const uint32_t bytes = f.u32();
  if (f.need(bytes)) {
    const uint64_t end = f.tell() + bytes;
    for (uint64_t n = 0; f.ok() && f.tell() < end && n < kMaxMapEntries; ++n) {
      const uint16_t channel = f.u16();
      const uint64_t count = f.u64();
      if (f.ok() && f.tell() <= end) counts[std::to_string(channel)] = count;
    }
  }
  st["channel_message_counts"] = std::move(counts);
  if (!f.ok()) return true;
  if (!s.statistics) s.statistics = std::move(st);
  return false;
}

void record(State& s, uint8_t op, uint64_t record_offset, uint64_t content, uint64_t length,
            bool in_chunk) {
  BinaryReader f = s.reader.sub(content, length);
  auto& layout = s.layout;
  switch (op) {
    case kHeader: {
      if (in_chunk || s.header_seen) {
        layout.add_error(at(record_offset) + ": unexpected Header record");
        return;
      }
      s.header_seen = true;
      s.header["profile"] = str(f);
      s.header["library"] = str(f);
      break;
    }
    case kSchema: {
      Json schema = Json::object();
      schema["id"] = f.u16();
      schema["name"] = str(f);
      schema["encoding"] = str(f);
      const uint32_t data = f.u32();
      f.skip(data);
      schema["data_size"] = data;
      if (!f.ok()) break;
      Json& list = s.in_summary ? s.summary_schemas : s.data_schemas;
      if (list.size() < 65536) list.push_back(std::move(schema));
      break;
    }
    case kChannel: {
      Json channel = Json::object();
      const uint16_t id = f.u16();
      channel["id"] = id;
      const uint16_t schema_id = f.u16();
      std::string topic = str(f);
      channel["topic"] = topic;
      channel["message_encoding"] = str(f);
      channel["schema_id"] = schema_id;
      channel["metadata"] = string_map(f, s, record_offset);
      if (!f.ok()) break;
      s.topic_of.try_emplace(id, std::move(topic));
      Json& list = s.in_summary ? s.summary_channels : s.data_channels;
      if (list.size() < 65536) list.push_back(std::move(channel));
      break;
    }
    case kMessage:
      if (read_message(s, f, record_offset)) break;
      return;
    case kChunk:
      if (read_chunk(s, f, record_offset, in_chunk)) break;
      return;
    case kAttachment:
      if (read_attachment(s, f, in_chunk)) break;
      return;
    case kStatistics:
      if (read_statistics(s, f)) break;
      return;
    case kMetadata: {
      if (in_chunk || s.in_summary) break;
      Json m = Json::object();
      m["name"] = str(f);
      m["metadata"] = string_map(f, s, record_offset);
      if (!f.ok()) break;
      if (s.metadata_count++ < kMaxMetadata) {
        s.metadata.push_back(std::move(m));
      } else if (s.metadata_count == kMaxMetadata + 1) {
        layout.add_error("more than " + std::to_string(kMaxMetadata) +
                         " metadata records; later ones are not shown");
      }
      return;
    }
    default:
      return;  // other and unknown opcodes are skipped by their length
  }
  if (!f.ok())
    layout.add_error(
        at(record_offset) + " (opcode 0x" + std::string(1, "0123456789abcdef"[op >> 4]) +
        std::string(1, "0123456789abcdef"[op & 0xF]) + "): malformed or truncated content");
}

// Walks the records in [start, end); stops at a Footer, a bad length, or a cap.
void walk(State& s, uint64_t start, uint64_t end, bool in_chunk) {
  uint64_t pos = start;
  while (pos < end && !s.stopped) {
    if (s.records++ >= kMaxRecords) {
      s.layout.add_error("more than " + std::to_string(kMaxRecords) +
                         " records; the rest of the file is not indexed");
      s.stopped = true;
      return;
    }
    if (end - pos < kRecordHeaderBytes) {
      s.layout.add_error((in_chunk ? "chunk record at offset " : "record at offset ") +
                         std::to_string(pos) + ": " + std::to_string(end - pos) +
                         " bytes are too few for a record header (truncated)");
      return;
    }
    s.reader.seek(pos);
    const uint8_t op = s.reader.u8();
    const uint64_t length = s.reader.u64();
    if (!s.reader.ok()) {
      s.layout.add_error(at(pos) + ": " + *s.reader.error());
      s.stopped = true;
      return;
    }
    const uint64_t content = pos + kRecordHeaderBytes;
    if (length > end - content) {
      s.layout.add_error(at(pos) + ": length " + std::to_string(length) + " runs past " +
                         (in_chunk ? "its chunk" : "the end of the file") + " (truncated)");
      return;
    }
    if (op == kFooter && !in_chunk) return;
    if (pos == 8 && !in_chunk && op != kHeader)
      s.layout.add_error("the first record is not a Header record");
    record(s, op, pos, content, length, in_chunk);
    if (!s.reader.ok()) {
      s.layout.add_error(at(pos) + ": " + *s.reader.error());
      s.stopped = true;
      return;
    }
    if (op == kDataEnd && !in_chunk) s.in_summary = true;
    pos = content + length;
  }
}

// Summary entries first (they list channels without messages too), then any the data section
// has and the summary lacks.
Json merged(const Json& summary, const Json& data) {
  Json out = summary;
  std::unordered_set<uint64_t> ids;
  for (const auto& item : summary) ids.insert(item["id"].get<uint64_t>());
  for (const auto& item : data)
    if (ids.insert(item["id"].get<uint64_t>()).second) out.push_back(item);
  return out;
}

// A message's attributes, read back from its fixed fields with one read.
Json message_attributes(const ByteSource& source, const Record& record) {
  std::array<std::byte, kMessageFixed> raw{};
  if (!read_fields_before(source, record, raw)) return Json::object();
  Json a = Json::object();
  a["sequence"] = read_le<uint32_t>(raw.data() + 2);
  a["log_time"] = read_le<uint64_t>(raw.data() + 6);
  a["publish_time"] = read_le<uint64_t>(raw.data() + 14);
  a["channel_id"] = read_le<uint16_t>(raw.data());
  return a;
}

bool has_magic(std::span<const std::byte> head) {
  return starts_with(head, kMagic);
}

// The Footer record, the last record before the closing magic.
struct Footer {
  bool present = false;
  Json json = nullptr;
  uint64_t summary_start = 0;
  uint64_t offset = 0;  // where the Footer record would start; 0 when the file is too short
};

// Reads the Footer; nullopt (with the error added) when the bytes there cannot be read.
std::optional<Footer> read_footer(State& s, uint64_t size) {
  Footer ft;
  ft.offset = size >= 8 + kFooterRecordBytes + 8 ? size - 8 - kFooterRecordBytes : 0;
  if (ft.offset >= 8) {
    std::array<std::byte, 8> tail{};
    s.reader.seek(ft.offset);
    const uint8_t op = s.reader.u8();
    const uint64_t len = s.reader.u64();
    ft.summary_start = s.reader.u64();
    const uint64_t summary_offset_start = s.reader.u64();
    s.reader.skip(4);  // summary_crc
    ft.present =
        s.reader.ok() && s.reader.read_into(tail) && has_magic(tail) && op == kFooter && len == 20;
    if (ft.present) {
      ft.json =
          Json{{"summary_start", ft.summary_start}, {"summary_offset_start", summary_offset_start}};
    }
  }
  if (!s.reader.ok()) {
    s.layout.add_error("cannot read the footer: " + *s.reader.error());
    return std::nullopt;
  }
  if (!ft.present) s.layout.add_error("no Footer record and closing magic at the end (truncated?)");
  if (ft.present && ft.summary_start != 0 &&
      (ft.summary_start < 8 || ft.summary_start > ft.offset)) {
    s.layout.add_error("footer summary_start " + std::to_string(ft.summary_start) +
                       " lies outside the file's records; summary ignored");
    ft.summary_start = 0;
  }
  return ft;
}

// One record table per topic, topics in the order of their first message. Channel ids are
// u16, so there are at most 65536 tables. Channels sharing a topic share its table, their
// records merged back into file order.
// A topic's directory is the topic without its leading '/' (every ROS topic has one, and it
// would make an "(empty)" directory): /imu/data is message/imu/data/. When another topic is
// that name already (both "imu" and "/imu"), the '/' stays, so names stay unique.
void add_message_tables(State& s, Layout& layout) {
  std::unordered_set<std::string> topics;
  const auto topic_name = [&s](const ChannelMessages& c) {
    const auto known = s.topic_of.find(c.channel);
    return known != s.topic_of.end() ? known->second : "#" + std::to_string(c.channel);
  };
  for (const auto& c : s.channels)
    if (!c.records.empty()) topics.insert(topic_name(c));
  std::unordered_map<std::string, size_t> topic_table;
  uint64_t unknown_channel = 0;
  for (auto& c : s.channels) {
    if (c.records.empty()) continue;
    if (!s.topic_of.contains(c.channel)) unknown_channel += c.records.size();
    const std::string topic = topic_name(c);
    const auto [t, added] = topic_table.try_emplace(topic, layout.tables.size());
    if (added) {
      const bool strip = topic.starts_with('/') && !topics.contains(topic.substr(1));
      RecordTable table;
      table.dir = "message/" + (strip ? topic.substr(1) : topic);
      table.records = std::move(c.records);
      table.attributes = message_attributes;
      layout.tables.push_back(std::move(table));
      continue;
    }
    auto& records = layout.tables[t->second].records;
    const auto middle = static_cast<std::ptrdiff_t>(records.size());
    records.insert(records.end(), c.records.begin(), c.records.end());
    std::vector<Record>().swap(c.records);
    std::inplace_merge(records.begin(), records.begin() + middle, records.end(),
                       [](const Record& x, const Record& y) { return x.offset < y.offset; });
  }
  for (auto& table : layout.tables)
    if (table.records.capacity() - table.records.size() > table.records.size() / 8)
      table.records.shrink_to_fit();
  if (unknown_channel > 0)
    layout.add_error(std::to_string(unknown_channel) +
                     " message(s) refer to a channel id with no Channel record; they are "
                     "listed under message/#<channel id>/");
}

// No Statistics record: count what the data section shows.
void add_computed_statistics(const State& s, Json& h) {
  Json st = Json::object();
  uint64_t start = s.message_start;
  uint64_t finish = s.message_end;
  Json per_channel = Json::object();
  for (const auto& c : s.chunks) {
    if (c.attributes["compression"] == "") continue;
    start = std::min(start, c.attributes["message_start_time"].get<uint64_t>());
    finish = std::max(finish, c.attributes["message_end_time"].get<uint64_t>());
  }
  st["message_count"] = s.message_count;
  st["schema_count"] = h["schemas"].size();
  st["channel_count"] = h["channels"].size();
  st["attachment_count"] = s.attachment_count;
  st["metadata_count"] = s.metadata_count;
  st["chunk_count"] = s.chunk_count;
  st["message_start_time"] = start == UINT64_MAX ? 0 : start;
  st["message_end_time"] = finish;
  std::vector<std::pair<uint16_t, uint64_t>> sorted;
  sorted.reserve(s.channels.size());
  for (const auto& c : s.channels) sorted.emplace_back(c.channel, c.count);
  std::sort(sorted.begin(), sorted.end());
  for (const auto& [ch, n] : sorted) per_channel[std::to_string(ch)] = n;
  st["channel_message_counts"] = std::move(per_channel);
  h["statistics"] = std::move(st);
  h["statistics_source"] = s.compressed_chunks > 0
                               ? "computed from the data section; messages inside "
                                 "compressed chunks are not counted"
                               : "computed from the data section";
}

// Attachments, then chunks, as slices.
void add_slices(State& s, Layout& layout) {
  layout.slices.reserve(s.attachments.size() + s.chunks.size());
  for (auto& a : s.attachments) layout.slices.push_back(std::move(a));
  const unsigned chunk_width = index_width(s.chunks.size());
  for (size_t i = 0; i < s.chunks.size(); ++i) {
    auto& c = s.chunks[i];
    const bool stored = c.attributes.value("compression", std::string()).empty();
    layout.slices.push_back(Slice{
        numbered("chunk/", i, chunk_width), {c.offset, c.length}, std::move(c.attributes), stored});
  }
}

class Mcap final : public Format {
 public:
  std::string_view name() const noexcept override { return "mcap"; }
  std::string_view description() const noexcept override {
    return "MCAP recording (robotics/telemetry messages, mcap.dev)";
  }
  std::string_view signature() const noexcept override {
    return "89 4d 43 41 50 30 0d 0a ('\\x89MCAP0\\r\\n') at 0";
  }

  bool detect(std::span<const std::byte> head, uint64_t) const override { return has_magic(head); }

  Layout parse(const ByteSource& source) const override {
    Layout layout;
    layout.magic = magic_at_start(kMagic);
    const uint64_t size = source.size();
    std::array<std::byte, 8> magic{};
    if (size < magic.size() || !source.read_exact(0, magic) || !detect(magic, size)) {
      layout.add_error("missing the MCAP magic");
      return layout;
    }
    State s(layout, source);
    auto footer = read_footer(s, size);
    if (!footer) return layout;

    const uint64_t data_end = !footer->present             ? size
                              : footer->summary_start != 0 ? footer->summary_start
                                                           : footer->offset;
    walk(s, 8, data_end, false);
    if (footer->present && footer->summary_start != 0 && !s.stopped) {
      s.in_summary = true;
      walk(s, footer->summary_start, footer->offset, false);
    }

    auto& h = layout.header;
    h["profile"] = s.header.value("profile", "");
    h["library"] = s.header.value("library", "");
    h["summary"] =
        !s.summary_schemas.empty() || !s.summary_channels.empty() || s.statistics.has_value();
    h["schemas"] = merged(s.summary_schemas, s.data_schemas);
    h["channels"] = merged(s.summary_channels, s.data_channels);
    add_message_tables(s, layout);
    if (s.statistics) {
      h["statistics"] = std::move(*s.statistics);
    } else {
      add_computed_statistics(s, h);
    }
    h["metadata"] = std::move(s.metadata);
    h["footer"] = std::move(footer->json);
    add_slices(s, layout);
    return layout;
  }
};

}  // namespace

std::unique_ptr<Format> make_mcap() {
  return std::make_unique<Mcap>();
}

}  // namespace payloadfs::formats

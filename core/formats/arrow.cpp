// Arrow IPC files (Apache Arrow "Columnar Format", IPC file format; Feather v2 is this format):
// "ARROW1" and 2 bytes of padding, the stream's messages, a Footer flatbuffer, its 4-byte
// little-endian length and "ARROW1" again. The footer gives the schema and the Blocks (offset,
// metadata length, body length) of the dictionary and record batches; each block is a message
// (0xFFFFFFFF continuation, a 4-byte length and a Message flatbuffer) followed by its body,
// whose buffers are slices. The flatbuffers are read by support/flatbuffers_reader.

#include <algorithm>
#include <array>
#include <optional>
#include <string>
#include <vector>

#include "core/formats/builtin.hpp"
#include "core/formats/support/flatbuffers_reader.hpp"
#include "core/formats/support/signature.hpp"
#include "core/io/binary_reader.hpp"
#include "core/io/checked_math.hpp"
#include "core/render/json_text.hpp"

namespace payloadfs::formats {
namespace {

using flatbuf::Table;

constexpr auto kMagic = byte_string("ARROW1\0\0");
constexpr uint64_t kMagicBytes = 8;     // "ARROW1" and its padding at the start
constexpr uint64_t kTrailerBytes = 10;  // the footer's length and "ARROW1" at the end
constexpr uint32_t kContinuation = 0xFFFFFFFF;

// Footer and message flatbuffers are copied into memory: no larger than this.
constexpr uint64_t kMaxFlatbufferBytes = 16 << 20;
// All block messages together: blocks may share one message, so their sum is bounded too.
constexpr uint64_t kMaxMessageBytesTotal = uint64_t{256} << 20;
// Errors reported one by one (per chunk, block or buffer); the rest are counted in one line.
constexpr size_t kMaxErrors = 100;
// Fields of the schema (children included) and how deep they nest.
constexpr uint32_t kMaxFields = 10000;
constexpr int kMaxFieldDepth = 64;
// Blocks (dictionary and record batches) read; buffer slices shown; batches listed.
constexpr uint32_t kMaxBlocks = 100000;
constexpr size_t kMaxBufferSlices = 262144;
constexpr uint32_t kMaxListedBatches = 10000;
constexpr uint32_t kMaxNameBytes = 4096;
constexpr uint32_t kMaxValueBytes = 65536;
constexpr uint32_t kMaxMetadataPairs = 1024;
constexpr uint32_t kBlockBytes = 24;  // Block: offset i64, metaDataLength i32, pad, bodyLength i64
constexpr uint32_t kFieldNodeBytes = 16;  // FieldNode: length i64, null_count i64
constexpr uint32_t kBufferBytes = 16;     // Buffer: offset i64, length i64

// An error about one of many items: the first kMaxErrors are shown, then one line says more.
void add_bounded_error(Layout& layout, std::string message) {
  if (layout.errors.size() < kMaxErrors) {
    layout.add_error(std::move(message));
  } else if (layout.errors.size() == kMaxErrors) {
    layout.add_error("more than " + std::to_string(kMaxErrors) + " errors; the rest are not shown");
  }
}

constexpr std::array<std::string_view, 27> kTypeNames = {"none",
                                                         "null",
                                                         "int",
                                                         "floatingpoint",
                                                         "binary",
                                                         "utf8",
                                                         "bool",
                                                         "decimal",
                                                         "date",
                                                         "time",
                                                         "timestamp",
                                                         "interval",
                                                         "list",
                                                         "struct",
                                                         "union",
                                                         "fixedsizebinary",
                                                         "fixedsizelist",
                                                         "map",
                                                         "duration",
                                                         "large_binary",
                                                         "large_utf8",
                                                         "large_list",
                                                         "run_end_encoded",
                                                         "binary_view",
                                                         "utf8_view",
                                                         "list_view",
                                                         "large_list_view"};
enum TypeId : uint8_t {
  kNull = 1,
  kInt = 2,
  kFloat = 3,
  kBinary = 4,
  kUtf8 = 5,
  kBool = 6,
  kList = 12,
  kStruct = 13,
  kUnion = 14,
  kFixedSizeList = 16,
  kMap = 17,
  kLargeBinary = 19,
  kLargeUtf8 = 20,
  kLargeList = 21,
  kRunEndEncoded = 22,
  kBinaryView = 23,
  kUtf8View = 24,
  kListView = 25,
  kLargeListView = 26
};

struct Field {
  std::string name;
  std::string type;  // Arrow's name: int32, double, utf8, list, ...
  uint8_t type_id = 0;
  bool dense_union = false;
  std::optional<int64_t> dictionary_id;
  std::string index_type;
  std::vector<Field> children;
};

// The roles of a field's buffers in a batch body, in order (columnar format, "Buffer Listing").
std::vector<std::string> buffer_roles(const Field& f, bool as_indices) {
  if (as_indices) return {"validity", "data"};
  switch (f.type_id) {
    case kNull:
    case kRunEndEncoded:
      return {};
    case kBinary:
    case kUtf8:
    case kLargeBinary:
    case kLargeUtf8:
      return {"validity", "offsets", "data"};
    case kList:
    case kLargeList:
    case kMap:
      return {"validity", "offsets"};
    case kStruct:
    case kFixedSizeList:
      return {"validity"};
    case kUnion:
      return f.dense_union ? std::vector<std::string>{"types", "offsets"}
                           : std::vector<std::string>{"types"};
    case kBinaryView:
    case kUtf8View:
      return {"validity", "views"};
    case kListView:
    case kLargeListView:
      return {"validity", "offsets", "sizes"};
    default:
      return {"validity", "data"};
  }
}

std::string int_name(const flatbuf::Reader& fb, const Table& t) {
  const bool is_signed = fb.scalar<uint8_t>(t, 1, 0) != 0;
  return (is_signed ? "int" : "uint") + std::to_string(fb.scalar<int32_t>(t, 0, 0));
}

// A Type union member's name, as Arrow's ToString spells the common ones.
std::string type_name(const flatbuf::Reader& fb, uint8_t id, const std::optional<Table>& t) {
  if (id == kInt && t) return int_name(fb, *t);
  if (id == kFloat) {
    const int16_t precision = t ? fb.scalar<int16_t>(*t, 0, 0) : 0;
    return precision == 0 ? "halffloat" : precision == 1 ? "float" : "double";
  }
  if (id < kTypeNames.size()) return std::string(kTypeNames[id]);
  return "type " + std::to_string(id);
}

struct Schema {
  uint32_t field_count = 0;
  bool cut = false;
};

// KeyValue vector (field `id` of `t`) into a JSON object.
Json read_metadata(const flatbuf::Reader& fb, const Table& t, int id, bool& cut) {
  Json out = Json::object();
  const auto v = fb.vector(t, id, 4);
  if (!v) return out;
  for (uint32_t i = 0; i < v->count; ++i) {
    if (i >= kMaxMetadataPairs) {
      cut = true;
      break;
    }
    const auto kv = fb.table_element(*v, i);
    if (!kv) continue;
    const auto key = fb.string(*kv, 0, kMaxNameBytes);
    const auto value = fb.string(*kv, 1, kMaxValueBytes);
    out[utf8_or_escaped(key.value_or(""))] = utf8_or_escaped(value.value_or(""));
  }
  return out;
}

// One Field table (and its children) into `out` and its header entry; false when malformed.
bool read_field(const flatbuf::Reader& fb, const Table& t, int depth, Schema& s, Field& out,
                Json& entry, Layout& layout) {
  if (depth > kMaxFieldDepth || ++s.field_count > kMaxFields) {
    layout.add_error("schema fields nested deeper than " + std::to_string(kMaxFieldDepth) +
                     " or more than " + std::to_string(kMaxFields) + " fields (a loop?)");
    return false;
  }
  out.name = utf8_or_escaped(fb.string(t, 0, kMaxNameBytes).value_or(""));
  out.type_id = fb.scalar<uint8_t>(t, 2, 0);
  const auto type = fb.table(t, 3);
  out.type = type_name(fb, out.type_id, type);
  if (out.type_id == kUnion && type) out.dense_union = fb.scalar<int16_t>(*type, 0, 0) == 1;
  entry = {{"name", out.name}, {"type", out.type}, {"nullable", fb.scalar<uint8_t>(t, 1, 0) != 0}};
  if (const auto dict = fb.table(t, 4)) {
    out.dictionary_id = fb.scalar<int64_t>(*dict, 0, 0);
    const auto index = fb.table(*dict, 1);
    out.index_type = index ? int_name(fb, *index) : "int32";
    entry["dictionary"] = {{"id", *out.dictionary_id},
                           {"index_type", out.index_type},
                           {"ordered", fb.scalar<uint8_t>(*dict, 2, 0) != 0}};
  }
  entry["metadata"] = read_metadata(fb, t, 6, s.cut);
  if (const auto children = fb.vector(t, 5, 4)) {
    Json list = Json::array();
    for (uint32_t i = 0; i < children->count; ++i) {
      const auto child = fb.table_element(*children, i);
      if (!child) {
        layout.add_error("field " + out.name + ": child " + std::to_string(i) + " out of bounds");
        return false;
      }
      Field f;
      Json e;
      if (!read_field(fb, *child, depth + 1, s, f, e, layout)) return false;
      out.children.push_back(std::move(f));
      list.push_back(std::move(e));
    }
    entry["children"] = std::move(list);
  }
  return true;
}

// A flatbuffer of `length` bytes at `offset`, copied into memory; empty with an error if not.
std::vector<std::byte> read_flatbuffer(BinaryReader& file, uint64_t offset, uint64_t length,
                                       const std::string& what, Layout& layout) {
  if (length > kMaxFlatbufferBytes || !range_within(offset, length, file.size())) {
    add_bounded_error(layout, what + ": " + std::to_string(length) + " bytes at offset " +
                                  std::to_string(offset) +
                                  " lie past the end of the file or over " +
                                  std::to_string(kMaxFlatbufferBytes) + " bytes");
    return {};
  }
  std::vector<std::byte> bytes(length);
  file.seek(offset);
  if (!file.read_into(bytes)) {
    add_bounded_error(layout, what + ": cannot read: " + file.error().value_or(""));
    return {};
  }
  return bytes;
}

struct Batch {
  std::string prefix;  // "batch/<i>" or "dictionary/<id>"
  uint64_t body = 0;   // the body's offset in the file
  uint64_t body_length = 0;
  std::optional<std::string> compression;
};

// A cursor over a RecordBatch's nodes and buffers, as the fields consume them.
struct BatchCursor {
  const flatbuf::Reader& fb;
  flatbuf::Vector nodes;
  flatbuf::Vector buffers;
  uint32_t node = 0;
  uint32_t buffer = 0;
  // Data buffers of view-type fields beyond their views (variadicBufferCounts), in field order.
  std::optional<flatbuf::Vector> variadic;
  uint32_t view_field = 0;
};

// The variadic data buffers a view-type field adds (bounded by the buffers left).
uint64_t variadic_count(BatchCursor& c, const Field& f) {
  if ((f.type_id != kBinaryView && f.type_id != kUtf8View) || !c.variadic ||
      c.view_field >= c.variadic->count)
    return 0;
  const int64_t n = c.fb.read<int64_t>(c.variadic->pos + 8 * c.view_field++);
  return n < 0 ? 0 : std::min<uint64_t>(static_cast<uint64_t>(n), c.buffers.count);
}

// The buffers of one field (and its children) into slices; false when the lists run out.
bool add_field_buffers(BatchCursor& c, const Field& f, const std::string& path, bool top,
                       const Batch& b, Layout& layout) {
  if (c.node >= c.nodes.count) {
    add_bounded_error(layout, b.prefix + ": fewer field nodes than schema fields");
    return false;
  }
  const uint32_t at = c.nodes.pos + kFieldNodeBytes * c.node++;
  const int64_t rows = c.fb.read<int64_t>(at);
  const int64_t nulls = c.fb.read<int64_t>(at + 8);
  const bool indices = top && f.dictionary_id.has_value();
  auto roles = buffer_roles(f, indices);
  if (!indices) roles.resize(roles.size() + variadic_count(c, f), "data");
  for (size_t k = 0; k < roles.size(); ++k) {
    if (c.buffer >= c.buffers.count) {
      add_bounded_error(layout, b.prefix + ": fewer buffers than the schema's fields need");
      return false;
    }
    const uint32_t bp = c.buffers.pos + kBufferBytes * c.buffer++;
    const uint64_t offset = c.fb.read<uint64_t>(bp);
    const uint64_t length = c.fb.read<uint64_t>(bp + 8);
    const std::string name = b.prefix + "/" + path + "/" + std::to_string(k);
    if (!range_within(offset, length, b.body_length)) {
      add_bounded_error(layout, name + ": buffer (offset " + std::to_string(offset) + ", " +
                                    std::to_string(length) + " bytes) lies outside the batch body");
      continue;
    }
    if (layout.slices.size() >= kMaxBufferSlices) return false;
    Json a = {{"role", roles[k]},
              {"type", indices ? f.index_type : f.type},
              {"rows", rows},
              {"null_count", nulls}};
    if (b.compression) a["compression"] = *b.compression;
    Slice slice{name, {b.body + offset, length}, std::move(a)};
    slice.stored = !b.compression.has_value();
    layout.slices.push_back(std::move(slice));
  }
  if (indices) return true;  // the dictionary's values come in dictionary batches
  for (const auto& child : f.children)
    if (!add_field_buffers(c, child, path + "." + child.name, false, b, layout)) return false;
  return true;
}

// The field a dictionary batch holds values for (the one whose encoding has its id).
const Field* dictionary_field(const std::vector<Field>& fields, int64_t id) {
  for (const auto& f : fields) {
    if (f.dictionary_id == id) return &f;
    if (const Field* child = dictionary_field(f.children, id)) return child;
  }
  return nullptr;
}

struct File {
  std::vector<Field> fields;
  Json batches = Json::array();
  Json dictionaries = Json::array();
  uint64_t footer_start = 0;
  uint64_t message_bytes = 0;  // read so far, for kMaxMessageBytesTotal
};

// A block's message header (RecordBatch, or the DictionaryBatch holding one) and body.
struct Message {
  std::vector<std::byte> bytes;
  uint8_t header_type = 0;
  uint64_t body = 0;
};

std::optional<Message> read_message(BinaryReader& file, const flatbuf::Reader& footer,
                                    uint32_t block_at, const std::string& where, File& f,
                                    uint64_t& body_length, Layout& layout) {
  const uint64_t offset = footer.read<uint64_t>(block_at);
  const uint64_t meta_length = static_cast<uint32_t>(footer.read<int32_t>(block_at + 8));
  body_length = footer.read<uint64_t>(block_at + 16);
  const auto body = checked_add(offset, meta_length);
  if (!body || offset < kMagicBytes || !range_within(*body, body_length, f.footer_start)) {
    add_bounded_error(layout, where + ": block (offset " + std::to_string(offset) +
                                  ") lies outside the data before the footer");
    return std::nullopt;
  }
  file.seek(offset);
  uint64_t length = file.u32();
  uint64_t start = offset + 4;
  if (length == kContinuation) {
    length = file.u32();
    start += 4;
  }
  if (!file.ok() || start + length > *body) {
    add_bounded_error(layout, where + ": message length runs past its block's metadata");
    return std::nullopt;
  }
  f.message_bytes += length;
  if (f.message_bytes > kMaxMessageBytesTotal) {
    layout.add_error(where + ": block messages add up to more than " +
                     std::to_string(kMaxMessageBytesTotal) + " bytes; not read");
    return std::nullopt;
  }
  Message m;
  m.bytes = read_flatbuffer(file, start, length, where + " message", layout);
  if (m.bytes.empty()) {
    if (length == 0) add_bounded_error(layout, where + ": empty message (end of stream)");
    return std::nullopt;
  }
  m.body = *body;
  return m;
}

// One block: its message's buffers become slices.
void read_block(BinaryReader& file, const flatbuf::Reader& footer, uint32_t block_at,
                bool dictionary, uint32_t index, File& f, Layout& layout) {
  const std::string where =
      (dictionary ? "dictionary block " : "record batch ") + std::to_string(index);
  uint64_t body_length = 0;
  auto m = read_message(file, footer, block_at, where, f, body_length, layout);
  if (!m) return;
  const flatbuf::Reader fb(m->bytes);
  const auto message = fb.root();
  const uint8_t type = message ? fb.scalar<uint8_t>(*message, 1, 0) : 0;
  auto header = message ? fb.table(*message, 2) : std::nullopt;
  std::optional<int64_t> dict_id;
  bool is_delta = false;
  if (header && dictionary && type == 2) {
    dict_id = fb.scalar<int64_t>(*header, 0, 0);
    is_delta = fb.scalar<uint8_t>(*header, 2, 0) != 0;
    header = fb.table(*header, 1);
  } else if (type != 3 || dictionary) {
    header = std::nullopt;
  }
  if (!header) {
    add_bounded_error(layout, where + ": not a " +
                                  (dictionary ? "DictionaryBatch" : "RecordBatch") +
                                  " message, or its header lies out of bounds");
    return;
  }
  Batch b{dictionary ? "dictionary/" + std::to_string(*dict_id) : "batch/" + std::to_string(index),
          m->body, body_length, std::nullopt};
  if (const auto compression = fb.table(*header, 3))
    b.compression = fb.scalar<int8_t>(*compression, 0, 0) == 1 ? "zstd" : "lz4_frame";
  const int64_t rows = fb.scalar<int64_t>(*header, 0, 0);
  const auto nodes = fb.vector(*header, 1, kFieldNodeBytes);
  const auto buffers = fb.vector(*header, 2, kBufferBytes);
  if (!nodes || !buffers) {
    add_bounded_error(layout, where + ": nodes or buffers missing or out of bounds");
    return;
  }
  BatchCursor c{fb, *nodes, *buffers, 0, 0, fb.vector(*header, 4, 8), 0};
  Json entry = {{"rows", rows}, {"offset", m->body}, {"body_length", body_length}};
  if (dictionary) {
    const Field* field = dictionary_field(f.fields, *dict_id);
    if (field == nullptr) {
      add_bounded_error(layout,
                        where + ": no schema field uses dictionary id " + std::to_string(*dict_id));
      return;
    }
    Field values = *field;
    values.dictionary_id.reset();
    add_field_buffers(c, values, values.name, true, b, layout);
    entry["id"] = *dict_id;
    entry["is_delta"] = is_delta;
    if (f.dictionaries.size() < kMaxListedBatches) f.dictionaries.push_back(std::move(entry));
    return;
  }
  for (const auto& field : f.fields)
    if (!add_field_buffers(c, field, field.name, true, b, layout)) break;
  if (f.batches.size() < kMaxListedBatches) f.batches.push_back(std::move(entry));
}

void read_blocks(BinaryReader& file, const flatbuf::Reader& footer, const Table& root, int id,
                 File& f, Layout& layout) {
  const auto blocks = footer.vector(root, id, kBlockBytes);
  if (!blocks) {
    if (footer.has(root, id)) layout.add_error("footer: block list out of bounds");
    return;
  }
  for (uint32_t i = 0; i < blocks->count; ++i) {
    if (i >= kMaxBlocks || layout.slices.size() >= kMaxBufferSlices) {
      layout.add_error("more than " + std::to_string(kMaxBlocks) + " blocks or " +
                       std::to_string(kMaxBufferSlices) + " buffer slices; the rest are not shown");
      return;
    }
    if (f.message_bytes > kMaxMessageBytesTotal) return;  // reported once
    read_block(file, footer, blocks->pos + kBlockBytes * i, id == 2, i, f, layout);
  }
}

// The schema (fields, metadata) into the header and `f.fields`.
void read_schema(const flatbuf::Reader& fb, const Table& root, File& f, Layout& layout) {
  const auto schema = fb.table(root, 1);
  if (!schema) {
    layout.add_error("footer: no schema, or its schema lies out of bounds");
    return;
  }
  Schema s;
  Json fields = Json::array();
  if (const auto list = fb.vector(*schema, 1, 4)) {
    for (uint32_t i = 0; i < list->count; ++i) {
      const auto t = fb.table_element(*list, i);
      Field field;
      Json entry;
      if (!t) {
        layout.add_error("schema: field " + std::to_string(i) + " out of bounds");
        break;
      }
      if (!read_field(fb, *t, 0, s, field, entry, layout)) break;
      f.fields.push_back(std::move(field));
      fields.push_back(std::move(entry));
    }
  }
  auto& h = layout.header;
  h["schema"] = {{"endianness", fb.scalar<int16_t>(*schema, 0, 0) == 0 ? "little" : "big"},
                 {"fields", std::move(fields)}};
  h["metadata"] = read_metadata(fb, *schema, 2, s.cut);
  if (s.cut)
    layout.add_error("more than " + std::to_string(kMaxMetadataPairs) +
                     " metadata pairs; the rest are not shown");
}

class Arrow final : public Format {
 public:
  std::string_view name() const noexcept override { return "arrow"; }
  std::string_view description() const noexcept override {
    return "Apache Arrow IPC file (Feather v2)";
  }
  std::string_view signature() const noexcept override {
    return "41 52 52 4f 57 31 00 00 (\"ARROW1\\0\\0\") at 0";
  }

  bool detect(std::span<const std::byte> head, uint64_t size) const override {
    return size >= kMagicBytes + kTrailerBytes && starts_with(head, kMagic);
  }

  Layout parse(const ByteSource& source) const override {
    Layout layout;
    layout.magic = magic_at_start(kMagic);
    BinaryReader file(source, Endian::little);
    const uint64_t size = source.size();
    if (size < kMagicBytes + kTrailerBytes) {
      layout.add_error("file too short for Arrow's magic and footer");
      return layout;
    }
    file.seek(size - kTrailerBytes);
    const uint64_t length = file.u32();
    if (file.text(6) != "ARROW1" || !file.ok()) {
      layout.add_error("no \"ARROW1\" at the end of the file (cut, or an Arrow stream)");
      return layout;
    }
    if (length > size - kTrailerBytes - kMagicBytes) {
      layout.add_error("footer length " + std::to_string(length) +
                       " runs past the start of the file");
      return layout;
    }
    File f;
    f.footer_start = size - kTrailerBytes - length;
    const auto bytes = read_flatbuffer(file, f.footer_start, length, "footer", layout);
    const flatbuf::Reader fb(bytes);
    const auto root = fb.root();
    if (!root) {
      if (!bytes.empty()) layout.add_error("footer: root table out of bounds");
      return layout;
    }
    layout.header["version"] = fb.scalar<int16_t>(*root, 0, 0) + 1;  // MetadataVersion V1 = 0
    read_schema(fb, *root, f, layout);
    read_blocks(file, fb, *root, 2, f, layout);
    read_blocks(file, fb, *root, 3, f, layout);
    layout.header["batches"] = std::move(f.batches);
    layout.header["dictionaries"] = std::move(f.dictionaries);
    return layout;
  }
};

}  // namespace

std::unique_ptr<Format> make_arrow() {
  return std::make_unique<Arrow>();
}

}  // namespace payloadfs::formats

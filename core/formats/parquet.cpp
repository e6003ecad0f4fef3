// Apache Parquet files (parquet-format's README and parquet.thrift): "PAR1", the column chunks'
// pages, the footer (FileMetaData in the Thrift compact protocol), its 4-byte little-endian
// length and "PAR1" again. The footer gives the schema, the row groups and, for each column
// chunk, where its pages are and how they are encoded. One slice per column chunk, as stored
// (pages are compressed by `codec`); nothing is decompressed.

#include <array>
#include <optional>
#include <string>
#include <vector>

#include "core/formats/builtin.hpp"
#include "core/formats/support/signature.hpp"
#include "core/formats/support/thrift_compact.hpp"
#include "core/io/binary_reader.hpp"
#include "core/io/checked_math.hpp"
#include "core/render/json_text.hpp"

namespace payloadfs::formats {
namespace {

using thrift::CompactReader;
using thrift::Type;

constexpr auto kMagic = byte_string("PAR1");
constexpr uint64_t kMagicBytes = 4;
constexpr uint64_t kTrailerBytes = 8;  // footer length and the final "PAR1"

// Column chunks shown as slices (one per chunk); the rest are counted in the header only.
constexpr uint64_t kMaxChunkSlices = 65536;
// Row groups and schema elements listed in header.json; key/value pairs shown.
constexpr uint64_t kMaxListedRowGroups = 10000;
constexpr uint64_t kMaxListedSchemaElements = 10000;
constexpr uint64_t kMaxListedKeyValues = 1024;
// Longest name shown, and longest key/value value (ARROW:schema can be a few KB).
constexpr uint64_t kMaxNameBytes = 4096;
constexpr uint64_t kMaxValueBytes = 65536;
// Components of a column's path_in_schema kept (its nesting depth).
constexpr uint64_t kMaxPathParts = 256;
// Errors reported one by one (per chunk, block or buffer); the rest are counted in one line.
constexpr size_t kMaxErrors = 100;

// An error about one of many items: the first kMaxErrors are shown, then one line says more.
void add_bounded_error(Layout& layout, std::string message) {
  if (layout.errors.size() < kMaxErrors) {
    layout.add_error(std::move(message));
  } else if (layout.errors.size() == kMaxErrors) {
    layout.add_error("more than " + std::to_string(kMaxErrors) + " errors; the rest are not shown");
  }
}

constexpr std::array<std::string_view, 8> kTypeNames = {
    "BOOLEAN", "INT32", "INT64", "INT96", "FLOAT", "DOUBLE", "BYTE_ARRAY", "FIXED_LEN_BYTE_ARRAY"};
constexpr std::array<std::string_view, 8> kCodecNames = {
    "UNCOMPRESSED", "SNAPPY", "GZIP", "LZO", "BROTLI", "LZ4", "ZSTD", "LZ4_RAW"};
constexpr std::array<std::string_view, 3> kRepetitionNames = {"REQUIRED", "OPTIONAL", "REPEATED"};
constexpr std::array<std::string_view, 10> kEncodingNames = {
    "PLAIN",          "GROUP_VAR_INT",       "PLAIN_DICTIONARY",        "RLE",
    "BIT_PACKED",     "DELTA_BINARY_PACKED", "DELTA_LENGTH_BYTE_ARRAY", "DELTA_BYTE_ARRAY",
    "RLE_DICTIONARY", "BYTE_STREAM_SPLIT"};
constexpr std::array<std::string_view, 22> kConvertedNames = {"UTF8",
                                                              "MAP",
                                                              "MAP_KEY_VALUE",
                                                              "LIST",
                                                              "ENUM",
                                                              "DECIMAL",
                                                              "DATE",
                                                              "TIME_MILLIS",
                                                              "TIME_MICROS",
                                                              "TIMESTAMP_MILLIS",
                                                              "TIMESTAMP_MICROS",
                                                              "UINT_8",
                                                              "UINT_16",
                                                              "UINT_32",
                                                              "UINT_64",
                                                              "INT_8",
                                                              "INT_16",
                                                              "INT_32",
                                                              "INT_64",
                                                              "JSON",
                                                              "BSON",
                                                              "INTERVAL"};

// A known enum value by its parquet.thrift name, else its number.
template <size_t N>
Json enum_name(const std::array<std::string_view, N>& names, int64_t value) {
  if (value >= 0 && static_cast<uint64_t>(value) < N) return std::string(names[value]);
  return value;
}

struct ColumnChunk {
  std::string path;
  Json path_in_schema = Json::array();
  std::optional<std::string> file_path;
  int64_t type = -1;
  int64_t codec = -1;
  Json encodings = Json::array();
  int64_t num_values = 0;
  int64_t uncompressed = 0;
  int64_t compressed = -1;
  std::optional<int64_t> data_page_offset;
  std::optional<int64_t> dictionary_page_offset;
  std::optional<int64_t> index_page_offset;
};

struct Footer {
  uint64_t start = 0;  // the footer's offset: every chunk lies before it
  std::optional<int64_t> version;
  std::optional<int64_t> num_rows;
  std::optional<std::string> created_by;
  Json schema = Json::array();
  Json key_value_metadata = Json::object();
  Json row_groups = Json::array();
  uint64_t row_group_count = 0;
  uint64_t chunk_count = 0;
  bool values_cut = false;
};

// Reads an integer field, or skips a field of another type (a writer's mistake, not ours).
bool integer_field(CompactReader& t, Type type, int64_t& out) {
  if (type != Type::byte && type != Type::i16 && type != Type::i32 && type != Type::i64)
    return false;
  out = t.integer(type);
  return true;
}

bool integer_field(CompactReader& t, Type type, std::optional<int64_t>& out) {
  int64_t value = 0;
  if (!integer_field(t, type, value)) return false;
  out = value;
  return true;
}

bool string_field(CompactReader& t, Type type, std::string& out, uint64_t max_bytes,
                  bool* cut = nullptr) {
  if (type != Type::binary) return false;
  out = utf8_or_escaped(t.binary(max_bytes, cut));
  return true;
}

// list<KeyValue{key=1, value=2}> into `out` (key -> value).
void read_key_values(CompactReader& t, int depth, Json& out, bool& cut) {
  t.read_list(depth, [&](uint64_t i, Type type, int d) {
    if (type != Type::struct_) return false;
    std::string key, value;
    bool value_cut = false;
    t.read_struct(d, [&](int16_t id, Type ft, int) {
      if (id == 1) return string_field(t, ft, key, kMaxNameBytes);
      if (id == 2) return string_field(t, ft, value, kMaxValueBytes, &value_cut);
      return false;
    });
    cut = cut || value_cut || i >= kMaxListedKeyValues;
    if (i < kMaxListedKeyValues) out[key] = value;
    return true;
  });
}

// One SchemaElement into a header entry.
Json read_schema_element(CompactReader& t, int depth) {
  Json e = Json::object();
  t.read_struct(depth, [&](int16_t id, Type type, int) {
    int64_t v = 0;
    std::string s;
    switch (id) {
      case 1:
        if (!integer_field(t, type, v)) return false;
        e["type"] = enum_name(kTypeNames, v);
        return true;
      case 2:
        if (!integer_field(t, type, v)) return false;
        e["type_length"] = v;
        return true;
      case 3:
        if (!integer_field(t, type, v)) return false;
        e["repetition_type"] = enum_name(kRepetitionNames, v);
        return true;
      case 4:
        if (!string_field(t, type, s, kMaxNameBytes)) return false;
        e["name"] = s;
        return true;
      case 5:
        if (!integer_field(t, type, v)) return false;
        e["num_children"] = v;
        return true;
      case 6:
        if (!integer_field(t, type, v)) return false;
        e["converted_type"] = enum_name(kConvertedNames, v);
        return true;
      default:
        return false;
    }
  });
  return e;
}

// ColumnMetaData (ColumnChunk.meta_data).
void read_column_meta(CompactReader& t, int depth, ColumnChunk& c, bool& cut) {
  t.read_struct(depth, [&](int16_t id, Type type, int d) {
    switch (id) {
      case 1:
        return integer_field(t, type, c.type);
      case 2:
        if (type != Type::list) return false;
        t.read_list(d, [&](uint64_t, Type et, int) {
          int64_t v = 0;
          if (!integer_field(t, et, v)) return false;
          if (c.encodings.size() < kEncodingNames.size() * 2)
            c.encodings.push_back(enum_name(kEncodingNames, v));
          return true;
        });
        return true;
      case 3:
        if (type != Type::list) return false;
        t.read_list(d, [&](uint64_t i, Type et, int) {
          std::string part;
          if (i >= kMaxPathParts || !string_field(t, et, part, kMaxNameBytes)) return false;
          c.path += (i == 0 ? "" : ".") + part;
          c.path_in_schema.push_back(part);
          return true;
        });
        return true;
      case 4:
        return integer_field(t, type, c.codec);
      case 5:
        return integer_field(t, type, c.num_values);
      case 6:
        return integer_field(t, type, c.uncompressed);
      case 7:
        return integer_field(t, type, c.compressed);
      case 8: {
        if (type != Type::list) return false;
        Json ignored = Json::object();
        read_key_values(t, d, ignored, cut);
        return true;
      }
      case 9:
        return integer_field(t, type, c.data_page_offset);
      case 10:
        return integer_field(t, type, c.index_page_offset);
      case 11:
        return integer_field(t, type, c.dictionary_page_offset);
      default:
        return false;
    }
  });
}

// Where a chunk's pages start: its dictionary page, when set and before the data pages.
std::optional<int64_t> chunk_start(const ColumnChunk& c) {
  if (c.dictionary_page_offset && *c.dictionary_page_offset > 0 &&
      (!c.data_page_offset || *c.dictionary_page_offset < *c.data_page_offset))
    return c.dictionary_page_offset;
  return c.data_page_offset;
}

// A column chunk's slice, or an error when its pages lie outside the data part of the file.
void add_chunk_slice(const ColumnChunk& c, uint64_t group, Footer& f, Layout& layout) {
  const std::string name = "row_group/" + std::to_string(group) + "/" + c.path;
  if (c.file_path) {
    add_bounded_error(layout, name + ": its pages are in another file (" + *c.file_path + ")");
    return;
  }
  const auto start = chunk_start(c);
  if (!start || *start < 0 || c.compressed < 0 ||
      !range_within(static_cast<uint64_t>(*start), static_cast<uint64_t>(c.compressed), f.start) ||
      static_cast<uint64_t>(*start) < kMagicBytes) {
    add_bounded_error(layout, name + ": its pages (offset " + std::to_string(start.value_or(-1)) +
                                  ", " + std::to_string(c.compressed) +
                                  " bytes) lie outside the data before the footer");
    return;
  }
  if (layout.slices.size() >= kMaxChunkSlices) return;  // reported once, after the footer
  Json a = {{"codec", enum_name(kCodecNames, c.codec)},
            {"type", enum_name(kTypeNames, c.type)},
            {"num_values", c.num_values},
            {"total_compressed_size", c.compressed},
            {"total_uncompressed_size", c.uncompressed},
            {"encodings", c.encodings},
            {"path_in_schema", c.path_in_schema},
            {"data_page_offset", c.data_page_offset.value_or(-1)}};
  if (c.dictionary_page_offset) a["dictionary_page_offset"] = *c.dictionary_page_offset;
  Slice slice{
      name, {static_cast<uint64_t>(*start), static_cast<uint64_t>(c.compressed)}, std::move(a)};
  slice.stored = false;  // pages with their headers, compressed by `codec`
  layout.slices.push_back(std::move(slice));
}

// One RowGroup: its column chunks become slices, its sizes a header entry.
void read_row_group(CompactReader& t, int depth, uint64_t group, Footer& f, Layout& layout) {
  Json entry = Json::object();
  uint64_t columns = 0;
  t.read_struct(depth, [&](int16_t id, Type type, int d) {
    int64_t v = 0;
    if (id == 1 && type == Type::list) {
      t.read_list(d, [&](uint64_t, Type et, int cd) {
        if (et != Type::struct_) return false;
        ColumnChunk c;
        t.read_struct(cd, [&](int16_t cid, Type ct, int md) {
          if (cid == 1) {
            std::string path;
            if (!string_field(t, ct, path, kMaxNameBytes)) return false;
            c.file_path = path;
            return true;
          }
          if (cid == 3 && ct == Type::struct_) {
            read_column_meta(t, md, c, f.values_cut);
            return true;
          }
          return false;
        });
        if (t.ok()) add_chunk_slice(c, group, f, layout);
        ++columns;
        return true;
      });
      return true;
    }
    if ((id == 2 || id == 3) && integer_field(t, type, v)) {
      entry[id == 2 ? "total_byte_size" : "num_rows"] = v;
      return true;
    }
    if (id == 6 && integer_field(t, type, v)) {
      entry["total_compressed_size"] = v;
      return true;
    }
    return false;
  });
  entry["columns"] = columns;
  f.chunk_count += columns;
  if (group < kMaxListedRowGroups) f.row_groups.push_back(std::move(entry));
}

// FileMetaData.
void read_file_metadata(CompactReader& t, Footer& f, Layout& layout) {
  t.read_struct(0, [&](int16_t id, Type type, int d) {
    switch (id) {
      case 1:
        return integer_field(t, type, f.version);
      case 2:
        if (type != Type::list) return false;
        t.read_list(d, [&](uint64_t i, Type et, int ed) {
          if (et != Type::struct_) return false;
          Json e = read_schema_element(t, ed);
          if (i < kMaxListedSchemaElements) f.schema.push_back(std::move(e));
          return true;
        });
        return true;
      case 3:
        return integer_field(t, type, f.num_rows);
      case 4:
        if (type != Type::list) return false;
        f.row_group_count = t.read_list(d, [&](uint64_t i, Type et, int ed) {
          if (et != Type::struct_) return false;
          read_row_group(t, ed, i, f, layout);
          return true;
        });
        return true;
      case 5:
        if (type != Type::list) return false;
        read_key_values(t, d, f.key_value_metadata, f.values_cut);
        return true;
      case 6: {
        std::string s;
        if (!string_field(t, type, s, kMaxValueBytes)) return false;
        f.created_by = s;
        return true;
      }
      default:
        return false;
    }
  });
}

// The footer's range from the trailer, or nullopt with an error.
std::optional<ByteRange> find_footer(const ByteSource& source, Layout& layout) {
  const uint64_t size = source.size();
  if (size < kMagicBytes + kTrailerBytes) {
    layout.add_error("file of " + std::to_string(size) + " bytes is too short for Parquet's " +
                     "magic, footer length and final magic");
    return std::nullopt;
  }
  BinaryReader r(source, Endian::little);
  r.seek(size - kTrailerBytes);
  const uint64_t length = r.u32();
  const std::string tail = r.text(kMagicBytes);
  if (!r.ok()) {
    layout.add_error("cannot read the trailer: " + r.error().value_or(""));
    return std::nullopt;
  }
  if (tail == "PARE") {
    layout.add_error("encrypted footer (PARE): not decoded");
    return std::nullopt;
  }
  if (tail != "PAR1") {
    layout.add_error("no \"PAR1\" at the end of the file (the file is cut or not Parquet)");
    return std::nullopt;
  }
  const uint64_t room = size - kTrailerBytes - kMagicBytes;
  if (length > room) {
    layout.add_error("footer length " + std::to_string(length) + " runs past the start of " +
                     "the file (" + std::to_string(room) + " bytes before the trailer)");
    return std::nullopt;
  }
  return ByteRange{size - kTrailerBytes - length, length};
}

void fill_header(Footer& f, Layout& layout) {
  auto& h = layout.header;
  if (f.version) h["version"] = *f.version;
  h["num_rows"] = f.num_rows.value_or(0);
  h["created_by"] = f.created_by.value_or("");
  h["footer_offset"] = f.start;
  h["schema"] = std::move(f.schema);
  h["row_group_count"] = f.row_group_count;
  h["column_chunk_count"] = f.chunk_count;
  h["row_groups"] = std::move(f.row_groups);
  h["key_value_metadata"] = std::move(f.key_value_metadata);
  if (f.row_group_count > kMaxListedRowGroups)
    layout.add_error("more than " + std::to_string(kMaxListedRowGroups) +
                     " row groups; header.row_groups lists the first ones");
  if (f.chunk_count > kMaxChunkSlices)
    layout.add_error("more than " + std::to_string(kMaxChunkSlices) +
                     " column chunks; only the first ones are slices");
  if (f.values_cut)
    layout.add_error("some key/value metadata was cut (more than " +
                     std::to_string(kMaxListedKeyValues) + " pairs or values over " +
                     std::to_string(kMaxValueBytes) + " bytes)");
}

class Parquet final : public Format {
 public:
  std::string_view name() const noexcept override { return "parquet"; }
  std::string_view description() const noexcept override { return "Apache Parquet file"; }
  std::string_view signature() const noexcept override {
    return "50 41 52 31 (\"PAR1\") at 0 (and at the end)";
  }

  bool detect(std::span<const std::byte> head, uint64_t size) const override {
    return size >= kMagicBytes + kTrailerBytes && starts_with(head, kMagic);
  }

  Layout parse(const ByteSource& source) const override {
    Layout layout;
    layout.magic = magic_at_start(kMagic);
    const auto footer = find_footer(source, layout);
    if (!footer) return layout;
    Footer f;
    f.start = footer->offset;
    BinaryReader file(source, Endian::little);
    BinaryReader r = file.sub(footer->offset, footer->length);
    CompactReader t(r);
    read_file_metadata(t, f, layout);
    if (!t.ok()) layout.add_error("footer (FileMetaData): " + t.error());
    fill_header(f, layout);
    return layout;
  }
};

}  // namespace

std::unique_ptr<Format> make_parquet() {
  return std::make_unique<Parquet>();
}

}  // namespace payloadfs::formats

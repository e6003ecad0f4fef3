#pragma once
// What a format parser says about one file: its header, its named byte slices and its errors.

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace payloadfs {

// Ordered, so JSON keys appear in the order formats and files give them.
using Json = nlohmann::ordered_json;

struct ByteRange {
  uint64_t offset = 0;
  uint64_t length = 0;
  friend bool operator==(const ByteRange&, const ByteRange&) = default;
};

struct Slice {
  std::string name;  // as the format names it; '/' separates nested directories under raw/
  ByteRange range;
  Json attributes = Json::object();
  // False when the bytes are encoded (compressed, encrypted): not what a reader of the member
  // gets, so not a payload of their own under nested/.
  bool stored = true;
};

// One record of a RecordTable: where its bytes are, and a format-defined tag (a block type,
// an interface number) that helps read its attributes back. 16 bytes.
struct Record {
  uint64_t offset = 0;
  uint32_t length = 0;
  uint32_t tag = 0;
};
static_assert(sizeof(Record) == 16);

class ByteSource;

// A numbered family of slices (the packets of a capture, the messages of a topic), kept at
// 16 bytes per record however many there are. They appear as raw/<dir>/<i>, i zero-padded to
// the width of the largest index so that `ls` sorts them; their attributes are read back from
// the file when slices.json is rendered.
struct RecordTable {
  std::string dir;
  std::vector<Record> records;
  // Attributes of one record, read through `source`; may be empty (no attributes).
  std::function<Json(const ByteSource& source, const Record& record)> attributes;
  // Empty: records are named by their number, zero-padded. Otherwise the records are the
  // chunks of an array split into this grid (chunks per dimension): each record's tag is its
  // row-major index in the grid, tags strictly increase, and a record is named by its grid
  // coordinates joined with '.' ("3.0.12", zarr's chunk keys and HDF5's chunk offsets).
  std::vector<uint64_t> grid;
};

// An array stored as a grid of chunks (an HDF5 chunked dataset): refs.json shows it as one
// zarr array whose chunks are the records of layout.tables[table] (a table with a grid).
struct ChunkedArray {
  std::string name;                     // the array's name, as slice names go
  Json dtype;                           // a NumPy dtype in array-interface form
  std::vector<uint64_t> shape;          // elements per dimension, C order
  std::vector<uint64_t> chunks;         // chunk shape, elements per dimension
  Json compressor = nullptr;            // numcodecs config (zarr v2 .zarray), or null
  Json filters = nullptr;               // numcodecs configs applied before it, or null
  Json fill_value = nullptr;            // what unallocated chunks read as (zarr v2 form)
  std::vector<std::string> dimensions;  // axis names (netCDF-4 dimensions), or empty
  size_t table = 0;                     // index in layout.tables
};

struct Layout {
  Json header = Json::object();
  std::vector<Slice> slices;
  std::vector<RecordTable> tables;  // after the slices, in this order
  std::vector<ChunkedArray> chunked_arrays;
  std::vector<std::string> errors;
  // The format's signature bytes; unset for formats without a fixed signature.
  std::optional<ByteRange> magic;

  void add_error(std::string message) { errors.push_back(std::move(message)); }
};

}  // namespace payloadfs

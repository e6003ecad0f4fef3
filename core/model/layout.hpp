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
};

struct Layout {
  Json header = Json::object();
  std::vector<Slice> slices;
  std::vector<RecordTable> tables;  // after the slices, in this order
  std::vector<std::string> errors;
  // The format's signature bytes; unset for formats without a fixed signature.
  std::optional<ByteRange> magic;

  void add_error(std::string message) { errors.push_back(std::move(message)); }
};

}  // namespace payloadfs

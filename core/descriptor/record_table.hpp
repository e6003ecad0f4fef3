#pragma once
// Compact record tables of descriptors: how a table or walk named "<dir>/{i}" keeps its records
// in 16 bytes each and reads their fields back from the file when they are asked for.

#include <cstdint>
#include <optional>
#include <vector>

#include "core/descriptor/expression.hpp"
#include "core/descriptor/spec.hpp"
#include "core/io/binary_reader.hpp"
#include "core/io/byte_source.hpp"
#include "core/model/layout.hpp"

namespace payloadfs::descriptor::detail {

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
  Json read(const ByteSource& source, uint64_t at, std::optional<uint64_t> index) const;

  Json operator()(const ByteSource& source, const Record& record) const;
};

}  // namespace payloadfs::descriptor::detail

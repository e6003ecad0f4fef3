// TFRecord files (tensorflow/core/lib/io/record_writer.cc): records laid end to end, each a
// u64 little-endian data length, the masked CRC-32C of those 8 bytes (u32 LE), the data, and
// the masked CRC-32C of the data (u32 LE). There is no magic: a file is one when its first
// record's length CRC matches (a 32-bit check) and the record fits in the file.

#include <algorithm>
#include <array>
#include <string>
#include <vector>

#include "core/formats/builtin.hpp"
#include "core/formats/support/crc32c.hpp"
#include "core/io/binary_reader.hpp"
#include "core/io/checked_math.hpp"
#include "core/io/endian.hpp"

namespace payloadfs::formats {
namespace {

constexpr uint64_t kLengthBytes = 8;
constexpr uint64_t kRecordHeaderBytes = 12;  // length and its CRC
constexpr uint64_t kRecordFooterBytes = 4;   // the data's CRC
// Records indexed per file; beyond this the rest of the file is reported, not indexed.
constexpr uint64_t kMaxRecords = 10'000'000;
// A record table keeps a 32-bit length: larger records end the index (reported).
constexpr uint64_t kMaxRecordBytes = UINT32_MAX;
// Data bytes whose CRC is checked at parse time (it reads them); records past this budget
// report `data_crc_ok: null` (not checked).
constexpr uint64_t kMaxCrcCheckedBytes = 256ull << 20;
constexpr size_t kCrcChunkBytes = 64 << 10;

// Record::tag bits.
constexpr uint32_t kLengthCrcOk = 1;
constexpr uint32_t kDataCrcChecked = 2;
constexpr uint32_t kDataCrcOk = 4;

bool length_crc_matches(const std::byte* header) {
  const uint32_t crc = crc32c(std::span<const std::byte>(header, kLengthBytes));
  return tfrecord_masked_crc(crc) == read_le<uint32_t>(header + kLengthBytes);
}

Json record_attributes(const Record& record) {
  Json attributes = Json::object();
  attributes["length"] = record.length;
  attributes["length_crc_ok"] = (record.tag & kLengthCrcOk) != 0;
  if ((record.tag & kDataCrcChecked) != 0)
    attributes["data_crc_ok"] = (record.tag & kDataCrcOk) != 0;
  else
    attributes["data_crc_ok"] = nullptr;
  return attributes;
}

// The CRC-32C of `length` bytes at `offset`, read in chunks; nullopt when they cannot be read.
std::optional<uint32_t> data_crc(BinaryReader& reader, uint64_t offset, uint64_t length) {
  std::array<std::byte, kCrcChunkBytes> chunk{};
  uint32_t crc = 0;
  reader.seek(offset);
  while (length > 0) {
    const size_t n = static_cast<size_t>(std::min<uint64_t>(length, chunk.size()));
    if (!reader.read_into(std::span<std::byte>(chunk.data(), n))) return std::nullopt;
    crc = crc32c_extend(crc, std::span<const std::byte>(chunk.data(), n));
    length -= n;
  }
  return crc;
}

struct Walk {
  std::vector<Record> records;
  uint64_t bad_data_crcs = 0;
  uint64_t unchecked = 0;
};

// Checks one record's data CRC against the stored one, within the budget; sets the tag bits.
void check_data_crc(BinaryReader& reader, Record& record, uint64_t& budget, Walk& walk) {
  if (record.length > budget) {
    budget = 0;
    ++walk.unchecked;
    return;
  }
  budget -= record.length;
  const auto crc = data_crc(reader, record.offset, record.length);
  reader.seek(record.offset + record.length);
  const uint32_t stored = reader.u32();
  if (!crc || !reader.ok()) return;
  record.tag |= kDataCrcChecked;
  if (tfrecord_masked_crc(*crc) == stored)
    record.tag |= kDataCrcOk;
  else
    ++walk.bad_data_crcs;
}

// Reads the record at `offset`; nullopt (with the error added) ends the walk.
std::optional<Record> read_record(BinaryReader& reader, uint64_t offset, uint64_t index,
                                  Layout& layout) {
  const std::string where =
      "record " + std::to_string(index) + " at offset " + std::to_string(offset);
  std::array<std::byte, kRecordHeaderBytes> header{};
  reader.seek(offset);
  if (reader.remaining() < kRecordHeaderBytes || !reader.read_into(header)) {
    layout.add_error("truncated file: " + where + " needs a 12-byte header, " +
                     std::to_string(reader.remaining()) + " bytes remain");
    return std::nullopt;
  }
  const uint64_t length = read_le<uint64_t>(header.data());
  const auto end = checked_add(length, kRecordFooterBytes);
  const uint64_t data = offset + kRecordHeaderBytes;
  if (!end || !range_within(data, *end, reader.size())) {
    layout.add_error("truncated file: " + where + " has length " + std::to_string(length) +
                     " but only " + std::to_string(reader.size() - data) +
                     " bytes remain (data and its 4-byte CRC)");
    return std::nullopt;
  }
  if (length > kMaxRecordBytes) {
    layout.add_error(where + " has length " + std::to_string(length) + ", above the limit of " +
                     std::to_string(kMaxRecordBytes) + "; the rest of the file is not indexed");
    return std::nullopt;
  }
  return Record{data, static_cast<uint32_t>(length),
                length_crc_matches(header.data()) ? kLengthCrcOk : 0};
}

Walk walk_records(const ByteSource& source, Layout& layout) {
  BinaryReader reader(source, Endian::little);
  Walk walk;
  uint64_t budget = kMaxCrcCheckedBytes;
  uint64_t offset = 0;
  while (offset < source.size()) {
    if (walk.records.size() >= kMaxRecords) {
      layout.add_error("more than " + std::to_string(kMaxRecords) +
                       " records; the rest of the file (from offset " + std::to_string(offset) +
                       ") is not indexed");
      break;
    }
    auto record = read_record(reader, offset, walk.records.size(), layout);
    if (!record) break;
    check_data_crc(reader, *record, budget, walk);
    walk.records.push_back(*record);
    offset = record->offset + record->length + kRecordFooterBytes;
    if ((record->tag & kLengthCrcOk) == 0) {
      // The length is not to be trusted, so neither is where the next record starts.
      layout.add_error("record " + std::to_string(walk.records.size() - 1) +
                       ": length CRC mismatch; the rest of the file is not indexed");
      break;
    }
  }
  return walk;
}

void report_crcs(const Walk& walk, Layout& layout) {
  if (walk.bad_data_crcs > 0)
    layout.add_error(std::to_string(walk.bad_data_crcs) + " record(s) have a data CRC mismatch");
  layout.header["data_crc_checked"] = walk.unchecked == 0;
  if (walk.unchecked > 0) layout.header["data_crc_unchecked_records"] = walk.unchecked;
}

class TfRecord final : public Format {
 public:
  std::string_view name() const noexcept override { return "tfrecord"; }
  std::string_view description() const noexcept override {
    return "TensorFlow TFRecord file (length-prefixed records with masked CRC-32C)";
  }
  std::string_view signature() const noexcept override {
    return "no magic: the first record's 8-byte length has a matching masked CRC-32C at 8 and "
           "the record fits in the file";
  }

  bool detect(std::span<const std::byte> head, uint64_t size) const override {
    if (head.size() < kRecordHeaderBytes || !length_crc_matches(head.data())) return false;
    const auto end =
        checked_add(read_le<uint64_t>(head.data()), kRecordHeaderBytes + kRecordFooterBytes);
    return end && *end <= size;
  }

  Layout parse(const ByteSource& source) const override {
    Layout layout;
    Walk walk = walk_records(source, layout);
    layout.header["record_count"] = walk.records.size();
    report_crcs(walk, layout);
    RecordTable table;
    table.dir = "record";
    table.records = std::move(walk.records);
    if (table.records.capacity() - table.records.size() > table.records.size() / 8)
      table.records.shrink_to_fit();
    table.attributes = [](const ByteSource&, const Record& record) {
      return record_attributes(record);
    };
    if (!table.records.empty()) layout.tables.push_back(std::move(table));
    return layout;
  }
};

}  // namespace

std::unique_ptr<Format> make_tfrecord() {
  return std::make_unique<TfRecord>();
}

}  // namespace payloadfs::formats

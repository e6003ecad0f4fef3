#pragma once
// Reading back a listed record's fixed fields. A record table keeps only {data offset, length,
// tag} per record (millions of packets or messages); the rest of a record's header (timestamps,
// lengths, sequence numbers) is read when the record is listed, with one read of the fixed-size
// fields stored just before its data (pcap, pcapng and MCAP lay their records out so).

#include <cstddef>
#include <span>

#include "core/io/byte_source.hpp"
#include "core/model/layout.hpp"

namespace payloadfs::formats {

// Fills `fields` with the bytes just before `record`'s data; false when they are not all there.
[[nodiscard]] inline bool read_fields_before(const ByteSource& source, const Record& record,
                                             std::span<std::byte> fields) {
  return record.offset >= fields.size() && source.read_exact(record.offset - fields.size(), fields);
}

}  // namespace payloadfs::formats

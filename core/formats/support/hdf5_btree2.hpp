#pragma once
// HDF5 version 2 B-trees (File Format Specification 3.0, III.A.2): a header (BTHD) and
// internal (BTIN) and leaf (BTLF) nodes, each with a Jenkins lookup3 checksum. They index
// chunks (record types 10 and 11), dense groups' links (5 and 6) and dense attributes (8, 9).

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "core/formats/support/hdf5_chunks.hpp"
#include "core/io/byte_source.hpp"
#include "core/model/layout.hpp"

namespace payloadfs::formats::hdf5 {

// Depth and records walked per tree; past them the walk stops and says so in the errors.
inline constexpr uint16_t kMaxBtree2Depth = 32;
inline constexpr uint64_t kMaxBtree2Records = uint64_t{1} << 22;

// Jenkins' lookup3 hashlittle() with initval 0: the checksum of every version 2 metadata
// structure (superblock v2/v3, OHDR, OCHK, BTHD, BTIN, BTLF, FAHD, FADB, EAHD, ... FHDB).
[[nodiscard]] uint32_t lookup3_checksum(std::span<const std::byte> bytes) noexcept;

// The tree's header, as read at its address.
struct Btree2Header {
  uint8_t type = 0;  // record type
  uint32_t node_size = 0;
  uint16_t record_size = 0;
  uint16_t depth = 0;
  uint64_t root_address = kUndefinedAddress;
  uint16_t root_records = 0;
  uint64_t total_records = 0;
};

// Walks the tree whose header is at `header_address` (an address: the base is applied) and
// calls `visit` with each record's bytes (record_size of them, a range of the file), in key
// order, until it returns false. A header of another record type than `expected_type`, a bad
// signature or checksum, a node past the end of the file, a depth or record count past its
// limit: appended to `errors`, and the walk keeps what it could read. Returns the header when
// it could be read.
std::optional<Btree2Header> walk_btree2(const ByteSource& file, const Sizes& sizes,
                                        uint64_t header_address, uint8_t expected_type,
                                        const std::function<bool(ByteRange record)>& visit,
                                        std::vector<std::string>& errors);

}  // namespace payloadfs::formats::hdf5

#include "core/formats/support/hdf5_btree2.hpp"
#include "core/formats/support/hdf5_addresses.hpp"
#include "core/formats/support/hdf5_index_reading.hpp"

#include <bit>
#include <cstdio>
#include <string_view>
#include <unordered_set>

#include "core/io/binary_reader.hpp"
#include "core/io/checked_math.hpp"

namespace payloadfs::formats::hdf5 {
namespace {

// Nodes read per tree: a bound on the work whatever the counts in the nodes say.
constexpr uint64_t kMaxBtree2Nodes = uint64_t{1} << 20;
// Signature, version, type and checksum: the bytes of a node around its records and pointers.
constexpr uint64_t kNodePrefix = 10;

uint32_t rotate(uint32_t x, int k) {
  return (x << k) | (x >> (32 - k));
}

void mix(uint32_t& a, uint32_t& b, uint32_t& c) {
  a -= c, a ^= rotate(c, 4), c += b;
  b -= a, b ^= rotate(a, 6), a += c;
  c -= b, c ^= rotate(b, 8), b += a;
  a -= c, a ^= rotate(c, 16), c += b;
  b -= a, b ^= rotate(a, 19), a += c;
  c -= b, c ^= rotate(b, 4), b += a;
}

void final_mix(uint32_t& a, uint32_t& b, uint32_t& c) {
  c ^= b, c -= rotate(b, 14);
  a ^= c, a -= rotate(c, 11);
  b ^= a, b -= rotate(a, 25);
  c ^= b, c -= rotate(b, 16);
  a ^= c, a -= rotate(c, 4);
  b ^= a, b -= rotate(a, 14);
  c ^= b, c -= rotate(b, 24);
}

// Word i of a 12-byte block, little-endian.
uint32_t word(const std::byte* block, int i) {
  return read_le<uint32_t>(block + 4 * i);
}

// The tree's per-level limits (libhdf5's node_info): records per node at each depth, and the
// widths of the record counts in internal nodes' child pointers.
struct Levels {
  unsigned node_count_width = 0;       // "number of records" in a child pointer
  std::vector<uint64_t> max_records;   // per depth, 0 = leaves
  std::vector<unsigned> total_width;   // "total number of records" of a child at that depth
  std::vector<uint64_t> pointer_size;  // a child pointer in an internal node of that depth
};

std::optional<Levels> compute_levels(const Btree2Header& header, const Sizes& sizes) {
  Levels levels;
  if (header.record_size == 0 || header.node_size <= kNodePrefix) return std::nullopt;
  const uint64_t leaf_records = (header.node_size - kNodePrefix) / header.record_size;
  levels.max_records.push_back(leaf_records);
  levels.total_width.push_back(0);
  levels.pointer_size.push_back(0);
  levels.node_count_width = limit_encoded_size(leaf_records);
  uint64_t cumulative = leaf_records;
  for (uint16_t depth = 1; depth <= header.depth; ++depth) {
    const uint64_t pointer =
        sizes.offsets + levels.node_count_width + (depth > 1 ? levels.total_width[depth - 1] : 0);
    if (header.node_size < kNodePrefix + pointer) return std::nullopt;
    const uint64_t records =
        (header.node_size - (kNodePrefix + pointer)) / (header.record_size + pointer);
    // Saturate: such a count only sizes a field, and 8 bytes hold any.
    const auto grown = checked_mul(records + 1, cumulative);
    const auto next = grown ? checked_add(*grown, records) : std::nullopt;
    cumulative = next.value_or(~uint64_t{0});
    levels.max_records.push_back(records);
    levels.total_width.push_back(limit_encoded_size(cumulative));
    levels.pointer_size.push_back(pointer);
  }
  return levels;
}

std::optional<Btree2Header> read_header(const ByteSource& file, const Sizes& sizes,
                                        uint64_t address, ErrorLog& log) {
  const uint64_t length = 4 + 1 + 1 + 4 + 2 + 2 + 1 + 1 + sizes.offsets + 2 + sizes.lengths + 4;
  const auto block =
      read_metadata_block(file, sizes, address, length, "BTHD", "version 2 B-tree header", log);
  if (!block) return std::nullopt;
  MemorySource memory(*block);
  BinaryReader reader(memory);
  reader.skip(4);
  if (const uint8_t version = reader.u8(); version != 0) {
    log.add("version 2 B-tree header at " + hex(address) + ": version " + std::to_string(version));
    return std::nullopt;
  }
  Btree2Header header;
  header.type = reader.u8();
  header.node_size = reader.u32();
  header.record_size = reader.u16();
  header.depth = reader.u16();
  reader.skip(2);  // split and merge percents
  header.root_address = read_address(reader, sizes);
  header.root_records = reader.u16();
  header.total_records = read_sized(reader, sizes.lengths);
  return header;
}

// Walks the nodes depth first, records in key order.
class Walker {
 public:
  Walker(const ByteSource& file, const Sizes& sizes, const Btree2Header& header,
         const Levels& levels, const std::function<bool(ByteRange)>& visit, ErrorLog& log)
      : file_(file), sizes_(sizes), header_(header), levels_(levels), visit_(visit), log_(log) {}

  void node(uint64_t address, uint16_t depth, uint64_t records);

 private:
  struct Child {
    uint64_t address = kUndefinedAddress;
    uint64_t records = 0;
  };
  bool enter(uint64_t address, uint16_t depth, uint64_t records);
  bool record(uint64_t offset);
  std::vector<Child> read_children(BinaryReader& reader, uint16_t depth, uint64_t records);

  const ByteSource& file_;
  const Sizes& sizes_;
  const Btree2Header& header_;
  const Levels& levels_;
  const std::function<bool(ByteRange)>& visit_;
  ErrorLog& log_;
  std::unordered_set<uint64_t> visited_;
  uint64_t records_seen_ = 0;
  bool stopped_ = false;
};

// Whether to read the node: not stopped, not seen before, its count within the level's limit.
bool Walker::enter(uint64_t address, uint16_t depth, uint64_t records) {
  if (stopped_) return false;
  const std::string where = "version 2 B-tree node at " + hex(address);
  if (visited_.size() >= kMaxBtree2Nodes) {
    log_.add("version 2 B-tree: more than " + std::to_string(kMaxBtree2Nodes) + " nodes");
    stopped_ = true;
    return false;
  }
  if (!visited_.insert(address).second) {
    log_.add(where + ": visited twice (a loop)");
    return false;
  }
  if (records > levels_.max_records[depth]) {
    log_.add(where + ": " + std::to_string(records) + " records, more than its limit " +
             std::to_string(levels_.max_records[depth]));
    return false;
  }
  return true;
}

// Hands one record (at a file offset) to the visitor, within the record limit.
bool Walker::record(uint64_t offset) {
  if (records_seen_ >= kMaxBtree2Records) {
    log_.add("version 2 B-tree: more than " + std::to_string(kMaxBtree2Records) +
             " records; the rest are not listed");
    stopped_ = true;
    return false;
  }
  ++records_seen_;
  if (!visit_(ByteRange{offset, header_.record_size})) stopped_ = true;
  return !stopped_;
}

std::vector<Walker::Child> Walker::read_children(BinaryReader& reader, uint16_t depth,
                                                 uint64_t records) {
  std::vector<Child> children(records + 1);
  for (Child& child : children) {
    child.address = read_address(reader, sizes_);
    child.records = read_sized(reader, levels_.node_count_width);
    if (depth > 1) read_sized(reader, levels_.total_width[depth - 1]);
  }
  return children;
}

void Walker::node(uint64_t address, uint16_t depth, uint64_t records) {
  if (!enter(address, depth, records)) return;
  const uint64_t record_bytes = records * header_.record_size;  // records <= node size
  const uint64_t length =
      kNodePrefix + record_bytes + (depth > 0 ? (records + 1) * levels_.pointer_size[depth] : 0);
  const bool leaf = depth == 0;
  const auto block = read_metadata_block(file_, sizes_, address, length, leaf ? "BTLF" : "BTIN",
                                         "version 2 B-tree node", log_);
  if (!block) return;
  MemorySource memory(*block);
  BinaryReader reader(memory);
  reader.skip(4);
  const uint8_t version = reader.u8();
  const uint8_t type = reader.u8();
  if (version != 0 || type != header_.type) {
    log_.add("version 2 B-tree node at " + hex(address) + ": version " + std::to_string(version) +
             ", type " + std::to_string(type) + " (the header's: " + std::to_string(header_.type) +
             ")");
    return;
  }
  const uint64_t first_record = *file_offset(sizes_, address) + 6;
  if (leaf) {
    for (uint64_t i = 0; i < records; ++i)
      if (!record(first_record + i * header_.record_size)) return;
    return;
  }
  reader.skip(record_bytes);
  const std::vector<Child> children = read_children(reader, depth, records);
  for (uint64_t i = 0; i <= records && !stopped_; ++i) {
    node(children[i].address, static_cast<uint16_t>(depth - 1), children[i].records);
    if (i < records && !stopped_) record(first_record + i * header_.record_size);
  }
}

}  // namespace

uint32_t lookup3_checksum(std::span<const std::byte> bytes) noexcept {
  uint32_t a = 0xdeadbeef + static_cast<uint32_t>(bytes.size());
  uint32_t b = a;
  uint32_t c = a;
  size_t length = bytes.size();
  const std::byte* k = bytes.data();
  for (; length > 12; length -= 12, k += 12) {
    a += word(k, 0), b += word(k, 1), c += word(k, 2);
    mix(a, b, c);
  }
  if (length == 0) return c;
  // The last 1 to 12 bytes, zero-padded: the missing bytes add nothing, as in hashlittle.
  std::byte tail[12] = {};
  for (size_t i = 0; i < length; ++i) tail[i] = k[i];
  a += word(tail, 0), b += word(tail, 1), c += word(tail, 2);
  final_mix(a, b, c);
  return c;
}

std::optional<Btree2Header> walk_btree2(const ByteSource& file, const Sizes& sizes,
                                        uint64_t header_address, uint8_t expected_type,
                                        const std::function<bool(ByteRange record)>& visit,
                                        std::vector<std::string>& errors) {
  ErrorLog log(errors);
  const auto header = read_header(file, sizes, header_address, log);
  if (!header) return std::nullopt;
  const std::string where = "version 2 B-tree at " + hex(header_address);
  if (header->type != expected_type) {
    log.add(where + ": record type " + std::to_string(header->type) + ", expected " +
            std::to_string(expected_type));
    return header;
  }
  if (header->depth > kMaxBtree2Depth) {
    log.add(where + ": depth " + std::to_string(header->depth) + ", more than the limit " +
            std::to_string(kMaxBtree2Depth));
    return header;
  }
  const auto levels = compute_levels(*header, sizes);
  if (!levels) {
    log.add(where + ": node size " + std::to_string(header->node_size) +
            " cannot hold records of " + std::to_string(header->record_size) + " bytes");
    return header;
  }
  if (header->root_address == kUndefinedAddress || header->total_records == 0) return header;
  Walker walker(file, sizes, *header, *levels, visit, log);
  walker.node(header->root_address, header->depth, header->root_records);
  return header;
}

}  // namespace payloadfs::formats::hdf5

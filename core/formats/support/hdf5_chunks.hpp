#pragma once
// HDF5 chunk indexes: where the allocated chunks of a chunked dataset are stored. Every index
// the format has: the version 1 B-tree of layout message version 3, and the single chunk,
// implicit, fixed array, extensible array and version 2 B-tree indexes of layout message
// version 4 (HDF5 File Format Specification 3.0, sections III.A.1 (B-trees), VII (fixed and
// extensible arrays) and IV.A.2.i (the data layout message)).

#include <cstdint>
#include <string>
#include <vector>

#include "core/io/byte_source.hpp"

namespace payloadfs::formats::hdf5 {

// An address no object has ("undefined address": all bits set).
inline constexpr uint64_t kUndefinedAddress = ~uint64_t{0};
// A dataspace's maximum size for an unlimited dimension.
inline constexpr uint64_t kUnlimited = ~uint64_t{0};
// Chunks listed per dataset; the rest are reported in the errors.
inline constexpr uint64_t kMaxChunks = uint64_t{1} << 22;

// The superblock's sizes, which every address and length in the file uses.
struct Sizes {
  uint8_t offsets = 8;  // "Size of Offsets": 2, 4 or 8 bytes
  uint8_t lengths = 8;  // "Size of Lengths": 2, 4 or 8 bytes
  uint64_t base = 0;    // the base address: an address A is at file offset base + A
};

enum class ChunkIndexType : uint8_t {
  btree1 = 0,  // layout message version 1 to 3 (the numbers after it are version 4's)
  single = 1,
  implicit = 2,
  fixed_array = 3,
  extensible_array = 4,
  btree2 = 5,
};

// A chunked dataset's index, as its data layout, dataspace and filter pipeline messages give it.
struct ChunkIndex {
  ChunkIndexType type = ChunkIndexType::btree1;
  uint64_t address = kUndefinedAddress;  // of the index (for implicit: of the first chunk)
  std::vector<uint64_t> dims;            // the dataspace's current dimension sizes
  std::vector<uint64_t> max_dims;        // its maximum sizes (kUnlimited where unlimited)
  std::vector<uint64_t> chunk_dims;      // chunk size in elements (without the element-size dim)
  uint64_t element_size = 0;             // the layout message's last dimension size, in bytes
  bool filtered = false;                 // the dataset has a filter pipeline message
  uint8_t layout_flags = 0;              // version 4's flags (bit 1: single chunk is filtered)
  // Single chunk index, when filtered.
  uint64_t single_filtered_size = 0;
  uint32_t single_filter_mask = 0;
  // Fixed array index.
  uint8_t fixed_array_page_bits = 0;
  // Extensible array index.
  uint8_t ea_max_bits = 0;
  uint8_t ea_index_elements = 0;
  uint8_t ea_min_pointers = 0;
  uint8_t ea_min_elements = 0;
  uint8_t ea_page_bits = 0;
  // Version 2 B-tree index.
  uint32_t btree2_node_size = 0;
  uint8_t btree2_split_percent = 0;
  uint8_t btree2_merge_percent = 0;
};

struct Chunk {
  uint64_t offset = 0;       // in the file (base address applied)
  uint64_t size = 0;         // bytes stored, after the filters
  uint32_t filter_mask = 0;  // bit i set: filter i of the pipeline was skipped for this chunk
  uint64_t index = 0;  // row-major index in the chunk grid: ceil(dims[i] / chunk_dims[i]) each
};

// Appends the dataset's allocated chunks to `chunks`, in increasing `index`, each once; chunks
// that lie outside the current dimensions (a dataset that shrank) are left out. What is
// malformed (an address or size past the end of the file, a node with a wrong signature or
// checksum, a loop, a depth or count past its limit) is appended to `errors`, and what could
// be read is kept. Never throws.
void list_chunks(const ByteSource& file, const Sizes& sizes, const ChunkIndex& index,
                 std::vector<Chunk>& chunks, std::vector<std::string>& errors);

}  // namespace payloadfs::formats::hdf5

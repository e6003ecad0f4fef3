#pragma once
// HDF5 fractal heaps (File Format Specification 3.0, III.G): the header (FRHP), direct (FHDB)
// and indirect (FHIB) blocks of the doubling table, and heap IDs turned into file ranges.
// Dense groups keep their link messages in one, dense attributes their attribute messages.

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "core/formats/support/hdf5_chunks.hpp"
#include "core/io/byte_source.hpp"
#include "core/model/layout.hpp"

namespace payloadfs::formats::hdf5 {

// Indirect blocks followed from the root to reach one object.
inline constexpr unsigned kMaxFractalHeapDepth = 16;

struct FractalHeap {
  uint64_t header_offset = 0;  // in the file
  uint16_t id_length = 0;
  uint16_t filter_length = 0;  // I/O filter information: managed blocks filtered (not read)
  uint8_t flags = 0;           // bit 1: direct blocks are checksummed
  uint32_t max_managed_size = 0;
  uint16_t table_width = 0;
  uint64_t start_block_size = 0;
  uint64_t max_direct_block_size = 0;
  uint16_t max_heap_bits = 0;  // "maximum heap size": bits of a managed object's offset
  uint64_t root_address = kUndefinedAddress;
  uint16_t root_rows = 0;  // 0: the root is a direct block
};

// Reads the header at `address` (relative to the base). nullopt with `error` set.
std::optional<FractalHeap> read_fractal_heap(const ByteSource& file, const Sizes& sizes,
                                             uint64_t address, std::string& error);

// Where the object a heap ID names is in the file: a tiny object is inside the ID itself
// (`id` lies in the file at id_offset), a managed object in a direct block. Huge objects and
// filtered heaps are not read: nullopt with `error` set.
std::optional<ByteRange> heap_object(const ByteSource& file, const Sizes& sizes,
                                     const FractalHeap& heap, uint64_t id_offset,
                                     std::string& error);

}  // namespace payloadfs::formats::hdf5

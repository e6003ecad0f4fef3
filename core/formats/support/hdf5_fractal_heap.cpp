#include "core/formats/support/hdf5_fractal_heap.hpp"

#include <array>
#include <bit>
#include <cstring>

#include "core/formats/support/hdf5_addresses.hpp"
#include "core/formats/support/hdf5_superblock.hpp"
#include "core/io/binary_reader.hpp"
#include "core/io/checked_math.hpp"

namespace payloadfs::formats::hdf5 {
namespace {

// Bytes that hold numbers up to `value`.
uint8_t bytes_for(uint64_t value) {
  return static_cast<uint8_t>((std::bit_width(value) + 7) / 8);
}

bool is_power_of_two(uint64_t value) {
  return value != 0 && (value & (value - 1)) == 0;
}

// Block size of doubling-table row `row`: rows 0 and 1 the starting size, then doubling.
std::optional<uint64_t> row_block_size(const FractalHeap& heap, uint64_t row) {
  if (row <= 1) return heap.start_block_size;
  if (row - 1 >= 64) return std::nullopt;
  return checked_mul(heap.start_block_size, uint64_t{1} << (row - 1));
}

// Rows of direct blocks: up to the maximum direct block size.
uint64_t max_direct_rows(const FractalHeap& heap) {
  return std::bit_width(heap.max_direct_block_size) - std::bit_width(heap.start_block_size) + 2;
}

bool header_is_sane(const FractalHeap& heap) {
  return heap.table_width != 0 && is_power_of_two(heap.table_width) &&
         is_power_of_two(heap.start_block_size) && is_power_of_two(heap.max_direct_block_size) &&
         heap.max_direct_block_size >= heap.start_block_size && heap.max_heap_bits > 0 &&
         heap.max_heap_bits <= 64 && heap.id_length >= 2;
}

// One step down: the child of an indirect block that holds heap offset `offset`.
struct Child {
  uint64_t address = kUndefinedAddress;
  uint64_t block_offset = 0;  // heap offset where the child starts
  uint64_t size = 0;          // its size
  bool direct = true;
};

std::optional<Child> find_child(const ByteSource& file, const Sizes& sizes, const FractalHeap& heap,
                                uint64_t block_address, uint64_t block_offset, uint64_t rows,
                                uint64_t offset, std::string& error);

std::optional<ByteRange> in_direct_block(const ByteSource& file, const Sizes& sizes,
                                         const Child& block, uint64_t offset, uint64_t length,
                                         std::string& error) {
  const auto start = file_offset(sizes, block.address);
  if (!start || !range_within(*start, block.size, file.size())) {
    error = "fractal heap direct block past the end of the file";
    return std::nullopt;
  }
  BinaryReader in(file);
  in.seek(*start);
  if (!signature_is(in, "FHDB")) {
    error = "no FHDB direct block at " + std::to_string(*start);
    return std::nullopt;
  }
  const uint64_t within = offset - block.block_offset;
  if (within > block.size || length > block.size - within) {
    error = "fractal heap object past its direct block";
    return std::nullopt;
  }
  return ByteRange{*start + within, length};
}

}  // namespace

std::optional<FractalHeap> read_fractal_heap(const ByteSource& file, const Sizes& sizes,
                                             uint64_t address, std::string& error) {
  const auto start = file_offset(sizes, address);
  BinaryReader in(file);
  if (!start || *start >= file.size()) {
    error = "fractal heap header past the end of the file";
    return std::nullopt;
  }
  in.seek(*start);
  FractalHeap heap;
  heap.header_offset = *start;
  const bool signed_ok = signature_is(in, "FRHP");
  in.skip(1);  // version
  heap.id_length = in.u16();
  heap.filter_length = in.u16();
  heap.flags = in.u8();
  heap.max_managed_size = in.u32();
  in.skip(sizes.lengths);                // next huge object ID
  read_address(in, sizes);               // huge objects' B-tree
  in.skip(sizes.lengths);                // free space in managed blocks
  read_address(in, sizes);               // free-space manager
  in.skip(8 * uint64_t{sizes.lengths});  // managed space ... number of tiny objects
  heap.table_width = in.u16();
  heap.start_block_size = read_length(in, sizes);
  heap.max_direct_block_size = read_length(in, sizes);
  heap.max_heap_bits = in.u16();
  in.skip(2);  // starting rows of the root indirect block
  heap.root_address = read_address(in, sizes);
  heap.root_rows = in.u16();
  if (!in.ok() || !signed_ok) {
    error = "no readable FRHP fractal heap header at " + std::to_string(*start);
    return std::nullopt;
  }
  if (!header_is_sane(heap)) {
    error = "fractal heap at " + std::to_string(*start) + ": bad doubling table";
    return std::nullopt;
  }
  return heap;
}

namespace {

std::optional<ByteRange> managed_object(const ByteSource& file, const Sizes& sizes,
                                        const FractalHeap& heap, BinaryReader& id,
                                        std::string& error) {
  const uint64_t offset = read_sized(id, static_cast<uint8_t>((heap.max_heap_bits + 7) / 8));
  const uint64_t length = read_sized(
      id, bytes_for(std::min<uint64_t>(heap.max_direct_block_size, heap.max_managed_size)));
  if (!id.ok()) {
    error = "fractal heap ID cut short";
    return std::nullopt;
  }
  if (heap.filter_length != 0) {
    error = "filtered fractal heap blocks: not read";
    return std::nullopt;
  }
  uint64_t rows = heap.root_rows;
  Child block{heap.root_address, 0, heap.start_block_size, rows == 0};
  for (unsigned depth = 0; depth <= kMaxFractalHeapDepth; ++depth) {
    if (block.direct) return in_direct_block(file, sizes, block, offset, length, error);
    auto child =
        find_child(file, sizes, heap, block.address, block.block_offset, rows, offset, error);
    if (!child) return std::nullopt;
    block = *child;
    if (!block.direct) {
      const auto per_row = checked_mul(heap.start_block_size, heap.table_width);
      if (!per_row || block.size < *per_row) return std::nullopt;
      rows = std::bit_width(block.size / *per_row);
    }
  }
  error = "fractal heap deeper than " + std::to_string(kMaxFractalHeapDepth) + " blocks";
  return std::nullopt;
}

std::optional<Child> find_child(const ByteSource& file, const Sizes& sizes, const FractalHeap& heap,
                                uint64_t block_address, uint64_t block_offset, uint64_t rows,
                                uint64_t offset, std::string& error) {
  const auto start = file_offset(sizes, block_address);
  BinaryReader in(file);
  if (!start || *start >= file.size()) {
    error = "fractal heap indirect block past the end of the file";
    return std::nullopt;
  }
  in.seek(*start);
  if (!signature_is(in, "FHIB")) {
    error = "no FHIB indirect block at " + std::to_string(*start);
    return std::nullopt;
  }
  in.skip(1);
  read_address(in, sizes);
  in.skip((heap.max_heap_bits + 7) / 8);  // the block's offset
  const uint64_t entries_start = in.tell();
  uint64_t row_start = block_offset;
  for (uint64_t row = 0; row < rows; ++row) {
    const auto size = row_block_size(heap, row);
    const auto row_bytes = size ? checked_mul(*size, heap.table_width) : std::nullopt;
    if (!row_bytes) break;
    if (offset >= row_start && offset - row_start < *row_bytes) {
      const uint64_t column = (offset - row_start) / *size;
      const uint64_t index = row * heap.table_width + column;
      const uint64_t direct_rows = std::min(rows, max_direct_rows(heap));
      const uint64_t direct_entries = direct_rows * heap.table_width;
      const bool direct = row < max_direct_rows(heap);
      const uint64_t position =
          direct ? index * sizes.offsets
                 : direct_entries * sizes.offsets + (index - direct_entries) * sizes.offsets;
      in.seek(entries_start + position);
      const uint64_t address = read_address(in, sizes);
      if (!in.ok() || address == kUndefinedAddress) break;
      return Child{address, row_start + column * *size, *size, direct};
    }
    row_start += *row_bytes;
  }
  error = "fractal heap offset " + std::to_string(offset) + " in no allocated block";
  return std::nullopt;
}

}  // namespace

std::optional<ByteRange> heap_object(const ByteSource& file, const Sizes& sizes,
                                     const FractalHeap& heap, uint64_t id_offset,
                                     std::string& error) {
  BinaryReader whole(file);
  BinaryReader id = whole.sub(id_offset, heap.id_length);
  const uint8_t first = id.u8();
  const uint8_t type = (first >> 4) & 0x03;
  if (!id.ok() || (first >> 6) != 0) {
    error = "unreadable fractal heap ID";
    return std::nullopt;
  }
  if (type == 0) return managed_object(file, sizes, heap, id, error);
  if (type == 2) {
    // Tiny: the length (minus one) in the low 4 bits, 12 bits when the ID is longer than 18.
    uint64_t length = (first & 0x0F) + 1;
    if (heap.id_length > 18) length = ((uint64_t{first} & 0x0F) << 8 | id.u8()) + 1;
    if (!id.need(length)) {
      error = "tiny fractal heap object longer than its ID";
      return std::nullopt;
    }
    return ByteRange{id.tell(), length};
  }
  error = type == 1 ? "huge fractal heap object: not read" : "unknown fractal heap ID type";
  return std::nullopt;
}

}  // namespace payloadfs::formats::hdf5

// Extensible array chunk indexes (File Format Specification 3.0, VII.B): a header (EAHD), an
// index block (EAIB) holding the first elements, the addresses of the first super blocks'
// data blocks and of the other super blocks (EASB), which hold their data blocks' (EADB)
// addresses and, when those are paged, a bitmap of the pages written. Super block u has
// 2^floor(u/2) data blocks of 2^ceil(u/2) * min_elements elements each (libhdf5 H5EAhdr.c).
// Elements number chunks with the unlimited dimension first (H5Dearray.c's swizzle).

#include <algorithm>
#include <bit>
#include <functional>

#include "core/formats/support/hdf5_chunk_indexes.hpp"
#include "core/io/checked_math.hpp"

namespace payloadfs::formats::hdf5 {
namespace {

// Signature, version, client id and checksum.
constexpr uint64_t kBlockPrefix = 10;
// "Max Nelmts Bits" and page bits past which counts leave 64 bits.
constexpr uint8_t kMaxElementBits = 63;

struct ExtensibleArray {
  uint64_t address = 0;
  uint8_t client_id = 0;
  uint8_t max_bits = 0;
  uint8_t index_elements = 0;
  uint64_t min_elements = 0;
  uint64_t min_pointers = 0;
  uint64_t page_elements = 0;
  uint64_t max_index_set = 0;  // elements up to the highest one set
  uint64_t index_block = kUndefinedAddress;
  unsigned offset_width = 0;  // a block's "array offset" field
  ArrayEntryFormat format;
  ElementGrid grid;
  uint64_t elements_read = 0;
  uint64_t blocks_examined = 0;  // data block addresses, allocated or not
};

struct SuperBlockShape {
  uint64_t data_blocks = 0;
  uint64_t block_elements = 0;
  uint64_t first_element = 0;  // after the index block's elements
};

bool is_power_of_two(uint64_t v) {
  return v != 0 && (v & (v - 1)) == 0;
}
unsigned log2_of(uint64_t power) {
  return static_cast<unsigned>(std::countr_zero(power));
}

std::optional<ExtensibleArray> read_header(const ByteSource& file, ChunkSink& sink) {
  const Sizes& sizes = sink.sizes();
  ExtensibleArray array;
  array.address = sink.index().address;
  const uint64_t length = kBlockPrefix + 6 + 6 * uint64_t{sizes.lengths} + sizes.offsets;
  const auto block = read_metadata_block(file, sizes, array.address, length, "EAHD",
                                         "extensible array header", sink.log());
  if (!block) return std::nullopt;
  MemorySource memory(*block);
  BinaryReader reader(memory);
  reader.skip(4);
  const uint8_t version = reader.u8();
  array.client_id = reader.u8();
  const uint8_t entry_size = reader.u8();
  array.max_bits = reader.u8();
  array.index_elements = reader.u8();
  array.min_elements = reader.u8();
  array.min_pointers = reader.u8();
  const uint8_t page_bits = reader.u8();
  reader.skip(4 * uint64_t{sizes.lengths});  // super and data block counts and sizes
  array.max_index_set = read_sized(reader, sizes.lengths);
  reader.skip(sizes.lengths);  // elements realized
  array.index_block = read_address(reader, sizes);
  const std::string where = "extensible array at " + hex(array.address);
  if (version != 0 || array.max_bits > kMaxElementBits || page_bits > kMaxElementBits ||
      !is_power_of_two(array.min_elements) || !is_power_of_two(array.min_pointers) ||
      log2_of(array.min_elements) > array.max_bits) {
    sink.log().add(where + ": version " + std::to_string(version) + ", max bits " +
                   std::to_string(array.max_bits) + ", min elements " +
                   std::to_string(array.min_elements) + ", min pointers " +
                   std::to_string(array.min_pointers));
    return std::nullopt;
  }
  array.page_elements = uint64_t{1} << page_bits;
  array.offset_width = (array.max_bits + 7u) / 8u;
  const auto format = array_entry_format(sink, array.client_id, entry_size, where);
  if (!format) return std::nullopt;
  array.format = *format;
  return array;
}

// Super block u's data blocks and where its elements start (libhdf5's sblk_info).
std::vector<SuperBlockShape> super_block_shapes(const ExtensibleArray& array) {
  const unsigned count = 1 + array.max_bits - log2_of(array.min_elements);
  std::vector<SuperBlockShape> shapes;
  uint64_t first = 0;
  for (unsigned u = 0; u < count; ++u) {
    SuperBlockShape shape;
    shape.data_blocks = uint64_t{1} << (u / 2);
    shape.block_elements = (uint64_t{1} << ((u + 1) / 2)) * array.min_elements;
    shape.first_element = first;
    shapes.push_back(shape);
    const auto span = checked_mul(shape.data_blocks, shape.block_elements);
    const auto next = span ? checked_add(first, *span) : std::nullopt;
    if (!next) break;  // the rest lie past any element index
    first = *next;
  }
  return shapes;
}

// Adds the entries in `bytes`, numbered from `first` (an index past the index block's),
// within the element limit and the highest index set.
bool add_entries(ChunkSink& sink, ExtensibleArray& array, std::span<const std::byte> bytes,
                 uint64_t first) {
  const uint64_t element = first + array.index_elements;
  if (element >= array.max_index_set) return true;
  uint64_t count =
      std::min<uint64_t>(bytes.size() / array.format.entry_size, array.max_index_set - element);
  if (array.elements_read + count > kMaxArrayElements) {
    sink.log().add("extensible array at " + hex(array.address) + ": more than " +
                   std::to_string(kMaxArrayElements) + " elements; the rest are not read");
    return false;
  }
  array.elements_read += count;
  return add_array_entries(sink, array.grid, array.format,
                           bytes.first(count * array.format.entry_size), element);
}

// A block's prefix after its signature: version, client id, header address.
bool check_owner(BinaryReader& reader, const ExtensibleArray& array, ChunkSink& sink,
                 std::string_view what, uint64_t address) {
  reader.skip(4);
  const uint8_t version = reader.u8();
  const uint8_t client = reader.u8();
  const uint64_t owner = read_address(reader, sink.sizes());
  if (version == 0 && client == array.client_id && owner == array.address) return true;
  sink.log().add(std::string(what) + " at " + hex(address) + ": version " +
                 std::to_string(version) + ", client " + std::to_string(client) +
                 ", header address " + hex(owner));
  return false;
}

// One data block of `elements` entries starting at element `first`; `page_written` says
// which of its pages were written when it is paged (null: all of them).
bool read_data_block(const ByteSource& file, ChunkSink& sink, ExtensibleArray& array,
                     uint64_t address, uint64_t elements, uint64_t first,
                     const std::function<bool(uint64_t)>& page_written) {
  const uint64_t prefix = kBlockPrefix + sink.sizes().offsets + array.offset_width;
  const bool paged = elements > array.page_elements;
  const uint64_t entry = array.format.entry_size;
  const uint64_t length = paged ? prefix : prefix + elements * entry;
  if (!paged && elements > kMaxArrayElements) return false;
  const auto block = read_metadata_block(file, sink.sizes(), address, length, "EADB",
                                         "extensible array data block", sink.log());
  if (!block) return true;
  MemorySource memory(*block);
  BinaryReader reader(memory);
  if (!check_owner(reader, array, sink, "extensible array data block", address)) return true;
  if (!paged) {
    const uint64_t start = prefix - 4;
    return add_entries(sink, array,
                       std::span<const std::byte>(*block).subspan(start, elements * entry), first);
  }
  const uint64_t page_bytes = array.page_elements * entry + 4;
  for (uint64_t page = 0; page < elements / array.page_elements; ++page) {
    const uint64_t page_first = first + page * array.page_elements;
    if (page_first + array.index_elements >= array.max_index_set) return true;
    if (page_written && !page_written(page)) continue;
    const auto at = checked_add(address, prefix + page * page_bytes);
    const auto bytes = at ? read_metadata_block(file, sink.sizes(), *at, page_bytes, "",
                                                "extensible array page", sink.log())
                          : std::nullopt;
    if (bytes && !add_entries(sink, array, std::span<const std::byte>(*bytes).first(page_bytes - 4),
                              page_first))
      return false;
  }
  return true;
}

// A super block: its data blocks' addresses, and their pages' bitmap when they are paged.
bool read_super_block(const ByteSource& file, ChunkSink& sink, ExtensibleArray& array,
                      uint64_t address, const SuperBlockShape& shape) {
  const bool paged = shape.block_elements > array.page_elements;
  const uint64_t pages = paged ? shape.block_elements / array.page_elements : 0;
  const uint64_t bitmap_bytes = paged ? shape.data_blocks * ((pages + 7) / 8) : 0;
  const uint64_t length = kBlockPrefix + sink.sizes().offsets + array.offset_width + bitmap_bytes +
                          shape.data_blocks * sink.sizes().offsets;
  const auto block = read_metadata_block(file, sink.sizes(), address, length, "EASB",
                                         "extensible array super block", sink.log());
  if (!block) return true;
  MemorySource memory(*block);
  BinaryReader reader(memory);
  if (!check_owner(reader, array, sink, "extensible array super block", address)) return true;
  reader.skip(array.offset_width);
  const std::byte* bitmap = block->data() + reader.tell();
  reader.skip(bitmap_bytes);
  for (uint64_t i = 0; i < shape.data_blocks; ++i) {
    if (++array.blocks_examined > kMaxArrayElements) {
      sink.log().add("extensible array at " + hex(array.address) + ": more than " +
                     std::to_string(kMaxArrayElements) + " data blocks; the rest are not read");
      return false;
    }
    const uint64_t data_block = read_address(reader, sink.sizes());
    const uint64_t first = shape.first_element + i * shape.block_elements;
    if (first + array.index_elements >= array.max_index_set) return true;
    if (data_block == kUndefinedAddress) continue;
    const auto written = [&](uint64_t page) {
      const uint64_t bit = i * pages + page;
      return (std::to_integer<unsigned>(bitmap[bit / 8]) & (0x80u >> (bit % 8))) != 0;
    };
    if (!read_data_block(file, sink, array, data_block, shape.block_elements, first,
                         paged ? std::function<bool(uint64_t)>(written) : nullptr))
      return false;
  }
  return true;
}

// The index block's data blocks (super blocks 0 to `direct` - 1) and super blocks.
void read_blocks(const ByteSource& file, ChunkSink& sink, ExtensibleArray& array,
                 BinaryReader& reader, const std::vector<SuperBlockShape>& shapes,
                 unsigned direct) {
  std::vector<uint64_t> data_blocks(2 * (array.min_pointers - 1));
  for (uint64_t& a : data_blocks) a = read_address(reader, sink.sizes());
  std::vector<uint64_t> super_blocks(shapes.size() - direct);
  for (uint64_t& a : super_blocks) a = read_address(reader, sink.sizes());
  uint64_t next_data_block = 0;
  for (unsigned u = 0; u < shapes.size(); ++u) {
    const SuperBlockShape& shape = shapes[u];
    if (shape.first_element + array.index_elements >= array.max_index_set) return;
    if (u >= direct) {
      const uint64_t address = super_blocks[u - direct];
      if (address != kUndefinedAddress && !read_super_block(file, sink, array, address, shape))
        return;
      continue;
    }
    for (uint64_t i = 0; i < shape.data_blocks; ++i, ++next_data_block) {
      const uint64_t address = data_blocks[next_data_block];
      const uint64_t first = shape.first_element + i * shape.block_elements;
      if (address != kUndefinedAddress &&
          !read_data_block(file, sink, array, address, shape.block_elements, first, nullptr))
        return;
    }
  }
}

}  // namespace

void list_extensible_array_chunks(const ByteSource& file, ChunkSink& sink) {
  auto array = read_header(file, sink);
  if (!array || array->index_block == kUndefinedAddress) return;
  const ElementGrid max = sink.max_grid();
  const auto unlimited = std::find(max.extents.begin(), max.extents.end(), kUnlimited);
  array->grid = sink.max_grid(static_cast<size_t>(unlimited - max.extents.begin()) % sink.rank());
  const std::vector<SuperBlockShape> shapes = super_block_shapes(*array);
  const unsigned direct = 2 * log2_of(array->min_pointers);
  const uint64_t length =
      kBlockPrefix + sink.sizes().offsets +
      uint64_t{array->index_elements} * array->format.entry_size +
      (2 * (array->min_pointers - 1) + (shapes.size() - std::min<size_t>(direct, shapes.size()))) *
          sink.sizes().offsets;
  if (direct > shapes.size()) {
    sink.log().add("extensible array at " + hex(array->address) + ": " +
                   std::to_string(shapes.size()) + " super blocks, fewer than the index block's " +
                   std::to_string(direct));
    return;
  }
  const auto block = read_metadata_block(file, sink.sizes(), array->index_block, length, "EAIB",
                                         "extensible array index block", sink.log());
  if (!block) return;
  MemorySource memory(*block);
  BinaryReader reader(memory);
  if (!check_owner(reader, *array, sink, "extensible array index block", array->index_block))
    return;
  const uint64_t element_bytes = uint64_t{array->index_elements} * array->format.entry_size;
  const auto direct_elements =
      std::span<const std::byte>(*block).subspan(reader.tell(), element_bytes);
  const uint64_t set = std::min<uint64_t>(array->index_elements, array->max_index_set);
  if (!add_array_entries(sink, array->grid, array->format,
                         direct_elements.first(set * array->format.entry_size), 0))
    return;
  reader.skip(element_bytes);
  read_blocks(file, sink, *array, reader, shapes, direct);
}

}  // namespace payloadfs::formats::hdf5

// The HDF5 data layout message (File Format Specification 3.0, IV.A.2.i), versions 1 to 4:
// where a dataset's raw data is (compact, contiguous, chunked with its index, virtual).

#include <string>

#include "core/formats/support/hdf5_addresses.hpp"
#include "core/formats/support/hdf5_messages.hpp"
#include "core/io/binary_reader.hpp"
#include "core/io/checked_math.hpp"

namespace payloadfs::formats::hdf5 {
namespace {

// An address with the base applied; undefined stays undefined.
uint64_t read_file_address(BinaryReader& r, const Sizes& sizes) {
  return file_offset(sizes, read_address(r, sizes)).value_or(kUndefinedAddress);
}

// The chunk dimensions with the trailing element-size dimension split off.
bool split_chunk_dims(std::vector<uint64_t> dims, ChunkIndex& index, std::string& error) {
  if (dims.size() < 2) {
    error = "a chunked layout has " + std::to_string(dims.size()) + " dimensions (at least 2)";
    return false;
  }
  index.element_size = dims.back();
  dims.pop_back();
  for (uint64_t d : dims)
    if (d == 0) {
      error = "a chunked layout has a chunk dimension of 0";
      return false;
    }
  index.chunk_dims = std::move(dims);
  return true;
}

// Versions 1 and 2: rank, class, then the address and 4-byte dimensions for every class.
bool parse_v1_v2(BinaryReader& r, const Sizes& sizes, DataLayout& layout, std::string& error) {
  const uint8_t rank = r.u8();
  const uint8_t cls = r.u8();
  r.skip(5);
  if (cls > 2 || rank > kMaxRank + 1) {
    error = "class " + std::to_string(cls) + " with " + std::to_string(rank) + " dimensions";
    return false;
  }
  const uint64_t address = cls == 0 ? kUndefinedAddress : read_file_address(r, sizes);
  std::vector<uint64_t> dims;
  uint64_t product = 1;
  for (unsigned i = 0; i < rank; ++i) {
    dims.push_back(r.u32());
    product = checked_mul(product, dims.back()).value_or(~uint64_t{0});
  }
  if (cls == 0) {
    layout.layout_class = DataLayout::Class::compact;
    const uint32_t size = r.u32();
    layout.compact_data = {r.tell(), size};
    r.skip(size);
  } else if (cls == 1) {
    layout.layout_class = DataLayout::Class::contiguous;
    layout.contiguous_address = address;
    layout.contiguous_size = product;  // the dimensions include the element size
  } else {
    layout.layout_class = DataLayout::Class::chunked;
    layout.chunk_index.address = address;
    if (!split_chunk_dims(std::move(dims), layout.chunk_index, error)) return false;
  }
  return true;
}

bool parse_v4_index(BinaryReader& r, const Sizes& sizes, ChunkIndex& index, std::string& error) {
  const uint8_t type = r.u8();
  switch (type) {
    case 1:
      if ((index.layout_flags & 2) != 0) {
        index.single_filtered_size = read_sized(r, sizes.lengths);
        index.single_filter_mask = r.u32();
      }
      break;
    case 2:
      break;
    case 3:
      index.fixed_array_page_bits = r.u8();
      break;
    case 4:
      index.ea_max_bits = r.u8();
      index.ea_index_elements = r.u8();
      index.ea_min_pointers = r.u8();
      index.ea_min_elements = r.u8();
      index.ea_page_bits = r.u8();
      break;
    case 5:
      index.btree2_node_size = r.u32();
      index.btree2_split_percent = r.u8();
      index.btree2_merge_percent = r.u8();
      break;
    default:
      error = "chunk index type " + std::to_string(type) + " is not 1 to 5";
      return false;
  }
  index.type = static_cast<ChunkIndexType>(type);
  return true;
}

bool parse_chunked(BinaryReader& r, const Sizes& sizes, unsigned version, DataLayout& layout,
                   std::string& error) {
  ChunkIndex& index = layout.chunk_index;
  layout.layout_class = DataLayout::Class::chunked;
  if (version == 4) index.layout_flags = r.u8();
  const uint8_t rank = r.u8();
  if (rank > kMaxRank + 1) {
    error = "a chunked layout has " + std::to_string(rank) + " dimensions (limit " +
            std::to_string(kMaxRank + 1) + ")";
    return false;
  }
  if (version == 3) index.address = read_address(r, sizes);
  const uint8_t width = version == 4 ? r.u8() : 4;
  if (width < 1 || width > 8) {
    error = "chunk dimensions are encoded in " + std::to_string(width) + " bytes (1 to 8)";
    return false;
  }
  std::vector<uint64_t> dims;
  for (unsigned i = 0; i < rank; ++i) dims.push_back(read_sized(r, width));
  if (!r.ok()) return true;  // the caller reports the cut
  if (!split_chunk_dims(std::move(dims), index, error)) return false;
  if (version == 4) {
    if (!parse_v4_index(r, sizes, index, error)) return false;
    index.address = read_address(r, sizes);
  }
  return true;
}

// Versions 3 and 4: the class, then that class's fields only.
bool parse_v3_v4(BinaryReader& r, const Sizes& sizes, unsigned version, DataLayout& layout,
                 std::string& error) {
  const uint8_t cls = r.u8();
  switch (cls) {
    case 0: {
      layout.layout_class = DataLayout::Class::compact;
      const uint16_t size = r.u16();
      layout.compact_data = {r.tell(), size};
      r.skip(size);
      return true;
    }
    case 1:
      layout.layout_class = DataLayout::Class::contiguous;
      layout.contiguous_address = read_file_address(r, sizes);
      layout.contiguous_size = read_sized(r, sizes.lengths);
      return true;
    case 2:
      return parse_chunked(r, sizes, version, layout, error);
    case 3:
      if (version == 4) {
        layout.layout_class = DataLayout::Class::virtual_dataset;
        return true;
      }
      [[fallthrough]];
    default:
      error = "layout class " + std::to_string(cls) + " is not defined in version " +
              std::to_string(version);
      return false;
  }
}

}  // namespace

std::optional<DataLayout> parse_layout(const ByteSource& file, const Sizes& sizes, ByteRange body,
                                       std::string& error) {
  BinaryReader root(file);
  BinaryReader r = root.sub(body.offset, body.length);
  const uint8_t version = r.u8();
  DataLayout layout;
  std::string problem;
  bool parsed = false;
  if (version >= 1 && version <= 2)
    parsed = parse_v1_v2(r, sizes, layout, problem);
  else if (version >= 3 && version <= 4)
    parsed = parse_v3_v4(r, sizes, version, layout, problem);
  else if (r.ok())
    problem = "version " + std::to_string(version) + " is not 1 to 4";
  if (parsed && !r.ok()) problem = r.error().value_or("cut short");
  if (!problem.empty() || !parsed || !r.ok()) {
    error = "data layout message: " + (problem.empty() ? r.error().value_or("cut short") : problem);
    return std::nullopt;
  }
  return layout;
}

}  // namespace payloadfs::formats::hdf5

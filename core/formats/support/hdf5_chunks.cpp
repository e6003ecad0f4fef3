#include "core/formats/support/hdf5_chunks.hpp"

#include "core/formats/support/hdf5_btree2.hpp"
#include "core/formats/support/hdf5_chunk_indexes.hpp"
#include "core/io/checked_math.hpp"

namespace payloadfs::formats::hdf5 {
namespace {

// The layout message's flag for a filtered single chunk
// (H5O_LAYOUT_CHUNK_SINGLE_INDEX_WITH_FILTER).
constexpr uint8_t kSingleChunkFiltered = 0x02;
// Version 2 B-tree record types of chunks: unfiltered and filtered.
constexpr uint8_t kBtree2Chunks = 10;
constexpr uint8_t kBtree2FilteredChunks = 11;

void list_single_chunk(ChunkSink& sink) {
  const ChunkIndex& index = sink.index();
  const std::vector<uint64_t> origin(sink.rank(), 0);
  if (index.layout_flags & kSingleChunkFiltered)
    sink.add_scaled(origin, index.address, index.single_filtered_size, index.single_filter_mask);
  else
    sink.add_scaled(origin, index.address, sink.chunk_bytes(), 0);
}

// Every chunk is allocated, at its place in the max-dims grid; only those inside the current
// dims are visited, so the work follows the chunk limit.
void list_implicit_chunks(ChunkSink& sink) {
  const ElementGrid grid = sink.max_grid();
  for (uint64_t extent : grid.extents) {
    if (extent == kUnlimited) {
      sink.log().add("implicit chunk index with an unlimited dimension");
      return;
    }
  }
  const ChunkIndex& index = sink.index();
  std::vector<uint64_t> current(sink.rank());
  uint64_t count = 1;
  for (size_t i = 0; i < sink.rank(); ++i) {
    current[i] = index.dims[i] / index.chunk_dims[i] + (index.dims[i] % index.chunk_dims[i] != 0);
    count *= current[i];  // ChunkSink checked that this product does not overflow
  }
  if (count > kMaxChunks) {
    sink.log().add("implicit chunk index: " + std::to_string(count) + " chunks; the first " +
                   std::to_string(kMaxChunks) + " are listed");
    count = kMaxChunks;
  }
  std::vector<uint64_t> scaled(sink.rank());
  for (uint64_t linear = 0; linear < count; ++linear) {
    uint64_t rest = linear;
    uint64_t element = 0;
    for (size_t i = sink.rank(); i-- > 0;) scaled[i] = rest % current[i], rest /= current[i];
    for (size_t i = 0; i < sink.rank(); ++i) element = element * grid.extents[i] + scaled[i];
    const auto offset = checked_mul(element, sink.chunk_bytes());
    const auto address = offset ? checked_add(index.address, *offset) : std::nullopt;
    if (!address || *address == kUndefinedAddress) {
      sink.log().add("implicit chunk index: chunk " + std::to_string(linear) + " overflows");
      return;
    }
    if (!sink.add_scaled(scaled, *address, sink.chunk_bytes(), 0)) return;
  }
}

// A version 2 B-tree record of a chunk: address, [size, filter mask,] scaled offsets.
void list_btree2_chunks(const ByteSource& file, ChunkSink& sink, std::vector<std::string>& errors) {
  const bool filtered = sink.index().filtered;
  const unsigned size_width = filtered ? chunk_size_width(sink.chunk_bytes()) : 0;
  const uint64_t record_size =
      sink.sizes().offsets + (filtered ? size_width + 4 : 0) + 8 * sink.rank();
  BinaryReader reader(file);
  bool size_reported = false;
  const auto visit = [&](ByteRange record) {
    if (record.length != record_size) {
      if (!size_reported)
        sink.log().add("version 2 B-tree chunk records of " + std::to_string(record.length) +
                       " bytes, expected " + std::to_string(record_size));
      size_reported = true;
      return false;
    }
    reader.seek(record.offset);
    const uint64_t address = read_address(reader, sink.sizes());
    const uint64_t size = filtered ? read_sized(reader, size_width) : sink.chunk_bytes();
    const uint32_t mask = filtered ? reader.u32() : 0;
    uint64_t scaled[kMaxRank] = {};
    for (size_t i = 0; i < sink.rank(); ++i) scaled[i] = reader.u64();
    if (!reader.ok()) return false;
    return sink.add_scaled(std::span<const uint64_t>(scaled, sink.rank()), address, size, mask);
  };
  walk_btree2(file, sink.sizes(), sink.index().address,
              filtered ? kBtree2FilteredChunks : kBtree2Chunks, visit, errors);
}

}  // namespace

std::optional<ArrayEntryFormat> array_entry_format(ChunkSink& sink, uint8_t client_id,
                                                   uint64_t entry_size, std::string_view where) {
  ArrayEntryFormat format;
  format.filtered = client_id == 1;
  format.size_width = format.filtered ? chunk_size_width(sink.chunk_bytes()) : 0;
  format.entry_size = sink.sizes().offsets + (format.filtered ? format.size_width + 4 : 0);
  if (client_id > 1 || entry_size != format.entry_size) {
    sink.log().add(std::string(where) + ": client " + std::to_string(client_id) +
                   " with entries of " + std::to_string(entry_size) + " bytes, expected " +
                   std::to_string(format.entry_size));
    return std::nullopt;
  }
  if (format.filtered != sink.index().filtered)
    sink.log().add(std::string(where) + (format.filtered ? ": filtered" : ": unfiltered") +
                   " entries for a dataset that is not");
  return format;
}

bool add_array_entries(ChunkSink& sink, const ElementGrid& grid, const ArrayEntryFormat& format,
                       std::span<const std::byte> bytes, uint64_t first) {
  MemorySource memory(bytes);
  BinaryReader reader(memory);
  const uint64_t count = bytes.size() / format.entry_size;
  for (uint64_t i = 0; i < count; ++i) {
    const uint64_t address = read_address(reader, sink.sizes());
    const uint64_t size =
        format.filtered ? read_sized(reader, format.size_width) : sink.chunk_bytes();
    const uint32_t mask = format.filtered ? reader.u32() : 0;
    if (!sink.add_element(grid, first + i, address, size, mask)) return false;
  }
  return true;
}

void list_chunks(const ByteSource& file, const Sizes& sizes, const ChunkIndex& index,
                 std::vector<Chunk>& chunks, std::vector<std::string>& errors) {
  try {
    ErrorLog log(errors);
    ChunkSink sink(file, sizes, index, log);
    if (!sink.valid() || index.address == kUndefinedAddress) return;
    switch (index.type) {
      case ChunkIndexType::btree1:
        list_btree1_chunks(file, sink);
        break;
      case ChunkIndexType::single:
        list_single_chunk(sink);
        break;
      case ChunkIndexType::implicit:
        list_implicit_chunks(sink);
        break;
      case ChunkIndexType::fixed_array:
        list_fixed_array_chunks(file, sink);
        break;
      case ChunkIndexType::extensible_array:
        list_extensible_array_chunks(file, sink);
        break;
      case ChunkIndexType::btree2:
        list_btree2_chunks(file, sink, errors);
        break;
      default:
        log.add("chunk index type " + std::to_string(static_cast<int>(index.type)));
    }
    sink.finish(chunks);
  } catch (const std::exception& e) {  // memory exhaustion: the listing says so, never throws
    errors.push_back(std::string("chunk index: ") + e.what());
  }
}

}  // namespace payloadfs::formats::hdf5

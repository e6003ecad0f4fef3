// Fixed array chunk indexes (File Format Specification 3.0, VII.A): a header (FAHD) and one
// data block (FADB) of entries, one per chunk of the max-dims grid in row-major order. Past
// 2^page_bits entries the data block is paged: a bitmap of the pages written (most
// significant bit first) ends its prefix, and the pages follow it, each with its checksum.

#include <algorithm>

#include "core/formats/support/hdf5_chunk_indexes.hpp"
#include "core/io/checked_math.hpp"

namespace payloadfs::formats::hdf5 {
namespace {

// Signature, version, client id and checksum.
constexpr uint64_t kBlockPrefix = 10;
// Page bits past which pages are larger than any block read.
constexpr uint8_t kMaxPageBits = 32;

struct FixedArrayHeader {
  uint64_t address = 0;
  uint8_t client_id = 0;
  uint8_t entry_size = 0;
  uint8_t page_bits = 0;
  uint64_t entries = 0;
  uint64_t data_block = kUndefinedAddress;
};

std::optional<FixedArrayHeader> read_header(const ByteSource& file, ChunkSink& sink) {
  const Sizes& sizes = sink.sizes();
  FixedArrayHeader header;
  header.address = sink.index().address;
  const uint64_t length = kBlockPrefix + 2 + sizes.lengths + sizes.offsets;
  const auto block = read_metadata_block(file, sizes, header.address, length, "FAHD",
                                         "fixed array header", sink.log());
  if (!block) return std::nullopt;
  MemorySource memory(*block);
  BinaryReader reader(memory);
  reader.skip(4);
  const uint8_t version = reader.u8();
  header.client_id = reader.u8();
  header.entry_size = reader.u8();
  header.page_bits = reader.u8();
  header.entries = read_sized(reader, sizes.lengths);
  header.data_block = read_address(reader, sizes);
  if (version != 0 || header.page_bits > kMaxPageBits) {
    sink.log().add("fixed array header at " + hex(header.address) + ": version " +
                   std::to_string(version) + ", page bits " + std::to_string(header.page_bits));
    return std::nullopt;
  }
  return header;
}

// The data block's prefix fields after the signature: version, client id, header address.
bool check_owner(BinaryReader& reader, const FixedArrayHeader& header, ChunkSink& sink,
                 uint64_t address) {
  reader.skip(4);
  const uint8_t version = reader.u8();
  const uint8_t client = reader.u8();
  const uint64_t owner = read_address(reader, sink.sizes());
  if (version == 0 && client == header.client_id && owner == header.address) return true;
  sink.log().add("fixed array data block at " + hex(address) + ": version " +
                 std::to_string(version) + ", client " + std::to_string(client) +
                 ", header address " + hex(owner));
  return false;
}

void read_pages(const ByteSource& file, ChunkSink& sink, const FixedArrayHeader& header,
                const ArrayEntryFormat& format, const ElementGrid& grid) {
  const uint64_t entries = header.entries;
  const uint64_t page_entries = uint64_t{1} << header.page_bits;
  const uint64_t pages = entries / page_entries + (entries % page_entries != 0);
  const uint64_t bitmap_bytes = (pages + 7) / 8;
  const uint64_t prefix = kBlockPrefix + sink.sizes().offsets + bitmap_bytes;
  const auto block = read_metadata_block(file, sink.sizes(), header.data_block, prefix, "FADB",
                                         "fixed array data block", sink.log());
  if (!block) return;
  MemorySource memory(*block);
  BinaryReader reader(memory);
  if (!check_owner(reader, header, sink, header.data_block)) return;
  const std::byte* bitmap = block->data() + kBlockPrefix - 4 + sink.sizes().offsets;
  const uint64_t page_bytes = page_entries * format.entry_size + 4;  // < 2^40
  for (uint64_t page = 0; page < pages; ++page) {
    if ((std::to_integer<unsigned>(bitmap[page / 8]) & (0x80u >> (page % 8))) == 0) continue;
    const uint64_t first = page * page_entries;
    if (first >= kMaxArrayElements) {
      sink.log().add("fixed array at " + hex(header.address) + ": " + std::to_string(entries) +
                     " entries; the first " + std::to_string(kMaxArrayElements) + " are read");
      return;
    }
    const uint64_t count = std::min(page_entries, entries - first);
    const auto address = checked_add(header.data_block, prefix + page * page_bytes);
    const auto bytes =
        address ? read_metadata_block(file, sink.sizes(), *address, count * format.entry_size + 4,
                                      "", "fixed array page", sink.log())
                : std::nullopt;
    if (!bytes) continue;
    const std::span<const std::byte> entry_bytes(bytes->data(), bytes->size() - 4);
    if (!add_array_entries(sink, grid, format, entry_bytes, first)) return;
  }
}

}  // namespace

void list_fixed_array_chunks(const ByteSource& file, ChunkSink& sink) {
  const auto header = read_header(file, sink);
  if (!header) return;
  const auto format = array_entry_format(sink, header->client_id, header->entry_size,
                                         "fixed array at " + hex(header->address));
  if (!format || header->data_block == kUndefinedAddress) return;
  const ElementGrid grid = sink.max_grid();
  if (header->entries > (uint64_t{1} << header->page_bits)) {
    read_pages(file, sink, *header, *format, grid);
    return;
  }
  // Unpaged: at most 2^32 entries, and a block past kMaxMetadataBlock is refused.
  const uint64_t length =
      kBlockPrefix + sink.sizes().offsets + header->entries * format->entry_size;
  const auto block = read_metadata_block(file, sink.sizes(), header->data_block, length, "FADB",
                                         "fixed array data block", sink.log());
  if (!block) return;
  MemorySource memory(*block);
  BinaryReader reader(memory);
  if (!check_owner(reader, *header, sink, header->data_block)) return;
  const uint64_t start = kBlockPrefix - 4 + sink.sizes().offsets;
  add_array_entries(sink, grid, *format,
                    std::span<const std::byte>(*block).subspan(start, block->size() - start - 4),
                    0);
}

}  // namespace payloadfs::formats::hdf5

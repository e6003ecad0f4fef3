#pragma once
// The chunk index readers list_chunks dispatches to, one per index type (one file each), and
// the chunk entries the fixed and extensible arrays share.

#include <cstdint>
#include <optional>
#include <span>

#include "core/formats/support/hdf5_chunk_grid.hpp"

namespace payloadfs::formats::hdf5 {

// How an array (fixed or extensible) stores one chunk: its address, and for a filtered
// dataset its stored size (`size_width` bytes) and filter mask (4 bytes).
struct ArrayEntryFormat {
  bool filtered = false;
  unsigned size_width = 0;
  unsigned entry_size = 0;
};

// The entry format for the array's client id (0: unfiltered chunks, 1: filtered), checked
// against the entry size its header gives; nullopt (and an error) when they disagree.
std::optional<ArrayEntryFormat> array_entry_format(ChunkSink& sink, uint8_t client_id,
                                                   uint64_t entry_size, std::string_view where);
// Adds the entries in `bytes`, the first being array element `first`; false once the sink is
// full.
bool add_array_entries(ChunkSink& sink, const ElementGrid& grid, const ArrayEntryFormat& format,
                       std::span<const std::byte> bytes, uint64_t first);

void list_btree1_chunks(const ByteSource& file, ChunkSink& sink);
void list_fixed_array_chunks(const ByteSource& file, ChunkSink& sink);
void list_extensible_array_chunks(const ByteSource& file, ChunkSink& sink);

}  // namespace payloadfs::formats::hdf5

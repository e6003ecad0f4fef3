#pragma once
// The chunk grids HDF5's indexes number chunks in, and the list of chunks an index walk finds:
// each index hands its chunks here, by scaled coordinates or by element number, and this turns
// them into `Chunk`s numbered in the grid of the current dimensions.

#include <cstdint>
#include <span>
#include <vector>

#include "core/formats/support/hdf5_chunks.hpp"
#include "core/formats/support/hdf5_index_reading.hpp"

namespace payloadfs::formats::hdf5 {

// Dimensions a dataset may have (HDF5's H5S_MAX_RANK).
inline constexpr size_t kMaxRank = 32;
// Array elements (fixed and extensible array entries) examined per index.
inline constexpr uint64_t kMaxArrayElements = uint64_t{1} << 24;

// How an array index numbers its elements: row-major over `extents`, whose position i is the
// dataset's dimension `dims[i]`. The first extent may be unbounded (an unlimited dimension).
struct ElementGrid {
  std::vector<size_t> dims;
  std::vector<uint64_t> extents;
};

class ChunkSink {
 public:
  ChunkSink(const ByteSource& file, const Sizes& sizes, const ChunkIndex& index, ErrorLog& log);

  // False (and an error logged) when the index's dimensions do not describe a chunk grid.
  [[nodiscard]] bool valid() const noexcept { return valid_; }
  [[nodiscard]] size_t rank() const noexcept { return index_.dims.size(); }
  // An unfiltered chunk's size in bytes (chunk dims times the element size).
  [[nodiscard]] uint64_t chunk_bytes() const noexcept { return chunk_bytes_; }
  // The grid of maximum dims (ceil(max / chunk)), with dimension `first` moved to the front
  // (the extensible array's swizzle); an unlimited dimension's extent is kUnlimited.
  [[nodiscard]] ElementGrid max_grid(size_t first = 0) const;
  [[nodiscard]] const Sizes& sizes() const noexcept { return sizes_; }
  [[nodiscard]] const ChunkIndex& index() const noexcept { return index_; }
  [[nodiscard]] ErrorLog& log() noexcept { return log_; }

  // Adds the chunk at these scaled coordinates (offsets / chunk dims). An undefined address or
  // a chunk outside the current dims is skipped; false when the chunk limit stops the listing.
  bool add_scaled(std::span<const uint64_t> scaled, uint64_t address, uint64_t size,
                  uint32_t filter_mask);
  // The same for element `element` of an array index numbered by `grid`.
  bool add_element(const ElementGrid& grid, uint64_t element, uint64_t address, uint64_t size,
                   uint32_t filter_mask);
  // Appends the chunks sorted by index, each once, to `out`.
  void finish(std::vector<Chunk>& out);

 private:
  bool check_dims();

  const ByteSource& file_;
  const Sizes& sizes_;
  const ChunkIndex& index_;
  ErrorLog& log_;
  bool valid_ = false;
  bool full_ = false;
  uint64_t chunk_bytes_ = 0;
  std::vector<uint64_t> current_extents_;  // ceil(dims / chunk dims)
  std::vector<Chunk> chunks_;
};

}  // namespace payloadfs::formats::hdf5

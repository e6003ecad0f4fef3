#include "core/formats/support/hdf5_chunk_grid.hpp"

#include <algorithm>

#include "core/io/checked_math.hpp"

namespace payloadfs::formats::hdf5 {
namespace {

uint64_t ceil_div(uint64_t a, uint64_t b) {
  return a / b + (a % b != 0 ? 1 : 0);
}

}  // namespace

ChunkSink::ChunkSink(const ByteSource& file, const Sizes& sizes, const ChunkIndex& index,
                     ErrorLog& log)
    : file_(file), sizes_(sizes), index_(index), log_(log) {
  valid_ = check_dims();
}

bool ChunkSink::check_dims() {
  const size_t rank = index_.dims.size();
  if (rank == 0 || rank > kMaxRank || index_.chunk_dims.size() != rank ||
      (!index_.max_dims.empty() && index_.max_dims.size() != rank)) {
    log_.add("chunk index: rank " + std::to_string(rank) + " with " +
             std::to_string(index_.chunk_dims.size()) + " chunk dimensions");
    return false;
  }
  std::optional<uint64_t> bytes = index_.element_size;
  std::optional<uint64_t> count = 1;
  for (size_t i = 0; i < rank; ++i) {
    if (index_.chunk_dims[i] == 0) {
      log_.add("chunk index: a chunk dimension of 0");
      return false;
    }
    current_extents_.push_back(ceil_div(index_.dims[i], index_.chunk_dims[i]));
    if (bytes) bytes = checked_mul(*bytes, index_.chunk_dims[i]);
    if (count) count = checked_mul(*count, current_extents_.back());
  }
  if (!bytes || !count) {
    log_.add("chunk index: the chunk size or the chunk count overflows");
    return false;
  }
  chunk_bytes_ = *bytes;
  return true;
}

ElementGrid ChunkSink::max_grid(size_t first) const {
  ElementGrid grid;
  const auto extent = [&](size_t dim) {
    const uint64_t max = index_.max_dims.empty() ? index_.dims[dim] : index_.max_dims[dim];
    return max == kUnlimited ? kUnlimited : ceil_div(max, index_.chunk_dims[dim]);
  };
  grid.dims.push_back(first);
  grid.extents.push_back(extent(first));
  for (size_t dim = 0; dim < rank(); ++dim) {
    if (dim == first) continue;
    grid.dims.push_back(dim);
    grid.extents.push_back(extent(dim));
  }
  return grid;
}

bool ChunkSink::add_scaled(std::span<const uint64_t> scaled, uint64_t address, uint64_t size,
                           uint32_t filter_mask) {
  if (full_) return false;
  if (address == kUndefinedAddress || scaled.size() != rank()) return true;
  uint64_t linear = 0;
  for (size_t i = 0; i < rank(); ++i) {
    if (scaled[i] >= current_extents_[i]) return true;  // outside the current dims
    linear = linear * current_extents_[i] + scaled[i];  // below the checked total
  }
  const auto offset = file_offset(sizes_, address);
  if (!offset || !range_within(*offset, size, file_.size())) {
    if (log_.full()) {
      log_.skip();
      return true;
    }
    log_.add("chunk " + std::to_string(linear) + " at " + hex(address) + " (" +
             std::to_string(size) + " bytes) past the end of the file");
    return true;
  }
  if (chunks_.size() >= kMaxChunks) {
    log_.add("more than " + std::to_string(kMaxChunks) + " chunks; the rest are not listed");
    full_ = true;
    return false;
  }
  chunks_.push_back(Chunk{*offset, size, filter_mask, linear});
  return true;
}

bool ChunkSink::add_element(const ElementGrid& grid, uint64_t element, uint64_t address,
                            uint64_t size, uint32_t filter_mask) {
  if (address == kUndefinedAddress) return !full_;
  uint64_t scaled[kMaxRank] = {};
  for (size_t i = grid.extents.size(); i-- > 1;) {
    const uint64_t extent = grid.extents[i];
    if (extent == 0 || extent == kUnlimited) return true;  // no element has such a place
    scaled[grid.dims[i]] = element % extent;
    element /= extent;
  }
  if (grid.extents[0] != kUnlimited && element >= grid.extents[0]) return true;
  scaled[grid.dims[0]] = element;
  return add_scaled(std::span<const uint64_t>(scaled, rank()), address, size, filter_mask);
}

void ChunkSink::finish(std::vector<Chunk>& out) {
  std::stable_sort(chunks_.begin(), chunks_.end(),
                   [](const Chunk& a, const Chunk& b) { return a.index < b.index; });
  const auto duplicates =
      std::unique(chunks_.begin(), chunks_.end(),
                  [](const Chunk& a, const Chunk& b) { return a.index == b.index; });
  if (duplicates != chunks_.end())
    log_.add(std::to_string(chunks_.end() - duplicates) +
             " chunks listed twice by the index; the first of each is kept");
  chunks_.erase(duplicates, chunks_.end());
  out.insert(out.end(), chunks_.begin(), chunks_.end());
  chunks_.clear();
}

}  // namespace payloadfs::formats::hdf5

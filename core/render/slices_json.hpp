#pragma once
// slices.json: a JSON array with one object per line, one per slice and per record. Slices
// are rendered once; records are rendered a chunk at a time when read, from a one-pass index
// of chunk sizes, so that the file's exact size is known without keeping text for millions of
// records. The index is made on first need (measure()), not when the payload is built: it
// renders every record once, which a reader of header.json should not wait for.

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/io/byte_source.hpp"
#include "core/model/layout.hpp"
#include "core/vfs/slice_tree.hpp"

namespace payloadfs {

class SlicesJson {
 public:
  static constexpr uint64_t kChunkRecords = 1024;

  // Renders the slices; record chunks are laid out but not measured yet.
  SlicesJson(std::span<const Slice> slices, std::span<const RecordTable> tables,
             const SliceTree& tree);

  // Whether the exact size is known: always without records, after measure() with them.
  [[nodiscard]] bool measured() const noexcept { return measured_; }
  // Renders every record chunk once, reading record attributes through `source`, to learn
  // the size of each. Not thread-safe: the owner serializes it (Payload does, once).
  void measure(const ByteSource& source, std::span<const RecordTable> tables,
               const SliceTree& tree);
  // The exact size; only once measured().
  [[nodiscard]] uint64_t size() const noexcept { return size_; }
  // True when the whole text is held (no records): text() is all of it.
  [[nodiscard]] bool whole() const noexcept { return chunks_.empty(); }
  [[nodiscard]] const std::string& head() const noexcept { return head_; }

  // A contiguous piece of the text: [start, start + text.size()).
  struct Piece {
    uint64_t start = 0;
    std::string text;
    size_t chunk = SIZE_MAX;  // which record chunk, or SIZE_MAX for head and tail
  };
  // The piece holding byte `offset` (< size(), once measured()). Record chunks are rendered through
  // `source`; false when the file no longer gives the same text (it changed under us).
  [[nodiscard]] bool piece_at(uint64_t offset, const ByteSource& source,
                              std::span<const RecordTable> tables, const SliceTree& tree,
                              Piece& out) const;

 private:
  struct Chunk {
    size_t table;
    uint64_t first;  // record index
    uint64_t count;
    uint64_t start;  // offset of its text in the file
    uint64_t size;
  };
  [[nodiscard]] std::string render_chunk(const Chunk& chunk, const ByteSource& source,
                                         std::span<const RecordTable> tables,
                                         const SliceTree& tree) const;

  std::string head_;  // "[\n" and every slice; the whole text when there are no records
  std::vector<Chunk> chunks_;
  std::string tail_;
  uint64_t size_ = 0;
  bool measured_ = true;
  bool any_element_before_records_ = false;
};

}  // namespace payloadfs

#pragma once
// One version of one source file, fully prepared to be served: its parsed layout, the rendered
// header.json and slices.json bytes, the raw/ tree, and its mapping once bytes are wanted.
// Immutable once built; a changed source gets a new Payload while open files keep the one they
// opened.

#include <sys/stat.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "core/io/mapped_file.hpp"
#include "core/model/layout.hpp"
#include "core/model/registry.hpp"
#include "core/nesting.hpp"
#include "core/render/refs_json.hpp"
#include "core/render/slices_json.hpp"
#include "core/vfs/slice_tree.hpp"

namespace payloadfs {

// What identifies one version of a source file.
struct SourceIdentity {
  dev_t dev = 0;
  ino_t ino = 0;
  uint64_t size = 0;
  int64_t mtime_ns = 0;
  int64_t ctime_ns = 0;

  static SourceIdentity of(const struct stat& st) noexcept;
  friend bool operator==(const SourceIdentity&, const SourceIdentity&) = default;
};

// Where a payload's bytes lie in its source file: all of it, or a slice of a container's
// (nested/). Offsets a nested payload serves (raw/, range/, slices.json, xattrs, refs.json)
// are offsets in the source file.
struct Nesting {
  ByteRange extent;        // the payload's bytes in the source file
  unsigned level = 0;      // 0: the file itself; 1: a member of it; 2: a member's member
  std::string chain;       // the raw/ paths of the slices leading here, joined by '\0'
  std::string shown_path;  // header.json's "path": "a.tar/nested/x.npy" (the file's own path at 0)
  std::string container;   // header.json's "container": the container's shown path
};

class Payload {
 public:
  // Maps and parses the open regular file `fd` (fstat'ed as `st`), shown as `rel_path`.
  // Never fails: problems become errors in header.json.
  static std::shared_ptr<const Payload> build(std::string rel_path, int fd, const struct stat& st,
                                              const Registry& registry);
  // The payload in slice `slice_path` of `container` (bytes `extent` of the source file, which
  // `fd` is, the same version): parsed through a window on those bytes, its offsets then
  // shifted into the file.
  static std::shared_ptr<const Payload> build_nested(const Payload& container,
                                                     const std::string& slice_path,
                                                     ByteRange extent, int fd,
                                                     const Registry& registry);

  // The source file's path relative to SRC (a nested payload's too: its bytes are there).
  [[nodiscard]] const std::string& path() const noexcept { return path_; }
  [[nodiscard]] const Nesting& nesting() const noexcept { return nesting_; }
  [[nodiscard]] ByteRange extent() const noexcept { return nesting_.extent; }
  // The slices of this version that hold a payload (see core/nesting.hpp), found on the first
  // call by reading their first bytes from `file` (this version of the source), then kept.
  [[nodiscard]] const NestedMembers& nested_members(const Registry& registry,
                                                    const ByteSource& file) const;
  // The same once found (no source needed), else null.
  [[nodiscard]] const NestedMembers* nested_members_if_found() const noexcept {
    return nested_found_.load(std::memory_order_acquire) ? &nested_ : nullptr;
  }
  [[nodiscard]] const struct stat& source_stat() const noexcept { return stat_; }
  [[nodiscard]] SourceIdentity identity() const noexcept { return SourceIdentity::of(stat_); }
  // The source file's size (a nested payload's own size is extent().length).
  [[nodiscard]] uint64_t size() const noexcept { return static_cast<uint64_t>(stat_.st_size); }
  [[nodiscard]] std::string_view format() const noexcept { return format_; }
  [[nodiscard]] const std::string& header_json() const noexcept { return header_json_; }
  // slices.json: its exact size, and its text a piece at a time (records are rendered on
  // demand through `source`, this version of the file reopened; see SlicesJson). With record
  // tables the size is learned on the first call that passes a source.
  [[nodiscard]] bool slices_json_measured() const noexcept;
  [[nodiscard]] uint64_t slices_json_size(const ByteSource& source) const;
  // Only once slices_json_measured().
  [[nodiscard]] uint64_t slices_json_size() const noexcept { return slices_json_.size(); }
  [[nodiscard]] bool slices_json_piece(uint64_t offset, const ByteSource& source,
                                       SlicesJson::Piece& out) const {
    (void)slices_json_size(source);
    return slices_json_.piece_at(offset, source, tables_, tree_, out);
  }
  // Without record tables slices.json is held whole: this is all of it.
  [[nodiscard]] bool slices_json_whole() const noexcept { return slices_json_.whole(); }
  [[nodiscard]] const std::string& slices_json_head() const noexcept { return slices_json_.head(); }
  // The whole of slices.json, for --inspect.
  [[nodiscard]] std::string slices_json_text(const ByteSource& source) const;
  [[nodiscard]] ByteRange magic() const noexcept { return magic_; }
  // Whether refs.json is offered: some slices are arrays (see refs_json.hpp) and the path is
  // valid UTF-8, so that references name the file exactly.
  [[nodiscard]] bool has_refs_json() const noexcept { return has_refs_json_; }
  // refs.json with every reference pointing at `source_url` (this file's absolute path or URL).
  // Rendered on the first call and kept: every call must pass the same URL (one per mount).
  [[nodiscard]] const std::string& refs_json(std::string_view source_url) const;
  [[nodiscard]] std::span<const Slice> slices() const noexcept { return slices_; }
  [[nodiscard]] std::span<const RecordTable> tables() const noexcept { return tables_; }
  // The bytes an entry under raw/ serves (a slice or a record); nullopt for directories.
  [[nodiscard]] std::optional<ByteRange> range_of(const SliceTree::Entry& entry) const;
  [[nodiscard]] const SliceTree& tree() const noexcept { return tree_; }
  [[nodiscard]] const std::vector<std::string>& errors() const noexcept { return errors_; }
  // Whether reading the source failed while building (see FdSource::failed): its errors may
  // say more about the source's state than about the file, so such a payload is not cached.
  [[nodiscard]] bool source_failed() const noexcept { return source_failed_; }
  // How much heap this payload holds (rendered JSON, slice names and attributes, the raw/
  // tree, record tables), counted from its parts, for the cache's memory budget.
  [[nodiscard]] size_t memory_estimate() const noexcept { return memory_estimate_; }
  // Building or dropping a payload of at least this many bytes hands the allocator's free
  // memory back to the kernel (malloc_trim): glibc would otherwise keep it in its arenas, and a
  // few large payloads built in turn would leave the daemon's resident memory at their peak.
  static constexpr size_t kTrimBytes = 1 << 20;
  // Maps the file for bytes(), once, on the first need: reading a header never maps (a
  // mapping per payload would cost an mmap and a munmap per header.json). `fd` is the
  // caller's descriptor of the same file. Returns 0, ESTALE when `fd` is another file, or
  // mmap's errno. Thread-safe.
  [[nodiscard]] int map(int fd) const;
  // Whether map() has succeeded: the bytes can be served.
  [[nodiscard]] bool mapped() const noexcept { return mapped_.load(std::memory_order_acquire); }
  // The mapped bytes of `range`, which must lie within the file; empty before map().
  [[nodiscard]] std::span<const std::byte> bytes(ByteRange range) const noexcept;
  // Faults in the pages of `range` ahead of a large reply (see MappedFile::populate).
  void populate(ByteRange range) const noexcept {
    if (mapped()) map_.populate(range.offset, range.length);
  }

 private:
  Payload(std::string path, const struct stat& st, Nesting nesting, Layout layout,
          std::string_view format, std::span<const std::byte> magic_bytes);
  static std::shared_ptr<const Payload> build_in(std::string rel_path, int fd,
                                                 const struct stat& st, const Registry& registry,
                                                 Nesting nesting);
  static void trim_heap() noexcept;

  // Declared first, so destroyed last: once every other member has freed its memory, a large
  // payload trims the heap.
  struct TrimOnDestroy {
    size_t bytes = 0;
    TrimOnDestroy() = default;
    TrimOnDestroy(const TrimOnDestroy&) = delete;
    TrimOnDestroy& operator=(const TrimOnDestroy&) = delete;
    ~TrimOnDestroy();
  };
  // The shared_ptr's control block (allocated apart from the payload) and the index entry of
  // one chunk of slices.json's records, for the estimate.
  static constexpr size_t kSharedControlBlock = 24;
  static constexpr size_t kSlicesJsonChunkBytes = 40;

  TrimOnDestroy trim_on_destroy_;
  std::string path_;
  struct stat stat_;
  Nesting nesting_;
  mutable std::mutex map_mutex_;  // serializes map(); readers check mapped_ first
  mutable MappedFile map_;        // set once, under map_mutex_, before mapped_
  mutable std::atomic<bool> mapped_{false};
  std::string format_;
  ByteRange magic_;
  std::vector<Slice> slices_;
  std::vector<RecordTable> tables_;
  std::vector<ChunkedArray> chunked_arrays_;  // refs.json's chunked arrays
  std::vector<std::string> errors_;
  bool source_failed_ = false;
  SliceTree tree_;  // built from slices_ and tables_, so declared after them
  std::string header_json_;
  mutable SlicesJson slices_json_;  // measured once, under slices_json_once_
  mutable std::once_flag slices_json_once_;
  mutable std::atomic<bool> slices_json_measured_{false};
  bool has_refs_json_ = false;
  mutable std::once_flag refs_json_once_;
  mutable std::string refs_json_;
  size_t memory_estimate_ = 0;
  mutable std::once_flag nested_once_;
  mutable NestedMembers nested_;
  mutable std::atomic<bool> nested_found_{false};
};

}  // namespace payloadfs

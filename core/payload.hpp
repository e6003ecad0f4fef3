#pragma once
// One version of one source file, fully prepared to be served: its mapping, its parsed layout,
// the rendered header.json and slices.json bytes, and the raw/ tree. Immutable once built; a
// changed source gets a new Payload while open files keep the one they opened.

#include <sys/stat.h>

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "core/layout.hpp"
#include "core/mapped_file.hpp"
#include "core/registry.hpp"
#include "core/slice_tree.hpp"

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

class Payload {
 public:
  // Maps and parses the open regular file `fd` (fstat'ed as `st`), shown as `rel_path`.
  // Never fails: problems become errors in header.json.
  static std::shared_ptr<const Payload> build(std::string rel_path, int fd, const struct stat& st,
                                              const Registry& registry);

  [[nodiscard]] const std::string& path() const noexcept { return path_; }
  [[nodiscard]] const struct stat& source_stat() const noexcept { return stat_; }
  [[nodiscard]] SourceIdentity identity() const noexcept { return SourceIdentity::of(stat_); }
  [[nodiscard]] uint64_t size() const noexcept { return static_cast<uint64_t>(stat_.st_size); }
  [[nodiscard]] std::string_view format() const noexcept { return format_; }
  [[nodiscard]] const std::string& header_json() const noexcept { return header_json_; }
  [[nodiscard]] const std::string& slices_json() const noexcept { return slices_json_; }
  [[nodiscard]] ByteRange magic() const noexcept { return magic_; }
  [[nodiscard]] std::span<const Slice> slices() const noexcept { return slices_; }
  [[nodiscard]] const SliceTree& tree() const noexcept { return tree_; }
  [[nodiscard]] const std::vector<std::string>& errors() const noexcept { return errors_; }
  // Whether the bytes can be served (false when the file could not be mapped).
  [[nodiscard]] bool mapped() const noexcept { return mapped_; }
  // The mapped bytes of `range`, which must lie within the file.
  [[nodiscard]] std::span<const std::byte> bytes(ByteRange range) const noexcept;

 private:
  Payload(std::string path, const struct stat& st, MappedFile map, bool mapped, Layout layout,
          std::string_view format, std::span<const std::byte> magic_bytes);

  std::string path_;
  struct stat stat_;
  MappedFile map_;
  bool mapped_;
  std::string format_;
  ByteRange magic_;
  std::vector<Slice> slices_;
  std::vector<std::string> errors_;
  SliceTree tree_;  // built from slices_, so declared after it
  std::string header_json_;
  std::string slices_json_;
};

}  // namespace payloadfs

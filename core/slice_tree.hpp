#pragma once
// The directory tree under raw/: slice names split at '/', each component made a safe file
// name, duplicates suffixed ~1, ~2, ... in slice order. Record tables become directories whose
// entries (zero-padded record numbers) are computed, not stored, so a table of millions of
// records costs no memory here.

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/layout.hpp"

namespace payloadfs {

class SliceTree {
 public:
  static constexpr uint32_t kRoot = 0;
  static constexpr size_t kMaxNameBytes = 255;  // NAME_MAX

  struct Node {
    std::string name;  // this component
    std::string path;  // from raw/, components joined by '/'
    bool is_dir = false;
    size_t slice = 0;             // files: index into the slices
    std::optional<size_t> table;  // directories holding a record table: its index
    std::vector<uint32_t> children;
  };

  // Something under raw/: a directory (node), a slice (node) or a record of a table.
  struct Entry {
    enum class Kind : uint8_t { directory, slice, record };
    Kind kind = Kind::directory;
    uint32_t node = kRoot;  // the directory or slice node; for records, the table's directory
    uint64_t record = 0;
    [[nodiscard]] bool is_dir() const { return kind == Kind::directory; }
  };

  SliceTree(std::span<const Slice> slices, std::span<const RecordTable> tables);

  [[nodiscard]] const Node& node(uint32_t id) const { return nodes_.at(id); }
  [[nodiscard]] std::optional<Entry> find(std::string_view path) const;
  [[nodiscard]] std::optional<Entry> child(const Entry& dir, std::string_view name) const;
  // The raw/ path of an entry (from raw/, no leading '/').
  [[nodiscard]] std::string path_of(const Entry& entry) const;
  // raw/ path of each slice, in slice order, and of each table's directory.
  [[nodiscard]] const std::string& slice_path(size_t slice) const { return slice_paths_.at(slice); }
  [[nodiscard]] const std::string& table_path(size_t table) const { return table_paths_.at(table); }
  // The file name of record `index` of a table of `count` records ("0042" of 1000).
  [[nodiscard]] static std::string record_name(uint64_t index, uint64_t count);
  // How many records table directory `node` holds (0 for other nodes).
  [[nodiscard]] uint64_t record_count(uint32_t node) const;

  // A component as it appears on disk: "" -> "(empty)", "." -> "(dot)", ".." -> "(dotdot)",
  // NUL -> "%00", cut to fit NAME_MAX with room for a ~N suffix.
  [[nodiscard]] static std::string safe_component(std::string_view raw);

 private:
  uint32_t add_node(uint32_t parent, std::string name, bool is_dir, size_t slice);
  // A free name in `dir` derived from `name`, or an existing directory when `want_dir`
  // (`fresh` asks for a new directory even when one exists).
  uint32_t place(uint32_t dir, const std::string& name, bool want_dir, size_t slice,
                 bool fresh = false);
  [[nodiscard]] std::optional<uint32_t> child_node(uint32_t dir, std::string_view name) const;

  std::vector<Node> nodes_;
  std::unordered_map<std::string, uint32_t> by_path_;
  std::unordered_map<std::string, uint32_t> next_suffix_;
  std::unordered_map<std::string, uint32_t> dir_for_;  // wanted dir path -> node it became
  std::vector<std::string> slice_paths_;
  std::vector<std::string> table_paths_;
  std::vector<uint64_t> table_counts_;
};

}  // namespace payloadfs

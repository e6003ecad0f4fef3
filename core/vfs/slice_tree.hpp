#pragma once
// The directory tree under raw/: slice names split at '/', each component made a safe file
// name, duplicates suffixed ~1, ~2, ... in slice order. Record tables become directories whose
// entries (zero-padded record numbers) are computed, not stored, so a table of millions of
// records costs no memory here. Each slice's and table's path is stored once, and every node's
// path is a view into the path that made it: memory grows with the names' total length, never
// with their depth times their length (a 64 KiB name of "a/a/a/..." is 32,768 directories).

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/model/layout.hpp"

namespace payloadfs {

class SliceTree {
 public:
  static constexpr uint32_t kRoot = 0;
  static constexpr size_t kMaxNameBytes = 255;  // NAME_MAX

  struct Node {
    std::string name;       // this component
    std::string_view path;  // from raw/, components joined by '/' (owned by the tree)
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
  // Nodes' paths point into the tree's own strings: moving keeps them, copying would not.
  SliceTree(const SliceTree&) = delete;
  SliceTree& operator=(const SliceTree&) = delete;
  SliceTree(SliceTree&&) = default;
  SliceTree& operator=(SliceTree&&) = default;

  [[nodiscard]] const Node& node(uint32_t id) const { return nodes_.at(id); }
  [[nodiscard]] std::optional<Entry> find(std::string_view path) const;
  [[nodiscard]] std::optional<Entry> child(const Entry& dir, std::string_view name) const;
  // The raw/ path of an entry (from raw/, no leading '/').
  [[nodiscard]] std::string path_of(const Entry& entry) const;
  // raw/ path of each slice, in slice order, and of each table's directory.
  [[nodiscard]] const std::string& slice_path(size_t slice) const { return slice_paths_.at(slice); }
  [[nodiscard]] const std::string& table_path(size_t table) const { return table_paths_.at(table); }
  // The file name of record `index` of table `table`: its number zero-padded to the width of
  // the largest ("0042" of 1000), or for a table with a grid, its chunk coordinates ("3.0.12").
  [[nodiscard]] std::string name_of_record(size_t table, uint64_t index) const;
  // The file name of record `index` of a numbered table of `count` records.
  [[nodiscard]] static std::string record_name(uint64_t index, uint64_t count);
  // The index of the record of table `table` named exactly `name`, if there is one.
  [[nodiscard]] std::optional<uint64_t> record_index(size_t table, std::string_view name) const;
  // How many records table directory `node` holds (0 for other nodes).
  [[nodiscard]] uint64_t record_count(uint32_t node) const;

  // The heap this tree holds (nodes, names, paths, indexes), as glibc malloc hands it out.
  [[nodiscard]] size_t memory_estimate() const noexcept;

  // A component as it appears on disk: "" -> "(empty)", "." -> "(dot)", ".." -> "(dotdot)",
  // NUL -> "%00", cut to fit NAME_MAX with room for a ~N suffix.
  [[nodiscard]] static std::string safe_component(std::string_view raw);

 private:
  // `name` in directory `dir`, as a key of the maps below: the directory's number, then the name.
  [[nodiscard]] static std::string child_key(uint32_t dir, std::string_view name);
  // Walks `name` down from the root, placing each component (see place); stores the path it
  // took in `path` (a string of its own that never changes once written) and makes the new
  // nodes' paths views of it; returns the last component's node.
  uint32_t descend(std::string_view name, bool is_dir, size_t slice, std::string& path);
  // A free name in `dir` derived from `name`, or an existing directory when `want_dir`
  // (`fresh` asks for a new directory even when one exists). Appends the name it took to
  // `path`, which holds `dir`'s path, and a new node to `made` with the length of its path.
  uint32_t place(uint32_t dir, const std::string& name, bool want_dir, size_t slice, bool fresh,
                 std::string& path, std::vector<std::pair<uint32_t, size_t>>& made);
  [[nodiscard]] std::optional<uint32_t> child_node(uint32_t dir, std::string_view name) const;

  std::vector<Node> nodes_;
  std::unordered_map<std::string, uint32_t> children_;     // child_key -> node
  std::unordered_map<std::string, uint32_t> next_suffix_;  // child_key -> last ~N tried
  std::unordered_map<std::string, uint32_t> dir_for_;      // wanted dir's child_key -> node
  // The full path of each slice and table directory. The vectors are reserved before any is
  // written, and a path never changes once written: nodes' paths are views of them.
  std::vector<std::string> slice_paths_;
  std::vector<std::string> table_paths_;
  // What names each table's records: their count, and for tables with a grid, the grid and
  // each record's tag (its row-major chunk index), 4 bytes a record.
  struct TableNames {
    uint64_t count = 0;
    std::vector<uint64_t> grid;  // empty: records are numbered
    std::vector<uint32_t> tags;
  };
  std::vector<TableNames> table_names_;
};

}  // namespace payloadfs

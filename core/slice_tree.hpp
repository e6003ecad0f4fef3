#pragma once
// The directory tree under raw/: slice names split at '/', each component made a safe file
// name, duplicates suffixed ~1, ~2, ... in slice order.

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
    size_t slice = 0;  // index into the slices, for files
    std::vector<uint32_t> children;
  };

  explicit SliceTree(std::span<const Slice> slices);

  [[nodiscard]] const Node& node(uint32_t id) const { return nodes_.at(id); }
  [[nodiscard]] std::optional<uint32_t> child(uint32_t dir, std::string_view name) const;
  [[nodiscard]] std::optional<uint32_t> find(std::string_view path) const;
  // raw/ path of each slice, in slice order.
  [[nodiscard]] const std::string& slice_path(size_t slice) const { return slice_paths_.at(slice); }

  // A component as it appears on disk: "" -> "(empty)", "." -> "(dot)", ".." -> "(dotdot)",
  // NUL -> "%00", cut to fit NAME_MAX with room for a ~N suffix.
  [[nodiscard]] static std::string safe_component(std::string_view raw);

 private:
  uint32_t add_node(uint32_t parent, std::string name, bool is_dir, size_t slice);
  // A free name in `dir` derived from `name`, or an existing directory when `want_dir`.
  uint32_t place(uint32_t dir, const std::string& name, bool want_dir, size_t slice);

  std::vector<Node> nodes_;
  std::unordered_map<std::string, uint32_t> by_path_;
  std::unordered_map<std::string, uint32_t> next_suffix_;
  std::unordered_map<std::string, uint32_t> dir_for_;  // wanted dir path -> node it became
  std::vector<std::string> slice_paths_;
};

}  // namespace payloadfs

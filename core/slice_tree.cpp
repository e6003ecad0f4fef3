#include "core/slice_tree.hpp"

namespace payloadfs {
namespace {
constexpr size_t kSuffixRoom = 12;  // "~" and up to 11 digits
}

std::string SliceTree::safe_component(std::string_view raw) {
  if (raw.empty()) return "(empty)";
  if (raw == ".") return "(dot)";
  if (raw == "..") return "(dotdot)";
  std::string out;
  out.reserve(raw.size());
  for (const char c : raw) {
    if (c == '\0')
      out += "%00";
    else
      out.push_back(c);
  }
  const size_t limit = kMaxNameBytes - kSuffixRoom;
  if (out.size() > limit) {
    size_t cut = limit;
    // Do not split a UTF-8 sequence: back up over continuation bytes.
    while (cut > 0 && (static_cast<unsigned char>(out[cut]) & 0xC0) == 0x80) --cut;
    out.resize(cut);
  }
  return out;
}

SliceTree::SliceTree(std::span<const Slice> slices) {
  nodes_.push_back(Node{"", "", true, 0, {}});
  slice_paths_.reserve(slices.size());
  for (size_t i = 0; i < slices.size(); ++i) {
    std::string_view name = slices[i].name;
    uint32_t dir = kRoot;
    while (true) {
      const size_t slash = name.find('/');
      const std::string component = safe_component(name.substr(0, slash));
      if (slash == std::string_view::npos) {
        const uint32_t leaf = place(dir, component, false, i);
        slice_paths_.push_back(nodes_[leaf].path);
        break;
      }
      dir = place(dir, component, true, 0);
      name.remove_prefix(slash + 1);
    }
  }
}

uint32_t SliceTree::place(uint32_t dir, const std::string& name, bool want_dir, size_t slice) {
  const std::string prefix = dir == kRoot ? "" : nodes_[dir].path + "/";
  const std::string wanted = prefix + name;
  if (want_dir) {  // a directory component resolves the same way every time it recurs
    if (const auto known = dir_for_.find(wanted); known != dir_for_.end()) return known->second;
  }
  std::string candidate = name;
  if (by_path_.contains(wanted)) {
    // Taken: try name~k, continuing where the last collision on this name stopped.
    uint32_t& k = next_suffix_[wanted];
    do {
      candidate = name + "~" + std::to_string(++k);
    } while (by_path_.contains(prefix + candidate));
  }
  const uint32_t id = add_node(dir, candidate, want_dir, slice);
  if (want_dir) dir_for_.emplace(wanted, id);
  return id;
}

uint32_t SliceTree::add_node(uint32_t parent, std::string name, bool is_dir, size_t slice) {
  const auto id = static_cast<uint32_t>(nodes_.size());
  std::string path = parent == kRoot ? name : nodes_[parent].path + "/" + name;
  by_path_.emplace(path, id);
  nodes_[parent].children.push_back(id);
  nodes_.push_back(Node{std::move(name), std::move(path), is_dir, slice, {}});
  return id;
}

std::optional<uint32_t> SliceTree::child(uint32_t dir, std::string_view name) const {
  if (dir >= nodes_.size() || !nodes_[dir].is_dir) return std::nullopt;
  std::string path = dir == kRoot ? std::string(name) : nodes_[dir].path + "/" + std::string(name);
  return find(path);
}

std::optional<uint32_t> SliceTree::find(std::string_view path) const {
  if (path.empty()) return kRoot;
  const auto it = by_path_.find(std::string(path));
  if (it == by_path_.end()) return std::nullopt;
  return it->second;
}

}  // namespace payloadfs

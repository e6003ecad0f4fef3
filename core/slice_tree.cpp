#include "core/slice_tree.hpp"

#include <algorithm>

namespace payloadfs {
namespace {
constexpr size_t kSuffixRoom = 12;  // "~" and up to 11 digits

size_t digits(uint64_t value) {
  size_t n = 1;
  while (value >= 10) {
    value /= 10;
    ++n;
  }
  return n;
}
}  // namespace

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

std::string SliceTree::record_name(uint64_t index, uint64_t count) {
  const size_t width = digits(count == 0 ? 0 : count - 1);
  std::string number = std::to_string(index);
  if (number.size() < width) number.insert(0, width - number.size(), '0');
  return number;
}

SliceTree::SliceTree(std::span<const Slice> slices, std::span<const RecordTable> tables) {
  nodes_.push_back(Node{"", "", true, 0, std::nullopt, {}});
  slice_paths_.reserve(slices.size());
  // Walks a '/'-separated name down from the root, creating directories; returns the parent
  // directory of the last component and that component, made safe.
  const auto descend = [this](std::string_view name) {
    uint32_t dir = kRoot;
    while (true) {
      const size_t slash = name.find('/');
      std::string component = safe_component(name.substr(0, slash));
      if (slash == std::string_view::npos) return std::make_pair(dir, std::move(component));
      dir = place(dir, component, true, 0);
      name.remove_prefix(slash + 1);
    }
  };
  for (size_t i = 0; i < slices.size(); ++i) {
    const auto [dir, leaf] = descend(slices[i].name);
    slice_paths_.push_back(nodes_[place(dir, leaf, false, i)].path);
  }
  for (size_t t = 0; t < tables.size(); ++t) {
    const auto [dir, leaf] = descend(tables[t].dir);
    const uint32_t id = place(dir, leaf, true, 0, /*fresh=*/true);
    nodes_[id].table = t;
    table_paths_.push_back(nodes_[id].path);
    table_counts_.push_back(tables[t].records.size());
  }
}

uint32_t SliceTree::place(uint32_t dir, const std::string& name, bool want_dir, size_t slice,
                          bool fresh) {
  const std::string prefix = dir == kRoot ? "" : nodes_[dir].path + "/";
  const std::string wanted = prefix + name;
  if (want_dir && !fresh) {  // a directory component resolves the same way every time
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
  if (want_dir && !fresh) dir_for_.emplace(wanted, id);
  return id;
}

uint32_t SliceTree::add_node(uint32_t parent, std::string name, bool is_dir, size_t slice) {
  const auto id = static_cast<uint32_t>(nodes_.size());
  std::string path = parent == kRoot ? name : nodes_[parent].path + "/" + name;
  by_path_.emplace(path, id);
  nodes_[parent].children.push_back(id);
  nodes_.push_back(Node{std::move(name), std::move(path), is_dir, slice, std::nullopt, {}});
  return id;
}

uint64_t SliceTree::record_count(uint32_t node) const {
  const auto& n = nodes_.at(node);
  return n.table ? table_counts_.at(*n.table) : 0;
}

std::optional<uint32_t> SliceTree::child_node(uint32_t dir, std::string_view name) const {
  const std::string path =
      dir == kRoot ? std::string(name) : nodes_[dir].path + "/" + std::string(name);
  const auto it = by_path_.find(path);
  if (it == by_path_.end()) return std::nullopt;
  return it->second;
}

std::optional<SliceTree::Entry> SliceTree::child(const Entry& dir, std::string_view name) const {
  if (dir.kind != Entry::Kind::directory || dir.node >= nodes_.size()) return std::nullopt;
  const Node& d = nodes_[dir.node];
  if (d.table) {
    // Exactly the zero-padded number of an existing record: nothing else resolves.
    const uint64_t count = table_counts_[*d.table];
    if (count == 0 || name.size() != digits(count - 1)) return std::nullopt;
    uint64_t index = 0;
    for (const char c : name) {
      if (c < '0' || c > '9') return std::nullopt;
      index = index * 10 + static_cast<uint64_t>(c - '0');
    }
    if (index >= count) return std::nullopt;
    return Entry{Entry::Kind::record, dir.node, index};
  }
  const auto id = child_node(dir.node, name);
  if (!id) return std::nullopt;
  return Entry{nodes_[*id].is_dir ? Entry::Kind::directory : Entry::Kind::slice, *id, 0};
}

std::optional<SliceTree::Entry> SliceTree::find(std::string_view path) const {
  Entry entry{Entry::Kind::directory, kRoot, 0};
  if (path.empty()) return entry;
  if (const auto it = by_path_.find(std::string(path)); it != by_path_.end()) {
    return Entry{nodes_[it->second].is_dir ? Entry::Kind::directory : Entry::Kind::slice,
                 it->second, 0};
  }
  // Not a stored node: maybe a record, "<table dir>/<number>".
  const size_t slash = path.rfind('/');
  if (slash == std::string_view::npos) return std::nullopt;
  const auto dir = by_path_.find(std::string(path.substr(0, slash)));
  if (dir == by_path_.end()) return std::nullopt;
  return child(Entry{Entry::Kind::directory, dir->second, 0}, path.substr(slash + 1));
}

std::string SliceTree::path_of(const Entry& entry) const {
  const Node& n = nodes_.at(entry.node);
  if (entry.kind != Entry::Kind::record) return n.path;
  return n.path + "/" + record_name(entry.record, table_counts_.at(*n.table));
}

}  // namespace payloadfs

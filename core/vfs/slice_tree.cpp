#include "core/vfs/slice_tree.hpp"

#include <algorithm>
#include <cstring>

#include "core/heap_size.hpp"
#include "core/io/checked_math.hpp"
#include "core/vfs/record_names.hpp"

namespace payloadfs {
namespace {
constexpr size_t kSuffixRoom = 12;  // "~" and up to 11 digits

// An unordered_map<std::string, uint32_t>: its bucket array and one node per element (next
// pointer, key, value and cached hash).
size_t map_heap(const std::unordered_map<std::string, uint32_t>& map) {
  constexpr size_t kNode = sizeof(void*) + sizeof(std::pair<const std::string, uint32_t>) + 8;
  size_t n = chunk_bytes(map.bucket_count() * sizeof(void*));
  for (const auto& [key, value] : map) n += chunk_bytes(kNode) + string_heap(key);
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

namespace {

// The grid of a table when its records can be named by it: a non-empty grid whose cells fit
// 64 bits, and tags that strictly increase inside it. Otherwise the records are numbered.
bool names_by_grid(const RecordTable& table) {
  if (table.grid.empty()) return false;
  uint64_t cells = 1;
  for (const uint64_t n : table.grid) {
    const auto product = checked_mul(cells, n);
    if (!product) return false;
    cells = *product;
  }
  for (size_t i = 0; i < table.records.size(); ++i) {
    if (table.records[i].tag >= cells) return false;
    if (i > 0 && table.records[i].tag <= table.records[i - 1].tag) return false;
  }
  return true;
}

// A decimal number without leading zeros ("0" itself is one), below `limit`.
std::optional<uint64_t> grid_coordinate(std::string_view digits, uint64_t limit) {
  if (digits.empty() || digits.size() > 19 || (digits.size() > 1 && digits[0] == '0'))
    return std::nullopt;
  uint64_t value = 0;
  for (const char c : digits) {
    if (c < '0' || c > '9') return std::nullopt;
    value = value * 10 + static_cast<uint64_t>(c - '0');
  }
  if (value >= limit) return std::nullopt;
  return value;
}

}  // namespace

std::string SliceTree::record_name(uint64_t index, uint64_t count) {
  return numbered("", index, index_width(count));
}

std::string SliceTree::name_of_record(size_t table, uint64_t index) const {
  const TableNames& t = table_names_.at(table);
  if (t.grid.empty()) return record_name(index, t.count);
  // Row-major coordinates of the tag, last dimension fastest.
  std::vector<uint64_t> coordinates(t.grid.size());
  uint64_t rest = t.tags.at(index);
  for (size_t d = t.grid.size(); d-- > 0;) {
    coordinates[d] = rest % t.grid[d];
    rest /= t.grid[d];
  }
  std::string name;
  for (size_t d = 0; d < coordinates.size(); ++d) {
    if (d > 0) name += '.';
    name += std::to_string(coordinates[d]);
  }
  return name;
}

std::optional<uint64_t> SliceTree::record_index(size_t table, std::string_view name) const {
  const TableNames& t = table_names_.at(table);
  if (t.grid.empty()) {
    // Exactly the zero-padded number of an existing record: nothing else resolves.
    if (t.count == 0 || name.size() != index_width(t.count)) return std::nullopt;
    uint64_t index = 0;
    for (const char c : name) {
      if (c < '0' || c > '9') return std::nullopt;
      index = index * 10 + static_cast<uint64_t>(c - '0');
    }
    if (index >= t.count) return std::nullopt;
    return index;
  }
  uint64_t tag = 0;  // fits: names_by_grid checked that the grid's cells do
  for (size_t d = 0; d < t.grid.size(); ++d) {
    const bool last = d + 1 == t.grid.size();
    const size_t end = last ? name.size() : name.find('.');
    if (end == std::string_view::npos) return std::nullopt;
    const auto coordinate = grid_coordinate(name.substr(0, end), t.grid[d]);
    if (!coordinate) return std::nullopt;
    tag = tag * t.grid[d] + *coordinate;
    if (!last) name.remove_prefix(end + 1);
  }
  const auto it = std::lower_bound(t.tags.begin(), t.tags.end(), tag);
  if (it == t.tags.end() || *it != tag) return std::nullopt;
  return static_cast<uint64_t>(it - t.tags.begin());
}

SliceTree::SliceTree(std::span<const Slice> slices, std::span<const RecordTable> tables) {
  nodes_.push_back(Node{"", std::string_view(), true, 0, std::nullopt, {}});
  slice_paths_.reserve(slices.size());
  table_paths_.reserve(tables.size());
  for (size_t i = 0; i < slices.size(); ++i)
    (void)descend(slices[i].name, false, i, slice_paths_.emplace_back());
  for (size_t t = 0; t < tables.size(); ++t) {
    const uint32_t id = descend(tables[t].dir, true, 0, table_paths_.emplace_back());
    nodes_[id].table = t;
    TableNames& names = table_names_.emplace_back();
    names.count = tables[t].records.size();
    if (names_by_grid(tables[t])) {
      names.grid = tables[t].grid;
      names.tags.reserve(tables[t].records.size());
      for (const Record& r : tables[t].records) names.tags.push_back(r.tag);
    }
  }
  // Built once and never grown again: give back what doubling left spare.
  nodes_.shrink_to_fit();
  for (Node& n : nodes_) n.children.shrink_to_fit();
}

size_t SliceTree::memory_estimate() const noexcept {
  size_t n = chunk_bytes(nodes_.capacity() * sizeof(Node)) +
             chunk_bytes(slice_paths_.capacity() * sizeof(std::string)) +
             chunk_bytes(table_paths_.capacity() * sizeof(std::string)) +
             chunk_bytes(table_names_.capacity() * sizeof(TableNames)) + map_heap(children_) +
             map_heap(next_suffix_) + map_heap(dir_for_);
  for (const Node& node : nodes_)
    n += string_heap(node.name) + chunk_bytes(node.children.capacity() * sizeof(uint32_t));
  for (const auto& path : slice_paths_) n += string_heap(path);
  for (const auto& path : table_paths_) n += string_heap(path);
  for (const auto& t : table_names_) {
    n += chunk_bytes(t.grid.capacity() * sizeof(uint64_t)) +
         chunk_bytes(t.tags.capacity() * sizeof(uint32_t));
  }
  return n;
}

std::string SliceTree::child_key(uint32_t dir, std::string_view name) {
  std::string key(sizeof dir, '\0');
  std::memcpy(key.data(), &dir, sizeof dir);
  key.append(name);
  return key;
}

uint32_t SliceTree::descend(std::string_view name, bool is_dir, size_t slice, std::string& path) {
  std::string building;
  std::vector<std::pair<uint32_t, size_t>> made;  // new nodes, and their path's length
  uint32_t dir = kRoot;
  while (true) {
    const size_t slash = name.find('/');
    const std::string component = safe_component(name.substr(0, slash));
    if (slash == std::string_view::npos) {
      // A table's directory is its own, even where a directory of that name exists.
      const uint32_t id = place(dir, component, is_dir, slice, /*fresh=*/is_dir, building, made);
      // Stored once, exactly; the path of every node made on the way is a prefix of it.
      path = building;
      for (const auto& [node, length] : made)
        nodes_[node].path = std::string_view(path).substr(0, length);
      return id;
    }
    dir = place(dir, component, true, 0, false, building, made);
    name.remove_prefix(slash + 1);
  }
}

uint32_t SliceTree::place(uint32_t dir, const std::string& name, bool want_dir, size_t slice,
                          bool fresh, std::string& path,
                          std::vector<std::pair<uint32_t, size_t>>& made) {
  const auto take = [&path](std::string_view component) {
    if (!path.empty()) path.push_back('/');
    path.append(component);
  };
  const std::string wanted = child_key(dir, name);
  if (want_dir && !fresh) {  // a directory component resolves the same way every time
    if (const auto known = dir_for_.find(wanted); known != dir_for_.end()) {
      take(nodes_[known->second].name);
      return known->second;
    }
  }
  std::string candidate = name;
  if (children_.contains(wanted)) {
    // Taken: try name~k, continuing where the last collision on this name stopped.
    uint32_t& k = next_suffix_[wanted];
    do {
      candidate = name + "~" + std::to_string(++k);
    } while (children_.contains(child_key(dir, candidate)));
  }
  take(candidate);
  const auto id = static_cast<uint32_t>(nodes_.size());
  children_.emplace(child_key(dir, candidate), id);
  nodes_[dir].children.push_back(id);
  nodes_.push_back(
      Node{std::move(candidate), std::string_view(), want_dir, slice, std::nullopt, {}});
  made.emplace_back(id, path.size());
  if (want_dir && !fresh) dir_for_.emplace(wanted, id);
  return id;
}

std::optional<uint32_t> SliceTree::child_node(uint32_t dir, std::string_view name) const {
  const auto it = children_.find(child_key(dir, name));
  if (it == children_.end()) return std::nullopt;
  return it->second;
}

uint64_t SliceTree::record_count(uint32_t node) const {
  const auto& n = nodes_.at(node);
  return n.table ? table_names_.at(*n.table).count : 0;
}

std::optional<SliceTree::Entry> SliceTree::child(const Entry& dir, std::string_view name) const {
  if (dir.kind != Entry::Kind::directory || dir.node >= nodes_.size()) return std::nullopt;
  const Node& d = nodes_[dir.node];
  if (d.table) {
    const auto index = record_index(*d.table, name);
    if (!index) return std::nullopt;
    return Entry{Entry::Kind::record, dir.node, *index};
  }
  const auto id = child_node(dir.node, name);
  if (!id) return std::nullopt;
  return Entry{nodes_[*id].is_dir ? Entry::Kind::directory : Entry::Kind::slice, *id, 0};
}

std::optional<SliceTree::Entry> SliceTree::find(std::string_view path) const {
  Entry entry{Entry::Kind::directory, kRoot, 0};
  if (path.empty()) return entry;
  // One component at a time; the last one under a table's directory may be a record.
  while (true) {
    const size_t slash = path.find('/');
    const std::string_view name = path.substr(0, slash);
    if (nodes_[entry.node].table) {
      if (slash != std::string_view::npos) return std::nullopt;
      return child(entry, name);
    }
    const auto id = child_node(entry.node, name);
    if (!id) return std::nullopt;
    entry = Entry{nodes_[*id].is_dir ? Entry::Kind::directory : Entry::Kind::slice, *id, 0};
    if (slash == std::string_view::npos) return entry;
    if (!entry.is_dir()) return std::nullopt;
    path.remove_prefix(slash + 1);
  }
}

std::string SliceTree::path_of(const Entry& entry) const {
  const Node& n = nodes_.at(entry.node);
  if (entry.kind != Entry::Kind::record) return std::string(n.path);
  return std::string(n.path) + "/" + name_of_record(*n.table, entry.record);
}

}  // namespace payloadfs

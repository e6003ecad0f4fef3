#include "fs/inode_table.hpp"

#include <string_view>

namespace payloadfs {
namespace {

constexpr fuse_ino_t kFirstHashed = 16;  // below: reserved (1 is the root)

uint64_t fnv1a(uint64_t hash, std::string_view bytes) {
  for (const char c : bytes) {
    hash ^= static_cast<unsigned char>(c);
    hash *= 0x100000001b3ULL;
  }
  return hash;
}

uint64_t fnv1a_u64(uint64_t hash, uint64_t value) {
  for (int i = 0; i < 8; ++i) {
    hash ^= (value >> (8 * i)) & 0xFF;
    hash *= 0x100000001b3ULL;
  }
  return hash;
}

uint64_t mix(uint64_t x) {  // splitmix64 finaliser: spreads FNV's weak high bits
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

}  // namespace

InodeTable::InodeTable(NodeKey root, Hash hash) : hash_(hash) {
  const auto root_entry = by_ino_.emplace(FUSE_ROOT_ID, Entry{std::move(root), 1}).first;
  link_path(FUSE_ROOT_ID, root_entry->second);
}

void InodeTable::link_path(fuse_ino_t ino, Entry& entry) {
  const auto [head, added] = by_path_.try_emplace(path_hash(entry.key.path), ino);
  if (added) return;
  entry.next_same_path = head->second;
  by_ino_.at(head->second).prev_same_path = ino;
  head->second = ino;
}

void InodeTable::unlink_path(const Entry& entry) {
  if (entry.next_same_path != 0)
    by_ino_.at(entry.next_same_path).prev_same_path = entry.prev_same_path;
  if (entry.prev_same_path != 0) {
    by_ino_.at(entry.prev_same_path).next_same_path = entry.next_same_path;
    return;
  }
  // The head: its successor, if any, heads the list now.
  const auto head = by_path_.find(path_hash(entry.key.path));
  if (entry.next_same_path != 0)
    head->second = entry.next_same_path;
  else
    by_path_.erase(head);
}

fuse_ino_t InodeTable::preferred(const NodeKey& key) {
  uint64_t h = 0xcbf29ce484222325ULL;
  h = fnv1a_u64(h, static_cast<uint64_t>(key.kind));
  h = fnv1a_u64(h, static_cast<uint64_t>(key.dev));
  h = fnv1a_u64(h, static_cast<uint64_t>(key.ino));
  h = fnv1a(h, key.path);
  h = fnv1a_u64(h, key.path.size());
  h = fnv1a(h, key.sub);
  h = fnv1a_u64(h, key.sub.size());
  h = fnv1a_u64(h, key.offset);
  h = fnv1a_u64(h, key.length);
  h = fnv1a(h, key.nest);
  h = fnv1a_u64(h, key.nest.size());
  h = fnv1a_u64(h, key.version.size);
  h = fnv1a_u64(h, static_cast<uint64_t>(key.version.mtime_ns));
  h = fnv1a_u64(h, static_cast<uint64_t>(key.version.ctime_ns));
  h = mix(h);
  return h < kFirstHashed ? h + kFirstHashed : h;
}

uint64_t InodeTable::path_hash(std::string_view path) {
  return mix(fnv1a(0xcbf29ce484222325ULL, path));
}

std::optional<fuse_ino_t> InodeTable::number_of(const NodeKey& key) const {
  const fuse_ino_t home = hash_(key);
  if (const auto it = by_ino_.find(home); it != by_ino_.end() && it->second.key == key) return home;
  if (by_ino_.at(FUSE_ROOT_ID).key == key) return FUSE_ROOT_ID;  // the one key never hashed
  if (displaced_.empty()) return std::nullopt;
  if (const auto it = displaced_.find(key); it != displaced_.end()) return it->second;
  return std::nullopt;
}

fuse_ino_t InodeTable::acquire(const NodeKey& key) {
  const std::lock_guard lock(mutex_);
  if (const auto known = number_of(key)) {
    ++by_ino_.at(*known).lookups;
    return *known;
  }
  const fuse_ino_t home = hash_(key);
  fuse_ino_t ino = home;
  while (ino < kFirstHashed || by_ino_.contains(ino)) ino = mix(ino + 1);
  if (ino != home) displaced_.emplace(key, ino);
  const auto entry = by_ino_.emplace(ino, Entry{key, 1}).first;
  link_path(ino, entry->second);
  if (key.kind == NodeKind::range_file) range_files_.fetch_add(1, std::memory_order_relaxed);
  return ino;
}

void InodeTable::forget(fuse_ino_t ino, uint64_t count) {
  if (ino == FUSE_ROOT_ID) return;
  const std::lock_guard lock(mutex_);
  const auto it = by_ino_.find(ino);
  if (it == by_ino_.end()) return;
  if (it->second.lookups > count) {
    it->second.lookups -= count;
    return;
  }
  unlink_path(it->second);
  if (!displaced_.empty()) {
    if (const auto d = displaced_.find(it->second.key); d != displaced_.end() && d->second == ino)
      displaced_.erase(d);
  }
  last_open_.erase(ino);
  if (it->second.key.kind == NodeKind::range_file)
    range_files_.fetch_sub(1, std::memory_order_relaxed);
  by_ino_.erase(it);
}

std::optional<NodeKey> InodeTable::find(fuse_ino_t ino) const {
  const std::lock_guard lock(mutex_);
  const auto it = by_ino_.find(ino);
  if (it == by_ino_.end()) return std::nullopt;
  return it->second.key;
}

bool InodeTable::is(fuse_ino_t ino, NodeKind kind) const {
  const std::lock_guard lock(mutex_);
  const auto it = by_ino_.find(ino);
  return it != by_ino_.end() && it->second.key.kind == kind;
}

bool InodeTable::same_version_as_last_open(fuse_ino_t ino, const SourceIdentity& version) {
  const std::lock_guard lock(mutex_);
  if (!by_ino_.contains(ino)) return false;
  const auto [it, added] = last_open_.try_emplace(ino, version);
  if (added) return false;
  const bool same = it->second == version;
  it->second = version;
  return same;
}

size_t InodeTable::size() const {
  const std::lock_guard lock(mutex_);
  return by_ino_.size();
}

std::vector<std::pair<fuse_ino_t, NodeKind>> InodeTable::nodes_of(const std::string& path) const {
  const std::lock_guard lock(mutex_);
  std::vector<std::pair<fuse_ino_t, NodeKind>> out;
  const auto head = by_path_.find(path_hash(path));
  if (head == by_path_.end()) return out;
  for (fuse_ino_t ino = head->second; ino != 0;) {
    const Entry& entry = by_ino_.at(ino);
    if (entry.key.path == path) out.emplace_back(ino, entry.key.kind);  // not just alike
    ino = entry.next_same_path;
  }
  return out;
}

std::vector<fuse_ino_t> InodeTable::all() const {
  const std::lock_guard lock(mutex_);
  std::vector<fuse_ino_t> out;
  out.reserve(by_ino_.size());
  for (const auto& [ino, entry] : by_ino_) out.push_back(ino);
  return out;
}

}  // namespace payloadfs

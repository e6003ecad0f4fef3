#pragma once
// Inode numbers the kernel knows about. A number is derived from the node's key (a hash of
// kind, source dev/ino, path and entry), never from a counter, so the same node gets the same
// number on every lookup for the life of the mount. Entries live while the kernel holds
// lookups on them (FUSE lookup counting); the root is permanent. On the (2^-64-rare) event of
// two keys hashing alike, the later one probes to the next free number.
//
// Each key is stored once: a key is found at its hashed number, and only keys that had to
// probe elsewhere are also indexed by key. The nodes of one source path are chained in a
// doubly linked list (by number) whose head is indexed by a hash of the path, for change
// notifications: forgetting a node unlinks it in O(1), however many nodes share its path (a
// reader can make any number of range/ names of one file). (The table grows with every node
// the kernel remembers: about 200 bytes a node; fs/range_node_limit.hpp bounds the range/
// nodes, the one kind a reader can make without end.)

#include <fuse_lowlevel.h>

#include <atomic>
#include <cstdint>
#include <mutex>
#include <optional>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/payload.hpp"
#include "core/vfs/node_key.hpp"

namespace payloadfs {

class InodeTable {
 public:
  using Hash = fuse_ino_t (*)(const NodeKey&);

  // `hash` replaces preferred() in tests that need collisions.
  explicit InodeTable(NodeKey root, Hash hash = &InodeTable::preferred);

  // The node's number, adding one kernel lookup reference.
  [[nodiscard]] fuse_ino_t acquire(const NodeKey& key);
  void forget(fuse_ino_t ino, uint64_t count);
  [[nodiscard]] std::optional<NodeKey> find(fuse_ino_t ino) const;
  [[nodiscard]] bool is(fuse_ino_t ino, NodeKind kind) const;
  // The number a key gets when nothing collides (readdir's d_ino, which takes no reference).
  [[nodiscard]] static fuse_ino_t preferred(const NodeKey& key);

  // Whether the kernel may keep its cached pages of `ino`: true when `version` is the version
  // it last opened. Records `version` as the latest.
  [[nodiscard]] bool same_version_as_last_open(fuse_ino_t ino, const SourceIdentity& version);
  [[nodiscard]] size_t size() const;
  // How many of them are range/ files (see fs/range_node_limit.hpp).
  [[nodiscard]] size_t range_files() const { return range_files_.load(std::memory_order_relaxed); }
  // Every known node belonging to the source object at `path` (all entries of a payload, or a
  // source directory), for invalidating the kernel's caches when that source changes.
  [[nodiscard]] std::vector<std::pair<fuse_ino_t, NodeKind>> nodes_of(
      const std::string& path) const;
  [[nodiscard]] std::vector<fuse_ino_t> all() const;

 private:
  struct KeyHash {
    size_t operator()(const NodeKey& key) const noexcept {
      return static_cast<size_t>(preferred(key));
    }
  };
  struct Entry {
    NodeKey key;
    uint64_t lookups = 0;
    // Neighbours in the list of nodes whose path hashes alike (0: none).
    fuse_ino_t prev_same_path = 0;
    fuse_ino_t next_same_path = 0;
  };

  [[nodiscard]] static uint64_t path_hash(std::string_view path);
  // The number `key` has, if the table holds it. Called with mutex_ held.
  [[nodiscard]] std::optional<fuse_ino_t> number_of(const NodeKey& key) const;
  // Adds `ino` (already in by_ino_) to / removes it from its path's list. mutex_ held.
  void link_path(fuse_ino_t ino, Entry& entry);
  void unlink_path(const Entry& entry);

  const Hash hash_;
  // One lock for the maps; held only for map operations (never across I/O).
  mutable std::mutex mutex_;
  std::unordered_map<fuse_ino_t, Entry> by_ino_;
  std::unordered_map<NodeKey, fuse_ino_t, KeyHash> displaced_;  // keys not at hash_(key)
  std::unordered_map<uint64_t, fuse_ino_t> by_path_;            // path_hash(key.path) -> list head
  std::unordered_map<fuse_ino_t, SourceIdentity> last_open_;    // only nodes ever opened
  std::atomic<size_t> range_files_{0};
};

}  // namespace payloadfs

#pragma once
// Inode numbers the kernel knows about. A number is derived from the node's key (a hash of
// kind, source dev/ino, path and entry), never from a counter, so the same node gets the same
// number on every lookup for the life of the mount. Entries live while the kernel holds
// lookups on them (FUSE lookup counting); the root is permanent. On the (2^-64-rare) event of
// two keys hashing alike, the later one probes to the next free number.

#include <fuse_lowlevel.h>

#include <cstdint>
#include <mutex>
#include <optional>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/payload.hpp"
#include "fs/node.hpp"

namespace payloadfs {

class InodeTable {
 public:
  explicit InodeTable(NodeKey root);

  // The node's number, adding one kernel lookup reference.
  [[nodiscard]] fuse_ino_t acquire(const NodeKey& key);
  void forget(fuse_ino_t ino, uint64_t count);
  [[nodiscard]] std::optional<NodeKey> find(fuse_ino_t ino) const;
  // The number a key gets when nothing collides (readdir's d_ino, which takes no reference).
  [[nodiscard]] static fuse_ino_t preferred(const NodeKey& key);

  // Whether the kernel may keep its cached pages of `ino`: true when `version` is the version
  // it last opened. Records `version` as the latest.
  [[nodiscard]] bool same_version_as_last_open(fuse_ino_t ino, const SourceIdentity& version);
  [[nodiscard]] size_t size() const;
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
    std::optional<SourceIdentity> last_open;
  };

  // One lock for both maps; held only for map operations (never across I/O).
  mutable std::mutex mutex_;
  std::unordered_map<fuse_ino_t, Entry> by_ino_;
  std::unordered_map<NodeKey, fuse_ino_t, KeyHash> by_key_;
  std::unordered_multimap<std::string, fuse_ino_t> by_path_;
};

}  // namespace payloadfs

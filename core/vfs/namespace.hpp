#pragma once
// The virtual tree, without FUSE: which node a name leads to, what a directory lists, the
// attributes of a node, what a file serves, a node's extended attributes. The driver (fs/)
// turns inodes into keys, asks here, and replies. Every answer checks that the source is still
// the object (or the version) the key or payload was made from; a source that changed is
// ESTALE, never another file's bytes.
//
// Thread-safe: it holds no state of its own beyond what it was built with.

#include <sys/stat.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/io/result.hpp"
#include "core/io/source_root.hpp"
#include "core/io/unique_fd.hpp"
#include "core/payload.hpp"
#include "core/payload_cache.hpp"
#include "core/payload_errors.hpp"
#include "core/vfs/control_files.hpp"
#include "core/vfs/node_key.hpp"

namespace payloadfs {

struct DirEntry {
  std::string name;
  NodeKey key;
};

// A node and, for those that need one, the payload version it belongs to.
struct ResolvedNode {
  NodeKey key;
  std::shared_ptr<const Payload> payload;
};

// A directory's entries (without "." and ".."). A record table's directory lists its
// `records` after `entries`, computed (SliceTree::name_of_record), not stored.
struct Listing {
  std::vector<DirEntry> entries;
  uint64_t records = 0;
  size_t record_table = 0;                  // the payload's table they are the records of
  NodeKey record_key;                       // a record's key adds "/<name>" to `sub`
  bool control_dir_hides_a_source = false;  // SRC has an entry named like the control dir
};

// What a file node serves.
struct NodeContent {
  enum class Kind : uint8_t {
    text,          // generated text held by the payload
    bytes,         // a range of the source file
    records_json,  // slices.json of a payload with record tables, rendered from the source
    snapshot,      // a control file, rendered now
  };
  Kind kind = Kind::text;
  std::string_view text;  // text: a view into the payload
  ByteRange range;        // bytes
  std::shared_ptr<const std::string> snapshot;
};

using Xattrs = std::vector<std::pair<std::string, std::string>>;  // name, value

// Whether `range` (offsets in the source file) lies within the bytes of `payload`: all of the
// file, or a nested payload's slice of it. range/ names only these.
[[nodiscard]] bool within_extent(const Payload& payload, ByteRange range);

// Whether two stats are of the same file (not necessarily the same version of it).
[[nodiscard]] inline bool is_same_file(const struct stat& a, const struct stat& b) noexcept {
  return a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

class Namespace {
 public:
  struct Observer {
    // A payload was built (not a cache hit); `newly_malformed`: a version with errors that
    // PayloadErrors did not list before (the moment to log it).
    std::function<void(const Payload&, const PayloadCache::Built&, bool newly_malformed)> built;
    // A source failed with an errno that means nothing to a reader (answered EIO).
    std::function<void(const std::string& path, int err)> source_failed;
  };

  // `refs_prefix`: where refs.json's references point ("" for SRC's absolute path).
  Namespace(const SourceRoot& root, PayloadCache& cache, PayloadErrors& payload_errors,
            const ControlFiles& control, std::string refs_prefix, Observer observer = {});

  [[nodiscard]] NodeKey root_key() const;

  // The payload of the source file `key` belongs to, if its name still leads to that file.
  [[nodiscard]] Result<std::shared_ptr<const Payload>> payload_for(const NodeKey& key) const;
  // `key` with its payload, checked to exist in that payload version (ESTALE if not).
  [[nodiscard]] Result<ResolvedNode> resolve(NodeKey key) const;
  // The node `name` leads to under `parent` (ENOENT: none; ENOTDIR: not a directory).
  // `source`, when given, receives the stat of a source object found, for attributes().
  [[nodiscard]] Result<NodeKey> child(const ResolvedNode& parent, std::string_view name,
                                      struct stat* source = nullptr) const;
  [[nodiscard]] Result<Listing> list(const ResolvedNode& dir) const;
  // st_ino is left 0: the driver numbers nodes. `payload` is the key's, for nodes that need
  // one; `source`, a fresh stat of the key's source object if the caller has one.
  [[nodiscard]] Result<struct stat> attributes(const NodeKey& key, const Payload* payload,
                                               const struct stat* source = nullptr) const;
  // EISDIR for directories (and symbolic links, which the kernel never opens).
  [[nodiscard]] Result<NodeContent> content(const ResolvedNode& node) const;
  [[nodiscard]] Result<Xattrs> xattrs(const ResolvedNode& node) const;

  // The one version check: the source reopened, if it is still the version `payload` was
  // built from (else ESTALE).
  [[nodiscard]] Result<UniqueFd> open_version(const Payload& payload) const;
  // slices.json's exact size, measured from the source on first need.
  [[nodiscard]] Result<uint64_t> slices_json_size(const Payload& payload) const;
  // An errno from the source as the mount answers it: ENOENT means the version is gone
  // (ESTALE); permission errors stay; anything else is the source failing (EIO).
  [[nodiscard]] int source_error(const std::string& path, int err) const;
  [[nodiscard]] std::string refs_url(const Payload& payload) const;

  [[nodiscard]] const SourceRoot& root() const noexcept { return root_; }

  [[nodiscard]] static NodeVersion version_of(const Payload& payload);
  // `key`, numbered for `payload`'s version if it is a generated file (is_versioned).
  [[nodiscard]] static NodeKey versioned(NodeKey key, const Payload& payload);

 private:
  [[nodiscard]] Result<NodeKey> source_child(const NodeKey& dir, std::string_view name,
                                             struct stat* source) const;
  // `known`: the payload of `dir`, if the caller has it.
  [[nodiscard]] Result<NodeKey> payload_child(const NodeKey& dir, std::string_view name,
                                              const Payload* known = nullptr) const;
  [[nodiscard]] Result<Listing> list_source_dir(const NodeKey& dir) const;
  [[nodiscard]] Listing list_raw_dir(const ResolvedNode& dir) const;
  [[nodiscard]] Result<Listing> list_nested_dir(const ResolvedNode& dir) const;
  [[nodiscard]] Result<NodeKey> nested_child(const ResolvedNode& parent,
                                             std::string_view name) const;
  // Whether the payload of `key` is above -o nest_depth, so that its slices may nest.
  [[nodiscard]] bool nests_below(const NodeKey& key) const;
  // Which slices of `payload` hold a payload (found once per version, from its source file).
  [[nodiscard]] Result<const NestedMembers*> nested_members(const Payload& payload) const;
  [[nodiscard]] Result<struct stat> source_attributes(const NodeKey& key,
                                                      const struct stat* source) const;
  [[nodiscard]] Result<struct stat> entry_attributes(const NodeKey& key,
                                                     const Payload& payload) const;
  [[nodiscard]] struct stat control_attributes(const NodeKey& key) const;
  [[nodiscard]] Result<NodeContent> entry_content(const NodeKey& key, const Payload& payload) const;

  const SourceRoot& root_;
  PayloadCache& cache_;
  PayloadErrors& payload_errors_;
  const ControlFiles& control_;
  const std::string refs_prefix_;
  const Observer observer_;
};

}  // namespace payloadfs

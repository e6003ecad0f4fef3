#pragma once
// The kinds of node payloadfs shows, and the key that identifies one: which source object it
// belongs to (by dev/ino and path) and which entry of it it is. Keys are made by the factories
// below, so that each kind carries the fields it needs and no others.

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

namespace payloadfs {

enum class NodeKind : uint8_t {
  source_dir,    // a directory of SRC
  payload_dir,   // a regular file of SRC, shown as a directory
  symlink,       // a symbolic link of SRC that leads to something shown inside SRC
  header_json,   // <payload>/header.json
  slices_json,   // <payload>/slices.json
  refs_json,     // <payload>/refs.json (payloads with array slices)
  magic,         // <payload>/magic
  raw_dir,       // <payload>/raw and directories below it
  raw_file,      // a slice under raw/
  range_dir,     // <payload>/range (lookup only)
  range_file,    // <payload>/range/<a>-<b>
  nested_dir,    // <payload>/nested and directories below it
  control_dir,   // /.payloadfs
  control_file,  // /.payloadfs/<name>
};

// One version of a source file. The keys of generated files (is_versioned) carry it, so that
// each version's header.json is a node of its own: pages the kernel cached of one version
// can never be served as another's, and generated files use the page cache like any file.
struct NodeVersion {
  uint64_t size = 0;
  int64_t mtime_ns = 0;
  int64_t ctime_ns = 0;

  friend bool operator==(const NodeVersion&, const NodeVersion&) = default;
};

struct NodeKey {
  NodeKind kind = NodeKind::source_dir;
  dev_t dev = 0;  // identity of the source file or directory
  ino_t ino = 0;
  std::string path;     // source path relative to SRC; "" is SRC itself
  std::string sub;      // raw/ path of raw nodes and nested/ directories, name of control files
  uint64_t offset = 0;  // range files
  uint64_t length = 0;
  // The payload nested in the file that the node belongs to: the raw/ paths of the slices
  // leading to it, joined by '\0' ("" for the file's own payload; see core/nesting.hpp).
  std::string nest;
  NodeVersion version;  // generated files (is_versioned): the payload version they render

  // A source object: a directory of SRC ("" is SRC itself), a file (a payload directory) or
  // a symbolic link, identified by its dev/ino.
  [[nodiscard]] static NodeKey source(NodeKind kind, dev_t dev, ino_t ino, std::string path) {
    return NodeKey{kind, dev, ino, std::move(path), {}, 0, 0, {}, {}};
  }
  [[nodiscard]] static NodeKey control_dir() {
    return NodeKey{NodeKind::control_dir, 0, 0, {}, {}, 0, 0, {}, {}};
  }
  [[nodiscard]] static NodeKey control_file(std::string_view name) {
    return NodeKey{NodeKind::control_file, 0, 0, {}, std::string(name), 0, 0, {}, {}};
  }
  // An entry of this node's payload (this is its payload directory or another entry of it):
  // header.json, raw/<sub>, range/, ...
  [[nodiscard]] NodeKey entry(NodeKind entry_kind, std::string entry_sub = {}) const {
    return NodeKey{entry_kind, dev, ino, path, std::move(entry_sub), 0, 0, nest, {}};
  }
  [[nodiscard]] NodeKey range_file(uint64_t range_offset, uint64_t range_length) const {
    return NodeKey{NodeKind::range_file, dev, ino, path, {}, range_offset, range_length, nest, {}};
  }
  // The payload directory nested/<slice_path> of this node's payload leads to.
  [[nodiscard]] NodeKey nested_payload(std::string_view slice_path) const {
    std::string chain = nest;
    if (!chain.empty()) chain += '\0';
    chain += slice_path;
    return NodeKey{NodeKind::payload_dir, dev, ino, path, {}, 0, 0, std::move(chain), {}};
  }

  friend bool operator==(const NodeKey&, const NodeKey&) = default;
};

[[nodiscard]] inline bool is_directory(NodeKind kind) {
  return kind == NodeKind::source_dir || kind == NodeKind::payload_dir ||
         kind == NodeKind::raw_dir || kind == NodeKind::range_dir ||
         kind == NodeKind::control_dir || kind == NodeKind::nested_dir;
}

// Generated from a payload version, and numbered per version (see NodeVersion).
[[nodiscard]] inline bool is_versioned(NodeKind kind) {
  return kind == NodeKind::header_json || kind == NodeKind::slices_json ||
         kind == NodeKind::refs_json;
}

// Needs the payload parsed (sizes of generated files, the raw/ tree).
[[nodiscard]] inline bool needs_payload(NodeKind kind) {
  return kind != NodeKind::source_dir && kind != NodeKind::payload_dir &&
         kind != NodeKind::symlink && kind != NodeKind::range_dir &&
         kind != NodeKind::control_dir && kind != NodeKind::control_file;
}

}  // namespace payloadfs

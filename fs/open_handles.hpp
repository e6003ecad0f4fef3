#pragma once
// What open files and directories hold between open and release.

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/payload.hpp"
#include "fs/node.hpp"

namespace payloadfs {

// An open file: the payload version it opened (kept alive by the handle) and what it serves.
struct OpenFile {
  std::shared_ptr<const Payload> payload;
  ByteRange range;         // byte nodes: the range of the source file served
  std::string_view text;   // generated files: a view into payload or owned_text
  std::string owned_text;  // control files: a snapshot taken at open
  bool is_text = false;
};

struct DirEntry {
  std::string name;
  NodeKey key;
};

struct OpenDir {
  std::shared_ptr<const Payload> payload;
  std::vector<DirEntry> entries;  // "." and ".." first
};

}  // namespace payloadfs

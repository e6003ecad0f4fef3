#pragma once
// What open files and directories hold between open and release.

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "core/io/unique_fd.hpp"
#include "core/payload.hpp"
#include "core/vfs/namespace.hpp"
#include "core/vfs/node_key.hpp"
#include "fs/source_budget.hpp"

namespace payloadfs {

// An open file: the payload version it opened (kept alive by the handle) and what it serves.
struct OpenFile {
  enum class Serves : uint8_t {
    text,          // `text`: generated text, or a control file's snapshot
    records_json,  // slices.json with record tables, rendered from `source` piece by piece
    mapped,        // `range` of the source, from its mapping
    pread,         // `range` of the source, read with pread on the I/O pool (pread_sources)
  };
  Serves serves = Serves::text;
  std::shared_ptr<const Payload> payload;
  // The source reopened, same version: byte nodes check its current size before each read;
  // slices.json with record tables reads attributes back from it.
  SourceBudget::Held source;
  // slices.json with record tables: the last piece rendered, since reads come in page-sized
  // steps through it.
  std::mutex piece_mutex;
  SlicesJson::Piece piece;
  ByteRange range;  // byte nodes: the range of the source file served
  // pread: the I/O pool opens `source` on the first read, under source_mutex.
  std::mutex source_mutex;
  // Where the last read ended (offset within `range`): a read starting there is sequential.
  std::atomic<uint64_t> next_read{UINT64_MAX};
  std::string_view text;  // generated files: a view into payload or owned_text
  // Control files: a snapshot taken at open, shared so that a read can keep it alive past its
  // reply (see Filesystem::read).
  std::shared_ptr<const std::string> owned_text;
};

// A directory as one READDIR pass lists it (see DirListings).
struct OpenDir {
  std::shared_ptr<const Payload> payload;
  std::vector<DirEntry> entries;  // "." and ".." first
  // A record table's directory lists its records after `entries`, computed, not stored.
  uint64_t records = 0;
  size_t record_table = 0;  // which of the payload's tables
  NodeKey record_key;       // the directory's key; a record's key adds "/<number>" to `sub`
};

}  // namespace payloadfs

// Version 1 B-trees of chunks (node type 1; File Format Specification 3.0, III.A.1): "TREE",
// type, level, entries used, the two siblings, then keys and children interleaved, key i
// describing child i. A chunk key is the chunk's stored size (4 bytes), its filter mask (4)
// and its offset in elements in each dimension plus one for the element (8 bytes each).

#include <unordered_set>

#include "core/formats/support/hdf5_chunk_indexes.hpp"
#include "core/io/checked_math.hpp"

namespace payloadfs::formats::hdf5 {
namespace {

// Levels of a version 1 B-tree followed down from its root.
constexpr uint8_t kMaxBtree1Depth = 64;
// Nodes read per tree.
constexpr uint64_t kMaxBtree1Nodes = uint64_t{1} << 20;
// Entries read per tree (keys and children), whatever the nodes' counts say.
constexpr uint64_t kMaxBtree1Entries = uint64_t{1} << 23;
constexpr uint8_t kChunkNodeType = 1;

struct Btree1Walker {
  const ByteSource& file;
  ChunkSink& sink;
  std::unordered_set<uint64_t> visited;
  uint64_t entries_read = 0;
  bool stopped = false;

  void node(uint64_t address, int expected_level, unsigned depth);
  bool open(BinaryReader& reader, uint64_t address, int expected_level, unsigned depth,
            uint8_t& level, uint16_t& entries);
};

// Reads the node's header; false (and an error) when the node is not to be read.
bool Btree1Walker::open(BinaryReader& reader, uint64_t address, int expected_level, unsigned depth,
                        uint8_t& level, uint16_t& entries) {
  const std::string where = "version 1 B-tree node at " + hex(address);
  ErrorLog& log = sink.log();
  if (depth > kMaxBtree1Depth || visited.size() >= kMaxBtree1Nodes) {
    log.add(where + ": past the limit of " + std::to_string(kMaxBtree1Depth) + " levels or " +
            std::to_string(kMaxBtree1Nodes) + " nodes");
    stopped = visited.size() >= kMaxBtree1Nodes;
    return false;
  }
  if (!visited.insert(address).second) {
    log.add(where + ": visited twice (a loop)");
    return false;
  }
  const auto offset = file_offset(sink.sizes(), address);
  if (!offset || *offset >= file.size()) {
    log.add(where + ": past the end of the file");
    return false;
  }
  reader.seek(*offset);
  const std::string signature = reader.text(4);
  const uint8_t type = reader.u8();
  level = reader.u8();
  entries = reader.u16();
  reader.skip(2 * uint64_t{sink.sizes().offsets});  // siblings
  if (!reader.ok() || signature != "TREE" || type != kChunkNodeType ||
      (expected_level >= 0 && level != expected_level)) {
    log.add(where + ": " +
            (reader.ok() ? "not a chunk node of level " + std::to_string(expected_level)
                         : reader.error().value_or("unreadable")));
    return false;
  }
  entries_read += entries;
  if (entries_read > kMaxBtree1Entries) {
    log.add(where + ": more than " + std::to_string(kMaxBtree1Entries) +
            " entries in the tree; the rest are not read");
    stopped = true;
    return false;
  }
  return true;
}

void Btree1Walker::node(uint64_t address, int expected_level, unsigned depth) {
  BinaryReader reader(file);
  uint8_t level = 0;
  uint16_t entries = 0;
  if (stopped || !open(reader, address, expected_level, depth, level, entries)) return;
  const size_t rank = sink.rank();
  std::vector<uint64_t> scaled(rank);
  std::vector<uint64_t> children;
  for (uint16_t i = 0; i < entries && !stopped; ++i) {
    const uint32_t size = reader.u32();
    const uint32_t mask = reader.u32();
    for (size_t d = 0; d < rank; ++d) scaled[d] = reader.u64() / sink.index().chunk_dims[d];
    reader.skip(8);  // the element dimension's offset, always 0
    const uint64_t child = read_address(reader, sink.sizes());
    if (!reader.ok()) {
      sink.log().add("version 1 B-tree node at " + hex(address) + ": " +
                     reader.error().value_or("unreadable"));
      return;
    }
    if (level == 0)
      stopped = !sink.add_scaled(scaled, child, size, mask);
    else
      children.push_back(child);
  }
  for (uint64_t child : children) {
    if (stopped) return;
    node(child, level - 1, depth + 1);
  }
}

}  // namespace

void list_btree1_chunks(const ByteSource& file, ChunkSink& sink) {
  Btree1Walker walker{file, sink, {}};
  walker.node(sink.index().address, -1, 0);
}

}  // namespace payloadfs::formats::hdf5

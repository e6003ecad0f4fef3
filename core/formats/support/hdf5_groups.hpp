#pragma once
// The links of an HDF5 group (File Format Specification 3.0, IV.A.2.g, IV.A.2.r, III.A.1,
// III.B, III.D): a symbol-table group's version 1 B-tree (type 0) of SNOD nodes naming their
// members in a local heap; a compact group's link messages; a dense group's link messages in
// a fractal heap (hdf5_dense_storage.hpp).

#include <cstdint>
#include <string>
#include <vector>

#include "core/formats/support/hdf5_objects.hpp"
#include "core/io/byte_source.hpp"

namespace payloadfs::formats::hdf5 {

// Depth of a group's version 1 B-tree, and bytes of a name in a local heap.
inline constexpr unsigned kMaxBtree1Depth = 32;
inline constexpr uint64_t kMaxLinkNameBytes = 64 * 1024;

struct Link {
  enum class Kind : uint8_t { hard, soft, external };
  std::string name;
  Kind kind = Kind::hard;
  uint64_t address = kUndefinedAddress;  // hard: the object header's address (base not added)
  std::string target;                    // soft: the path; external: "file:path"
};

// Parses a link message body; false with `error` set when it cannot be read.
bool parse_link_message(const ByteSource& file, const Sizes& sizes, ByteRange body, Link& link,
                        std::string& error);

// Whether the object's messages make it a group.
bool is_group(const Object& object);

// The group's links, sorted by name (bytewise), at most kMaxLinksPerGroup of them; what is
// malformed goes to `errors` (prefixed with the group's path).
std::vector<Link> group_links(const ByteSource& file, const Sizes& sizes, const Object& group,
                              std::vector<std::string>& errors);

}  // namespace payloadfs::formats::hdf5

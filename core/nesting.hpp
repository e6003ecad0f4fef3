#pragma once
// Payloads nested in a container's slices (MNT/F/nested/<slice path>/): which slices may hold
// one, and which do. A slice nests when its bytes are stored as-is (Slice::stored), it is not
// empty, it is shorter than the payload it belongs to (so every level is strictly smaller and a
// cycle cannot be), it is among the first kMaxNestedMembers slices, and its first bytes are
// detected as a format other than `unknown` (descriptors included), exactly as a file's would.
// Record tables (packets, messages) never nest.

#include <cstddef>
#include <cstdint>
#include <string>
#include <unordered_set>
#include <vector>

#include "core/io/byte_source.hpp"
#include "core/model/layout.hpp"
#include "core/model/registry.hpp"

namespace payloadfs {

class Payload;

struct NestLimits {
  // -o nest_depth's default: a file's members, and their members. 0 shows no nested/ at all.
  static constexpr unsigned kDefaultDepth = 2;
  // The largest -o nest_depth accepted.
  static constexpr unsigned kMaxDepth = 8;
  // Slices examined per payload (in slice order), so that listing nested/ of a tar of 100,000
  // members reads at most this many slice heads once per version of the file.
  static constexpr size_t kMaxNestedMembers = 4096;
};

// The slices of one payload version that hold a payload, found once (first listing or
// lookup under nested/) and kept with that version.
struct NestedMembers {
  std::vector<size_t> slices;            // slice indices, ascending
  std::unordered_set<std::string> dirs;  // raw/ paths of directories holding one ("" excluded)
  bool examined_all = true;              // false: slices past kMaxNestedMembers were not examined

  [[nodiscard]] bool holds_slice(size_t slice) const;
  [[nodiscard]] size_t memory_estimate() const noexcept;
};

// Whether a slice may hold a payload of its own, before reading any of its bytes. `extent` is
// the byte range of the payload the slice belongs to.
[[nodiscard]] bool may_nest(const Slice& slice, size_t index, ByteRange extent);

// Whether the bytes at `range` of `file` are detected as a format other than `unknown`: reads
// only their first kDetectHeadBytes, as detecting a file does.
[[nodiscard]] bool holds_payload(const Registry& registry, const ByteSource& file, ByteRange range);

// Every slice of `payload` that nests, reading each candidate's first bytes from `file` (the
// payload's source file; slice offsets are offsets in it).
[[nodiscard]] NestedMembers find_nested_members(const Payload& payload, const Registry& registry,
                                                const ByteSource& file);

}  // namespace payloadfs

#include "core/nesting.hpp"

#include <algorithm>
#include <span>

#include "core/heap_size.hpp"
#include "core/io/checked_math.hpp"
#include "core/model/format.hpp"
#include "core/payload.hpp"

namespace payloadfs {

bool NestedMembers::holds_slice(size_t slice) const {
  return std::binary_search(slices.begin(), slices.end(), slice);
}

size_t NestedMembers::memory_estimate() const noexcept {
  size_t held = chunk_bytes(slices.capacity() * sizeof(size_t));
  for (const auto& dir : dirs) held += chunk_bytes(sizeof(dir) + 16) + string_heap(dir);
  return held;
}

bool may_nest(const Slice& slice, size_t index, ByteRange extent) {
  return slice.stored && index < NestLimits::kMaxNestedMembers && slice.range.length != 0 &&
         slice.range.length < extent.length;
}

bool holds_payload(const Registry& registry, const ByteSource& file, ByteRange range) {
  std::vector<std::byte> head(
      static_cast<size_t>(std::min<uint64_t>(kDetectHeadBytes, range.length)));
  if (!range_within(range.offset, range.length, file.size())) return false;
  if (!file.read_exact(range.offset, head)) return false;
  return registry.detect(head, range.length).name() != "unknown";
}

NestedMembers find_nested_members(const Payload& payload, const Registry& registry,
                                  const ByteSource& file) {
  NestedMembers out;
  const auto slices = payload.slices();
  const SliceTree& tree = payload.tree();
  out.examined_all = slices.size() <= NestLimits::kMaxNestedMembers;
  for (size_t i = 0; i < slices.size() && i < NestLimits::kMaxNestedMembers; ++i) {
    if (!may_nest(slices[i], i, payload.extent())) continue;
    if (!holds_payload(registry, file, slices[i].range)) continue;
    out.slices.push_back(i);
    // Every directory above it, so that listing nested/<dir>/ needs no scan.
    const std::string& path = tree.slice_path(i);
    for (size_t slash = path.find('/'); slash != std::string::npos;
         slash = path.find('/', slash + 1))
      out.dirs.insert(path.substr(0, slash));
  }
  return out;
}

}  // namespace payloadfs

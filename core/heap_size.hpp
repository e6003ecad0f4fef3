#pragma once
// What objects cost on the heap, for the cache's memory estimates (glibc malloc's sizes).

#include <algorithm>
#include <cstddef>
#include <string>

namespace payloadfs {

// What glibc malloc takes for a request of `n` bytes: a 16-byte multiple with 8 bytes of
// header, at least 32; past the mmap threshold (128 KiB by default), whole pages.
[[nodiscard]] inline size_t chunk_bytes(size_t n) {
  if (n == 0) return 0;
  if (n >= (128 << 10)) return (n + 16 + 4095) & ~size_t{4095};
  return std::max<size_t>(32, (n + 8 + 15) & ~size_t{15});
}

// A string's heap buffer (none while it fits the small-string buffer).
[[nodiscard]] inline size_t string_heap(const std::string& s) {
  return s.capacity() > 15 ? chunk_bytes(s.capacity() + 1) : 0;
}

}  // namespace payloadfs

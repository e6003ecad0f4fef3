#pragma once
// Overflow-checked arithmetic for offsets and lengths read from untrusted bytes.

#include <cstdint>
#include <optional>

namespace payloadfs {

[[nodiscard]] constexpr std::optional<uint64_t> checked_add(uint64_t a, uint64_t b) noexcept {
  uint64_t r = 0;
  if (__builtin_add_overflow(a, b, &r)) return std::nullopt;
  return r;
}

[[nodiscard]] constexpr std::optional<uint64_t> checked_mul(uint64_t a, uint64_t b) noexcept {
  uint64_t r = 0;
  if (__builtin_mul_overflow(a, b, &r)) return std::nullopt;
  return r;
}

// True when [offset, offset + length) lies inside a buffer of `size` bytes.
[[nodiscard]] constexpr bool range_within(uint64_t offset, uint64_t length,
                                          uint64_t size) noexcept {
  return offset <= size && length <= size - offset;
}

}  // namespace payloadfs

#pragma once
// Fixed signatures ("magic numbers"): spelled once as a byte string, matched against the head of
// a file, and reported as the payload's magic range.

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>

#include "core/model/layout.hpp"

namespace payloadfs::formats {

template <size_t N>
using Signature = std::array<std::byte, N>;

// The bytes of a string literal without its terminating NUL: byte_string("GGUF") is 4 bytes. A
// signature that ends in NUL spells it out: byte_string("SQLite format 3\0") is 16.
template <size_t N>
consteval Signature<N - 1> byte_string(const char (&text)[N]) {
  Signature<N - 1> out{};
  for (size_t i = 0; i + 1 < N; ++i) out[i] = static_cast<std::byte>(text[i]);
  return out;
}

// Whether `head` holds `signature` at `offset` (false when it is too short to tell).
template <size_t N>
constexpr bool matches_at(std::span<const std::byte> head, uint64_t offset,
                          const Signature<N>& signature) {
  if (offset > head.size() || head.size() - offset < N) return false;
  for (size_t i = 0; i < N; ++i)
    if (head[static_cast<size_t>(offset) + i] != signature[i]) return false;
  return true;
}

template <size_t N>
constexpr bool starts_with(std::span<const std::byte> head, const Signature<N>& signature) {
  return matches_at(head, 0, signature);
}

// The magic range of a format whose signature opens the file.
template <size_t N>
constexpr ByteRange magic_at_start(const Signature<N>&) {
  return ByteRange{0, N};
}

}  // namespace payloadfs::formats

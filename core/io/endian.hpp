#pragma once
// Integers stored in a byte order, decoded from memory already read, in the style of LLVM's
// Support/Endian.h: read_le<uint32_t>(p), read_be<uint16_t>(p), read_endian<T>(p, endian). The
// caller has checked that sizeof(T) bytes lie at `p`; BinaryReader does that for reads from a
// source.

#include <concepts>
#include <cstddef>
#include <type_traits>

namespace payloadfs {

enum class Endian { little, big };

template <std::integral T>
[[nodiscard]] constexpr T read_endian(const std::byte* p, Endian endian) noexcept {
  using U = std::make_unsigned_t<T>;
  U value = 0;
  for (size_t i = 0; i < sizeof(T); ++i) {
    const size_t index = endian == Endian::little ? sizeof(T) - 1 - i : i;
    value = static_cast<U>((value << 8) | std::to_integer<U>(p[index]));
  }
  return static_cast<T>(value);
}

template <std::integral T>
[[nodiscard]] constexpr T read_le(const std::byte* p) noexcept {
  return read_endian<T>(p, Endian::little);
}

template <std::integral T>
[[nodiscard]] constexpr T read_be(const std::byte* p) noexcept {
  return read_endian<T>(p, Endian::big);
}

// The same from memory typed as unsigned char (buffers filled through std::as_writable_bytes).
template <std::integral T>
[[nodiscard]] T read_le(const unsigned char* p) noexcept {
  return read_le<T>(reinterpret_cast<const std::byte*>(p));
}

template <std::integral T>
[[nodiscard]] T read_be(const unsigned char* p) noexcept {
  return read_be<T>(reinterpret_cast<const std::byte*>(p));
}

template <std::integral T>
[[nodiscard]] T read_endian(const unsigned char* p, Endian endian) noexcept {
  return read_endian<T>(reinterpret_cast<const std::byte*>(p), endian);
}

}  // namespace payloadfs

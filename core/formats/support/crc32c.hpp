#pragma once
// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78, RFC 3720 B.4), as TFRecord uses it, and
// TFRecord's mask (tensorflow/core/lib/hash/crc32c.h): a CRC stored beside the data it covers
// is rotated and offset so that a CRC of a CRC does not look like one.

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>

namespace payloadfs::formats {

inline constexpr uint32_t kCrc32cPolynomial = 0x82F63B78;

constexpr std::array<uint32_t, 256> make_crc32c_table() {
  std::array<uint32_t, 256> table{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t crc = i;
    for (int bit = 0; bit < 8; ++bit) crc = (crc >> 1) ^ ((crc & 1) != 0 ? kCrc32cPolynomial : 0);
    table[i] = crc;
  }
  return table;
}

inline constexpr std::array<uint32_t, 256> kCrc32cTable = make_crc32c_table();

// Continues a CRC-32C over `bytes`; start with crc32c_extend(0, first_part).
[[nodiscard]] inline uint32_t crc32c_extend(uint32_t crc, std::span<const std::byte> bytes) {
  crc = ~crc;
  for (const std::byte b : bytes)
    crc = kCrc32cTable[(crc ^ static_cast<uint8_t>(b)) & 0xFF] ^ (crc >> 8);
  return ~crc;
}

[[nodiscard]] inline uint32_t crc32c(std::span<const std::byte> bytes) {
  return crc32c_extend(0, bytes);
}

[[nodiscard]] constexpr uint32_t tfrecord_masked_crc(uint32_t crc) {
  return ((crc >> 15) | (crc << 17)) + 0xa282ead8u;
}

}  // namespace payloadfs::formats

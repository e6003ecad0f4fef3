#pragma once
// Numbers of the superblock's widths, as every HDF5 structure stores them: little-endian
// unsigned integers of 1 to 8 bytes, addresses ("Size of Offsets" bytes, all ones when
// undefined) relative to the base address, and lengths ("Size of Lengths" bytes).

#include <array>
#include <cstdint>
#include <cstring>
#include <optional>

#include "core/formats/support/hdf5_chunks.hpp"
#include "core/io/binary_reader.hpp"
#include "core/io/checked_math.hpp"

namespace payloadfs::formats::hdf5 {

// A little-endian unsigned of `width` bytes (1 to 8).
inline uint64_t read_sized(BinaryReader& reader, unsigned width) {
  uint64_t value = 0;
  for (unsigned i = 0; i < width && i < 8; ++i) value |= uint64_t{reader.u8()} << (8 * i);
  return value;
}

// Whether `value` is all ones in `width` bytes: the undefined address.
inline bool all_ones(uint64_t value, unsigned width) {
  return width >= 8 ? value == ~uint64_t{0} : value == (uint64_t{1} << (8 * width)) - 1;
}

// An address (not yet a file offset); all ones becomes kUndefinedAddress.
inline uint64_t read_address(BinaryReader& reader, const Sizes& sizes) {
  const uint64_t value = read_sized(reader, sizes.offsets);
  return all_ones(value, sizes.offsets) ? kUndefinedAddress : value;
}

inline uint64_t read_length(BinaryReader& reader, const Sizes& sizes) {
  return read_sized(reader, sizes.lengths);
}

// The file offset of an address (the base added); nullopt when undefined or it overflows.
[[nodiscard]] inline std::optional<uint64_t> file_offset(const Sizes& sizes, uint64_t address) {
  if (address == kUndefinedAddress) return std::nullopt;
  return checked_add(sizes.base, address);
}

// Reads 4 bytes and says whether they are the signature `expected` ("HEAP", "SNOD", ...).
inline bool signature_is(BinaryReader& in, const char* expected) {
  std::array<char, 4> signature{};
  for (char& c : signature) c = static_cast<char>(in.u8());
  return in.ok() && std::memcmp(signature.data(), expected, 4) == 0;
}

}  // namespace payloadfs::formats::hdf5

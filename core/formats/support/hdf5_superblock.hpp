#pragma once
// The HDF5 superblock (File Format Specification 3.0, II.A), versions 0 to 3, and the helpers
// every structure reader uses: addresses and lengths of the superblock's sizes, and the
// conversion of an address (relative to the base address) into a file offset.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/formats/support/hdf5_addresses.hpp"
#include "core/formats/support/hdf5_objects.hpp"
#include "core/io/binary_reader.hpp"
#include "core/io/byte_source.hpp"

namespace payloadfs::formats::hdf5 {

// Where the signature is looked for: 0, then 512, 1024, 2048, ... below this offset.
inline constexpr uint64_t kMaxSuperblockSearch = uint64_t{1} << 40;

// The superblock at its first place from 0 on; nullopt when no signature is found. A
// signature followed by a superblock that cannot be read is reported in `errors`.
std::optional<Superblock> find_superblock(const ByteSource& file, std::vector<std::string>& errors);

}  // namespace payloadfs::formats::hdf5

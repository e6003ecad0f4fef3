#include "core/formats/support/hdf5_superblock.hpp"

#include <array>
#include <cstring>

#include "core/formats/support/hdf5_btree2.hpp"
#include "core/io/checked_math.hpp"

namespace payloadfs::formats::hdf5 {
namespace {

constexpr std::array<char, 8> kSignature = {'\x89', 'H', 'D', 'F', '\r', '\n', '\x1a', '\n'};

bool valid_size(uint8_t size) {
  return size == 2 || size == 4 || size == 8;
}

bool has_signature(const ByteSource& file, uint64_t offset) {
  std::array<std::byte, 8> bytes{};
  if (!range_within(offset, bytes.size(), file.size()) || !file.read_exact(offset, bytes))
    return false;
  return std::memcmp(bytes.data(), kSignature.data(), bytes.size()) == 0;
}

// Versions 0 and 1: sizes, then the base, EOF and root symbol table entry's addresses.
bool read_version_0_1(BinaryReader& in, Superblock& sb, std::string& error) {
  in.skip(3);  // free-space, root group symbol table entry and reserved versions
  in.skip(1);  // shared header message format version
  sb.sizes.offsets = in.u8();
  sb.sizes.lengths = in.u8();
  in.skip(1);
  in.skip(4);                       // group leaf and internal node K
  in.skip(4);                       // file consistency flags
  if (sb.version == 1) in.skip(4);  // indexed storage internal node K, reserved
  if (!in.ok() || !valid_size(sb.sizes.offsets) || !valid_size(sb.sizes.lengths)) {
    error = "superblock: bad size of offsets or lengths";
    return false;
  }
  read_address(in, sb.sizes);  // base address: the library uses where the signature is
  read_address(in, sb.sizes);  // free-space info address
  sb.end_of_file_address = read_address(in, sb.sizes);
  read_address(in, sb.sizes);  // driver information block
  read_address(in, sb.sizes);  // root entry: link name offset
  sb.root_address = read_address(in, sb.sizes);
  in.skip(24);  // cache type, reserved, scratch pad
  return true;
}

// Versions 2 and 3: sizes, flags, then the addresses and a checksum of all before it.
bool read_version_2_3(const ByteSource& file, BinaryReader& in, Superblock& sb,
                      std::string& error) {
  sb.sizes.offsets = in.u8();
  sb.sizes.lengths = in.u8();
  in.skip(1);  // file consistency flags
  if (!in.ok() || !valid_size(sb.sizes.offsets) || !valid_size(sb.sizes.lengths)) {
    error = "superblock: bad size of offsets or lengths";
    return false;
  }
  read_address(in, sb.sizes);  // base address
  read_address(in, sb.sizes);  // superblock extension
  sb.end_of_file_address = read_address(in, sb.sizes);
  sb.root_address = read_address(in, sb.sizes);
  const uint64_t checked = in.tell() - sb.file_offset;
  const uint32_t stored = in.u32();
  if (!in.ok()) return true;
  std::vector<std::byte> bytes(checked);
  if (file.read_exact(sb.file_offset, bytes) && lookup3_checksum(bytes) != stored)
    error = "superblock: checksum mismatch";
  return true;
}

}  // namespace

std::optional<Superblock> find_superblock(const ByteSource& file,
                                          std::vector<std::string>& errors) {
  uint64_t offset = 0;
  while (!has_signature(file, offset)) {
    offset = offset == 0 ? 512 : offset * 2;
    if (offset >= file.size() || offset >= kMaxSuperblockSearch) return std::nullopt;
  }
  Superblock sb;
  sb.file_offset = offset;
  sb.sizes.base = offset;
  BinaryReader in(file);
  in.seek(offset + kSignature.size());
  sb.version = in.u8();
  std::string error;
  bool read = false;
  if (sb.version <= 1)
    read = read_version_0_1(in, sb, error);
  else if (sb.version <= 3)
    read = read_version_2_3(file, in, sb, error);
  else
    error = "superblock: unknown version " + std::to_string(sb.version);
  if (!in.ok()) error = "superblock: " + in.error().value_or("cut short");
  if (!error.empty()) errors.push_back(error);
  if (!read || !in.ok()) sb.root_address = kUndefinedAddress;
  return sb;
}

}  // namespace payloadfs::formats::hdf5

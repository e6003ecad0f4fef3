#include "core/formats/support/hdf5_index_reading.hpp"

#include <bit>
#include <cstdio>
#include <span>

#include "core/formats/support/hdf5_btree2.hpp"
#include "core/io/checked_math.hpp"

namespace payloadfs::formats::hdf5 {

ErrorLog::~ErrorLog() {
  if (dropped_ > 0)
    errors_.push_back(std::to_string(dropped_) + " more errors in the chunk index not listed");
}

void ErrorLog::add(std::string message) {
  if (added_ < kMaxIndexErrors) {
    errors_.push_back(std::move(message));
    ++added_;
  } else {
    ++dropped_;
  }
}

std::string hex(uint64_t value) {
  char text[24];
  std::snprintf(text, sizeof text, "0x%llx", static_cast<unsigned long long>(value));
  return text;
}

unsigned limit_encoded_size(uint64_t limit) noexcept {
  const unsigned log2 = limit == 0 ? 0 : static_cast<unsigned>(std::bit_width(limit) - 1);
  return log2 / 8 + 1;
}

unsigned chunk_size_width(uint64_t chunk_bytes) noexcept {
  const unsigned log2 =
      chunk_bytes == 0 ? 0 : static_cast<unsigned>(std::bit_width(chunk_bytes) - 1);
  const unsigned width = 1 + (log2 + 8) / 8;
  return width > 8 ? 8 : width;
}

std::optional<std::vector<std::byte>> read_metadata_block(const ByteSource& file,
                                                          const Sizes& sizes, uint64_t address,
                                                          uint64_t length,
                                                          std::string_view signature,
                                                          std::string_view what, ErrorLog& log) {
  const std::string where = std::string(what) + " at " + hex(address);
  const auto offset = file_offset(sizes, address);
  if (!offset || length < signature.size() + 4 || length > kMaxMetadataBlock ||
      !range_within(*offset, length, file.size())) {
    log.add(where + ": " + std::to_string(length) + " bytes past the end of the file");
    return std::nullopt;
  }
  std::vector<std::byte> block(length);
  BinaryReader reader(file);
  reader.seek(*offset);
  if (!reader.read_into(block)) {
    log.add(where + ": " + reader.error().value_or("unreadable"));
    return std::nullopt;
  }
  if (std::string_view(reinterpret_cast<const char*>(block.data()), signature.size()) !=
      signature) {
    log.add(where + ": no " + std::string(signature) + " signature");
    return std::nullopt;
  }
  const std::span<const std::byte> body(block.data(), block.size() - 4);
  const uint32_t stored = read_le<uint32_t>(block.data() + block.size() - 4);
  if (lookup3_checksum(body) != stored) {
    log.add(where + ": checksum mismatch");
    return std::nullopt;
  }
  return block;
}

}  // namespace payloadfs::formats::hdf5

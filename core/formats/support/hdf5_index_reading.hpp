#pragma once
// What the HDF5 index readers share: addresses and variable-width numbers, metadata blocks
// read whole with their lookup3 checksum checked, and a bounded list of errors.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/formats/support/hdf5_addresses.hpp"
#include "core/formats/support/hdf5_chunks.hpp"
#include "core/io/binary_reader.hpp"
#include "core/io/byte_source.hpp"

namespace payloadfs::formats::hdf5 {

// Errors kept per listing; one more line says how many were left out.
inline constexpr size_t kMaxIndexErrors = 64;
// The largest metadata block (B-tree node, array block, page) read into memory at once.
inline constexpr uint64_t kMaxMetadataBlock = uint64_t{1} << 24;

// Appends to a caller's error list, at most kMaxIndexErrors of them.
class ErrorLog {
 public:
  explicit ErrorLog(std::vector<std::string>& errors) : errors_(errors) {}
  ErrorLog(const ErrorLog&) = delete;
  ErrorLog& operator=(const ErrorLog&) = delete;
  ~ErrorLog();
  void add(std::string message);
  // Whether another message would be kept; when not, count() it with skip() and save the text.
  [[nodiscard]] bool full() const noexcept { return added_ >= kMaxIndexErrors; }
  void skip() noexcept { ++dropped_; }
  [[nodiscard]] size_t count() const noexcept { return added_ + dropped_; }

 private:
  std::vector<std::string>& errors_;
  size_t added_ = 0;
  size_t dropped_ = 0;
};

// "0x1a2b": addresses in messages.
std::string hex(uint64_t value);

// libhdf5's H5VM_limit_enc_size: bytes that hold any number up to `limit`.
unsigned limit_encoded_size(uint64_t limit) noexcept;
// The width of a filtered chunk's size field (FA, EA, B-tree 2 records), from the unfiltered
// chunk size in bytes: one byte more than it needs, at most 8.
unsigned chunk_size_width(uint64_t chunk_bytes) noexcept;

// A metadata block read whole: `length` bytes at the address, `signature` (4 characters) first
// and the lookup3 checksum of the bytes before it last. A failure is logged as
// "<what> at 0x..: ..." and gives nullopt.
std::optional<std::vector<std::byte>> read_metadata_block(const ByteSource& file,
                                                          const Sizes& sizes, uint64_t address,
                                                          uint64_t length,
                                                          std::string_view signature,
                                                          std::string_view what, ErrorLog& log);

}  // namespace payloadfs::formats::hdf5

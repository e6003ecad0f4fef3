#pragma once
// A read-only, shared mapping of a whole source file. Move-only; unmapped in the destructor.
// The daemon hands pointers into it to the kernel (fuse_reply_buf) and never reads it itself.

#include <sys/stat.h>

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

#include "core/io/result.hpp"

namespace payloadfs {

class MappedFile {
 public:
  // Maps `size` bytes of `fd` (which the caller fstat'ed); the fd may be closed afterwards.
  // Returns an errno value on failure.
  static Result<MappedFile> map(int fd, uint64_t size);

  MappedFile() = default;
  MappedFile(MappedFile&& other) noexcept;
  MappedFile& operator=(MappedFile&& other) noexcept;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  ~MappedFile();

  [[nodiscard]] uint64_t size() const noexcept { return size_; }
  // Bytes of the mapping, for handing to the kernel; empty for an empty file.
  [[nodiscard]] std::span<const std::byte> bytes() const noexcept;
  // Maps the pages of [offset, offset + length) in one call (MADV_POPULATE_READ), so that the
  // kernel's copy out of them does not take a fault per page. Best effort: pages past the
  // file's current end are left alone (EFAULT, never SIGBUS), and older kernels ignore it.
  void populate(uint64_t offset, uint64_t length) const noexcept;

 private:
  MappedFile(void* base, uint64_t size) noexcept : base_(base), size_(size) {}
  void release() noexcept;

  void* base_ = nullptr;
  uint64_t size_ = 0;
};

}  // namespace payloadfs

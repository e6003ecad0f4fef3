#include "core/io/mapped_file.hpp"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <utility>

#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22  // Linux 5.14
#endif

namespace payloadfs {

Result<MappedFile> MappedFile::map(int fd, uint64_t size) {
  if (size == 0) return MappedFile(nullptr, 0);
  void* base = ::mmap(nullptr, size, PROT_READ, MAP_SHARED, fd, 0);
  if (base == MAP_FAILED) return errno;
  return MappedFile(base, size);
}

MappedFile::MappedFile(MappedFile&& other) noexcept
    : base_(std::exchange(other.base_, nullptr)), size_(std::exchange(other.size_, 0)) {}

MappedFile& MappedFile::operator=(MappedFile&& other) noexcept {
  if (this != &other) {
    release();
    base_ = std::exchange(other.base_, nullptr);
    size_ = std::exchange(other.size_, 0);
  }
  return *this;
}

MappedFile::~MappedFile() {
  release();
}

void MappedFile::release() noexcept {
  if (base_ != nullptr) ::munmap(base_, size_);
  base_ = nullptr;
  size_ = 0;
}

void MappedFile::populate(uint64_t offset, uint64_t length) const noexcept {
  if (base_ == nullptr || offset >= size_ || length == 0) return;
  static const auto page = static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
  const uint64_t end = offset + std::min(length, size_ - offset);
  const uint64_t start = offset & ~(page - 1);
  auto* at = static_cast<std::byte*>(base_) + start;
  (void)::madvise(at, static_cast<size_t>(end - start), MADV_POPULATE_READ);
}

std::span<const std::byte> MappedFile::bytes() const noexcept {
  if (base_ == nullptr) return {};
  return {static_cast<const std::byte*>(base_), static_cast<size_t>(size_)};
}

}  // namespace payloadfs

#include "core/mapped_file.hpp"

#include <sys/mman.h>

#include <cerrno>
#include <utility>

namespace payloadfs {

std::variant<MappedFile, int> MappedFile::map(int fd, uint64_t size) {
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

std::span<const std::byte> MappedFile::bytes() const noexcept {
  if (base_ == nullptr) return {};
  return {static_cast<const std::byte*>(base_), static_cast<size_t>(size_)};
}

}  // namespace payloadfs

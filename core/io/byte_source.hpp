#pragma once
// Where parsers get their bytes from. Parsers never dereference a source mapping: a file
// truncated under us would turn that into SIGBUS. FdSource uses pread, which turns the same
// event into a short read, i.e. an error value.

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <span>

namespace payloadfs {

class ByteSource {
 public:
  virtual ~ByteSource() = default;
  [[nodiscard]] virtual uint64_t size() const noexcept = 0;
  // Fills `out` from `offset`; false when any byte is unavailable (past the end, I/O error).
  [[nodiscard]] virtual bool read_exact(uint64_t offset,
                                        std::span<std::byte> out) const noexcept = 0;
};

// Bytes already in memory (unit tests, fuzzing).
class MemorySource final : public ByteSource {
 public:
  explicit MemorySource(std::span<const std::byte> bytes) noexcept : bytes_(bytes) {}
  [[nodiscard]] uint64_t size() const noexcept override { return bytes_.size(); }
  [[nodiscard]] bool read_exact(uint64_t offset, std::span<std::byte> out) const noexcept override;

 private:
  std::span<const std::byte> bytes_;
};

// A borrowed file descriptor read with pread; `size` is the size the caller fstat'ed.
class FdSource final : public ByteSource {
 public:
  FdSource(int fd, uint64_t size) noexcept : fd_(fd), size_(size) {}
  [[nodiscard]] uint64_t size() const noexcept override { return size_; }
  [[nodiscard]] bool read_exact(uint64_t offset, std::span<std::byte> out) const noexcept override;
  // Whether a read within `size` failed: an I/O error, or the file ending before the size it
  // was measured at. Such a failure is the source's (it changed, or its filesystem failed),
  // not the format's.
  [[nodiscard]] bool failed() const noexcept { return failed_.load(std::memory_order_relaxed); }

 private:
  int fd_;
  uint64_t size_;
  mutable std::atomic<bool> failed_{false};
};

// The bytes [offset, offset + length) of another source, seen from 0: a payload nested in a
// slice of its container is parsed through one. `offset + length` must lie within `inner`.
class WindowSource final : public ByteSource {
 public:
  WindowSource(const ByteSource& inner, uint64_t offset, uint64_t length) noexcept
      : inner_(inner), offset_(offset), length_(length) {}
  [[nodiscard]] uint64_t size() const noexcept override { return length_; }
  [[nodiscard]] bool read_exact(uint64_t offset, std::span<std::byte> out) const noexcept override;

 private:
  const ByteSource& inner_;
  uint64_t offset_;
  uint64_t length_;
};

}  // namespace payloadfs

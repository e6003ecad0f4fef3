#pragma once
// Bounds-checked cursor over a ByteSource, in the style of LLVM's DataExtractor::Cursor:
// every read is checked, the first failure sticks (later reads return zero and do nothing),
// and the parser asks once, at a convenient point, whether everything went well.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "core/io/byte_source.hpp"

namespace payloadfs {

enum class Endian { little, big };

class BinaryReader {
 public:
  explicit BinaryReader(const ByteSource& source, Endian endian = Endian::little);

  [[nodiscard]] uint64_t size() const noexcept { return source_.size(); }
  [[nodiscard]] uint64_t tell() const noexcept { return pos_; }
  [[nodiscard]] uint64_t remaining() const noexcept { return pos_ <= size() ? size() - pos_ : 0; }
  [[nodiscard]] Endian endian() const noexcept { return endian_; }
  void set_endian(Endian endian) noexcept { endian_ = endian; }

  // Moves the cursor; seeking past the end fails the reader.
  void seek(uint64_t offset);
  void skip(uint64_t count);

  uint8_t u8();
  uint16_t u16();
  uint32_t u32();
  uint64_t u64();
  int8_t i8() { return static_cast<int8_t>(u8()); }
  int16_t i16() { return static_cast<int16_t>(u16()); }
  int32_t i32() { return static_cast<int32_t>(u32()); }
  int64_t i64() { return static_cast<int64_t>(u64()); }
  float f32();
  double f64();

  // Reads `count` bytes as text. Callers bound `count`; the reader refuses more than max_bytes.
  std::string text(uint64_t count, uint64_t max_bytes = kMaxTextBytes);
  bool read_into(std::span<std::byte> out);

  [[nodiscard]] bool ok() const noexcept { return !error_.has_value(); }
  [[nodiscard]] const std::optional<std::string>& error() const noexcept { return error_; }
  // Records a format-level failure (first one wins) so parsers report one consistent error.
  void fail(std::string message);

  static constexpr uint64_t kMaxTextBytes = 1ULL << 20;

 private:
  uint64_t read_uint(unsigned width);
  bool fetch(uint64_t offset, std::span<std::byte> out);

  const ByteSource& source_;
  Endian endian_;
  uint64_t pos_ = 0;
  std::optional<std::string> error_;
  // A small read-through window so field-by-field parsing is not one syscall per field.
  std::vector<std::byte> window_;
  uint64_t window_offset_ = 0;
  size_t window_length_ = 0;
};

}  // namespace payloadfs

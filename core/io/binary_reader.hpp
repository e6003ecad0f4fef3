#pragma once
// Bounds-checked cursor over a ByteSource, in the style of LLVM's DataExtractor::Cursor:
// every read is checked, the first failure sticks (later reads return zero and do nothing),
// and the parser asks once, at a convenient point, whether everything went well. A reader may
// be confined to a range of the file (sub()), for a record whose fields must stay inside it.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "core/io/byte_source.hpp"
#include "core/io/endian.hpp"

namespace payloadfs {

class BinaryReader {
 public:
  explicit BinaryReader(const ByteSource& source, Endian endian = Endian::little);
  // Not copyable or movable: a sub-reader points at the reader it came from, which must stay
  // where it is (sub() returns a prvalue, so it needs neither).
  BinaryReader(const BinaryReader&) = delete;
  BinaryReader& operator=(const BinaryReader&) = delete;

  // A reader over [offset, offset + length), positioned at `offset`, in this reader's byte
  // order; offsets stay the file's. Its reads stay inside that range, and a read past it fails
  // the sub-reader alone. A range that overflows or leaves this reader's range (or a failed
  // reader) gives a failed sub-reader. It reads through this reader's window, so an I/O error
  // fails both: the file is at fault, not the record. It must not outlive this reader.
  [[nodiscard]] BinaryReader sub(uint64_t offset, uint64_t length);

  // The file's size; a sub-reader's reads end at end().
  [[nodiscard]] uint64_t size() const noexcept { return source_.size(); }
  [[nodiscard]] uint64_t end() const noexcept { return end_; }
  [[nodiscard]] uint64_t tell() const noexcept { return pos_; }
  [[nodiscard]] uint64_t remaining() const noexcept { return pos_ <= end_ ? end_ - pos_ : 0; }
  [[nodiscard]] Endian endian() const noexcept { return endian_; }
  void set_endian(Endian endian) noexcept { endian_ = endian; }

  // Moves the cursor; seeking past the end (or before a sub-reader's start) fails the reader.
  void seek(uint64_t offset);
  void skip(uint64_t count);
  // Fails the reader unless `count` more bytes lie before its end; returns ok().
  bool need(uint64_t count);

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
  // A sub-reader of `root` over [begin, end), failed when `error` holds a message.
  BinaryReader(BinaryReader& root, Endian endian, uint64_t begin, uint64_t end,
               std::optional<std::string> error);
  template <typename T>
  T read_uint();
  bool fetch(uint64_t offset, std::span<std::byte> out);
  // Reads from the source through the window; the error, if any.
  std::optional<std::string> load(uint64_t offset, std::span<std::byte> out);
  // "the end of the file (size N)", or a sub-reader's range.
  [[nodiscard]] std::string end_text() const;

  const ByteSource& source_;
  Endian endian_;
  // The readable range [begin_, end_): the whole file, or a sub-reader's range.
  uint64_t begin_ = 0;
  uint64_t end_ = 0;
  uint64_t pos_ = 0;
  // The reader a sub-reader reads through (its window, its I/O errors); null for a file's reader.
  BinaryReader* root_ = nullptr;
  std::optional<std::string> error_;
  // A small read-through window so field-by-field parsing is not one syscall per field.
  std::vector<std::byte> window_;
  uint64_t window_offset_ = 0;
  size_t window_length_ = 0;
};

}  // namespace payloadfs

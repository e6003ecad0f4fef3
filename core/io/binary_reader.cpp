#include "core/io/binary_reader.hpp"

#include <algorithm>
#include <array>
#include <bit>
#include <cstring>

#include "core/io/checked_math.hpp"

namespace payloadfs {
namespace {
constexpr size_t kWindowBytes = 16 * 1024;
}

BinaryReader::BinaryReader(const ByteSource& source, Endian endian)
    : source_(source), endian_(endian) {}

void BinaryReader::fail(std::string message) {
  if (!error_) error_ = std::move(message);
}

void BinaryReader::seek(uint64_t offset) {
  if (!ok()) return;
  if (offset > size()) {
    fail("offset " + std::to_string(offset) + " is past the end of the file (size " +
         std::to_string(size()) + ")");
    return;
  }
  pos_ = offset;
}

void BinaryReader::skip(uint64_t count) {
  if (!ok()) return;
  const auto target = checked_add(pos_, count);
  if (!target) {
    fail("offset overflow skipping " + std::to_string(count) + " bytes at " + std::to_string(pos_));
    return;
  }
  seek(*target);
}

bool BinaryReader::fetch(uint64_t offset, std::span<std::byte> out) {
  if (out.empty()) return true;  // nothing to copy (and an empty span's data() may be null)
  if (!range_within(offset, out.size(), size())) {
    fail("read of " + std::to_string(out.size()) + " bytes at offset " + std::to_string(offset) +
         " runs past the end of the file (size " + std::to_string(size()) + ")");
    return false;
  }
  if (out.size() > kWindowBytes / 2) {  // large reads bypass the window
    if (!source_.read_exact(offset, out)) {
      fail("I/O error reading " + std::to_string(out.size()) + " bytes at offset " +
           std::to_string(offset));
      return false;
    }
    return true;
  }
  const bool cached =
      offset >= window_offset_ && range_within(offset - window_offset_, out.size(), window_length_);
  if (!cached) {
    window_.resize(kWindowBytes);
    window_offset_ = offset;
    window_length_ = static_cast<size_t>(std::min<uint64_t>(kWindowBytes, size() - offset));
    if (!source_.read_exact(offset, std::span(window_).first(window_length_))) {
      window_length_ = 0;
      fail("I/O error reading at offset " + std::to_string(offset));
      return false;
    }
  }
  std::memcpy(out.data(), window_.data() + (offset - window_offset_), out.size());
  return true;
}

uint64_t BinaryReader::read_uint(unsigned width) {
  if (!ok()) return 0;
  std::array<std::byte, 8> buf{};
  if (!fetch(pos_, std::span(buf).first(width))) return 0;
  pos_ += width;
  uint64_t value = 0;
  for (unsigned i = 0; i < width; ++i) {
    const unsigned index = endian_ == Endian::little ? width - 1 - i : i;
    value = (value << 8) | std::to_integer<uint64_t>(buf[index]);
  }
  return value;
}

uint8_t BinaryReader::u8() {
  return static_cast<uint8_t>(read_uint(1));
}
uint16_t BinaryReader::u16() {
  return static_cast<uint16_t>(read_uint(2));
}
uint32_t BinaryReader::u32() {
  return static_cast<uint32_t>(read_uint(4));
}
uint64_t BinaryReader::u64() {
  return read_uint(8);
}
float BinaryReader::f32() {
  return std::bit_cast<float>(u32());
}
double BinaryReader::f64() {
  return std::bit_cast<double>(u64());
}

bool BinaryReader::read_into(std::span<std::byte> out) {
  if (!ok()) return false;
  if (!fetch(pos_, out)) return false;
  pos_ += out.size();
  return true;
}

std::string BinaryReader::text(uint64_t count, uint64_t max_bytes) {
  if (!ok()) return {};
  if (count > max_bytes) {
    fail("string of " + std::to_string(count) + " bytes at offset " + std::to_string(pos_) +
         " exceeds the limit of " + std::to_string(max_bytes));
    return {};
  }
  if (count > remaining()) {
    fail("string of " + std::to_string(count) + " bytes at offset " + std::to_string(pos_) +
         " runs past the end of the file (size " + std::to_string(size()) + ")");
    return {};
  }
  std::string out(static_cast<size_t>(count), '\0');
  if (!read_into(std::as_writable_bytes(std::span(out)))) return {};
  return out;
}

}  // namespace payloadfs

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
    : source_(source), endian_(endian), end_(source.size()) {}

BinaryReader::BinaryReader(BinaryReader& root, Endian endian, uint64_t begin, uint64_t end,
                           std::optional<std::string> error)
    : source_(root.source_),
      endian_(endian),
      begin_(begin),
      end_(end),
      pos_(begin),
      root_(&root),
      error_(std::move(error)) {}

BinaryReader BinaryReader::sub(uint64_t offset, uint64_t length) {
  BinaryReader& root = root_ != nullptr ? *root_ : *this;
  if (!ok()) return BinaryReader(root, endian_, begin_, begin_, error_);
  const auto end = checked_add(offset, length);
  if (!end || offset < begin_ || *end > end_)
    return BinaryReader(root, endian_, begin_, begin_,
                        "range of " + std::to_string(length) + " bytes at offset " +
                            std::to_string(offset) + " runs past " + end_text());
  return BinaryReader(root, endian_, offset, *end, std::nullopt);
}

std::string BinaryReader::end_text() const {
  if (root_ == nullptr) return "the end of the file (size " + std::to_string(size()) + ")";
  return "the end of its range [" + std::to_string(begin_) + ", " + std::to_string(end_) + ")";
}

void BinaryReader::fail(std::string message) {
  if (!error_) error_ = std::move(message);
}

void BinaryReader::seek(uint64_t offset) {
  if (!ok()) return;
  if (offset < begin_) {
    fail("offset " + std::to_string(offset) + " is before the start of its range [" +
         std::to_string(begin_) + ", " + std::to_string(end_) + ")");
    return;
  }
  if (offset > end_) {
    fail("offset " + std::to_string(offset) + " is past " + end_text());
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

bool BinaryReader::need(uint64_t count) {
  if (ok() && count > remaining())
    fail(std::to_string(count) + " bytes at offset " + std::to_string(pos_) + " run past " +
         end_text());
  return ok();
}

bool BinaryReader::fetch(uint64_t offset, std::span<std::byte> out) {
  if (out.empty()) return true;  // nothing to copy (and an empty span's data() may be null)
  if (offset < begin_ || !range_within(offset - begin_, out.size(), end_ - begin_)) {
    fail("read of " + std::to_string(out.size()) + " bytes at offset " + std::to_string(offset) +
         " runs past " + end_text());
    return false;
  }
  BinaryReader& reader = root_ != nullptr ? *root_ : *this;
  auto error = reader.load(offset, out);
  if (!error) return true;
  if (root_ != nullptr) root_->fail(*error);
  fail(std::move(*error));
  return false;
}

std::optional<std::string> BinaryReader::load(uint64_t offset, std::span<std::byte> out) {
  if (out.size() > kWindowBytes / 2) {  // large reads bypass the window
    if (!source_.read_exact(offset, out))
      return "I/O error reading " + std::to_string(out.size()) + " bytes at offset " +
             std::to_string(offset);
    return std::nullopt;
  }
  const bool cached =
      offset >= window_offset_ && range_within(offset - window_offset_, out.size(), window_length_);
  if (!cached) {
    window_.resize(kWindowBytes);
    window_offset_ = offset;
    window_length_ = static_cast<size_t>(std::min<uint64_t>(kWindowBytes, size() - offset));
    if (!source_.read_exact(offset, std::span(window_).first(window_length_))) {
      window_length_ = 0;
      return "I/O error reading at offset " + std::to_string(offset);
    }
  }
  std::memcpy(out.data(), window_.data() + (offset - window_offset_), out.size());
  return std::nullopt;
}

template <typename T>
T BinaryReader::read_uint() {
  if (!ok()) return 0;
  std::array<std::byte, sizeof(T)> buf{};
  if (!fetch(pos_, buf)) return 0;
  pos_ += sizeof(T);
  return read_endian<T>(buf.data(), endian_);
}

uint8_t BinaryReader::u8() {
  return read_uint<uint8_t>();
}
uint16_t BinaryReader::u16() {
  return read_uint<uint16_t>();
}
uint32_t BinaryReader::u32() {
  return read_uint<uint32_t>();
}
uint64_t BinaryReader::u64() {
  return read_uint<uint64_t>();
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
         " runs past " + end_text());
    return {};
  }
  std::string out(static_cast<size_t>(count), '\0');
  if (!read_into(std::as_writable_bytes(std::span(out)))) return {};
  return out;
}

}  // namespace payloadfs

#pragma once
// A growable little/big-endian byte buffer for hand-built files (unit tests and
// microbenchmarks; no test framework needed).

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace payloadfs::testing {

class Bytes {
 public:
  Bytes& raw(std::string_view s) {
    const auto* first = reinterpret_cast<const std::byte*>(s.data());
    data_.insert(data_.end(), first, first + s.size());
    return *this;
  }
  Bytes& u8(uint64_t v) { return le(v, 1); }
  Bytes& le(uint64_t v, int width) {
    for (int i = 0; i < width; ++i) data_.push_back(static_cast<std::byte>((v >> (8 * i)) & 0xFF));
    return *this;
  }
  Bytes& be(uint64_t v, int width) {
    for (int i = width - 1; i >= 0; --i)
      data_.push_back(static_cast<std::byte>((v >> (8 * i)) & 0xFF));
    return *this;
  }
  // Unsigned LEB128 (protobuf and Thrift varints, wasm's u32, xz's multibyte integers).
  Bytes& uleb(uint64_t v) {
    while (v >= 0x80) {
      u8((v & 0x7F) | 0x80);
      v >>= 7;
    }
    return u8(v);
  }
  Bytes& zeros(size_t n) {
    data_.insert(data_.end(), n, std::byte{0});
    return *this;
  }
  Bytes& pad_to(size_t alignment) {
    return zeros((alignment - data_.size() % alignment) % alignment);
  }
  Bytes& append(const std::vector<std::byte>& other) {
    data_.insert(data_.end(), other.begin(), other.end());
    return *this;
  }
  const std::vector<std::byte>& data() const { return data_; }
  std::vector<std::byte>& data() { return data_; }
  [[nodiscard]] size_t size() const { return data_.size(); }
  [[nodiscard]] std::string text() const {
    std::string out(data_.size(), '\0');
    if (!data_.empty()) std::memcpy(out.data(), data_.data(), data_.size());
    return out;
  }
  std::vector<std::byte> take() { return std::move(data_); }

 private:
  std::vector<std::byte> data_;
};

}  // namespace payloadfs::testing

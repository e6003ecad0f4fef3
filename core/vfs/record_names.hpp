#pragma once
// Names of numbered records: zero-padded to the width of the largest index, so that `ls`
// sorts them in order (raw/<table>/000123, pcap's packets, ...).

#include <cstdint>
#include <string>
#include <string_view>

namespace payloadfs {

// Number of decimal digits of `value` (1 for 0).
inline unsigned decimal_width(uint64_t value) noexcept {
  unsigned width = 1;
  while (value >= 10) {
    value /= 10;
    ++width;
  }
  return width;
}

// Digits of the largest index of `count` records: names are padded to it.
inline unsigned index_width(uint64_t count) noexcept {
  return decimal_width(count == 0 ? 0 : count - 1);
}

// "prefix" + `index` zero-padded to `width` digits, so `ls` sorts records in order.
inline std::string numbered(std::string_view prefix, uint64_t index, unsigned width) {
  char digits[24];
  unsigned n = 0;
  do {
    digits[n++] = static_cast<char>('0' + index % 10);
    index /= 10;
  } while (index != 0);
  std::string out(prefix);
  out.reserve(prefix.size() + (width > n ? width : n));
  for (unsigned i = n; i < width; ++i) out.push_back('0');
  while (n > 0) out.push_back(digits[--n]);
  return out;
}

}  // namespace payloadfs

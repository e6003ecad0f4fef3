#pragma once
// Numbers written as ASCII digits in fixed-width header fields (ar's decimal and octal fields,
// cpio's hex and octal ones), and the octal text of a mode as the formats show it.

#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>
#include <string_view>

namespace payloadfs::formats {

// The value of `digits` in `base` (8, 10 or 16; either case of hex letters); nullopt when a
// character is not a digit of the base, the text is empty, or the value needs more than 64 bits.
[[nodiscard]] inline std::optional<uint64_t> parse_digits(std::string_view digits, unsigned base) {
  if (digits.empty()) return std::nullopt;
  uint64_t value = 0;
  for (const char c : digits) {
    unsigned digit = base;
    if (c >= '0' && c <= '9')
      digit = static_cast<unsigned>(c - '0');
    else if (c >= 'a' && c <= 'f')
      digit = static_cast<unsigned>(c - 'a' + 10);
    else if (c >= 'A' && c <= 'F')
      digit = static_cast<unsigned>(c - 'A' + 10);
    if (digit >= base) return std::nullopt;
    if (value > (UINT64_MAX - digit) / base) return std::nullopt;
    value = value * base + digit;
  }
  return value;
}

// A space-padded field (ar): the digits between optional leading and trailing spaces.
// `blank` is true when the field holds only spaces (the value is then nullopt).
struct PaddedNumber {
  std::optional<uint64_t> value;
  bool blank = false;
};

[[nodiscard]] inline PaddedNumber parse_padded(std::string_view field, unsigned base) {
  while (!field.empty() && field.front() == ' ') field.remove_prefix(1);
  while (!field.empty() && field.back() == ' ') field.remove_suffix(1);
  if (field.empty()) return PaddedNumber{std::nullopt, true};
  return PaddedNumber{parse_digits(field, base), false};
}

// A mode as octal text with at least four digits, as tar shows it ("0644", "100644").
[[nodiscard]] inline std::string octal_text(uint64_t mode) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%04llo", static_cast<unsigned long long>(mode));
  return buf;
}

}  // namespace payloadfs::formats

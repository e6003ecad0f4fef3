#include "core/formats/support/pickle_text.hpp"

#include <algorithm>
#include <charconv>
#include <vector>

namespace payloadfs::formats::pickle {
namespace {

constexpr uint64_t kInt64Magnitude = uint64_t{1} << 63;  // |INT64_MIN|

// A magnitude (little-endian bytes) and a sign as an Integer.
Integer integer_from_magnitude(std::vector<uint8_t> magnitude, bool negative) {
  while (!magnitude.empty() && magnitude.back() == 0) magnitude.pop_back();
  Integer out;
  if (magnitude.size() <= 8) {
    uint64_t m = 0;
    for (size_t i = magnitude.size(); i-- > 0;) m = (m << 8) | magnitude[i];
    if (!negative && m < kInt64Magnitude) {
      out.value = static_cast<int64_t>(m);
      return out;
    }
    if (negative && m <= kInt64Magnitude) {
      out.value = m == kInt64Magnitude ? INT64_MIN : -static_cast<int64_t>(m);
      return out;
    }
  }
  // Long division by 10^9 of the big-endian limbs, nine digits at a time.
  std::vector<uint8_t> big(magnitude.rbegin(), magnitude.rend());
  std::string digits;
  while (!big.empty()) {
    uint64_t remainder = 0;
    std::vector<uint8_t> quotient;
    quotient.reserve(big.size());
    for (const uint8_t byte : big) {
      const uint64_t current = (remainder << 8) | byte;
      const auto q = static_cast<uint8_t>(current / 1'000'000'000);
      remainder = current % 1'000'000'000;
      if (!quotient.empty() || q != 0) quotient.push_back(q);
    }
    for (int i = 0; i < 9; ++i) {
      digits.push_back(static_cast<char>('0' + remainder % 10));
      remainder /= 10;
    }
    big = std::move(quotient);
  }
  while (digits.size() > 1 && digits.back() == '0') digits.pop_back();
  if (negative) digits.push_back('-');
  std::reverse(digits.begin(), digits.end());
  out.fits = false;
  out.decimal = std::move(digits);
  return out;
}

void append_utf8(std::string& out, uint32_t code_point) {
  if (code_point < 0x80) {
    out.push_back(static_cast<char>(code_point));
  } else if (code_point < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (code_point >> 6)));
    out.push_back(static_cast<char>(0x80 | (code_point & 0x3F)));
  } else if (code_point < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (code_point >> 12)));
    out.push_back(static_cast<char>(0x80 | ((code_point >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (code_point & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (code_point >> 18)));
    out.push_back(static_cast<char>(0x80 | ((code_point >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((code_point >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (code_point & 0x3F)));
  }
}

std::optional<uint32_t> hex_value(std::string_view digits) {
  uint32_t value = 0;
  const auto [end, error] =
      std::from_chars(digits.data(), digits.data() + digits.size(), value, 16);
  if (error != std::errc{} || end != digits.data() + digits.size()) return std::nullopt;
  return value;
}

// One backslash escape of a Python 2 string literal at text[i] (after the backslash); appends
// its byte(s) and returns the characters it took, or 0 when it is malformed.
size_t decode_escape(std::string_view text, size_t i, std::string& out) {
  if (i >= text.size()) return 0;
  const char c = text[i];
  static constexpr std::string_view kSimple = "\\'\"abfnrtv";
  static constexpr std::string_view kBytes = "\\'\"\a\b\f\n\r\t\v";
  if (const size_t k = kSimple.find(c); k != std::string_view::npos) {
    out.push_back(kBytes[k]);
    return 1;
  }
  if (c == '\n') return 1;  // a line continuation
  if (c == 'x') {
    const auto value = hex_value(text.substr(i + 1, 2));
    if (!value || i + 3 > text.size()) return 0;
    out.push_back(static_cast<char>(*value));
    return 3;
  }
  if (c >= '0' && c <= '7') {
    size_t n = 0;
    unsigned value = 0;
    while (n < 3 && i + n < text.size() && text[i + n] >= '0' && text[i + n] <= '7') {
      value = value * 8 + static_cast<unsigned>(text[i + n] - '0');
      ++n;
    }
    out.push_back(static_cast<char>(value & 0xFF));
    return n;
  }
  out.push_back('\\');  // Python keeps an unknown escape as it is
  out.push_back(c);
  return 1;
}

}  // namespace

Integer integer_from_twos_complement(std::span<const uint8_t> bytes) {
  const bool negative = !bytes.empty() && (bytes.back() & 0x80) != 0;
  std::vector<uint8_t> magnitude(bytes.begin(), bytes.end());
  if (negative) {  // -x = ~x + 1
    unsigned carry = 1;
    for (uint8_t& byte : magnitude) {
      const unsigned sum = static_cast<uint8_t>(~byte) + carry;
      byte = static_cast<uint8_t>(sum);
      carry = sum >> 8;
    }
  }
  return integer_from_magnitude(std::move(magnitude), negative);
}

std::optional<Integer> integer_from_decimal(std::string_view text) {
  bool negative = false;
  if (!text.empty() && (text[0] == '-' || text[0] == '+')) {
    negative = text[0] == '-';
    text.remove_prefix(1);
  }
  if (text.empty() ||
      !std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return std::nullopt;
  }
  // Decimal digits to little-endian bytes: multiply-and-add per digit.
  std::vector<uint8_t> magnitude;
  for (const char c : text) {
    unsigned carry = static_cast<unsigned>(c - '0');
    for (uint8_t& byte : magnitude) {
      const unsigned value = byte * 10u + carry;
      byte = static_cast<uint8_t>(value);
      carry = value >> 8;
    }
    if (carry != 0) magnitude.push_back(static_cast<uint8_t>(carry));
  }
  return integer_from_magnitude(std::move(magnitude), negative);
}

std::optional<double> float_from_text(std::string_view text) {
  if (!text.empty() && text[0] == '+') text.remove_prefix(1);
  double value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || error == std::errc::invalid_argument || end != text.data() + text.size()) {
    return std::nullopt;
  }
  return value;  // out of range: from_chars leaves 0 and says so; Python gives inf, rare enough
}

bool is_valid_utf8(std::string_view text) {
  size_t i = 0;
  while (i < text.size()) {
    const auto lead = static_cast<uint8_t>(text[i]);
    size_t length = 0;
    uint32_t code_point = 0;
    if (lead < 0x80) {
      ++i;
      continue;
    } else if ((lead & 0xE0) == 0xC0) {
      length = 2, code_point = lead & 0x1F;
    } else if ((lead & 0xF0) == 0xE0) {
      length = 3, code_point = lead & 0x0F;
    } else if ((lead & 0xF8) == 0xF0) {
      length = 4, code_point = lead & 0x07;
    } else {
      return false;
    }
    if (i + length > text.size()) return false;
    for (size_t k = 1; k < length; ++k) {
      const auto next = static_cast<uint8_t>(text[i + k]);
      if ((next & 0xC0) != 0x80) return false;
      code_point = (code_point << 6) | (next & 0x3F);
    }
    static constexpr uint32_t kMinimum[] = {0, 0, 0x80, 0x800, 0x10000};
    if (code_point < kMinimum[length] || code_point > 0x10FFFF ||
        (code_point >= 0xD800 && code_point <= 0xDFFF)) {
      return false;
    }
    i += length;
  }
  return true;
}

std::optional<std::string> decode_raw_unicode_escape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    const auto byte = static_cast<uint8_t>(text[i]);
    const size_t digits = i + 1 < text.size() && byte == '\\' ? (text[i + 1] == 'u'   ? 4
                                                                 : text[i + 1] == 'U' ? 8
                                                                                      : 0)
                                                              : 0;
    if (digits == 0) {
      append_utf8(out, byte);
      continue;
    }
    if (i + 2 + digits > text.size()) return std::nullopt;
    const auto code_point = hex_value(text.substr(i + 2, digits));
    if (!code_point || *code_point > 0x10FFFF || (*code_point >= 0xD800 && *code_point <= 0xDFFF)) {
      return std::nullopt;
    }
    append_utf8(out, *code_point);
    i += 1 + digits;
  }
  return out;
}

std::optional<std::string> decode_quoted_string(std::string_view text) {
  if (text.size() < 2 || (text[0] != '\'' && text[0] != '"') || text.back() != text[0]) {
    return std::nullopt;
  }
  text = text.substr(1, text.size() - 2);
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '\\') {
      out.push_back(text[i]);
      continue;
    }
    const size_t taken = decode_escape(text, i + 1, out);
    if (taken == 0) return std::nullopt;
    i += taken;
  }
  return out;
}

}  // namespace payloadfs::formats::pickle

#pragma once
// The arguments of pickle opcodes that are not fixed-width binary: protocol 0's text forms
// (INT, LONG, FLOAT, STRING, UNICODE) and LONG1/LONG4's two's-complement integers of any size.
// Used by pickle_machine.cpp only.

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace payloadfs::formats::pickle {

// An integer of any size: `value` when it fits in int64, otherwise its decimal digits.
struct Integer {
  bool fits = true;
  int64_t value = 0;
  std::string decimal;  // when !fits: "-123..." or "123..."
};

// LONG1/LONG4: little-endian two's complement (no bytes is 0).
[[nodiscard]] Integer integer_from_twos_complement(std::span<const uint8_t> bytes);
// INT and LONG: an optional sign and decimal digits (LONG's trailing 'L' already removed).
[[nodiscard]] std::optional<Integer> integer_from_decimal(std::string_view text);
// FLOAT: Python's repr of a float ("1.5", "1e+100", "inf", "nan").
[[nodiscard]] std::optional<double> float_from_text(std::string_view text);

[[nodiscard]] bool is_valid_utf8(std::string_view text);
// UNICODE: raw-unicode-escape (bytes are Latin-1 code points; \uXXXX and \UXXXXXXXX escape)
// to UTF-8; nullopt for a bad escape or a surrogate.
[[nodiscard]] std::optional<std::string> decode_raw_unicode_escape(std::string_view text);
// STRING: a quoted Python 2 string literal ('...' or "...") with its backslash escapes, to
// its bytes; nullopt when unquoted or badly escaped.
[[nodiscard]] std::optional<std::string> decode_quoted_string(std::string_view text);

}  // namespace payloadfs::formats::pickle

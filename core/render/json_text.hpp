#pragma once
// Strings taken from files and file names are arbitrary bytes; JSON text must be UTF-8.

#include <cstddef>
#include <string>
#include <string_view>

namespace payloadfs {

// Returns `bytes` unchanged when it is valid UTF-8; otherwise every byte that is not part of a
// valid UTF-8 sequence becomes the four characters `\xHH` (Python's "backslashreplace").
[[nodiscard]] std::string utf8_or_escaped(std::string_view bytes);

// Length of the valid UTF-8 sequence starting at s[i] (i < s.size()), or 0 when there is none
// (overlong forms, surrogates and code points past U+10FFFF are not valid).
[[nodiscard]] size_t utf8_sequence_length(std::string_view s, size_t i);

// Deepest bracket nesting of JSON text outside strings: lets hostile JSON be refused before
// nlohmann's recursive parser runs on it.
[[nodiscard]] size_t json_depth(std::string_view text);

}  // namespace payloadfs

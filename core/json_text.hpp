#pragma once
// Strings taken from files and file names are arbitrary bytes; JSON text must be UTF-8.

#include <string>
#include <string_view>

namespace payloadfs {

// Returns `bytes` unchanged when it is valid UTF-8; otherwise every byte that is not part of a
// valid UTF-8 sequence becomes the four characters `\xHH` (Python's "backslashreplace").
[[nodiscard]] std::string utf8_or_escaped(std::string_view bytes);

}  // namespace payloadfs

#pragma once
// Names under range/: "<start>-<end>" (end exclusive) or "<start>+<length>", each number
// decimal or 0x-prefixed hex.

#include <optional>
#include <string_view>

#include "core/model/layout.hpp"

namespace payloadfs {

// The range a name denotes, if the name is well formed and the range lies within `file_size`.
[[nodiscard]] std::optional<ByteRange> parse_range_name(std::string_view name, uint64_t file_size);

}  // namespace payloadfs

#pragma once

#include <cstddef>
#include <span>
#include <string>

namespace payloadfs {

// Lower-case hex, two digits per byte, no separators.
[[nodiscard]] std::string to_hex(std::span<const std::byte> bytes);

}  // namespace payloadfs

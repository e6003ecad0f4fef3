#pragma once
// Factories for the built-in formats, one per line of format_list.def (which also gives
// registry.cpp their detection order).

#include <memory>

#include "core/model/format.hpp"

namespace payloadfs::formats {

#define PAYLOADFS_FORMAT(name) std::unique_ptr<Format> make_##name();
#include "core/formats/format_list.def"

}  // namespace payloadfs::formats

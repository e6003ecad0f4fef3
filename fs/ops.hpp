#pragma once

#include <fuse_lowlevel.h>

namespace payloadfs {

// The operation table; the session's userdata must be the Filesystem.
[[nodiscard]] fuse_lowlevel_ops make_operations();

}  // namespace payloadfs

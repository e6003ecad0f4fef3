#pragma once
// The kernel's readahead window for a FUSE mount is the mount's bdi read_ahead_kb, 128 KiB by
// default whatever the filesystem negotiates; raising it (root only, after FUSE INIT) is the
// largest single lever on first sequential reads (docs/benchmarks.md).

#include <string>

namespace payloadfs {

// Sets read_ahead_kb of the filesystem mounted at `mountpoint` (an absolute, resolved path).
// Returns an empty string on success, otherwise why not.
[[nodiscard]] std::string set_mount_readahead(const std::string& mountpoint, unsigned kilobytes);

}  // namespace payloadfs

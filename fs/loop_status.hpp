#pragma once
// What a request loop's status says about how the FUSE connection ended.

#include <cerrno>

namespace payloadfs {

// The kernel ends a connection (at unmount, or through /sys/fs/fuse/connections/N/abort) by
// disconnecting the device's processing queue before its input queue. A worker that has just
// taken a request off the input queue in between reads ECONNABORTED instead of ENODEV
// (fuse_dev_do_read in fs/fuse/dev.c), and libfuse 3.14 returns it as the loop's error. It
// happens when requests are still queued at unmount, such as the RELEASEs of many files
// closed just before: the mount is gone all the same, so it is an end, not a failure.
inline bool connection_ended(int loop_status) noexcept {
  return loop_status == -ECONNABORTED;
}

}  // namespace payloadfs

#pragma once
// payloadfs's own mount options (-o name=value); the rest go to libfuse.

#include <cstddef>
#include <string>

namespace payloadfs {

struct MountOptions {
  double entry_timeout = 1.0;     // seconds the kernel may cache a name -> node answer
  double attr_timeout = 1.0;      // seconds the kernel may cache attributes
  double negative_timeout = 1.0;  // seconds the kernel may cache "no such name"
  size_t cache_entries = 4096;    // payloads (mappings + parsed layouts) kept
};

}  // namespace payloadfs

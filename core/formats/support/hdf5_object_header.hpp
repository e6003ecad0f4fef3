#pragma once
// HDF5 object headers (File Format Specification 3.0, IV.A.1): version 1 (8-byte aligned
// messages, continuation blocks without a signature) and version 2 (OHDR, OCHK continuation
// blocks, lookup3 checksums), and shared messages (IV.A.2.m-style "shared" flag, bit 1)
// resolved to the message they refer to in a committed object's header.

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "core/formats/support/hdf5_objects.hpp"
#include "core/io/byte_source.hpp"

namespace payloadfs::formats::hdf5 {

// A header block larger than this is not read (its checksum needs it in memory).
inline constexpr uint64_t kMaxHeaderBlockBytes = uint64_t{64} << 20;

// The committed objects' headers read to resolve shared messages, by address: each is read
// once per file (up to kMaxSharedTargets of them; more are read again for each message).
inline constexpr size_t kMaxSharedTargets = 4096;
struct SharedTargets {
  std::map<uint64_t, Object> headers;
};

// Reads the object header at `address` (relative to the base address) into `object`
// (address, header_version, messages; NIL and continuation messages left out: the
// continuations are followed). Shared messages are resolved when `resolve_shared` is set; one
// that cannot be is left out (and reported). False, with the reason in `errors`, when not even
// the header's prefix could be read; messages read before a later failure are kept.
bool read_object_header(const ByteSource& file, const Sizes& sizes, uint64_t address,
                        Object& object, std::vector<std::string>& errors,
                        bool resolve_shared = true, SharedTargets* targets = nullptr);

// The first message of `type` in `object`, or nullptr.
const Message* find_message(const Object& object, uint16_t type);

}  // namespace payloadfs::formats::hdf5

#pragma once
// An ONNX ModelProto read into a Layout: header fields, one slice per initializer stored as
// raw_data (or as one packed float_data/double_data field), the rest listed in the header.

#include <cstdint>

#include "core/io/byte_source.hpp"
#include "core/model/layout.hpp"

namespace payloadfs::onnx {

// Initializers shown (slices and header entries); the rest are counted.
inline constexpr uint64_t kMaxInitializers = 65536;
// Dimensions of one tensor or shape.
inline constexpr uint64_t kMaxDims = 64;
// Graph inputs and outputs listed (each), opset imports and metadata properties listed.
inline constexpr uint64_t kMaxListedValues = 4096;
inline constexpr uint64_t kMaxOpsets = 1024;
inline constexpr uint64_t kMaxMetadataProps = 1024;
// Bytes kept of one name or other string.
inline constexpr uint64_t kMaxStringBytes = 4096;
// TypeProto nesting (sequence of map of optional ...) followed.
inline constexpr int kMaxTypeDepth = 8;
// external_data entries read per initializer.
inline constexpr uint64_t kMaxExternalEntries = 64;

void read_model(const ByteSource& source, Layout& layout);

}  // namespace payloadfs::onnx

#pragma once
// Internal to the HDF5 message parsers: reading a datatype or dataspace inside another message
// (an attribute), the global heap collections that hold variable-length data, and decoding
// stored elements to JSON from a Datatype's description.

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "core/formats/support/hdf5_messages.hpp"
#include "core/io/binary_reader.hpp"

namespace payloadfs::formats::hdf5 {

// Objects looked at per global heap collection before giving up.
inline constexpr uint64_t kMaxGlobalHeapObjects = 65536;
// JSON values one attribute value or fill value decodes to.
inline constexpr uint64_t kMaxDecodedValues = 1 << 18;

// Read at the reader's position; the reader ends after the datatype / dataspace.
std::optional<Datatype> parse_datatype_at(BinaryReader& reader, std::string& error);
std::optional<Dataspace> parse_dataspace_at(BinaryReader& reader, const Sizes& sizes,
                                            std::string& error);

struct GlobalHeapObject {
  uint16_t index = 0;
  ByteRange data;  // in the file
};
// The objects of the global heap collection at `collection_address` (base not yet applied);
// nullopt with `error` when the collection is malformed.
std::optional<std::vector<GlobalHeapObject>> read_global_heap(const ByteSource& file,
                                                              const Sizes& sizes,
                                                              uint64_t collection_address,
                                                              std::string& error);

// Decodes elements to JSON. Variable-length data is read from the global heap; every byte
// decoded counts against `budget` (bytes left), so one value stays within its limit.
class ValueDecoder {
 public:
  ValueDecoder(const ByteSource& source, const Sizes& file_sizes)
      : file(source), sizes(file_sizes) {}
  const ByteSource& file;
  const Sizes& sizes;
  uint64_t budget = kMaxAttributeValueBytes;
  // JSON values produced: overlapping compound members can multiply a few bytes into many.
  uint64_t values_left = kMaxDecodedValues;
  std::string error;  // the first problem; decoding goes on with null for what failed

  // One element of the type described by `type` (a Datatype::description).
  Json element(const Json& type, std::span<const std::byte> bytes, unsigned depth = 0);
  // `count` consecutive elements shaped as `dims` (nested lists; a single value for rank 0).
  Json elements(const Json& type, std::span<const std::byte> bytes,
                const std::vector<uint64_t>& dims, unsigned depth = 0);

 private:
  Json vlen(const Json& type, std::span<const std::byte> bytes, unsigned depth);
  // Object `index` of a collection, reading each collection once.
  std::optional<ByteRange> heap_object(uint64_t address, uint32_t index);
  std::map<uint64_t, std::vector<GlobalHeapObject>> collections_;
};

// A float as JSON: a number, or "NaN", "Infinity", "-Infinity".
Json float_json(double value);

}  // namespace payloadfs::formats::hdf5

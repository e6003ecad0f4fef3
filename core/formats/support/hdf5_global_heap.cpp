// HDF5 global heap collections (File Format Specification 3.0, III.E): "GCOL", version 1, the
// collection's size, then objects (index, reference count, size, data padded to 8 bytes) up to
// the free-space object (index 0) or the collection's end.

#include <string>

#include "core/formats/support/hdf5_values.hpp"
#include "core/io/checked_math.hpp"

namespace payloadfs::formats::hdf5 {
namespace {

uint64_t read_length(BinaryReader& reader, uint8_t width) {
  switch (width) {
    case 2:
      return reader.u16();
    case 4:
      return reader.u32();
    default:
      return reader.u64();
  }
}

}  // namespace

std::optional<std::vector<GlobalHeapObject>> read_global_heap(const ByteSource& file,
                                                              const Sizes& sizes,
                                                              uint64_t collection_address,
                                                              std::string& error) {
  const std::string where =
      "global heap collection at address " + std::to_string(collection_address);
  const auto offset = checked_add(collection_address, sizes.base);
  BinaryReader reader(file);
  if (!offset || *offset >= file.size()) {
    error = where + " lies past the end of the file";
    return std::nullopt;
  }
  reader.seek(*offset);
  const std::string signature = reader.text(4);
  const uint8_t version = reader.u8();
  reader.skip(3);
  const uint64_t size = read_length(reader, sizes.lengths);
  if (!reader.ok() || signature != "GCOL" || version != 1) {
    error = where + " has no GCOL version 1 signature";
    return std::nullopt;
  }
  const uint64_t header = 8 + uint64_t{sizes.lengths};
  if (size < header || !range_within(*offset, size, file.size())) {
    error = where + " has a size of " + std::to_string(size) + " bytes past the end of the file";
    return std::nullopt;
  }
  BinaryReader collection = reader.sub(*offset + header, size - header);
  std::vector<GlobalHeapObject> objects;
  const uint64_t object_header = 8 + uint64_t{sizes.lengths};
  while (collection.remaining() >= object_header && objects.size() < kMaxGlobalHeapObjects) {
    const uint16_t index = collection.u16();
    collection.skip(6);  // reference count, reserved
    const uint64_t length = read_length(collection, sizes.lengths);
    if (index == 0) break;  // free space: the rest of the collection
    const uint64_t start = collection.tell();
    const uint64_t padded = checked_add(length, (8 - length % 8) % 8).value_or(~uint64_t{0});
    if (padded > collection.remaining()) {
      error = where + ": object " + std::to_string(index) + " of " + std::to_string(length) +
              " bytes runs past the collection";
      return std::nullopt;
    }
    objects.push_back({index, {start, length}});
    collection.skip(padded);
  }
  if (!collection.ok()) {
    error = where + ": " + collection.error().value_or("cut short");
    return std::nullopt;
  }
  return objects;
}

}  // namespace payloadfs::formats::hdf5

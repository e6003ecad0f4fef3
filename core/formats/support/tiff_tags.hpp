#pragma once
// TIFF field types, tag names (TIFF 6.0, its technical notes, GeoTIFF 1.1, GDAL's private tags)
// and GeoTIFF key names, in tifffile's and libtiff's vocabulary.

#include <cstdint>
#include <string>

namespace payloadfs::formats::tiff {

enum FieldType : uint16_t {
  kByte = 1,
  kAscii = 2,
  kShort = 3,
  kLong = 4,
  kRational = 5,
  kSByte = 6,
  kUndefined = 7,
  kSShort = 8,
  kSLong = 9,
  kSRational = 10,
  kFloat = 11,
  kDouble = 12,
  kIfd = 13,
  kLong8 = 16,
  kSLong8 = 17,
  kIfd8 = 18,
};

// Bytes of one value of `type`; 0 for an unknown type.
uint64_t type_size(uint16_t type);
// The tag's name, or its number in decimal.
std::string tag_name(uint16_t tag);
// The GeoTIFF key's name, or its number in decimal.
std::string geokey_name(uint16_t key);
// The Compression value's name ("none", "lzw", "deflate", ...), or its number in decimal.
std::string compression_name(uint64_t compression);

}  // namespace payloadfs::formats::tiff

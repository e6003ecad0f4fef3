#pragma once
// EXIF metadata: the TIFF structure inside a JPEG's APP1 "Exif\0\0" segment (CIPA DC-008,
// Exif 2.32), read into tags by name.

#include <cstdint>
#include <string>
#include <vector>

#include "core/io/binary_reader.hpp"
#include "core/model/layout.hpp"

namespace payloadfs::formats {

// IFDs visited per EXIF block (IFD0, Exif, GPS, Interoperability, IFD1), entries read per IFD,
// and the elements of one array value shown.
inline constexpr uint64_t kMaxExifIfds = 16;
inline constexpr uint64_t kMaxExifEntries = 1024;
inline constexpr uint64_t kMaxExifArrayValues = 256;
// ASCII values longer than this are cut; UNDEFINED values up to this many bytes are shown.
inline constexpr uint64_t kMaxExifTextBytes = 4096;
inline constexpr uint64_t kMaxExifUndefinedBytes = 64;

struct ExifData {
  std::string byte_order;  // "II" or "MM"
  // IFD0, Exif, GPS and Interoperability tags by name (the first of a name wins).
  Json tags = Json::object();
  Json thumbnail = Json::object();  // IFD1's tags
};

// Reads the TIFF structure over [start, start + length) of `file` (offsets inside it are
// relative to `start`). Problems (bad offsets, loops, limits) go to `errors`, prefixed by
// `where`.
ExifData read_exif(BinaryReader& file, uint64_t start, uint64_t length, const std::string& where,
                   std::vector<std::string>& errors);

}  // namespace payloadfs::formats

// EXIF's TIFF structure: a byte order mark ("II" or "MM"), 42, and the offset of IFD0. An IFD
// is a count of 12-byte entries (tag, type, count, value or offset) and the offset of the next
// IFD (IFD1, the thumbnail's). Pointer tags lead to the Exif, GPS and Interoperability IFDs.
// Every offset is relative to the TIFF header and checked against the segment; every IFD is
// visited at most once, so a loop of offsets ends with an error.

#include "core/formats/support/exif.hpp"

#include <array>
#include <cstdio>
#include <map>
#include <set>
#include <utility>

#include "core/io/checked_math.hpp"
#include "core/render/hex.hpp"
#include "core/render/json_text.hpp"

namespace payloadfs::formats {
namespace {

enum class IfdKind { primary, exif, gps, interop, thumbnail };

constexpr uint16_t kExifPointer = 0x8769;
constexpr uint16_t kGpsPointer = 0x8825;
constexpr uint16_t kInteropPointer = 0xA005;
constexpr uint64_t kEntryBytes = 12;

// Bytes per value of the TIFF types 1..12.
constexpr std::array<uint8_t, 13> kTypeBytes = {0, 1, 1, 2, 4, 8, 1, 1, 2, 4, 8, 4, 8};

using Names = std::map<uint16_t, std::string_view>;

const Names& image_tags() {
  static const Names names = {{0x0100, "ImageWidth"},
                              {0x0101, "ImageLength"},
                              {0x0102, "BitsPerSample"},
                              {0x0103, "Compression"},
                              {0x0106, "PhotometricInterpretation"},
                              {0x010E, "ImageDescription"},
                              {0x010F, "Make"},
                              {0x0110, "Model"},
                              {0x0112, "Orientation"},
                              {0x0115, "SamplesPerPixel"},
                              {0x011A, "XResolution"},
                              {0x011B, "YResolution"},
                              {0x0128, "ResolutionUnit"},
                              {0x0131, "Software"},
                              {0x0132, "DateTime"},
                              {0x013B, "Artist"},
                              {0x013E, "WhitePoint"},
                              {0x013F, "PrimaryChromaticities"},
                              {0x0201, "JPEGInterchangeFormat"},
                              {0x0202, "JPEGInterchangeFormatLength"},
                              {0x0211, "YCbCrCoefficients"},
                              {0x0213, "YCbCrPositioning"},
                              {0x0214, "ReferenceBlackWhite"},
                              {0x8298, "Copyright"},
                              {kExifPointer, "ExifOffset"},
                              {kGpsPointer, "GPSInfo"},
                              {0x829A, "ExposureTime"},
                              {0x829D, "FNumber"},
                              {0x8822, "ExposureProgram"},
                              {0x8827, "ISOSpeedRatings"},
                              {0x8830, "SensitivityType"},
                              {0x9000, "ExifVersion"},
                              {0x9003, "DateTimeOriginal"},
                              {0x9004, "DateTimeDigitized"},
                              {0x9010, "OffsetTime"},
                              {0x9011, "OffsetTimeOriginal"},
                              {0x9012, "OffsetTimeDigitized"},
                              {0x9101, "ComponentsConfiguration"},
                              {0x9102, "CompressedBitsPerPixel"},
                              {0x9201, "ShutterSpeedValue"},
                              {0x9202, "ApertureValue"},
                              {0x9203, "BrightnessValue"},
                              {0x9204, "ExposureBiasValue"},
                              {0x9205, "MaxApertureValue"},
                              {0x9206, "SubjectDistance"},
                              {0x9207, "MeteringMode"},
                              {0x9208, "LightSource"},
                              {0x9209, "Flash"},
                              {0x920A, "FocalLength"},
                              {0x927C, "MakerNote"},
                              {0x9286, "UserComment"},
                              {0x9290, "SubSecTime"},
                              {0x9291, "SubSecTimeOriginal"},
                              {0x9292, "SubSecTimeDigitized"},
                              {0xA000, "FlashpixVersion"},
                              {0xA001, "ColorSpace"},
                              {0xA002, "PixelXDimension"},
                              {0xA003, "PixelYDimension"},
                              {kInteropPointer, "ExifInteroperabilityOffset"},
                              {0xA20E, "FocalPlaneXResolution"},
                              {0xA20F, "FocalPlaneYResolution"},
                              {0xA210, "FocalPlaneResolutionUnit"},
                              {0xA217, "SensingMethod"},
                              {0xA300, "FileSource"},
                              {0xA301, "SceneType"},
                              {0xA401, "CustomRendered"},
                              {0xA402, "ExposureMode"},
                              {0xA403, "WhiteBalance"},
                              {0xA404, "DigitalZoomRatio"},
                              {0xA405, "FocalLengthIn35mmFilm"},
                              {0xA406, "SceneCaptureType"},
                              {0xA420, "ImageUniqueID"},
                              {0xA430, "CameraOwnerName"},
                              {0xA431, "BodySerialNumber"},
                              {0xA432, "LensSpecification"},
                              {0xA433, "LensMake"},
                              {0xA434, "LensModel"}};
  return names;
}

const Names& gps_tags() {
  static const Names names = {{0x00, "GPSVersionID"},       {0x01, "GPSLatitudeRef"},
                              {0x02, "GPSLatitude"},        {0x03, "GPSLongitudeRef"},
                              {0x04, "GPSLongitude"},       {0x05, "GPSAltitudeRef"},
                              {0x06, "GPSAltitude"},        {0x07, "GPSTimeStamp"},
                              {0x08, "GPSSatellites"},      {0x09, "GPSStatus"},
                              {0x0A, "GPSMeasureMode"},     {0x0B, "GPSDOP"},
                              {0x0C, "GPSSpeedRef"},        {0x0D, "GPSSpeed"},
                              {0x0E, "GPSTrackRef"},        {0x0F, "GPSTrack"},
                              {0x10, "GPSImgDirectionRef"}, {0x11, "GPSImgDirection"},
                              {0x12, "GPSMapDatum"},        {0x1B, "GPSProcessingMethod"},
                              {0x1D, "GPSDateStamp"},       {0x1E, "GPSDifferential"}};
  return names;
}

const Names& interop_tags() {
  static const Names names = {{0x01, "InteroperabilityIndex"}, {0x02, "InteroperabilityVersion"}};
  return names;
}

std::string tag_name(IfdKind kind, uint16_t tag) {
  const Names& names = kind == IfdKind::gps       ? gps_tags()
                       : kind == IfdKind::interop ? interop_tags()
                                                  : image_tags();
  if (auto it = names.find(tag); it != names.end()) return std::string(it->second);
  std::array<char, 8> text{};
  std::snprintf(text.data(), text.size(), "0x%04x", tag);
  return text.data();
}

// One element of a numeric type at the reader's position.
Json read_number(BinaryReader& r, uint16_t type) {
  switch (type) {
    case 1:
    case 7:
      return r.u8();
    case 3:
      return r.u16();
    case 4:
      return r.u32();
    case 6:
      return r.i8();
    case 8:
      return r.i16();
    case 9:
      return r.i32();
    case 5: {
      const uint32_t num = r.u32();
      const uint32_t den = r.u32();
      return den == 0 ? Json(nullptr) : Json(static_cast<double>(num) / den);
    }
    case 10: {
      const int32_t num = r.i32();
      const int32_t den = r.i32();
      return den == 0 ? Json(nullptr) : Json(static_cast<double>(num) / den);
    }
    case 11:
      return r.f32();
    default:
      return r.f64();
  }
}

// ASCII: up to the first NUL. UNDEFINED: printable text, hex, or where it lies when long.
Json read_bytes_value(BinaryReader& r, uint16_t type, uint32_t count, uint64_t tiff_start) {
  if (type == 7 && count > kMaxExifUndefinedBytes)
    return Json{{"offset", r.tell()}, {"length", count}, {"tiff_offset", r.tell() - tiff_start}};
  std::string text = r.text(std::min<uint64_t>(count, kMaxExifTextBytes));
  if (type == 2) {
    if (const size_t nul = text.find('\0'); nul != std::string::npos) text.resize(nul);
    return utf8_or_escaped(text);
  }
  bool printable = true;
  for (const char c : text) printable = printable && c >= 0x20 && c < 0x7F;
  if (printable) return text;
  return to_hex(std::as_bytes(std::span(text.data(), text.size())));
}

struct Walk {
  BinaryReader& tiff;
  uint64_t start;
  uint64_t length;
  const std::string& where;
  std::vector<std::string>& errors;
  ExifData data;
  std::set<uint32_t> visited;
  std::vector<std::pair<uint32_t, IfdKind>> pending;
};

// An entry's value; nullopt (with an error) when it lies outside the TIFF structure.
std::optional<Json> read_value(Walk& w, uint64_t entry_at, const std::string& name, uint16_t type,
                               uint32_t count) {
  if (type == 0 || type >= kTypeBytes.size()) return Json("type " + std::to_string(type));
  const uint64_t bytes = uint64_t{kTypeBytes[type]} * count;
  uint64_t at = entry_at + 8;
  if (bytes > 4) {
    w.tiff.seek(entry_at + 8);
    const uint32_t offset = w.tiff.u32();
    if (!range_within(offset, bytes, w.length)) {
      w.errors.push_back(w.where + "the value of tag " + name + " lies outside the EXIF data");
      return std::nullopt;
    }
    at = w.start + offset;
  }
  w.tiff.seek(at);
  if (type == 2 || type == 7) return read_bytes_value(w.tiff, type, count, w.start);
  if (count == 1) return read_number(w.tiff, type);
  Json list = Json::array();
  for (uint32_t i = 0; i < count && i < kMaxExifArrayValues; ++i)
    list.push_back(read_number(w.tiff, type));
  return list;
}

// Reads one IFD into `out`; queues the IFDs it points to; returns the next IFD's offset.
uint32_t read_ifd(Walk& w, uint32_t offset, IfdKind kind, Json& out) {
  const std::string where = w.where + "IFD at EXIF offset " + std::to_string(offset) + ": ";
  if (!range_within(offset, 2, w.length)) {
    w.errors.push_back(where + "the offset lies outside the EXIF data");
    return 0;
  }
  w.tiff.seek(w.start + offset);
  const uint16_t count = w.tiff.u16();
  if (!w.tiff.ok() || !range_within(offset + 2ULL, count * kEntryBytes + 4, w.length)) {
    w.errors.push_back(where + "its entries run past the end of the EXIF data");
    return 0;
  }
  if (count > kMaxExifEntries)
    w.errors.push_back(where + std::to_string(count) + " entries; only the first " +
                       std::to_string(kMaxExifEntries) + " are read");
  const uint64_t entries = w.start + offset + 2;
  for (uint64_t i = 0; i < std::min<uint64_t>(count, kMaxExifEntries); ++i) {
    const uint64_t entry_at = entries + i * kEntryBytes;
    w.tiff.seek(entry_at);
    const uint16_t tag = w.tiff.u16();
    const uint16_t type = w.tiff.u16();
    const uint32_t n = w.tiff.u32();
    const uint32_t pointer = w.tiff.u32();
    const bool is_pointer = kind != IfdKind::gps && kind != IfdKind::interop &&
                            (tag == kExifPointer || tag == kGpsPointer || tag == kInteropPointer);
    if (is_pointer) {
      w.pending.emplace_back(pointer, tag == kExifPointer  ? IfdKind::exif
                                      : tag == kGpsPointer ? IfdKind::gps
                                                           : IfdKind::interop);
    }
    const std::string name = tag_name(kind, tag);
    auto value = read_value(w, entry_at, name, type, n);
    if (value && !out.contains(name)) out[name] = std::move(*value);
  }
  w.tiff.seek(entries + count * kEntryBytes);
  return w.tiff.u32();
}

// Visits an IFD once; a second visit is a loop.
bool enter(Walk& w, uint32_t offset, const char* what) {
  if (w.visited.count(offset) != 0) {
    w.errors.push_back(w.where + "the " + std::string(what) + " IFD offset " +
                       std::to_string(offset) + " loops back to an IFD already read");
    return false;
  }
  if (w.visited.size() == kMaxExifIfds) {
    w.errors.push_back(w.where + "more than " + std::to_string(kMaxExifIfds) + " IFDs");
    return false;
  }
  w.visited.insert(offset);
  return true;
}

}  // namespace

ExifData read_exif(BinaryReader& file, uint64_t start, uint64_t length, const std::string& where,
                   std::vector<std::string>& errors) {
  BinaryReader tiff = file.sub(start, length);
  Walk w{tiff, start, length, where, errors, {}, {}, {}};
  const uint16_t mark = tiff.u16();
  if (mark != 0x4949 && mark != 0x4D4D) {
    errors.push_back(where + "no TIFF byte order mark (II or MM)");
    return {};
  }
  tiff.set_endian(mark == 0x4949 ? Endian::little : Endian::big);
  w.data.byte_order = mark == 0x4949 ? "II" : "MM";
  const uint16_t magic = tiff.u16();
  const uint32_t ifd0 = tiff.u32();
  if (!tiff.ok() || magic != 42) {
    errors.push_back(where + "bad or cut TIFF header");
    return std::move(w.data);
  }
  uint32_t ifd1 = 0;
  if (enter(w, ifd0, "first")) ifd1 = read_ifd(w, ifd0, IfdKind::primary, w.data.tags);
  for (size_t i = 0; i < w.pending.size(); ++i) {
    const auto [offset, kind] = w.pending[i];
    if (enter(w, offset, "sub")) read_ifd(w, offset, kind, w.data.tags);
  }
  if (ifd1 != 0 && enter(w, ifd1, "next")) read_ifd(w, ifd1, IfdKind::thumbnail, w.data.thumbnail);
  if (!tiff.ok() && !file.ok()) errors.push_back(where + "cannot read the EXIF data");
  return std::move(w.data);
}

}  // namespace payloadfs::formats

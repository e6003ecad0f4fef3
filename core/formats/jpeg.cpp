// JPEG (ITU-T T.81, JFIF 1.02, Exif 2.32): SOI, then marker segments (0xFF, a marker byte, a
// big-endian length that counts itself, the data), each SOS followed by entropy-coded data up
// to the next marker that is neither RSTn nor a stuffed 0xFF00, and EOI. The frame header
// (SOFn), JFIF's APP0, EXIF's APP1 (a TIFF structure, core/formats/support/exif.cpp) and
// comments are decoded into the header.

#include <array>
#include <optional>
#include <string>
#include <vector>

#include "core/formats/builtin.hpp"
#include "core/formats/support/exif.hpp"
#include "core/formats/support/signature.hpp"
#include "core/io/binary_reader.hpp"
#include "core/io/checked_math.hpp"
#include "core/render/hex.hpp"
#include "core/render/json_text.hpp"

namespace payloadfs::formats {
namespace {

constexpr Signature<3> kMagic = {std::byte{0xFF}, std::byte{0xD8}, std::byte{0xFF}};
constexpr uint8_t kSos = 0xDA;
constexpr uint8_t kEoi = 0xD9;

// Marker segments and scans shown (real files have tens; each is a slice).
constexpr uint64_t kMaxSegments = 4096;
constexpr uint64_t kMaxScans = 4096;
// Comments listed in the header (each cut at kMaxCommentBytes); an APPn identifier's bytes.
constexpr uint64_t kMaxComments = 64;
constexpr uint64_t kMaxCommentBytes = 4096;
constexpr uint64_t kMaxIdentifierBytes = 32;
// Bytes read at a time while looking for the end of a scan.
constexpr uint64_t kScanChunkBytes = 64 * 1024;

std::string two_digit_hex(uint8_t b) {
  const std::array<std::byte, 1> one = {std::byte{b}};
  return to_hex(one);
}

// T.81's marker names (Table B.1); `marker_XX` for the rest.
std::string marker_name(uint8_t m) {
  if (m >= 0xC0 && m <= 0xCF && m != 0xC4 && m != 0xC8 && m != 0xCC)
    return "SOF" + std::to_string(m - 0xC0);
  if (m >= 0xE0 && m <= 0xEF) return "APP" + std::to_string(m - 0xE0);
  if (m >= 0xF0 && m <= 0xFD) return "JPG" + std::to_string(m - 0xF0);
  if (m >= 0xD0 && m <= 0xD7) return "RST" + std::to_string(m - 0xD0);
  switch (m) {
    case 0xC4:
      return "DHT";
    case 0xC8:
      return "JPG";
    case 0xCC:
      return "DAC";
    case 0xD8:
      return "SOI";
    case kEoi:
      return "EOI";
    case kSos:
      return "SOS";
    case 0xDB:
      return "DQT";
    case 0xDC:
      return "DNL";
    case 0xDD:
      return "DRI";
    case 0xDE:
      return "DHP";
    case 0xDF:
      return "EXP";
    case 0xFE:
      return "COM";
    default:
      return "marker_" + two_digit_hex(m);
  }
}

bool is_sof(uint8_t m) {
  return m >= 0xC0 && m <= 0xCF && m != 0xC4 && m != 0xC8 && m != 0xCC;
}

// The printable prefix of an APPn segment, up to its NUL ("JFIF", "Exif", "Adobe", XMP's URI).
std::string app_identifier(BinaryReader& r, uint64_t length) {
  std::string id;
  for (uint64_t i = 0; i < std::min(length, kMaxIdentifierBytes); ++i) {
    const uint8_t c = r.u8();
    if (!r.ok() || c < 0x20 || c >= 0x7F) break;
    id.push_back(static_cast<char>(c));
  }
  return id;
}

struct Image {
  Json comments = Json::array();
  uint64_t segments = 0;
  uint64_t scans = 0;
  bool saw_frame = false;
};

void read_frame_header(BinaryReader& r, uint8_t marker, Slice& slice, Image& img, Layout& layout) {
  auto& h = layout.header;
  const uint8_t precision = r.u8();
  const uint16_t height = r.u16();
  const uint16_t width = r.u16();
  const uint8_t components = r.u8();
  if (!r.ok()) {
    layout.add_error(slice.name + " segment: cut frame header");
    return;
  }
  slice.attributes["width"] = width;
  slice.attributes["height"] = height;
  if (img.saw_frame) return;  // the first frame header describes the image
  img.saw_frame = true;
  h["width"] = width;
  h["height"] = height;
  h["components"] = components;
  h["precision"] = precision;
  // SOF2, SOF6, SOF10 and SOF14 are progressive; the rest sequential or lossless.
  h["progressive"] = (marker & 0x03) == 0x02;
  h["frame_type"] = slice.name;
}

// APP0 (JFIF) and APP1 (Exif): the JFIF version and density, the EXIF tags.
void read_app_segment(BinaryReader& r, uint8_t marker, Slice& slice, Layout& layout) {
  const uint64_t start = slice.range.offset;
  const uint64_t length = slice.range.length;
  const std::string id = app_identifier(r, length);
  if (!id.empty()) slice.attributes["identifier"] = id;
  auto& h = layout.header;
  if (marker == 0xE0 && id == "JFIF" && length >= 14 && !h.contains("jfif_version")) {
    r.seek(start + 5);
    const uint8_t major = r.u8();
    const uint8_t minor = r.u8();
    const uint8_t units = r.u8();
    const uint16_t x = r.u16();
    const uint16_t y = r.u16();
    h["jfif_version"] =
        std::to_string(major) + "." + (minor < 10 ? "0" : "") + std::to_string(minor);
    h["jfif_density"] = Json{{"units", units}, {"x", x}, {"y", y}};
  } else if (marker == 0xE1 && id == "Exif" && length > 6 && !h.contains("exif")) {
    const std::string where = "APP1 (Exif) at offset " + std::to_string(start) + ": ";
    ExifData exif = read_exif(r, start + 6, length - 6, where, layout.errors);
    h["exif_byte_order"] = exif.byte_order;
    h["exif"] = std::move(exif.tags);
    if (!exif.thumbnail.empty()) h["exif_thumbnail"] = std::move(exif.thumbnail);
  }
}

// Decodes what a segment's data says into its attributes and the header.
void describe_segment(BinaryReader& file, uint8_t marker, Slice& slice, Image& img,
                      Layout& layout) {
  BinaryReader r = file.sub(slice.range.offset, slice.range.length);
  if (is_sof(marker)) {
    read_frame_header(r, marker, slice, img, layout);
  } else if (marker >= 0xE0 && marker <= 0xEF) {
    read_app_segment(r, marker, slice, layout);
  } else if (marker == 0xFE && img.comments.size() < kMaxComments) {
    img.comments.push_back(utf8_or_escaped(r.text(std::min(slice.range.length, kMaxCommentBytes))));
  } else if (marker == kSos) {
    slice.attributes["scan_components"] = r.u8();
  } else if (marker == 0xDD) {
    slice.attributes["restart_interval"] = r.u16();
  }
}

struct ScanEnd {
  uint64_t end = 0;  // where the marker after the scan starts (its first 0xFF)
  uint64_t restarts = 0;
  bool found = false;
};

// Looks for the first 0xFF not followed by 0x00 or RSTn from `start`, a chunk at a time.
ScanEnd find_scan_end(BinaryReader& r, uint64_t start) {
  ScanEnd out;
  std::vector<std::byte> chunk;
  bool after_ff = false;
  r.seek(start);
  while (r.ok() && r.remaining() > 0) {
    const uint64_t at = r.tell();
    chunk.resize(static_cast<size_t>(std::min(kScanChunkBytes, r.remaining())));
    if (!r.read_into(chunk)) break;
    for (size_t i = 0; i < chunk.size(); ++i) {
      const auto b = std::to_integer<uint8_t>(chunk[i]);
      if (after_ff) {
        after_ff = false;
        if (b >= 0xD0 && b <= 0xD7) ++out.restarts;
        if (b == 0x00 || (b >= 0xD0 && b <= 0xD7)) continue;
        out.end = at + i - 1;
        out.found = true;
        return out;
      }
      after_ff = b == 0xFF;
    }
  }
  out.end = r.tell() - (after_ff ? 1 : 0);
  return out;
}

// Adds the scan after an SOS segment that ends at `start`; returns where the next marker
// starts, or nullopt when the scan runs to the end of the file.
std::optional<uint64_t> add_scan(BinaryReader& r, uint64_t start, Image& img, Layout& layout) {
  const ScanEnd scan = find_scan_end(r, start);
  Slice slice{"scan", {start, scan.end - start}, Json{{"index", img.scans}}};
  if (scan.restarts > 0) slice.attributes["restart_markers"] = scan.restarts;
  slice.stored = false;
  layout.slices.push_back(std::move(slice));
  ++img.scans;
  if (!scan.found) {
    layout.add_error("the scan at offset " + std::to_string(start) +
                     " runs to the end of the file (no EOI)");
    return std::nullopt;
  }
  return scan.end;
}

// One marker segment at r's position (after its marker byte): its slice, and its scan.
// Returns false when the walk must stop.
bool read_segment(BinaryReader& r, uint64_t marker_at, uint8_t marker, Image& img, Layout& layout) {
  const std::string where =
      marker_name(marker) + " marker at offset " + std::to_string(marker_at) + ": ";
  const uint16_t length = r.u16();
  if (!r.ok()) {
    layout.add_error(where + "cut inside its length field");
    return false;
  }
  const uint64_t start = r.tell();
  if (length < 2 || length - 2u > r.remaining()) {
    layout.add_error(where + "its length " + std::to_string(length) +
                     (length < 2 ? " is less than 2" : " runs past the end of the file"));
    return false;
  }
  Slice slice{marker_name(marker),
              {start, length - 2u},
              Json{{"marker", "ff" + two_digit_hex(marker)},
                   {"marker_offset", marker_at},
                   {"segment_length", length}}};
  describe_segment(r, marker, slice, img, layout);
  layout.slices.push_back(std::move(slice));
  ++img.segments;
  r.seek(start + length - 2);
  if (marker != kSos) return true;
  if (img.scans == kMaxScans) {
    layout.add_error("more than " + std::to_string(kMaxScans) + " scans; the rest of the " +
                     "file from offset " + std::to_string(start) + " is not shown");
    return false;
  }
  const auto next = add_scan(r, start + length - 2, img, layout);
  if (!next) return false;
  r.seek(*next);
  return true;
}

// Walks the markers after SOI until EOI; the offset after EOI, or nullopt when there is none.
std::optional<uint64_t> read_markers(const ByteSource& source, Image& img, Layout& layout) {
  BinaryReader r(source, Endian::big);
  r.seek(2);
  while (r.ok() && r.remaining() > 0) {
    const uint64_t at = r.tell();
    if (r.u8() != 0xFF) {
      layout.add_error("no marker at offset " + std::to_string(at) + " (expected 0xff)");
      return std::nullopt;
    }
    uint8_t marker = 0xFF;
    while (marker == 0xFF && r.ok()) marker = r.u8();  // fill bytes before a marker
    if (!r.ok()) break;
    const uint64_t marker_at = r.tell() - 2;
    if (marker == kEoi) return r.tell();
    if ((marker >= 0xD0 && marker <= 0xD8) || marker == 0x01) continue;  // no length field
    if (img.segments == kMaxSegments) {
      layout.add_error("more than " + std::to_string(kMaxSegments) + " marker segments; the " +
                       "rest of the file from offset " + std::to_string(marker_at) +
                       " is not shown");
      return std::nullopt;
    }
    if (!read_segment(r, marker_at, marker, img, layout)) return std::nullopt;
  }
  layout.add_error("the file ends without an EOI marker");
  return std::nullopt;
}

class Jpeg final : public Format {
 public:
  std::string_view name() const noexcept override { return "jpeg"; }
  std::string_view description() const noexcept override { return "JPEG image (JFIF, EXIF)"; }
  std::string_view signature() const noexcept override { return "ff d8 ff (SOI, a marker) at 0"; }

  bool detect(std::span<const std::byte> head, uint64_t) const override {
    return starts_with(head, kMagic);
  }

  Layout parse(const ByteSource& source) const override {
    Layout layout;
    layout.magic = magic_at_start(kMagic);
    Image img;
    const auto end = read_markers(source, img, layout);
    auto& h = layout.header;
    if (!img.saw_frame) layout.add_error("no frame header (SOFn)");
    h["segment_count"] = img.segments;
    h["scan_count"] = img.scans;
    if (!img.comments.empty()) h["comments"] = std::move(img.comments);
    if (end) {
      h["eoi_offset"] = *end - 2;
      h["trailing_bytes"] = source.size() - *end;
    }
    return layout;
  }
};

}  // namespace

std::unique_ptr<Format> make_jpeg() {
  return std::make_unique<Jpeg>();
}

}  // namespace payloadfs::formats

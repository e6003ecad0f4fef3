#include "core/formats/support/mp4_header.hpp"

#include <array>
#include <bit>
#include <cmath>
#include <cstring>

namespace payloadfs::formats::mp4 {
namespace {

constexpr uint64_t kMaxBrands = 256;
constexpr uint64_t kSampleEntryFixedBytes = 16;
constexpr double kMaxSampleRate =
    1e9;  // Hz; above it a version 2 rate is garbage  // size, type, reserved, data_reference_index

// Reads a full box's version and flags; returns the version.
uint8_t full_box_version(BinaryReader& r) {
  const uint32_t word = r.u32();
  return static_cast<uint8_t>(word >> 24);
}

// The (creation, modification) times and the fields after them differ in width by version.
void skip_times(BinaryReader& r, uint8_t version) {
  r.skip(version == 1 ? 16 : 8);
}

uint64_t versioned_u(BinaryReader& r, uint8_t version) {
  return version == 1 ? r.u64() : r.u32();
}

void note_cut(BinaryReader& r, std::string_view box, std::vector<std::string>& errors) {
  if (!r.ok()) errors.push_back("cut " + std::string(box) + " box: " + *r.error());
}

// ISO-639-2/T as three 5-bit letters (each + 0x60); "" when not letters.
std::string language_of(uint16_t packed) {
  std::string out;
  for (int shift = 10; shift >= 0; shift -= 5) {
    const int c = ((packed >> shift) & 0x1F) + 0x60;
    if (c < 'a' || c > 'z') return "";
    out.push_back(static_cast<char>(c));
  }
  return out;
}

void describe_tkhd(BinaryReader& file, const ByteRange& box, Json& t,
                   std::vector<std::string>& errors) {
  BinaryReader r = file.sub(box.offset, box.length);
  const uint8_t version = full_box_version(r);
  skip_times(r, version);
  const uint32_t id = r.u32();
  r.skip(4);
  versioned_u(r, version);         // duration in the movie's timescale
  r.skip(8 + 2 + 2 + 2 + 2 + 36);  // reserved, layer, group, volume, reserved, matrix
  const uint32_t width = r.u32();
  const uint32_t height = r.u32();
  note_cut(r, "tkhd", errors);
  t["id"] = id;
  if (r.ok()) {
    t["width"] = width >> 16;  // 16.16 fixed point
    t["height"] = height >> 16;
  }
}

void describe_mdhd(BinaryReader& file, const ByteRange& box, Json& t,
                   std::vector<std::string>& errors) {
  BinaryReader r = file.sub(box.offset, box.length);
  const uint8_t version = full_box_version(r);
  skip_times(r, version);
  const uint32_t timescale = r.u32();
  const uint64_t duration = versioned_u(r, version);
  const uint16_t language = r.u16();
  note_cut(r, "mdhd", errors);
  if (!r.ok()) return;
  t["timescale"] = timescale;
  t["duration"] = duration;
  if (const std::string lang = language_of(language); !lang.empty()) t["language"] = lang;
}

// The handler's four-character code (vide, soun, hint, meta, text, ...).
std::optional<uint32_t> read_handler(BinaryReader& file, const ByteRange& box,
                                     std::vector<std::string>& errors) {
  BinaryReader r = file.sub(box.offset, box.length);
  r.skip(4 + 4);  // version and flags, pre_defined (QuickTime's component type)
  const uint32_t handler = r.u32();
  note_cut(r, "hdlr", errors);
  if (!r.ok()) return std::nullopt;
  return handler;
}

// A visual sample entry's width and height (14496-12, 12.1.3).
void describe_visual(BinaryReader& r, uint64_t entry, Json& t) {
  r.seek(entry + kSampleEntryFixedBytes + 16);
  const uint16_t width = r.u16();
  const uint16_t height = r.u16();
  if (!r.ok()) return;
  t["width"] = width;
  t["height"] = height;
}

// An MPEG-4 descriptor's tag and length (14496-1, 8.3.3: up to four 7-bit length bytes).
std::optional<uint32_t> descriptor_length(BinaryReader& r, uint8_t expected_tag) {
  if (r.u8() != expected_tag) return std::nullopt;
  uint32_t length = 0;
  for (int i = 0; i < 4; ++i) {
    const uint8_t b = r.u8();
    length = (length << 7) | (b & 0x7Fu);
    if ((b & 0x80) == 0) break;
  }
  return r.ok() ? std::optional<uint32_t>(length) : std::nullopt;
}

// AAC's AudioSpecificConfig (14496-3, 1.6.2.1) in esds: the rate and channels ffprobe reports
// (an mp4 audio sample entry's channel count is a template value, 2).
void describe_esds(BinaryReader& r, uint64_t payload, Json& t) {
  static constexpr std::array<uint32_t, 13> kRates = {
      96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350};
  r.seek(payload + 4);  // version and flags
  if (!descriptor_length(r, 0x03)) return;
  r.skip(2);  // ES_ID
  const uint8_t flags = r.u8();
  if ((flags & 0x80) != 0) r.skip(2);
  if ((flags & 0x40) != 0) r.skip(r.u8());
  if ((flags & 0x20) != 0) r.skip(2);
  if (!descriptor_length(r, 0x04)) return;
  const uint8_t object_type = r.u8();
  r.skip(1 + 3 + 4 + 4);  // stream type, buffer size, max and average bitrate
  if (object_type != 0x40 || !descriptor_length(r, 0x05)) return;
  const uint32_t bits = (uint32_t{r.u8()} << 8) | r.u8();  // type 5 bits, rate 4, channels 4
  if (!r.ok() || (bits >> 11) == 31) return;               // an escaped object type: not read
  const uint32_t rate_index = (bits >> 7) & 0xF;
  const uint32_t channels = (bits >> 3) & 0xF;
  if (rate_index < kRates.size()) t["sample_rate"] = kRates[rate_index];
  if (channels != 0 && channels < 7) t["channels"] = channels;
  if (channels == 7) t["channels"] = 8;
}

// Finds esds among the boxes in [begin, end), inside a QuickTime `wave` box too.
void find_esds(BinaryReader& r, uint64_t begin, uint64_t end, int depth, Json& t) {
  for (uint64_t at = begin; at + 8 <= end && at >= begin;) {
    r.seek(at);
    const uint32_t size = r.u32();
    const uint32_t type = r.u32();
    if (!r.ok() || size < 8 || size > end - at) return;
    if (type == fourcc_code("esds")) return describe_esds(r, at + 8, t);
    if (type == fourcc_code("wave") && depth == 0) find_esds(r, at + 8, at + size, 1, t);
    at += size;
  }
}

// An audio sample entry's channels and sample rate (14496-12, 12.2.3); QuickTime's sound
// description version 2 keeps them after the version 0 fields.
void describe_audio(BinaryReader& r, uint64_t entry, Json& t, std::vector<std::string>& errors) {
  r.seek(entry + kSampleEntryFixedBytes);
  const uint16_t version = r.u16();
  r.skip(2 + 4);  // revision, vendor
  uint32_t channels = r.u16();
  r.skip(2 + 2 + 2);  // sample size, compression id, packet size
  double rate = r.u32() / 65536.0;
  if (version == 2) {
    r.skip(4);  // size of the struct
    rate = std::bit_cast<double>(r.u64());
    channels = r.u32();
  }
  if (!r.ok()) return;
  // Children follow the version's fields: 20 bytes, QuickTime's version 1 16 more, version 2 36.
  const uint64_t children =
      entry + kSampleEntryFixedBytes + 20 + (version == 1 ? 16 : 0) + (version == 2 ? 36 : 0);
  // A version 2 rate is any 64-bit float: only a finite, plausible one is shown.
  if (!std::isfinite(rate) || rate < 0 || rate > kMaxSampleRate) {
    errors.push_back("audio sample entry with an implausible sample rate");
  } else if (rate == std::floor(rate)) {
    t["sample_rate"] = static_cast<uint64_t>(rate);
  } else {
    t["sample_rate"] = rate;
  }
  t["channels"] = channels;
  find_esds(r, children, r.end(), 0, t);
}

void describe_stsd(BinaryReader& file, const ByteRange& box, std::optional<uint32_t> handler,
                   Json& t, std::vector<std::string>& errors) {
  BinaryReader r = file.sub(box.offset, box.length);
  r.skip(4);
  const uint32_t entries = r.u32();
  const uint64_t entry = r.tell();
  const uint32_t entry_size = r.u32();
  const uint32_t codec = r.u32();
  if (!r.ok() || entries == 0) {
    errors.push_back("stsd without a sample entry");
    return;
  }
  t["codec"] = fourcc_text(codec);
  t["sample_descriptions"] = entries;
  BinaryReader e = r.sub(entry, std::min<uint64_t>(entry_size, box.offset + box.length - entry));
  if (handler == fourcc_code("vide")) describe_visual(e, entry, t);
  if (handler == fourcc_code("soun")) describe_audio(e, entry, t, errors);
}

}  // namespace

uint32_t fourcc_code(std::string_view name) {
  uint32_t code = 0;
  for (const char c : name) code = (code << 8) | static_cast<uint8_t>(c);
  return code;
}

std::string fourcc_text(uint32_t code) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (int shift = 24; shift >= 0; shift -= 8) {
    const uint8_t c = static_cast<uint8_t>(code >> shift);
    if (c >= 0x20 && c < 0x7F && c != '/' && c != '%' && c != '~') {
      out.push_back(static_cast<char>(c));
    } else if (c >= 0xA0) {
      out.push_back(static_cast<char>(0xC0 | (c >> 6)));
      out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
    } else {
      out += {'%', kHex[c >> 4], kHex[c & 0xF]};
    }
  }
  return out;
}

Json describe_brands(BinaryReader& file, const ByteRange& ftyp, std::vector<std::string>& errors) {
  BinaryReader r = file.sub(ftyp.offset, ftyp.length);
  Json brands = Json::object();
  brands["major"] = fourcc_text(r.u32());
  brands["minor_version"] = r.u32();
  note_cut(r, "ftyp", errors);
  Json compatible = Json::array();
  const uint64_t count = r.remaining() / 4;
  for (uint64_t i = 0; i < count && i < kMaxBrands; ++i) compatible.push_back(fourcc_text(r.u32()));
  if (count > kMaxBrands)
    errors.push_back("more than " + std::to_string(kMaxBrands) + " compatible brands; cut");
  brands["compatible"] = std::move(compatible);
  return brands;
}

void describe_movie(BinaryReader& file, const ByteRange& mvhd, Json& header,
                    std::vector<std::string>& errors) {
  BinaryReader r = file.sub(mvhd.offset, mvhd.length);
  const uint8_t version = full_box_version(r);
  skip_times(r, version);
  const uint32_t timescale = r.u32();
  const uint64_t duration = versioned_u(r, version);
  note_cut(r, "mvhd", errors);
  if (!r.ok()) return;
  header["timescale"] = timescale;
  header["duration"] = duration;
  if (timescale != 0) header["duration_seconds"] = static_cast<double>(duration) / timescale;
}

Json describe_track(BinaryReader& file, const TrackBoxes& track, std::vector<std::string>& errors) {
  Json t = Json::object();
  t["id"] = 0;
  if (track.tkhd) {
    describe_tkhd(file, *track.tkhd, t, errors);
  } else {
    errors.push_back("trak without tkhd");
  }
  std::optional<uint32_t> handler;
  if (track.hdlr) handler = read_handler(file, *track.hdlr, errors);
  t["handler"] = handler ? fourcc_text(*handler) : "";
  if (track.stsd) describe_stsd(file, *track.stsd, handler, t, errors);
  if (track.mdhd) describe_mdhd(file, *track.mdhd, t, errors);
  if (const auto count = declared_sample_count(file, track.tables)) t["sample_count"] = *count;
  return t;
}

}  // namespace payloadfs::formats::mp4

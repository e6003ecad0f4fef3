// FLAC audio (the FLAC format specification, RFC 9639): "fLaC", then metadata blocks, each a
// header byte (last-block flag and a 7-bit type) and a 24-bit big-endian length, then the
// audio frames up to the end of the file. An ID3v2 tag ("ID3", a version, flags and a
// synchsafe size) may come before "fLaC", as taggers write it. STREAMINFO, VORBIS_COMMENT and
// PICTURE are decoded into the header; the frames are one compressed slice.

#include <array>
#include <optional>
#include <string>

#include "core/formats/builtin.hpp"
#include "core/formats/support/signature.hpp"
#include "core/io/binary_reader.hpp"
#include "core/io/checked_math.hpp"
#include "core/render/hex.hpp"
#include "core/render/json_text.hpp"

namespace payloadfs::formats {
namespace {

constexpr auto kMagic = byte_string("fLaC");
constexpr auto kId3Magic = byte_string("ID3");
constexpr uint64_t kId3HeaderBytes = 10;
constexpr uint64_t kBlockHeaderBytes = 4;
constexpr uint64_t kStreamInfoBytes = 34;

// Metadata blocks shown (a file has a handful; a hostile one could have millions of tiny ones).
constexpr uint64_t kMaxBlocks = 4096;
// Vorbis comments listed in header.json, and the bytes of one comment or vendor string.
constexpr uint64_t kMaxComments = 4096;
constexpr uint64_t kMaxCommentBytes = 64 * 1024;
// A PICTURE's MIME type and description.
constexpr uint64_t kMaxPictureTextBytes = 64 * 1024;
constexpr uint64_t kMaxPictures = 64;

constexpr std::array<std::string_view, 7> kBlockNames = {
    "STREAMINFO", "PADDING", "APPLICATION", "SEEKTABLE", "VORBIS_COMMENT", "CUESHEET", "PICTURE"};

std::string block_name(uint8_t type) {
  return type < kBlockNames.size() ? std::string(kBlockNames[type])
                                   : "UNKNOWN_" + std::to_string(type);
}

// Where "fLaC" lies: 0, or after an ID3v2 tag (its header, synchsafe size, optional footer).
// nullopt when the head shows neither.
std::optional<uint64_t> flac_offset(std::span<const std::byte> head) {
  if (starts_with(head, kMagic)) return 0;
  if (!starts_with(head, kId3Magic) || head.size() < kId3HeaderBytes) return std::nullopt;
  uint64_t size = 0;
  for (size_t i = 6; i < 10; ++i) {
    const auto b = std::to_integer<uint8_t>(head[i]);
    if (b & 0x80) return std::nullopt;  // not synchsafe
    size = (size << 7) | b;
  }
  const bool footer = (std::to_integer<uint8_t>(head[5]) & 0x10) != 0;
  const uint64_t at = kId3HeaderBytes + size + (footer ? kId3HeaderBytes : 0);
  if (!matches_at(head, at, kMagic)) return std::nullopt;
  return at;
}

// A 32-bit little-endian length and that many bytes, bounded; nullopt when cut or too long.
std::optional<std::string> read_le_string(BinaryReader& r, uint64_t max_bytes) {
  const uint32_t length = r.u32();
  if (!r.ok() || length > r.remaining() || length > max_bytes) return std::nullopt;
  std::string text = r.text(length, max_bytes);
  if (!r.ok()) return std::nullopt;
  return utf8_or_escaped(text);
}

// A 32-bit big-endian length and that many bytes (PICTURE's strings).
std::optional<std::string> read_be_string(BinaryReader& r, uint64_t max_bytes) {
  const uint32_t length = r.u32();
  if (!r.ok() || length > r.remaining() || length > max_bytes) return std::nullopt;
  std::string text = r.text(length, max_bytes);
  if (!r.ok()) return std::nullopt;
  return utf8_or_escaped(text);
}

void read_streaminfo(BinaryReader& r, Json& h) {
  h["min_block_size"] = r.u16();
  h["max_block_size"] = r.u16();
  const auto u24 = [&] {
    const uint32_t hi = r.u8();
    return (hi << 16) | r.u16();
  };
  h["min_frame_size"] = u24();
  h["max_frame_size"] = u24();
  const uint64_t packed = r.u64();  // rate:20, channels-1:3, bits-1:5, total samples:36
  h["sample_rate"] = packed >> 44;
  h["channels"] = ((packed >> 41) & 0x7) + 1;
  h["bits_per_sample"] = ((packed >> 36) & 0x1F) + 1;
  h["total_samples"] = packed & 0xFFFFFFFFFULL;
  std::array<std::byte, 16> md5{};
  r.read_into(md5);
  h["md5"] = to_hex(md5);
}

// Adds `value` under `key`: a string, or a list once the key repeats (ARTIST twice).
void add_comment(Json& comments, const std::string& key, const std::string& value) {
  if (!comments.contains(key)) {
    comments[key] = value;
    return;
  }
  Json& slot = comments[key];
  if (!slot.is_array()) slot = Json::array({slot.get<std::string>()});
  slot.push_back(value);
}

// The Vorbis comment block (little-endian lengths, unlike the rest of FLAC).
void read_vorbis_comment(BinaryReader& r, Json& h, const std::string& where, Layout& layout) {
  r.set_endian(Endian::little);
  const auto vendor = read_le_string(r, kMaxCommentBytes);
  const uint32_t count = vendor ? r.u32() : 0;
  if (!vendor || !r.ok()) {
    layout.add_error(where + "cut or oversized vendor string");
    return;
  }
  h["vendor"] = *vendor;
  h["comment_count"] = count;
  Json comments = Json::object();
  for (uint64_t i = 0; i < count; ++i) {
    if (i == kMaxComments) {
      layout.add_error(where + "more than " + std::to_string(kMaxComments) +
                       " Vorbis comments; the rest are not listed");
      break;
    }
    const auto text = read_le_string(r, kMaxCommentBytes);
    if (!text) {
      layout.add_error(where + "Vorbis comment " + std::to_string(i) + " is cut or oversized");
      break;
    }
    const size_t eq = text->find('=');
    if (eq == std::string::npos) {
      layout.add_error(where + "Vorbis comment " + std::to_string(i) + " has no '='");
      continue;
    }
    add_comment(comments, text->substr(0, eq), text->substr(eq + 1));
  }
  h["comments"] = std::move(comments);
}

// A PICTURE block's fields; `data_offset` is where the image bytes lie in the file.
std::optional<Json> read_picture(BinaryReader& r) {
  Json p = Json::object();
  p["type"] = r.u32();
  const auto mime = read_be_string(r, kMaxPictureTextBytes);
  const auto description = mime ? read_be_string(r, kMaxPictureTextBytes) : std::nullopt;
  if (!description) return std::nullopt;
  p["mime"] = *mime;
  p["description"] = *description;
  p["width"] = r.u32();
  p["height"] = r.u32();
  p["depth"] = r.u32();
  p["colors"] = r.u32();
  const uint32_t length = r.u32();
  if (!r.ok() || length > r.remaining()) return std::nullopt;
  p["data_offset"] = r.tell();
  p["data_length"] = length;
  return p;
}

struct Stream {
  Json blocks = Json::array();
  Json pictures = Json::array();
  bool saw_streaminfo = false;
};

// Decodes a block's data [start, start + length) into attributes and the header.
void describe_block(BinaryReader& file, uint8_t type, Slice& slice, Stream& s, Layout& layout) {
  const uint64_t start = slice.range.offset;
  const uint64_t length = slice.range.length;
  const std::string where = slice.name + " block at offset " + std::to_string(start - 4) + ": ";
  BinaryReader r = file.sub(start, length);
  auto& h = layout.header;
  if (type == 0) {
    if (length != kStreamInfoBytes) layout.add_error(where + "length is not 34");
    if (s.saw_streaminfo) layout.add_error(where + "a second STREAMINFO block");
    if (!s.saw_streaminfo && length >= kStreamInfoBytes) read_streaminfo(r, h);
    s.saw_streaminfo = true;
  } else if (type == 2) {
    std::array<std::byte, 4> id{};
    if (r.read_into(id)) {
      slice.attributes["application_id"] = to_hex(id);
    } else {
      layout.add_error(where + "shorter than its 4-byte application id");
    }
  } else if (type == 3) {
    if (length % 18 != 0) layout.add_error(where + "length is not a multiple of 18");
    slice.attributes["points"] = length / 18;
  } else if (type == 4) {
    if (h.contains("vendor")) {
      layout.add_error(where + "a second VORBIS_COMMENT block (not read)");
    } else {
      read_vorbis_comment(r, h, where, layout);
    }
  } else if (type == 6) {
    auto picture = read_picture(r);
    if (!picture) {
      layout.add_error(where + "malformed or cut PICTURE block");
    } else {
      slice.attributes["picture_type"] = (*picture)["type"];
      slice.attributes["mime"] = (*picture)["mime"];
      if (s.pictures.size() < kMaxPictures) s.pictures.push_back(std::move(*picture));
    }
  } else if (type == 127) {
    layout.add_error(where + "invalid block type 127");
  }
}

// Walks the metadata blocks from `at`; returns where the audio frames start, or nullopt when
// the block chain is broken (cut, or a length past the end).
std::optional<uint64_t> read_blocks(const ByteSource& source, uint64_t at, Stream& s,
                                    Layout& layout) {
  BinaryReader r(source, Endian::big);
  r.seek(at);
  for (uint64_t i = 0;; ++i) {
    const std::string where = "metadata block at offset " + std::to_string(r.tell()) + ": ";
    if (i == kMaxBlocks) {
      layout.add_error("more than " + std::to_string(kMaxBlocks) + " metadata blocks; the rest " +
                       "of the file from offset " + std::to_string(r.tell()) + " is not shown");
      return std::nullopt;
    }
    const uint8_t flags = r.u8();
    const uint32_t length = (uint32_t{r.u8()} << 16) | r.u16();
    if (!r.ok()) {
      layout.add_error(where + "cut inside the block header (no last-block flag met)");
      return std::nullopt;
    }
    const uint64_t start = r.tell();
    if (length > r.remaining()) {
      layout.add_error(where + "its length " + std::to_string(length) + " runs past the end " +
                       "of the file (" + std::to_string(r.remaining()) + " bytes remain)");
      return std::nullopt;
    }
    const uint8_t type = flags & 0x7F;
    const bool last = (flags & 0x80) != 0;
    if (i == 0 && type != 0) layout.add_error(where + "the first block is not STREAMINFO");
    Slice slice{block_name(type), {start, length}, Json{{"type", type}, {"last", last}}};
    describe_block(r, type, slice, s, layout);
    s.blocks.push_back(Json{{"type", slice.name},
                            {"offset", start - kBlockHeaderBytes},
                            {"length", length},
                            {"last", last}});
    layout.slices.push_back(std::move(slice));
    r.seek(start + length);
    if (last) return r.tell();
  }
}

// The frames slice: the rest of the file, which should open with a frame sync code.
void add_frames(const ByteSource& source, uint64_t start, Layout& layout) {
  const uint64_t length = source.size() - start;
  layout.header["frames_offset"] = start;
  layout.header["frames_length"] = length;
  if (length == 0) return;
  BinaryReader r(source, Endian::big);
  r.seek(start);
  const uint16_t sync = length >= 2 ? r.u16() : 0;
  if ((sync & 0xFFFE) != 0xFFF8)
    layout.add_error("the audio frames at offset " + std::to_string(start) +
                     " do not open with a frame sync code (fff8 or fff9)");
  Slice frames{"frames", {start, length}, Json{{"codec", "flac"}}};
  frames.stored = false;
  layout.slices.push_back(std::move(frames));
}

class Flac final : public Format {
 public:
  std::string_view name() const noexcept override { return "flac"; }
  std::string_view description() const noexcept override { return "FLAC audio"; }
  std::string_view signature() const noexcept override {
    return "\"fLaC\" at 0, or after an ID3v2 tag that ends within the first 4096 bytes";
  }

  bool detect(std::span<const std::byte> head, uint64_t) const override {
    return flac_offset(head).has_value();
  }

  Layout parse(const ByteSource& source) const override {
    Layout layout;
    std::vector<std::byte> head(static_cast<size_t>(std::min<uint64_t>(source.size(), 4096)));
    if (!source.read_exact(0, head)) {
      layout.add_error("cannot read the start of the file");
      return layout;
    }
    const auto at = flac_offset(head);
    if (!at) {
      layout.add_error("no \"fLaC\" signature");
      return layout;
    }
    layout.magic = ByteRange{*at, kMagic.size()};
    if (*at > 0) layout.header["id3v2_size"] = *at;
    Stream s;
    const auto frames = read_blocks(source, *at + kMagic.size(), s, layout);
    if (!s.saw_streaminfo) layout.add_error("no STREAMINFO block");
    layout.header["block_count"] = s.blocks.size();
    layout.header["blocks"] = std::move(s.blocks);
    layout.header["pictures"] = std::move(s.pictures);
    if (frames) add_frames(source, *frames, layout);
    return layout;
  }
};

}  // namespace

std::unique_ptr<Format> make_flac() {
  return std::make_unique<Flac>();
}

}  // namespace payloadfs::formats

// Zstandard files, RFC 8878 "Zstandard Compression and the application/zstd Media Type": a
// sequence of frames. A data frame is a magic number (0xFD2FB528, little-endian), a frame
// header (descriptor, window descriptor, dictionary ID, frame content size), blocks of a
// 3-byte header each (last-block flag, type, size; an RLE block stores 1 byte) and an optional
// 4-byte content checksum. A skippable frame is a magic 0x184D2A50..0x184D2A5F, a 4-byte
// size and that many bytes of user data. Frames are delimited by walking block headers;
// nothing is decompressed.

#include <array>
#include <optional>
#include <string>

#include "core/formats/builtin.hpp"
#include "core/io/binary_reader.hpp"
#include "core/io/checked_math.hpp"

// Frames are compressed (and a skippable frame slice starts with its own header): none nests.
namespace payloadfs::formats {
namespace {

constexpr uint32_t kFrameMagic = 0xFD2FB528;
constexpr uint32_t kSkippableMagic = 0x184D2A50;  // the low 4 bits are free
constexpr uint32_t kSkippableMask = 0xFFFFFFF0;
constexpr uint64_t kMagicBytes = 4;
constexpr uint64_t kChecksumBytes = 4;
constexpr uint64_t kMaxBlockContent = 128 * 1024;  // Block_Maximum_Size is at most 128 KiB

// Frames shown (data and skippable together): each is a slice with its attributes.
constexpr uint64_t kMaxFrames = 65536;
// Block headers read per parse, over all frames: bounds the work of a file of tiny blocks.
constexpr uint64_t kMaxBlocks = uint64_t{1} << 24;

enum class BlockType : uint8_t { raw = 0, rle = 1, compressed = 2, reserved = 3 };

bool is_skippable(uint32_t magic) {
  return (magic & kSkippableMask) == kSkippableMagic;
}

struct FrameHeader {
  bool single_segment = false;
  bool has_checksum = false;
  uint32_t dictionary_id = 0;
  std::optional<uint64_t> content_size;
  uint64_t window_size = 0;
  uint64_t header_bytes = 0;  // after the magic
};

// Frame_Content_Size's field size from Frame_Content_Size_flag (and Single_Segment_flag).
uint64_t content_size_bytes(uint8_t flag, bool single_segment) {
  static constexpr std::array<uint64_t, 4> kSizes = {0, 2, 4, 8};
  return flag == 0 ? (single_segment ? 1 : 0) : kSizes[flag];
}

// Reads the frame header after the magic (the reader stands on the descriptor).
std::optional<FrameHeader> read_frame_header(BinaryReader& r, const std::string& where,
                                             Layout& layout) {
  const uint64_t start = r.tell();
  const uint8_t descriptor = r.u8();
  FrameHeader h;
  h.single_segment = (descriptor & 0x20) != 0;
  h.has_checksum = (descriptor & 0x04) != 0;
  if ((descriptor & 0x08) != 0) {
    layout.add_error(where + "the frame header descriptor's reserved bit is set");
    return std::nullopt;
  }
  if (!h.single_segment) {
    const uint8_t wd = r.u8();
    const uint64_t base = uint64_t{1} << (10 + (wd >> 3));
    h.window_size = base + (base / 8) * (wd & 0x7);
  }
  static constexpr std::array<uint64_t, 4> kDictBytes = {0, 1, 2, 4};
  uint32_t dict = 0;
  for (uint64_t i = 0; i < kDictBytes[descriptor & 0x3]; ++i) dict |= uint32_t{r.u8()} << (8 * i);
  h.dictionary_id = dict;
  const uint64_t fcs_bytes = content_size_bytes(descriptor >> 6, h.single_segment);
  uint64_t fcs = 0;
  for (uint64_t i = 0; i < fcs_bytes; ++i) fcs |= uint64_t{r.u8()} << (8 * i);
  if (fcs_bytes == 2) fcs += 256;
  if (fcs_bytes > 0) h.content_size = fcs;
  if (h.single_segment) h.window_size = fcs;
  if (!r.ok()) {
    layout.add_error(where + "the file ends inside the frame header");
    return std::nullopt;
  }
  h.header_bytes = r.tell() - start;
  return h;
}

struct BlockWalk {
  std::optional<uint64_t> end;  // first byte after the last block, when the walk completed
  uint64_t blocks = 0;
};

// Walks block headers from the reader's position to the last block.
BlockWalk walk_blocks(BinaryReader& r, const FrameHeader& h, uint64_t& budget,
                      const std::string& where, Layout& layout) {
  BlockWalk walk;
  const uint64_t max_block = std::min<uint64_t>(h.window_size, kMaxBlockContent);
  bool oversize_reported = false;
  while (true) {
    if (budget == 0) {
      layout.add_error(where + "more than " + std::to_string(kMaxBlocks) +
                       " blocks in the file; the walk stops here");
      return walk;
    }
    --budget;
    const uint64_t at = r.tell();
    const uint32_t bh = r.u8() | (uint32_t{r.u8()} << 8) | (uint32_t{r.u8()} << 16);
    if (!r.ok()) {
      layout.add_error(where + "the file ends inside the header of block " +
                       std::to_string(walk.blocks) + " (offset " + std::to_string(at) + ")");
      return walk;
    }
    const bool last = (bh & 1) != 0;
    const auto type = static_cast<BlockType>((bh >> 1) & 3);
    const uint64_t size = bh >> 3;
    if (type == BlockType::reserved) {
      layout.add_error(where + "block " + std::to_string(walk.blocks) + " at offset " +
                       std::to_string(at) + " has the reserved block type 3");
      return walk;
    }
    if (type != BlockType::rle && size > max_block && !oversize_reported) {
      oversize_reported = true;
      layout.add_error(where + "block " + std::to_string(walk.blocks) + " at offset " +
                       std::to_string(at) + " is " + std::to_string(size) +
                       " bytes, above the frame's maximum block size " + std::to_string(max_block));
    }
    const uint64_t stored = type == BlockType::rle ? 1 : size;
    if (stored > r.remaining()) {
      layout.add_error(where + "block " + std::to_string(walk.blocks) + " at offset " +
                       std::to_string(at) + " needs " + std::to_string(stored) + " bytes, " +
                       std::to_string(r.remaining()) + " remain (truncated frame)");
      return walk;
    }
    r.skip(stored);
    ++walk.blocks;
    if (last) {
      walk.end = r.tell();
      return walk;
    }
  }
}

Json frame_attributes(const FrameHeader& h, uint64_t blocks) {
  Json a = Json::object();
  if (h.content_size) a["content_size"] = *h.content_size;
  a["window_size"] = h.window_size;
  a["checksum"] = h.has_checksum;
  a["dictionary_id"] = h.dictionary_id;
  a["single_segment"] = h.single_segment;
  a["header_size"] = kMagicBytes + h.header_bytes;
  a["blocks"] = blocks;
  return a;
}

struct Totals {
  uint64_t frames = 0;
  uint64_t skippable = 0;
  uint64_t content_size = 0;
  bool all_sizes_known = true;
  uint64_t block_budget = kMaxBlocks;
};

// The data frame at `pos` (magic already checked); returns the next frame's offset, or nullopt
// when the walk cannot go on. A frame cut short keeps a slice to the end of the file.
std::optional<uint64_t> parse_data_frame(const ByteSource& source, uint64_t pos, Totals& totals,
                                         Layout& layout) {
  const std::string index = std::to_string(totals.frames);
  const std::string where = "frame " + index + " at offset " + std::to_string(pos) + ": ";
  ++totals.frames;
  BinaryReader r(source, Endian::little);
  r.seek(pos + kMagicBytes);
  const auto h = read_frame_header(r, where, layout);
  if (!h) {
    totals.all_sizes_known = false;
    layout.slices.push_back(
        Slice{"frame/" + index, {pos, source.size() - pos}, Json{{"complete", false}}, false});
    return std::nullopt;
  }
  if (h->content_size) {
    totals.content_size += *h->content_size;
  } else {
    totals.all_sizes_known = false;
  }
  BlockWalk walk = walk_blocks(r, *h, totals.block_budget, where, layout);
  Json attributes = frame_attributes(*h, walk.blocks);
  std::optional<uint64_t> end = walk.end;
  if (end && h->has_checksum) {
    if (source.size() - *end < kChecksumBytes) {
      layout.add_error(where + "the file ends inside the 4-byte content checksum");
      end.reset();
    } else {
      *end += kChecksumBytes;
    }
  }
  attributes["complete"] = end.has_value();
  const uint64_t stop = end.value_or(source.size());
  layout.slices.push_back(Slice{"frame/" + index, {pos, stop - pos}, std::move(attributes), false});
  return end;
}

// The skippable frame at `pos`: magic, 4-byte size, user data.
std::optional<uint64_t> parse_skippable_frame(const ByteSource& source, uint64_t pos,
                                              uint32_t magic, Totals& totals, Layout& layout) {
  const std::string index = std::to_string(totals.skippable++);
  const std::string where = "skippable frame " + index + " at offset " + std::to_string(pos) + ": ";
  BinaryReader r(source, Endian::little);
  r.seek(pos + kMagicBytes);
  const uint32_t size = r.u32();
  const uint64_t data = pos + 2 * kMagicBytes;
  Json attributes = {{"magic_variant", magic & 0xF}, {"user_data_size", size}};
  if (!r.ok() || size > source.size() - data) {
    layout.add_error(where + (r.ok() ? "its " + std::to_string(size) + " bytes of user data run " +
                                           "past the end of the file"
                                     : std::string("the file ends inside its size field")));
    attributes["complete"] = false;
    layout.slices.push_back(
        Slice{"skippable/" + index, {pos, source.size() - pos}, std::move(attributes), false});
    return std::nullopt;
  }
  attributes["complete"] = true;
  layout.slices.push_back(
      Slice{"skippable/" + index, {pos, data + size - pos}, std::move(attributes), false});
  return data + size;
}

// The magic at `pos`, when 4 bytes are there.
std::optional<uint32_t> magic_at(const ByteSource& source, uint64_t pos) {
  BinaryReader r(source, Endian::little);
  r.seek(pos);
  const uint32_t magic = r.u32();
  if (!r.ok()) return std::nullopt;
  return magic;
}

class Zstd final : public Format {
 public:
  std::string_view name() const noexcept override { return "zstd"; }
  std::string_view description() const noexcept override {
    return "Zstandard compressed file (RFC 8878): data and skippable frames";
  }
  std::string_view signature() const noexcept override {
    return "28 b5 2f fd (0xFD2FB528 little-endian) at 0, or a skippable frame magic "
           "0x184D2A50..5F followed by a zstd frame or the end of the file";
  }

  bool detect(std::span<const std::byte> head, uint64_t size) const override {
    if (head.size() < kMagicBytes) return false;
    const uint32_t magic = read_le<uint32_t>(head.data());
    if (magic == kFrameMagic) return true;
    if (!is_skippable(magic) || head.size() < 2 * kMagicBytes) return false;
    // LZ4 frames share the skippable magic: what follows must be zstd (or lie beyond the head).
    const uint64_t next = 2 * kMagicBytes + read_le<uint32_t>(head.data() + kMagicBytes);
    if (next > size) return false;
    if (next == size || next + kMagicBytes > head.size()) return true;
    const uint32_t following = read_le<uint32_t>(head.data() + next);
    return following == kFrameMagic || is_skippable(following);
  }

  Layout parse(const ByteSource& source) const override {
    Layout layout;
    layout.magic = ByteRange{0, std::min<uint64_t>(kMagicBytes, source.size())};
    Totals totals;
    uint64_t pos = 0;
    while (pos < source.size()) {
      const auto magic = magic_at(source, pos);
      if (!magic || (*magic != kFrameMagic && !is_skippable(*magic))) {
        layout.add_error(std::to_string(source.size() - pos) + " bytes at offset " +
                         std::to_string(pos) + " are not a zstd frame (trailing data)");
        layout.header["trailing_bytes"] = source.size() - pos;
        break;
      }
      if (totals.frames + totals.skippable == kMaxFrames) {
        layout.add_error("more than " + std::to_string(kMaxFrames) +
                         " frames; the rest of the file from offset " + std::to_string(pos) +
                         " is not shown");
        totals.all_sizes_known = false;
        break;
      }
      const auto next = *magic == kFrameMagic
                            ? parse_data_frame(source, pos, totals, layout)
                            : parse_skippable_frame(source, pos, *magic, totals, layout);
      if (!next) break;
      pos = *next;
    }
    auto& h = layout.header;
    h["frames"] = totals.frames;
    h["skippable_frames"] = totals.skippable;
    if (totals.all_sizes_known && layout.errors.empty()) h["content_size"] = totals.content_size;
    return layout;
  }
};

}  // namespace

std::unique_ptr<Format> make_zstd() {
  return std::make_unique<Zstd>();
}

}  // namespace payloadfs::formats

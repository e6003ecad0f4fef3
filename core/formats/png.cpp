// PNG, W3C "Portable Network Graphics (PNG) Specification (Third Edition)" / ISO/IEC 15948:
// the 8-byte signature 89 50 4E 47 0D 0A 1A 0A, then chunks of
//   u32 big-endian length (<= 2^31-1), 4-byte type (ASCII letters), data, u32 CRC-32
// where the CRC (ISO 3309 / ITU-T V.42, as in zlib) covers type and data. IHDR must come
// first and IEND last. APNG chunks (acTL, fcTL, fdAT) are ordinary ancillary chunks.

#include <array>
#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include "core/formats/builtin.hpp"
#include "core/formats/support/signature.hpp"
#include "core/io/binary_reader.hpp"
#include "core/io/checked_math.hpp"
#include "core/render/json_text.hpp"

namespace payloadfs::formats {
namespace {

constexpr auto kSignature = byte_string("\x89PNG\r\n\x1a\n");
constexpr uint64_t kMaxChunkLength = 0x7FFFFFFF;  // the specification's limit, 2^31-1
// Bounds on hostile input: chunks walked, types listed in header.json, bytes fed to CRC-32
// per parse (a chunk that no longer fits the budget gets crc_ok null; smaller later chunks
// are still checked), and bytes read per CRC step.
constexpr size_t kMaxChunks = 65536;
constexpr size_t kMaxListedTypes = 256;
constexpr uint64_t kMaxCrcBytes = 64ULL << 20;
constexpr size_t kCrcStepBytes = 64 * 1024;
constexpr uint64_t kMaxKeywordBytes = 79;  // tEXt/zTXt/iTXt keywords are 1-79 bytes

constexpr std::array<uint32_t, 256> make_crc_table() {
  std::array<uint32_t, 256> table{};
  for (uint32_t n = 0; n < 256; ++n) {
    uint32_t c = n;
    for (int k = 0; k < 8; ++k) c = (c & 1U) != 0 ? 0xEDB88320U ^ (c >> 1) : c >> 1;
    table[n] = c;
  }
  return table;
}
constexpr auto kCrcTable = make_crc_table();

uint32_t crc_update(uint32_t crc, std::span<const std::byte> bytes) {
  for (const std::byte b : bytes)
    crc = kCrcTable[(crc ^ std::to_integer<uint32_t>(b)) & 0xFFU] ^ (crc >> 8);
  return crc;
}

std::string hex32(uint32_t v) {
  char buf[9];
  std::snprintf(buf, sizeof buf, "%08x", v);
  return buf;
}

bool is_letter(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

const char* color_type_name(unsigned type) {
  switch (type) {
    case 0:
      return "greyscale";
    case 2:
      return "truecolour";
    case 3:
      return "indexed-colour";
    case 4:
      return "greyscale with alpha";
    case 6:
      return "truecolour with alpha";
    default:
      return "invalid";
  }
}

// Table 11.1 of the specification: allowed bit depths per colour type.
bool valid_depth(unsigned type, unsigned depth) {
  switch (type) {
    case 0:
      return depth == 1 || depth == 2 || depth == 4 || depth == 8 || depth == 16;
    case 3:
      return depth == 1 || depth == 2 || depth == 4 || depth == 8;
    case 2:
    case 4:
    case 6:
      return depth == 8 || depth == 16;
    default:
      return false;
  }
}

void read_ihdr(BinaryReader& reader, uint64_t at, Layout& layout) {
  reader.seek(at);
  const uint32_t width = reader.u32();
  const uint32_t height = reader.u32();
  const unsigned depth = reader.u8();
  const unsigned color = reader.u8();
  const unsigned compression = reader.u8();
  const unsigned filter = reader.u8();
  const unsigned interlace = reader.u8();
  if (!reader.ok()) return;
  auto& h = layout.header;
  h["width"] = width;
  h["height"] = height;
  h["bit_depth"] = depth;
  h["color_type"] = color;
  h["color_type_name"] = color_type_name(color);
  h["compression"] = compression;
  h["filter"] = filter;
  h["interlace"] = interlace;
  h["interlace_name"] = interlace == 0 ? "none" : interlace == 1 ? "Adam7" : "invalid";
  if (width == 0 || width > kMaxChunkLength || height == 0 || height > kMaxChunkLength)
    layout.add_error("image size " + std::to_string(width) + "x" + std::to_string(height) +
                     " is outside 1..2^31-1");
  if (!valid_depth(color, depth))
    layout.add_error("invalid bit depth " + std::to_string(depth) + " for colour type " +
                     std::to_string(color));
  if (compression != 0)
    layout.add_error("unknown compression method " + std::to_string(compression));
  if (filter != 0) layout.add_error("unknown filter method " + std::to_string(filter));
  if (interlace > 1) layout.add_error("unknown interlace method " + std::to_string(interlace));
}

// The keyword of a text chunk: bytes up to the first NUL, at most 79.
std::string keyword(BinaryReader& reader, uint64_t at, uint64_t length) {
  reader.seek(at);
  std::string text = reader.text(std::min(length, kMaxKeywordBytes + 1));
  if (!reader.ok()) return {};
  const auto nul = text.find('\0');
  if (nul != std::string::npos) text.resize(nul);
  return utf8_or_escaped(text);
}

// One chunk's framing, as read from its 8-byte header.
struct Chunk {
  uint64_t at = 0;
  uint64_t length = 0;
  std::array<unsigned char, 4> type_bytes{};
  std::string raw_type;
  std::string type;  // raw_type, valid UTF-8
  uint64_t data_at = 0;
  uint64_t data_len = 0;  // what the file holds of the data
  bool truncated = false;
};

// The walk over the chunks after the signature, and what it counts.
class ChunkWalk {
 public:
  ChunkWalk(const ByteSource& source, Layout& layout)
      : reader_(source, Endian::big), size_(source.size()), layout_(layout) {}

  void run() {
    reader_.seek(kSignature.size());
    while (!seen_iend_ && step()) {
    }
    summarize();
  }

 private:
  // Walks one chunk; false when the walk stops.
  bool step() {
    const auto chunk = read_chunk_header();
    if (!chunk) return false;
    const Chunk& c = *chunk;
    ++chunks_;
    if (types_.size() < kMaxListedTypes) types_.push_back(c.type);
    Json attributes = {{"chunk_offset", c.at}, {"chunk_length", c.length}};
    note_chunk(c, attributes);
    if (c.truncated) {
      layout_.add_error("chunk '" + c.type + "' at offset " + std::to_string(c.at) + " (length " +
                        std::to_string(c.length) + ") is truncated by the end of the file");
      attributes["truncated"] = true;
      layout_.slices.push_back(Slice{c.type, {c.data_at, c.data_len}, std::move(attributes)});
      return false;
    }
    if (!check_crc(c, attributes)) return false;
    reader_.seek(c.data_at + c.length + 4);
    layout_.slices.push_back(Slice{c.type, {c.data_at, c.length}, std::move(attributes)});
    return true;
  }

  // Reads the length and type at the reader; nullopt (with the error added, except at the end
  // of the file) when the walk stops there.
  std::optional<Chunk> read_chunk_header() {
    Chunk c;
    c.at = reader_.tell();
    if (c.at == size_) return std::nullopt;
    if (chunks_ == kMaxChunks) {
      layout_.add_error("more than " + std::to_string(kMaxChunks) +
                        " chunks; stopped walking at offset " + std::to_string(c.at));
      return std::nullopt;
    }
    if (size_ - c.at < 8) {
      layout_.add_error("truncated chunk header at offset " + std::to_string(c.at) + " (" +
                        std::to_string(size_ - c.at) + " bytes left)");
      return std::nullopt;
    }
    c.length = reader_.u32();
    reader_.read_into(std::as_writable_bytes(std::span(c.type_bytes)));
    if (!reader_.ok()) {
      layout_.add_error("cannot read chunk header at offset " + std::to_string(c.at) + ": " +
                        *reader_.error());
      return std::nullopt;
    }
    c.raw_type.assign(c.type_bytes.begin(), c.type_bytes.end());
    c.type = utf8_or_escaped(c.raw_type);
    bool letters = true;
    for (const unsigned char ch : c.type_bytes) letters = letters && is_letter(ch);
    if (!letters) {
      // Without a valid type the framing is no longer trustworthy.
      layout_.add_error("invalid chunk type '" + c.type + "' at offset " + std::to_string(c.at) +
                        "; stopped walking");
      return std::nullopt;
    }
    if (c.length > kMaxChunkLength) {
      layout_.add_error("chunk '" + c.type + "' at offset " + std::to_string(c.at) +
                        " has length " + std::to_string(c.length) +
                        ", above the limit of 2^31-1; stopped walking");
      return std::nullopt;
    }
    c.data_at = c.at + 8;
    const uint64_t available = size_ - c.data_at;
    c.truncated = c.length > available || available - c.length < 4;
    c.data_len = c.truncated ? std::min(c.length, available) : c.length;
    return c;
  }

  // What the chunk's type says: IHDR and PLTE fields, counts, order and critical-chunk checks.
  void note_chunk(const Chunk& c, Json& attributes) {
    auto& h = layout_.header;
    if (c.raw_type == "IHDR") {
      if (chunks_ != 1)
        layout_.add_error("IHDR is not the first chunk (offset " + std::to_string(c.at) + ")");
      if (seen_ihdr_) layout_.add_error("more than one IHDR chunk");
      if (c.length != 13)
        layout_.add_error("IHDR length is " + std::to_string(c.length) + ", not 13");
      if (!seen_ihdr_ && c.data_len >= 13) read_ihdr(reader_, c.data_at, layout_);
      seen_ihdr_ = true;
    } else if (chunks_ == 1) {
      layout_.add_error("first chunk is '" + c.type + "', not IHDR");
    }
    if (c.raw_type == "IEND") seen_iend_ = true;
    if (c.raw_type == "IDAT") {
      ++idat_chunks_;
      idat_bytes_ += c.length;  // <= 65536 * 2^31, no overflow
    }
    if (c.raw_type == "PLTE") {
      h["palette_entries"] = c.length / 3;
      if (c.length % 3 != 0 || c.length == 0 || c.length > 768)
        layout_.add_error("PLTE length " + std::to_string(c.length) + " is not 3 * (1..256)");
    }
    if (c.raw_type == "acTL" && c.data_len >= 8) {
      reader_.seek(c.data_at);
      const uint32_t frames = reader_.u32();
      const uint32_t plays = reader_.u32();
      if (reader_.ok()) h["animation"] = {{"num_frames", frames}, {"num_plays", plays}};
    }
    if (c.raw_type == "tEXt" || c.raw_type == "zTXt" || c.raw_type == "iTXt") {
      attributes["keyword"] = keyword(reader_, c.data_at, c.data_len);
    }
    if ((c.type_bytes[0] & 0x20U) == 0 && c.raw_type != "IHDR" && c.raw_type != "PLTE" &&
        c.raw_type != "IDAT" && c.raw_type != "IEND") {
      layout_.add_error("unknown critical chunk '" + c.type + "' at offset " +
                        std::to_string(c.at));
    }
  }

  // Reads the stored CRC and, within the budget, checks it; false when the walk stops.
  bool check_crc(const Chunk& c, Json& attributes) {
    reader_.seek(c.data_at + c.length);
    const uint32_t stored = reader_.u32();
    if (!reader_.ok()) {
      layout_.add_error("cannot read CRC of chunk '" + c.type + "': " + *reader_.error());
      return false;
    }
    attributes["crc"] = hex32(stored);
    if (4 + c.length > crc_budget_) {
      ++crc_unchecked_;
      attributes["crc_ok"] = nullptr;
      return true;
    }
    crc_budget_ -= 4 + c.length;
    uint32_t crc = crc_update(0xFFFFFFFFU, std::as_bytes(std::span(c.type_bytes)));
    reader_.seek(c.data_at);
    uint64_t left = c.length;
    while (left > 0 && reader_.ok()) {
      const size_t step = static_cast<size_t>(std::min<uint64_t>(left, kCrcStepBytes));
      buffer_.resize(step);
      if (!reader_.read_into(buffer_)) break;
      crc = crc_update(crc, buffer_);
      left -= step;
    }
    if (!reader_.ok()) {
      layout_.add_error("cannot read data of chunk '" + c.type + "': " + *reader_.error());
      return false;
    }
    const bool crc_ok = (crc ^ 0xFFFFFFFFU) == stored;
    attributes["crc_ok"] = crc_ok;
    if (!crc_ok) {
      ++crc_errors_;
      layout_.add_error("CRC error in chunk '" + c.type + "' at offset " + std::to_string(c.at) +
                        " (computed " + hex32(crc ^ 0xFFFFFFFFU) + ", stored " + hex32(stored) +
                        ")");
    }
    return true;
  }

  void summarize() {
    auto& h = layout_.header;
    if (!seen_ihdr_) layout_.add_error("missing IHDR chunk");
    if (!seen_iend_) layout_.add_error("missing IEND chunk");
    h["chunks"] = chunks_;
    h["chunk_types"] = std::move(types_);
    if (chunks_ > kMaxListedTypes) h["chunk_types_truncated"] = true;
    h["idat_chunks"] = idat_chunks_;
    h["idat_bytes"] = idat_bytes_;
    h["crc_errors"] = crc_errors_;
    if (crc_unchecked_ > 0) {
      h["crc_unchecked_chunks"] = crc_unchecked_;
      layout_.add_error("CRC not verified for " + std::to_string(crc_unchecked_) +
                        " chunks: the per-file CRC budget of " + std::to_string(kMaxCrcBytes) +
                        " bytes was used up");
    }
    if (seen_iend_) {
      const uint64_t end = reader_.tell();
      h["trailing_bytes"] = size_ - end;
      if (end < size_)
        layout_.add_error(std::to_string(size_ - end) + " bytes of data after IEND at offset " +
                          std::to_string(end));
    }
  }

  BinaryReader reader_;
  const uint64_t size_;
  Layout& layout_;
  Json types_ = Json::array();
  size_t chunks_ = 0, idat_chunks_ = 0, crc_errors_ = 0, crc_unchecked_ = 0;
  uint64_t idat_bytes_ = 0, crc_budget_ = kMaxCrcBytes;
  bool seen_ihdr_ = false, seen_iend_ = false;
  std::vector<std::byte> buffer_;
};

class Png final : public Format {
 public:
  std::string_view name() const noexcept override { return "png"; }
  std::string_view description() const noexcept override {
    return "PNG image (chunks, including APNG animation chunks)";
  }
  std::string_view signature() const noexcept override {
    return "89 50 4e 47 0d 0a 1a 0a ('\\x89PNG\\r\\n\\x1a\\n') at 0";
  }

  bool detect(std::span<const std::byte> head, uint64_t) const override {
    return starts_with(head, kSignature);
  }

  Layout parse(const ByteSource& source) const override {
    Layout layout;
    layout.magic = magic_at_start(kSignature);
    if (source.size() < kSignature.size()) {
      layout.add_error("file is shorter than the 8-byte PNG signature");
      return layout;
    }
    ChunkWalk(source, layout).run();
    return layout;
  }
};

}  // namespace

std::unique_ptr<Format> make_png() {
  return std::make_unique<Png>();
}

}  // namespace payloadfs::formats

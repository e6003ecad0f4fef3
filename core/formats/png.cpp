// PNG, W3C "Portable Network Graphics (PNG) Specification (Third Edition)" / ISO/IEC 15948:
// the 8-byte signature 89 50 4E 47 0D 0A 1A 0A, then chunks of
//   u32 big-endian length (<= 2^31-1), 4-byte type (ASCII letters), data, u32 CRC-32
// where the CRC (ISO 3309 / ITU-T V.42, as in zlib) covers type and data. IHDR must come
// first and IEND last. APNG chunks (acTL, fcTL, fdAT) are ordinary ancillary chunks.

#include <array>
#include <cstdio>
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
    BinaryReader reader(source, Endian::big);
    const uint64_t size = source.size();
    auto& h = layout.header;
    if (size < kSignature.size()) {
      layout.add_error("file is shorter than the 8-byte PNG signature");
      return layout;
    }
    reader.seek(kSignature.size());

    Json types = Json::array();
    size_t chunks = 0, idat_chunks = 0, crc_errors = 0, crc_unchecked = 0;
    uint64_t idat_bytes = 0, crc_budget = kMaxCrcBytes;
    bool seen_ihdr = false, seen_iend = false;
    std::vector<std::byte> buffer;

    while (!seen_iend) {
      const uint64_t at = reader.tell();
      if (at == size) break;
      if (chunks == kMaxChunks) {
        layout.add_error("more than " + std::to_string(kMaxChunks) +
                         " chunks; stopped walking at offset " + std::to_string(at));
        break;
      }
      if (size - at < 8) {
        layout.add_error("truncated chunk header at offset " + std::to_string(at) + " (" +
                         std::to_string(size - at) + " bytes left)");
        break;
      }
      const uint64_t length = reader.u32();
      std::array<unsigned char, 4> type_bytes{};
      reader.read_into(std::as_writable_bytes(std::span(type_bytes)));
      if (!reader.ok()) {
        layout.add_error("cannot read chunk header at offset " + std::to_string(at) + ": " +
                         *reader.error());
        break;
      }
      const std::string raw_type(type_bytes.begin(), type_bytes.end());
      const std::string type = utf8_or_escaped(raw_type);
      bool letters = true;
      for (const unsigned char c : type_bytes) letters = letters && is_letter(c);
      if (!letters) {
        // Without a valid type the framing is no longer trustworthy.
        layout.add_error("invalid chunk type '" + type + "' at offset " + std::to_string(at) +
                         "; stopped walking");
        break;
      }
      if (length > kMaxChunkLength) {
        layout.add_error("chunk '" + type + "' at offset " + std::to_string(at) + " has length " +
                         std::to_string(length) + ", above the limit of 2^31-1; stopped walking");
        break;
      }
      ++chunks;
      if (types.size() < kMaxListedTypes) types.push_back(type);

      const uint64_t data_at = at + 8;
      const uint64_t available = size - data_at;
      const bool truncated = length > available || available - length < 4;
      Json attributes = {{"chunk_offset", at}, {"chunk_length", length}};
      const uint64_t data_len = truncated ? std::min(length, available) : length;

      if (raw_type == "IHDR") {
        if (chunks != 1)
          layout.add_error("IHDR is not the first chunk (offset " + std::to_string(at) + ")");
        if (seen_ihdr) layout.add_error("more than one IHDR chunk");
        if (length != 13) layout.add_error("IHDR length is " + std::to_string(length) + ", not 13");
        if (!seen_ihdr && data_len >= 13) read_ihdr(reader, data_at, layout);
        seen_ihdr = true;
      } else if (chunks == 1) {
        layout.add_error("first chunk is '" + type + "', not IHDR");
      }
      if (raw_type == "IEND") seen_iend = true;
      if (raw_type == "IDAT") {
        ++idat_chunks;
        idat_bytes += length;  // <= 65536 * 2^31, no overflow
      }
      if (raw_type == "PLTE") {
        h["palette_entries"] = length / 3;
        if (length % 3 != 0 || length == 0 || length > 768)
          layout.add_error("PLTE length " + std::to_string(length) + " is not 3 * (1..256)");
      }
      if (raw_type == "acTL" && data_len >= 8) {
        reader.seek(data_at);
        const uint32_t frames = reader.u32();
        const uint32_t plays = reader.u32();
        if (reader.ok()) h["animation"] = {{"num_frames", frames}, {"num_plays", plays}};
      }
      if (raw_type == "tEXt" || raw_type == "zTXt" || raw_type == "iTXt") {
        attributes["keyword"] = keyword(reader, data_at, data_len);
      }
      if ((type_bytes[0] & 0x20U) == 0 && raw_type != "IHDR" && raw_type != "PLTE" &&
          raw_type != "IDAT" && raw_type != "IEND") {
        layout.add_error("unknown critical chunk '" + type + "' at offset " + std::to_string(at));
      }

      if (truncated) {
        layout.add_error("chunk '" + type + "' at offset " + std::to_string(at) + " (length " +
                         std::to_string(length) + ") is truncated by the end of the file");
        attributes["truncated"] = true;
        layout.slices.push_back(Slice{type, {data_at, data_len}, std::move(attributes)});
        break;
      }
      reader.seek(data_at + length);
      const uint32_t stored = reader.u32();
      if (!reader.ok()) {
        layout.add_error("cannot read CRC of chunk '" + type + "': " + *reader.error());
        break;
      }
      attributes["crc"] = hex32(stored);
      if (4 + length <= crc_budget) {
        crc_budget -= 4 + length;
        uint32_t crc = crc_update(0xFFFFFFFFU, std::as_bytes(std::span(type_bytes)));
        reader.seek(data_at);
        uint64_t left = length;
        while (left > 0 && reader.ok()) {
          const size_t step = static_cast<size_t>(std::min<uint64_t>(left, kCrcStepBytes));
          buffer.resize(step);
          if (!reader.read_into(buffer)) break;
          crc = crc_update(crc, buffer);
          left -= step;
        }
        if (!reader.ok()) {
          layout.add_error("cannot read data of chunk '" + type + "': " + *reader.error());
          break;
        }
        const bool crc_ok = (crc ^ 0xFFFFFFFFU) == stored;
        attributes["crc_ok"] = crc_ok;
        if (!crc_ok) {
          ++crc_errors;
          layout.add_error("CRC error in chunk '" + type + "' at offset " + std::to_string(at) +
                           " (computed " + hex32(crc ^ 0xFFFFFFFFU) + ", stored " + hex32(stored) +
                           ")");
        }
      } else {
        ++crc_unchecked;
        attributes["crc_ok"] = nullptr;
      }
      reader.seek(data_at + length + 4);
      layout.slices.push_back(Slice{type, {data_at, length}, std::move(attributes)});
    }

    if (!seen_ihdr) layout.add_error("missing IHDR chunk");
    if (!seen_iend) layout.add_error("missing IEND chunk");
    h["chunks"] = chunks;
    h["chunk_types"] = std::move(types);
    if (chunks > kMaxListedTypes) h["chunk_types_truncated"] = true;
    h["idat_chunks"] = idat_chunks;
    h["idat_bytes"] = idat_bytes;
    h["crc_errors"] = crc_errors;
    if (crc_unchecked > 0) {
      h["crc_unchecked_chunks"] = crc_unchecked;
      layout.add_error("CRC not verified for " + std::to_string(crc_unchecked) +
                       " chunks: the per-file CRC budget of " + std::to_string(kMaxCrcBytes) +
                       " bytes was used up");
    }
    if (seen_iend) {
      const uint64_t end = reader.tell();
      h["trailing_bytes"] = size - end;
      if (end < size)
        layout.add_error(std::to_string(size - end) + " bytes of data after IEND at offset " +
                         std::to_string(end));
    }
    return layout;
  }

 private:
  static void read_ihdr(BinaryReader& reader, uint64_t at, Layout& layout) {
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
  static std::string keyword(BinaryReader& reader, uint64_t at, uint64_t length) {
    reader.seek(at);
    std::string text = reader.text(std::min(length, kMaxKeywordBytes + 1));
    if (!reader.ok()) return {};
    const auto nul = text.find('\0');
    if (nul != std::string::npos) text.resize(nul);
    return utf8_or_escaped(text);
  }
};

}  // namespace

std::unique_ptr<Format> make_png() {
  return std::make_unique<Png>();
}

}  // namespace payloadfs::formats

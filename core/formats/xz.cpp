// xz files, "The .xz File Format" version 1.2.0 (tukaani.org): one or more streams, each a
// 12-byte stream header (magic FD 37 7A 58 5A 00, stream flags, CRC32), blocks, an index and
// a 12-byte stream footer (CRC32, backward size, stream flags, "YZ"); streams may be followed
// by stream padding (zero bytes, a multiple of 4). Read from the end as xz does: the footer
// gives the index's size, the index lists each block's unpadded and uncompressed sizes, and
// the blocks lie just before the index, one after another, each padded to 4 bytes. Nothing is
// decompressed.

#include <zlib.h>

#include <algorithm>
#include <array>
#include <optional>
#include <string>
#include <vector>

#include "core/formats/builtin.hpp"
#include "core/formats/support/signature.hpp"
#include "core/io/binary_reader.hpp"
#include "core/io/checked_math.hpp"

namespace payloadfs::formats {
namespace {

constexpr auto kHeaderMagic = byte_string(
    "\xFD"
    "7zXZ\0");
constexpr uint64_t kStreamHeaderBytes = 12;
constexpr uint64_t kStreamFooterBytes = 12;
constexpr uint64_t kMaxVarintBytes = 9;

// Streams and blocks shown, over the whole file (each block is a slice with attributes).
constexpr uint64_t kMaxStreams = 4096;
constexpr uint64_t kMaxBlocks = 65536;
// An index larger than this is not read (a real one holds a few bytes per block).
constexpr uint64_t kMaxIndexBytes = uint64_t{64} << 20;
// Stream padding scanned between streams, 4 bytes at a time.
constexpr uint64_t kMaxPaddingScan = uint64_t{1} << 20;

// Check sizes by check ID (the format's table: 0, 4, 8, 16, 32, 64 bytes by groups of three).
uint64_t check_bytes(uint8_t check) {
  if (check == 0) return 0;
  static constexpr std::array<uint64_t, 6> kSizes = {0, 4, 8, 16, 32, 64};
  return kSizes[(check + 2) / 3];
}

// The names xz -l prints.
std::string check_name(uint8_t check) {
  switch (check) {
    case 0:
      return "None";
    case 1:
      return "CRC32";
    case 4:
      return "CRC64";
    case 10:
      return "SHA-256";
    default:
      return "Unknown-" + std::to_string(check);
  }
}

uint64_t round_up4(uint64_t v) {
  return (v + 3) & ~uint64_t{3};
}

// CRC32 of [offset, offset + length) of the file, which the caller has bounded.
std::optional<uint32_t> crc32_of(const ByteSource& source, uint64_t offset, uint64_t length) {
  std::vector<std::byte> buf(static_cast<size_t>(std::min<uint64_t>(length, 1 << 16)));
  uLong crc = crc32(0, nullptr, 0);
  while (length > 0) {
    const auto n = static_cast<size_t>(std::min<uint64_t>(length, buf.size()));
    if (!source.read_exact(offset, std::span(buf).first(n))) return std::nullopt;
    crc = crc32(crc, reinterpret_cast<const Bytef*>(buf.data()), static_cast<uInt>(n));
    offset += n;
    length -= n;
  }
  return static_cast<uint32_t>(crc);
}

// A multibyte integer: 7 bits per byte, low first, at most 9 bytes, no trailing zero byte.
std::optional<uint64_t> read_varint(BinaryReader& r) {
  uint64_t value = 0;
  for (uint64_t i = 0; i < kMaxVarintBytes; ++i) {
    const uint8_t b = r.u8();
    if (!r.ok()) return std::nullopt;
    value |= uint64_t{b & 0x7Fu} << (7 * i);
    if ((b & 0x80) == 0) {
      if (b == 0 && i > 0) return std::nullopt;
      return value;
    }
  }
  return std::nullopt;
}

struct IndexRecord {
  uint64_t unpadded = 0;
  uint64_t uncompressed = 0;
};

struct Stream {
  uint64_t start = 0;  // the stream header's offset
  uint64_t end = 0;    // after the footer
  uint8_t check = 0;
  std::vector<IndexRecord> records;
};

struct Walk {
  std::vector<Stream> streams;  // last first, as found
  uint64_t padding = 0;
  uint64_t blocks = 0;
};

// The footer ending at `end`: returns the index size and fills the check type.
std::optional<uint64_t> read_footer(const ByteSource& source, uint64_t end, Stream& s,
                                    const std::string& where, Layout& layout) {
  BinaryReader r(source, Endian::little);
  r.seek(end - kStreamFooterBytes);
  const uint32_t crc = r.u32();
  const uint32_t backward = r.u32();
  const uint8_t flags0 = r.u8();
  const uint8_t flags1 = r.u8();
  const uint8_t y = r.u8();
  const uint8_t z = r.u8();
  if (!r.ok() || y != 'Y' || z != 'Z') {
    layout.add_error(where + "no stream footer magic \"YZ\" at offset " + std::to_string(end - 2));
    return std::nullopt;
  }
  if (const auto actual = crc32_of(source, end - 8, 6); actual != crc) {
    layout.add_error(where + "stream footer CRC32 mismatch");
  }
  if (flags0 != 0 || (flags1 & 0xF0) != 0) {
    layout.add_error(where + "unsupported stream flags in the footer");
    return std::nullopt;
  }
  s.check = flags1;
  const uint64_t index_bytes = (uint64_t{backward} + 1) * 4;
  if (index_bytes > end - kStreamFooterBytes) {
    layout.add_error(where + "backward size " + std::to_string(index_bytes) +
                     " points before the start of the file");
    return std::nullopt;
  }
  return index_bytes;
}

// The index at [start, start + length): its records, its padding and its CRC32.
bool read_index(const ByteSource& source, uint64_t start, uint64_t length, Stream& s,
                uint64_t& block_budget, const std::string& where, Layout& layout) {
  if (length > kMaxIndexBytes) {
    layout.add_error(where + "the index is " + std::to_string(length) + " bytes, above the " +
                     std::to_string(kMaxIndexBytes) + "-byte limit; its blocks are not shown");
    return false;
  }
  BinaryReader whole(source, Endian::little);
  BinaryReader r = whole.sub(start, length);
  const auto fail = [&](const std::string& what) {
    layout.add_error(where + "index at offset " + std::to_string(start) + ": " + what);
    return false;
  };
  if (r.u8() != 0 || !r.ok()) return fail("no index indicator (0x00)");
  const auto count = read_varint(r);
  if (!count) return fail("bad number of records");
  if (*count > r.remaining() / 2) return fail("more records than the index can hold");
  if (*count > block_budget) {
    return fail(std::to_string(*count) + " records: more than " + std::to_string(kMaxBlocks) +
                " blocks in the file; they are not shown");
  }
  for (uint64_t i = 0; i < *count; ++i) {
    const auto unpadded = read_varint(r);
    const auto uncompressed = read_varint(r);
    if (!unpadded || !uncompressed) return fail("bad record " + std::to_string(i));
    if (*unpadded < 5 || *unpadded > (uint64_t{1} << 63) - 4)
      return fail("record " + std::to_string(i) + " has an invalid unpadded size");
    s.records.push_back({*unpadded, *uncompressed});
  }
  block_budget -= *count;
  const uint64_t body = r.tell() - start;
  if (round_up4(body) + 4 != length) return fail("its size disagrees with the backward size");
  for (uint64_t i = body; i < round_up4(body); ++i)
    if (r.u8() != 0) return fail("nonzero index padding");
  const uint32_t stored = r.u32();
  if (!r.ok()) return fail(*r.error());
  if (crc32_of(source, start, length - 4) != stored) fail("CRC32 mismatch");
  return true;
}

// The stream header at `start`: magic, the same flags as the footer, its CRC32.
bool check_stream_header(const ByteSource& source, uint64_t start, const Stream& s,
                         const std::string& where, Layout& layout) {
  std::array<std::byte, kStreamHeaderBytes> raw{};
  if (!source.read_exact(start, raw) || !matches_at(raw, 0, kHeaderMagic)) {
    layout.add_error(where + "no stream header at offset " + std::to_string(start) +
                     ", where the index places it (the index disagrees with the blocks)");
    return false;
  }
  if (crc32_of(source, start + 6, 2) != read_le<uint32_t>(raw.data() + 8))
    layout.add_error(where + "stream header CRC32 mismatch");
  if (std::to_integer<uint8_t>(raw[6]) != 0 || std::to_integer<uint8_t>(raw[7]) != s.check)
    layout.add_error(where + "the stream header's flags differ from the footer's");
  return true;
}

// The stream that ends at `end`; returns false when the walk cannot go on.
bool read_stream(const ByteSource& source, uint64_t end, Walk& walk, uint64_t& budget,
                 Layout& layout) {
  const std::string where = "stream ending at offset " + std::to_string(end) + ": ";
  Stream s;
  s.end = end;
  if (end < kStreamHeaderBytes + kStreamFooterBytes) {
    layout.add_error(where + "too short for a stream header and footer");
    return false;
  }
  const auto index_bytes = read_footer(source, end, s, where, layout);
  if (!index_bytes) return false;
  const uint64_t index_start = end - kStreamFooterBytes - *index_bytes;
  if (!read_index(source, index_start, *index_bytes, s, budget, where, layout)) return false;
  uint64_t blocks_bytes = 0;
  bool fits = index_start >= kStreamHeaderBytes;
  for (const auto& rec : s.records) {
    const auto sum = checked_add(blocks_bytes, round_up4(rec.unpadded));
    fits = fits && sum && *sum <= index_start - kStreamHeaderBytes;
    if (!fits) break;
    blocks_bytes = *sum;
  }
  if (!fits) {
    layout.add_error(where +
                     "the index's blocks do not fit between the file's start and the index");
    return false;
  }
  s.start = index_start - blocks_bytes - kStreamHeaderBytes;
  if (!check_stream_header(source, s.start, s, where, layout)) return false;
  walk.blocks += s.records.size();
  walk.streams.push_back(std::move(s));
  return true;
}

// Skips stream padding backwards from `end`; returns where the previous stream ends.
std::optional<uint64_t> skip_padding(const ByteSource& source, uint64_t end, Walk& walk,
                                     Layout& layout) {
  uint64_t at = end;
  std::array<std::byte, 4> word{};
  while (at >= 4 && end - at < kMaxPaddingScan) {
    if (!source.read_exact(at - 4, word)) return std::nullopt;
    if (read_le<uint32_t>(word.data()) != 0) break;
    at -= 4;
  }
  if (end - at >= kMaxPaddingScan) {
    layout.add_error("more than " + std::to_string(kMaxPaddingScan) +
                     " bytes of stream padding before offset " + std::to_string(end));
    return std::nullopt;
  }
  walk.padding += end - at;
  return at;
}

// The little-endian u32 at `offset`; nullopt when the file ends first.
std::optional<uint32_t> stored_u32(const ByteSource& source, uint64_t offset) {
  std::array<std::byte, 4> raw{};
  if (!source.read_exact(offset, raw)) return std::nullopt;
  return read_le<uint32_t>(raw.data());
}

// Reads the block header at `offset` for its size, and checks it against the index.
Json block_attributes(const ByteSource& source, uint64_t offset, const IndexRecord& rec,
                      uint8_t check, const std::string& where, Layout& layout) {
  Json a = Json::object();
  std::array<std::byte, 1> size_byte{};
  const bool read = source.read_exact(offset, size_byte);
  const uint64_t header = (std::to_integer<uint64_t>(size_byte[0]) + 1) * 4;
  const uint64_t overhead = header + check_bytes(check);
  if (!read || size_byte[0] == std::byte{0} || overhead >= rec.unpadded) {
    layout.add_error(where + "the block header at offset " + std::to_string(offset) +
                     " does not fit the index's unpadded size " + std::to_string(rec.unpadded));
  } else {
    if (crc32_of(source, offset, header - 4) != stored_u32(source, offset + header - 4))
      layout.add_error(where + "block header CRC32 mismatch at offset " + std::to_string(offset));
    a["compressed_size"] = rec.unpadded - overhead;
    a["header_size"] = header;
  }
  a["uncompressed_size"] = rec.uncompressed;
  a["unpadded_size"] = rec.unpadded;
  a["check"] = check_name(check);
  return a;
}

// The slices of every block, streams in file order.
void add_blocks(const ByteSource& source, const Walk& walk, Layout& layout) {
  uint64_t index = 0;
  uint64_t stream_index = 0;
  uint64_t uncompressed = 0;  // where the block's content starts in the file's content
  for (auto it = walk.streams.rbegin(); it != walk.streams.rend(); ++it, ++stream_index) {
    uint64_t at = it->start + kStreamHeaderBytes;
    for (const auto& rec : it->records) {
      const std::string where = "block " + std::to_string(index) + ": ";
      Json a = block_attributes(source, at, rec, it->check, where, layout);
      a["stream"] = stream_index;
      a["uncompressed_offset"] = uncompressed;
      const uint64_t length = round_up4(rec.unpadded);
      layout.slices.push_back(
          Slice{"block/" + std::to_string(index++), {at, length}, std::move(a), false});
      at += length;
      uncompressed += rec.uncompressed;
    }
  }
}

void describe(const Walk& walk, Layout& layout) {
  auto& h = layout.header;
  h["streams"] = walk.streams.size();
  h["blocks"] = walk.blocks;
  Json list = Json::array();
  Json checks = Json::array();
  uint64_t total = 0;
  for (auto it = walk.streams.rbegin(); it != walk.streams.rend(); ++it) {
    uint64_t uncompressed = 0;
    for (const auto& rec : it->records) uncompressed += rec.uncompressed;
    total += uncompressed;
    const std::string name = check_name(it->check);
    if (std::find(checks.begin(), checks.end(), name) == checks.end()) checks.push_back(name);
    list.push_back(Json{{"offset", it->start},
                        {"size", it->end - it->start},
                        {"blocks", it->records.size()},
                        {"check", name},
                        {"uncompressed_size", uncompressed}});
  }
  h["check"] = checks.size() == 1 ? Json(checks[0]) : Json(checks);
  h["uncompressed_size"] = total;
  h["stream_padding"] = walk.padding;
  h["stream_list"] = std::move(list);
}

class Xz final : public Format {
 public:
  std::string_view name() const noexcept override { return "xz"; }
  std::string_view description() const noexcept override {
    return "xz compressed file (.xz format 1.2.0): streams, blocks and stream padding";
  }
  std::string_view signature() const noexcept override { return "fd 37 7a 58 5a 00 at 0"; }

  bool detect(std::span<const std::byte> head, uint64_t) const override {
    return starts_with(head, kHeaderMagic);
  }

  Layout parse(const ByteSource& source) const override {
    Layout layout;
    layout.magic = magic_at_start(kHeaderMagic);
    Walk walk;
    uint64_t budget = kMaxBlocks;
    uint64_t end = source.size();
    if (end % 4 != 0)
      layout.add_error("the file size " + std::to_string(end) +
                       " is not a multiple of 4, as xz streams and padding are");
    while (end > 0) {
      const auto stream_end = skip_padding(source, end, walk, layout);
      if (!stream_end || *stream_end == 0) break;
      if (walk.streams.size() == kMaxStreams) {
        layout.add_error("more than " + std::to_string(kMaxStreams) + " streams; the first " +
                         std::to_string(*stream_end) + " bytes are not shown");
        break;
      }
      if (!read_stream(source, *stream_end, walk, budget, layout)) break;
      end = walk.streams.back().start;
    }
    if (walk.streams.empty() && layout.errors.empty()) layout.add_error("no xz stream found");
    add_blocks(source, walk, layout);
    describe(walk, layout);
    return layout;
  }
};

}  // namespace

std::unique_ptr<Format> make_xz() {
  return std::make_unique<Xz>();
}

}  // namespace payloadfs::formats

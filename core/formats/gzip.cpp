// gzip files, RFC 1952 "GZIP file format specification version 4.3": one or more members, each
// a 10-byte header (ID1 ID2 CM FLG MTIME XFL OS), optional FEXTRA / FNAME / FCOMMENT / FHCRC
// fields, a raw deflate stream (RFC 1951) and an 8-byte trailer (CRC32, ISIZE). A deflate stream
// carries no length, so its end is found by decoding it with zlib's inflate; the output is only
// checksummed (to verify the trailer) and discarded, and the input is read in bounded chunks.

#include <zlib.h>

#include <algorithm>
#include <array>
#include <ctime>
#include <optional>
#include <string>
#include <vector>

#include "core/formats/builtin.hpp"
#include "core/formats/support/signature.hpp"
#include "core/io/binary_reader.hpp"
#include "core/io/checked_math.hpp"
#include "core/render/hex.hpp"
#include "core/render/json_text.hpp"

namespace payloadfs::formats {
namespace {

constexpr auto kMagic = byte_string("\x1f\x8b");

// Caps. Members: a file of many tiny members would otherwise cost one inflate set-up each and
// a JSON entry each. Work: every header.json build decodes the streams again, so the bytes
// read plus the bytes produced are bounded; past it, the current member is assumed to run to
// the end of the file (as in the common single-member case), without verifying its trailer.
constexpr uint64_t kMaxMembers = 4096;
constexpr uint64_t kMaxWorkBytes = uint64_t{1} << 30;
constexpr uint64_t kMaxFieldBytes = 65536;      // FNAME / FCOMMENT, including the NUL
constexpr uint64_t kMaxExtraHexBytes = 1024;    // of FEXTRA shown as hex
constexpr uint64_t kMaxTrailingScan = 1 << 20;  // zero padding after the last member
constexpr size_t kInputChunk = 64 * 1024;
constexpr size_t kOutputChunk = 64 * 1024;

constexpr uint8_t kFtext = 0x01, kFhcrc = 0x02, kFextra = 0x04, kFname = 0x08, kFcomment = 0x10;
constexpr uint8_t kReservedFlags = 0xE0;

constexpr std::array<std::string_view, 14> kOsNames = {"FAT filesystem (MS-DOS, OS/2, NT/Win32)",
                                                       "Amiga",
                                                       "VMS (or OpenVMS)",
                                                       "Unix",
                                                       "VM/CMS",
                                                       "Atari TOS",
                                                       "HPFS filesystem (OS/2, NT)",
                                                       "Macintosh",
                                                       "Z-System",
                                                       "CP/M",
                                                       "TOPS-20",
                                                       "NTFS filesystem (NT)",
                                                       "QDOS",
                                                       "Acorn RISCOS"};

std::string os_name(uint8_t os) {
  if (os < kOsNames.size()) return std::string(kOsNames[os]);
  return os == 255 ? "unknown" : "undefined";
}

std::string utc(uint32_t seconds) {
  const time_t t = seconds;
  struct tm tm {};
  gmtime_r(&t, &tm);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return text;
}

// A NUL-terminated field, at most kMaxFieldBytes long; nullopt when unterminated.
std::optional<std::string> read_zstring(BinaryReader& r) {
  std::string out;
  while (r.ok() && out.size() < kMaxFieldBytes) {
    const uint8_t c = r.u8();
    if (!r.ok()) return std::nullopt;
    if (c == 0) return out;
    out.push_back(static_cast<char>(c));
  }
  return std::nullopt;
}

// CRC-32 of [offset, offset + length) of the file, read in chunks.
std::optional<uint32_t> crc_of(const ByteSource& source, uint64_t offset, uint64_t length) {
  std::vector<std::byte> buf(kInputChunk);
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

enum class StreamEnd { complete, truncated, corrupt, io_error, over_budget };

struct Inflated {
  StreamEnd end = StreamEnd::complete;
  uint64_t end_offset = 0;  // first byte after the deflate stream, when complete
  uint64_t output_bytes = 0;
  uint32_t crc = 0;
  std::string message;
};

// Decodes the raw deflate stream at `offset` to find where it ends; output is discarded.
Inflated inflate_stream(const ByteSource& source, uint64_t offset, uint64_t& work) {
  Inflated result;
  z_stream zs{};
  if (inflateInit2(&zs, -MAX_WBITS) != Z_OK) {
    result.end = StreamEnd::corrupt;
    result.message = "zlib could not be initialised";
    return result;
  }
  std::vector<std::byte> in(kInputChunk);
  std::vector<unsigned char> out(kOutputChunk);
  uLong crc = crc32(0, nullptr, 0);
  uint64_t next = offset;  // next file byte to feed
  while (true) {
    if (zs.avail_in == 0) {
      if (next >= source.size()) {
        result.end = StreamEnd::truncated;
        break;
      }
      const auto n = static_cast<size_t>(std::min<uint64_t>(in.size(), source.size() - next));
      if (!source.read_exact(next, std::span(in).first(n))) {
        result.end = StreamEnd::io_error;
        result.message = "I/O error reading at offset " + std::to_string(next);
        break;
      }
      zs.next_in = reinterpret_cast<Bytef*>(in.data());
      zs.avail_in = static_cast<uInt>(n);
      next += n;
      work += n;
    }
    zs.next_out = out.data();
    zs.avail_out = static_cast<uInt>(out.size());
    const int ret = inflate(&zs, Z_NO_FLUSH);
    const size_t produced = out.size() - zs.avail_out;
    crc = crc32(crc, out.data(), static_cast<uInt>(produced));
    result.output_bytes += produced;
    work += produced;
    if (ret == Z_STREAM_END) {
      result.end_offset = next - zs.avail_in;
      break;
    }
    if (ret != Z_OK && ret != Z_BUF_ERROR) {  // Z_BUF_ERROR: needs more input, fed above
      result.end = StreamEnd::corrupt;
      result.message = zs.msg != nullptr ? zs.msg : "zlib error " + std::to_string(ret);
      result.end_offset = next - zs.avail_in;
      break;
    }
    if (work > kMaxWorkBytes) {
      result.end = StreamEnd::over_budget;
      break;
    }
  }
  result.crc = static_cast<uint32_t>(crc);
  inflateEnd(&zs);
  return result;
}

class Gzip final : public Format {
 public:
  std::string_view name() const noexcept override { return "gzip"; }
  std::string_view description() const noexcept override {
    return "gzip compressed file (RFC 1952), single or multi-member";
  }
  std::string_view signature() const noexcept override { return "1f 8b at 0"; }

  bool detect(std::span<const std::byte> head, uint64_t) const override {
    return starts_with(head, kMagic);
  }

  Layout parse(const ByteSource& source) const override {
    Layout layout;
    layout.magic = magic_at_start(kMagic);
    Json members = Json::array();
    uint64_t work = 0;
    uint64_t pos = 0;
    bool verified_all = true;
    uint64_t total_output = 0;
    while (pos < source.size()) {
      if (pos > 0 && !starts_member(source, pos)) {
        trailing(source, pos, members.size(), layout);
        break;
      }
      if (members.size() == kMaxMembers) {
        layout.add_error("more than " + std::to_string(kMaxMembers) +
                         " members; the rest of the file from offset " + std::to_string(pos) +
                         " is not parsed");
        verified_all = false;
        break;
      }
      Json member;
      const auto next = parse_member(source, pos, members.size(), work, member, layout);
      const bool complete = member.value("complete", false);
      verified_all = verified_all && complete;
      if (complete) total_output += member["uncompressed_bytes"].get<uint64_t>();
      members.push_back(std::move(member));
      if (!next) break;
      pos = *next;
    }
    auto& h = layout.header;
    h["members"] = members.size();
    if (!members.empty()) {
      for (const auto& [key, value] : members[0].items()) {
        if (key != "member" && key != "offset" && key != "deflate_offset" &&
            key != "deflate_length" && key != "complete" && key != "uncompressed_bytes")
          h[key] = value;
      }
    }
    if (verified_all && !members.empty()) h["uncompressed_size"] = total_output;
    h["member_list"] = std::move(members);
    return layout;
  }

 private:
  static bool starts_member(const ByteSource& source, uint64_t pos) {
    std::array<std::byte, 2> id{};
    return source.read_exact(pos, id) && id[0] == std::byte{0x1f} && id[1] == std::byte{0x8b};
  }

  // Bytes after the last member: gzip accepts zero padding and warns about anything else.
  static void trailing(const ByteSource& source, uint64_t pos, size_t members, Layout& layout) {
    const uint64_t count = source.size() - pos;
    layout.header["trailing_bytes"] = count;
    bool zeros = count <= kMaxTrailingScan;
    std::vector<std::byte> buf(kInputChunk);
    for (uint64_t at = pos; zeros && at < source.size();) {
      const auto n = static_cast<size_t>(std::min<uint64_t>(buf.size(), source.size() - at));
      if (!source.read_exact(at, std::span(buf).first(n))) {
        zeros = false;
        break;
      }
      zeros = std::all_of(buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(n),
                          [](std::byte b) { return b == std::byte{0}; });
      at += n;
    }
    if (!zeros) {
      layout.add_error(std::to_string(count) + " bytes of trailing data after member " +
                       std::to_string(members - 1) + " (offset " + std::to_string(pos) +
                       ") are not a gzip member");
    }
  }

  // Parses the member at `pos` into `m`; returns where the next member would start, or nullopt
  // when parsing cannot go on.
  static std::optional<uint64_t> parse_member(const ByteSource& source, uint64_t pos, size_t index,
                                              uint64_t& work, Json& m, Layout& layout) {
    const std::string where =
        "member " + std::to_string(index) + " at offset " + std::to_string(pos) + ": ";
    m["member"] = index;
    m["offset"] = pos;
    m["complete"] = false;
    BinaryReader r(source, Endian::little);
    r.seek(pos);
    r.skip(2);  // ID1 ID2, checked by the caller or by detection
    const auto flags = read_fixed_header(r, where, m, layout);
    if (!flags) return std::nullopt;
    if (!read_optional_fields(source, r, pos, *flags, where, m, layout)) return std::nullopt;
    const uint64_t data = r.tell();
    m["deflate_offset"] = data;

    const Inflated z = inflate_stream(source, data, work);
    Json attributes = {{"member", index}};
    if (m.contains("name")) attributes["file_name"] = m["name"];  // "name" is the slice's
    if (z.end != StreamEnd::complete) {
      return incomplete(source, z, data, where, m, attributes, layout);
    }
    return read_trailer(r, z, data, where, m, attributes, layout);
  }

  // The 10-byte header after ID1 ID2; returns FLG, or nullopt when parsing cannot go on.
  static std::optional<uint8_t> read_fixed_header(BinaryReader& r, const std::string& where,
                                                  Json& m, Layout& layout) {
    const uint8_t method = r.u8();
    const uint8_t flags = r.u8();
    const uint32_t mtime = r.u32();
    const uint8_t xfl = r.u8();
    const uint8_t os = r.u8();
    if (!r.ok()) {
      layout.add_error(where + "truncated header: " + *r.error());
      return std::nullopt;
    }
    m["method"] = method;
    m["flags"] = flags;
    Json names = Json::array();
    for (const auto& [bit, flag_name] :
         {std::pair{kFtext, "FTEXT"}, std::pair{kFhcrc, "FHCRC"}, std::pair{kFextra, "FEXTRA"},
          std::pair{kFname, "FNAME"}, std::pair{kFcomment, "FCOMMENT"}}) {
      if ((flags & bit) != 0) names.push_back(flag_name);
    }
    m["flag_names"] = std::move(names);
    m["mtime"] = mtime;
    if (mtime != 0) m["mtime_utc"] = utc(mtime);
    m["xfl"] = xfl;
    m["os"] = os;
    m["os_name"] = os_name(os);
    if (method != 8) {
      layout.add_error(where + "compression method " + std::to_string(method) +
                       " is not deflate (8); its data cannot be delimited");
      return std::nullopt;
    }
    if ((flags & kReservedFlags) != 0) {
      layout.add_error(where + "reserved flag bits are set (FLG 0x" + hex_byte(flags) +
                       "); the header layout is unknown");
      return std::nullopt;
    }
    return flags;
  }

  // FEXTRA, FNAME, FCOMMENT and FHCRC, as FLG says; false when parsing cannot go on.
  static bool read_optional_fields(const ByteSource& source, BinaryReader& r, uint64_t pos,
                                   uint8_t flags, const std::string& where, Json& m,
                                   Layout& layout) {
    if ((flags & kFextra) != 0) {
      const uint16_t xlen = r.u16();
      std::vector<std::byte> extra(xlen);
      r.read_into(extra);
      if (!r.ok()) {
        layout.add_error(where + "truncated FEXTRA field: " + *r.error());
        return false;
      }
      m["extra_length"] = xlen;
      const size_t shown = std::min<size_t>(extra.size(), kMaxExtraHexBytes);
      m["extra"] = to_hex(std::span(extra).first(shown));
      if (shown < extra.size()) m["extra_truncated"] = true;
      if (auto fields = subfields(extra)) m["extra_subfields"] = std::move(*fields);
    }
    if ((flags & kFname) != 0) {
      const auto text = read_zstring(r);
      if (!text) {
        layout.add_error(where + "FNAME is not NUL-terminated within " +
                         std::to_string(kMaxFieldBytes) + " bytes or the file");
        return false;
      }
      m["name"] = utf8_or_escaped(*text);
    }
    if ((flags & kFcomment) != 0) {
      const auto text = read_zstring(r);
      if (!text) {
        layout.add_error(where + "FCOMMENT is not NUL-terminated within " +
                         std::to_string(kMaxFieldBytes) + " bytes or the file");
        return false;
      }
      m["comment"] = utf8_or_escaped(*text);
    }
    if ((flags & kFhcrc) != 0) {
      const uint64_t covered = r.tell() - pos;
      const uint16_t stored = r.u16();
      if (!r.ok()) {
        layout.add_error(where + "truncated FHCRC field");
        return false;
      }
      m["header_crc16"] = stored;
      const auto crc = crc_of(source, pos, covered);
      if (crc && (*crc & 0xFFFF) != stored) {
        layout.add_error(where + "header CRC16 " + std::to_string(stored) +
                         " does not match the header (" + std::to_string(*crc & 0xFFFF) + ")");
      }
    }
    return true;
  }

  // A complete deflate stream: its slice and the CRC32/ISIZE trailer after it.
  static std::optional<uint64_t> read_trailer(BinaryReader& r, const Inflated& z, uint64_t data,
                                              const std::string& where, Json& m, Json& attributes,
                                              Layout& layout) {
    const uint64_t length = z.end_offset - data;
    m["deflate_length"] = length;
    m["uncompressed_bytes"] = z.output_bytes;
    r.seek(z.end_offset);
    const uint32_t crc = r.u32();
    const uint32_t isize = r.u32();
    attributes["complete"] = true;
    if (!r.ok()) {
      layout.add_error(where + "the file ends inside the 8-byte trailer after the deflate stream");
      layout.slices.push_back(Slice{"deflate", {data, length}, std::move(attributes), false});
      return std::nullopt;
    }
    m["crc32"] = crc;
    m["isize"] = isize;
    m["complete"] = true;
    attributes["crc32"] = crc;
    attributes["isize"] = isize;
    if (crc != z.crc) {
      layout.add_error(where + "trailer CRC32 " + std::to_string(crc) +
                       " does not match the data (" + std::to_string(z.crc) + ")");
    }
    if (isize != static_cast<uint32_t>(z.output_bytes)) {
      layout.add_error(where + "trailer ISIZE " + std::to_string(isize) +
                       " does not match the data size mod 2^32 (" +
                       std::to_string(static_cast<uint32_t>(z.output_bytes)) + ")");
    }
    layout.slices.push_back(Slice{"deflate", {data, length}, std::move(attributes), false});
    return r.tell();
  }

  // The stream's end is unknown: keep a slice to the end of the file (or, when only the work
  // budget ran out, up to the trailer that the last 8 bytes of the file are assumed to be).
  static std::optional<uint64_t> incomplete(const ByteSource& source, const Inflated& z,
                                            uint64_t data, const std::string& where, Json& m,
                                            Json& attributes, Layout& layout) {
    uint64_t end = source.size();
    switch (z.end) {
      case StreamEnd::truncated:
        layout.add_error(where +
                         "truncated: the deflate stream has no final block before the "
                         "end of the file");
        break;
      case StreamEnd::corrupt:
        layout.add_error(where + "invalid deflate data near offset " +
                         std::to_string(z.end_offset) + ": " + z.message);
        break;
      case StreamEnd::io_error:
        layout.add_error(where + z.message);
        break;
      case StreamEnd::over_budget:
        layout.add_error(where + "stopped decoding after " + std::to_string(kMaxWorkBytes) +
                         " bytes of work; assuming this member ends the file and its trailer is "
                         "the last 8 bytes (not verified)");
        if (source.size() >= 8 && source.size() - 8 >= data) {
          end = source.size() - 8;
          BinaryReader r(source, Endian::little);
          r.seek(end);
          const uint32_t crc = r.u32();
          const uint32_t isize = r.u32();
          if (r.ok()) {
            m["crc32"] = crc;
            m["isize"] = isize;
            attributes["crc32"] = crc;
            attributes["isize"] = isize;
          }
        }
        break;
      case StreamEnd::complete:
        break;
    }
    attributes["complete"] = false;
    m["deflate_length"] = end - data;
    layout.slices.push_back(Slice{"deflate", {data, end - data}, std::move(attributes), false});
    return std::nullopt;
  }

  // FEXTRA subfields: SI1 SI2, LEN (u16le), LEN bytes (RFC 1952 section 2.3.1.1). Not every
  // writer follows that structure and gzip does not check it, so a mismatch is not an error.
  static std::optional<Json> subfields(const std::vector<std::byte>& extra) {
    Json out = Json::array();
    size_t at = 0;
    while (at + 4 <= extra.size()) {
      const auto byte = [&](size_t i) { return std::to_integer<uint8_t>(extra[at + i]); };
      const size_t len = read_le<uint16_t>(extra.data() + at + 2);
      std::string id;
      id.push_back(static_cast<char>(byte(0)));
      id.push_back(static_cast<char>(byte(1)));
      if (at + 4 + len > extra.size()) return std::nullopt;
      out.push_back(Json{{"id", utf8_or_escaped(id)}, {"length", len}});
      at += 4 + len;
    }
    if (at != extra.size()) return std::nullopt;
    return out;
  }

  static std::string hex_byte(uint8_t v) {
    const std::array<std::byte, 1> b{std::byte{v}};
    return to_hex(b);
  }
};

}  // namespace

std::unique_ptr<Format> make_gzip() {
  return std::make_unique<Gzip>();
}

}  // namespace payloadfs::formats

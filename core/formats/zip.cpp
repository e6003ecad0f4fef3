// ZIP archives including ZIP64, after PKWARE's APPNOTE.TXT 6.3.10: sections 4.3.6 (overall
// layout), 4.3.7 (local file header), 4.3.12 (central directory header), 4.3.14-4.3.16 (zip64
// end of central directory record and locator, end of central directory record), 4.4.5
// (compression methods), 4.5.3 (zip64 extended information extra field) and 4.5.2/Info-ZIP
// extra.fld (0x5455 extended timestamp). Like Info-ZIP and Python's zipfile we find the end
// record from the end of the file and trust the central directory, not the local headers.

#include <algorithm>
#include <array>
#include <ctime>
#include <optional>
#include <string>
#include <vector>

#include "core/formats/builtin.hpp"
#include "core/io/binary_reader.hpp"
#include "core/io/checked_math.hpp"
#include "core/render/json_text.hpp"

namespace payloadfs::formats {
namespace {

constexpr uint64_t kMaxEntries = 1'000'000;
constexpr uint64_t kEocdBytes = 22;
constexpr uint64_t kMaxCommentBytes = 0xFFFF;
constexpr uint64_t kLocatorBytes = 20;
constexpr uint64_t kZip64EocdBytes = 56;  // without its extensible data
constexpr uint64_t kCentralBytes = 46;
constexpr uint64_t kLocalBytes = 30;
constexpr uint32_t kLocalSig = 0x04034b50;
constexpr uint32_t kCentralSig = 0x02014b50;
constexpr uint32_t kEocdSig = 0x06054b50;
constexpr uint32_t kZip64EocdSig = 0x06064b50;
constexpr uint32_t kZip64LocatorSig = 0x07064b50;

// APPNOTE 4.4.5 compression methods.
std::string method_name(uint16_t method) {
  switch (method) {
    case 0:
      return "stored";
    case 1:
      return "shrunk";
    case 2:
      return "reduced1";
    case 3:
      return "reduced2";
    case 4:
      return "reduced3";
    case 5:
      return "reduced4";
    case 6:
      return "imploded";
    case 8:
      return "deflated";
    case 9:
      return "deflate64";
    case 10:
      return "pkware-dcl-imploded";
    case 12:
      return "bzip2";
    case 14:
      return "lzma";
    case 16:
      return "ibm-cmpsc";
    case 18:
      return "ibm-terse";
    case 19:
      return "ibm-lz77";
    case 20:
      return "zstd-deprecated";
    case 93:
      return "zstd";
    case 94:
      return "mp3";
    case 95:
      return "xz";
    case 96:
      return "jpeg";
    case 97:
      return "wavpack";
    case 98:
      return "ppmd";
    case 99:
      return "aes";
    default:
      return "unknown";
  }
}

// DOS date/time as stored (local time of the writer, no zone), fields not validated, the way
// zipfile's date_time reports them.
std::string dos_time(uint16_t date, uint16_t time) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "%04u-%02u-%02uT%02u:%02u:%02u", 1980u + (date >> 9),
                (date >> 5) & 0xFu, date & 0x1Fu, time >> 11, (time >> 5) & 0x3Fu,
                (time & 0x1Fu) * 2);
  return buf;
}

std::string unix_time_utc(int64_t seconds) {
  struct tm tm {};
  const time_t t = static_cast<time_t>(seconds);
  if (gmtime_r(&t, &tm) == nullptr) return std::to_string(seconds);
  char buf[40];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

// Names without the UTF-8 flag (bit 11) are IBM code page 437 by the specification; names that
// are valid UTF-8 anyway are kept as they are (what Unix zip writers produce in practice).
std::string cp437_to_utf8(const std::string& raw) {
  static constexpr char16_t kHigh[128] = {
      0x00C7, 0x00FC, 0x00E9, 0x00E2, 0x00E4, 0x00E0, 0x00E5, 0x00E7, 0x00EA, 0x00EB, 0x00E8,
      0x00EF, 0x00EE, 0x00EC, 0x00C4, 0x00C5, 0x00C9, 0x00E6, 0x00C6, 0x00F4, 0x00F6, 0x00F2,
      0x00FB, 0x00F9, 0x00FF, 0x00D6, 0x00DC, 0x00A2, 0x00A3, 0x00A5, 0x20A7, 0x0192, 0x00E1,
      0x00ED, 0x00F3, 0x00FA, 0x00F1, 0x00D1, 0x00AA, 0x00BA, 0x00BF, 0x2310, 0x00AC, 0x00BD,
      0x00BC, 0x00A1, 0x00AB, 0x00BB, 0x2591, 0x2592, 0x2593, 0x2502, 0x2524, 0x2561, 0x2562,
      0x2556, 0x2555, 0x2563, 0x2551, 0x2557, 0x255D, 0x255C, 0x255B, 0x2510, 0x2514, 0x2534,
      0x252C, 0x251C, 0x2500, 0x253C, 0x255E, 0x255F, 0x255A, 0x2554, 0x2569, 0x2566, 0x2560,
      0x2550, 0x256C, 0x2567, 0x2568, 0x2564, 0x2565, 0x2559, 0x2558, 0x2552, 0x2553, 0x256B,
      0x256A, 0x2518, 0x250C, 0x2588, 0x2584, 0x258C, 0x2590, 0x2580, 0x03B1, 0x00DF, 0x0393,
      0x03C0, 0x03A3, 0x03C3, 0x00B5, 0x03C4, 0x03A6, 0x0398, 0x03A9, 0x03B4, 0x221E, 0x03C6,
      0x03B5, 0x2229, 0x2261, 0x00B1, 0x2265, 0x2264, 0x2320, 0x2321, 0x00F7, 0x2248, 0x00B0,
      0x2219, 0x00B7, 0x221A, 0x207F, 0x00B2, 0x25A0, 0x00A0};
  std::string out;
  out.reserve(raw.size() * 2);
  for (const char ch : raw) {
    const auto c = static_cast<unsigned char>(ch);
    if (c < 0x80) {
      out.push_back(ch);
      continue;
    }
    const char16_t u = kHigh[c - 0x80];
    if (u < 0x800) {
      out.push_back(static_cast<char>(0xC0 | (u >> 6)));
    } else {
      out.push_back(static_cast<char>(0xE0 | (u >> 12)));
      out.push_back(static_cast<char>(0x80 | ((u >> 6) & 0x3F)));
    }
    out.push_back(static_cast<char>(0x80 | (u & 0x3F)));
  }
  return out;
}

struct EndRecord {
  uint64_t offset = 0;  // where the (plain) end record starts, or would: the end of the file
  bool classic = true;  // false when the archive has only a zip64 end record
  uint64_t disk = 0, cd_disk = 0, entries_on_disk = 0, entries = 0, cd_size = 0, cd_offset = 0;
  std::string comment;
  bool zip64 = false;
  uint64_t zip64_offset = 0;  // where the zip64 end record starts, when zip64
};

struct CentralEntry {
  uint16_t flags = 0, method = 0, time = 0, date = 0, disk16 = 0;
  uint32_t crc = 0;
  uint64_t csize = 0, usize = 0, local_offset = 0, disk = 0;
  std::string name;
  std::optional<int64_t> unix_mtime;
};

class Zip final : public Format {
 public:
  std::string_view name() const noexcept override { return "zip"; }
  std::string_view description() const noexcept override { return "ZIP archive (including ZIP64)"; }
  std::string_view signature() const noexcept override {
    return "'PK\\x03\\x04' at 0, or 'PK\\x05\\x06' at 0 for an empty archive, or a zip64 end "
           "record 'PK\\x06\\x06' at 0 followed by its locator 'PK\\x06\\x07'";
  }

  bool detect(std::span<const std::byte> head, uint64_t size) const override {
    if (head.size() < 4) return false;
    const std::byte* p = head.data();
    const uint32_t sig = read_le<uint32_t>(p);
    if (sig == kLocalSig || (sig == kEocdSig && size >= kEocdBytes)) return true;
    // An empty (or lying) archive whose only end record is a zip64 one: the record at 0 and,
    // right after it (APPNOTE 4.3.6), its locator.
    if (sig != kZip64EocdSig || head.size() < kZip64EocdBytes) return false;
    const uint64_t record_size = read_le<uint64_t>(p + 4);  // what follows its first 12 bytes
    if (record_size < kZip64EocdBytes - 12) return false;
    const uint64_t locator = 12 + record_size;  // no overflow: checked against the head first
    return record_size <= head.size() && range_within(locator, kLocatorBytes, head.size()) &&
           read_le<uint32_t>(p + locator) == kZip64LocatorSig;
  }

  Layout parse(const ByteSource& source) const override {
    Layout layout;
    const uint64_t size = source.size();
    const auto end = find_end(source, layout);
    if (!end) return layout;
    describe_end(*end, layout.header);
    const uint64_t shift = prepended_bytes(source, *end, layout);
    layout.header["prepended_bytes"] = shift;
    if (end->disk != end->cd_disk) {
      layout.add_error("the central directory is on disk " + std::to_string(end->cd_disk) +
                       ", not on this disk (" + std::to_string(end->disk) +
                       "); multi-disk archives are not supported");
      return layout;
    }
    check_entry_count(*end, layout);

    const auto cd_start = checked_add(end->cd_offset, shift);
    if (!cd_start || !range_within(*cd_start, end->cd_size, size)) {
      layout.add_error("central directory [" + std::to_string(end->cd_offset) + "+" +
                       std::to_string(end->cd_size) + "] lies outside the file");
      return layout;
    }
    const std::vector<CentralEntry> entries = read_central(source, *cd_start, *end, shift, layout);
    add_entries(source, entries, end->disk, layout);
    return layout;
  }

 private:
  static void describe_end(const EndRecord& end, Json& h) {
    h["entries"] = end.entries;
    h["comment"] = utf8_or_escaped(end.comment);
    h["zip64"] = end.zip64;
    h["central_directory_offset"] = end.cd_offset;
    h["central_directory_size"] = end.cd_size;
    h["disk_number"] = end.disk;
    h["central_directory_disk"] = end.cd_disk;
    h["entries_on_disk"] = end.entries_on_disk;
    if (end.classic) {
      h["end_of_central_directory_offset"] = end.offset;
    } else {
      h["end_of_central_directory_offset"] = nullptr;
    }
    if (end.zip64) h["zip64_end_of_central_directory_offset"] = end.zip64_offset;
  }

  // Offsets in the archive are relative to its first byte. With data prepended (a
  // self-extractor stub) every stored offset is short by the stub's length; like Info-ZIP
  // and zipfile, we infer that from where the central directory must end.
  static uint64_t prepended_bytes(const ByteSource& source, const EndRecord& end, Layout& layout) {
    const uint64_t cd_end = end.zip64 ? end.zip64_offset : end.offset;
    uint64_t shift = 0;
    if (end.cd_size > cd_end) {
      layout.add_error("central directory size " + std::to_string(end.cd_size) +
                       " is larger than the bytes before the end record");
    } else if (const uint64_t expected = cd_end - end.cd_size; expected > end.cd_offset) {
      shift = expected - end.cd_offset;
      if (end.entries > 0 && !signature_at(source, expected, kCentralSig) &&
          signature_at(source, end.cd_offset, kCentralSig)) {
        layout.add_error(
            "central directory does not end where the end record begins; using its "
            "stored offset");
        shift = 0;
      }
    } else if (expected < end.cd_offset) {
      layout.add_error("central directory offset " + std::to_string(end.cd_offset) + " + size " +
                       std::to_string(end.cd_size) + " runs into the end record at " +
                       std::to_string(cd_end));
    }
    return shift;
  }

  // Every entry takes at least kCentralBytes of the directory: a count the directory cannot
  // hold is a lie (2^32 entries in a few bytes), reported once, and not searched for.
  static void check_entry_count(const EndRecord& end, Layout& layout) {
    const uint64_t room = end.cd_size / kCentralBytes;
    if (end.entries > room) {
      layout.add_error("end record declares " + std::to_string(end.entries) +
                       " entries, but a central directory of " + std::to_string(end.cd_size) +
                       " bytes holds at most " + std::to_string(room));
    } else if (end.entries > kMaxEntries) {
      layout.add_error("archive declares " + std::to_string(end.entries) +
                       " entries; only the first " + std::to_string(kMaxEntries) + " are read");
    }
  }

  // One slice per file entry (directories are counted, not sliced), and the totals.
  static void add_entries(const ByteSource& source, const std::vector<CentralEntry>& entries,
                          uint64_t disk, Layout& layout) {
    uint64_t files = 0, dirs = 0, total_c = 0, total_u = 0;
    for (const auto& e : entries) {
      if (e.name.ends_with('/')) {
        ++dirs;
        continue;
      }
      ++files;
      total_c = checked_add(total_c, e.csize).value_or(UINT64_MAX);
      total_u = checked_add(total_u, e.usize).value_or(UINT64_MAX);
      add_slice(source, e, disk, layout);
    }
    auto& h = layout.header;
    h["files"] = files;
    h["directories"] = dirs;
    h["total_compressed_size"] = total_c;
    h["total_uncompressed_size"] = total_u;
  }

  static bool signature_at(const ByteSource& source, uint64_t offset, uint32_t sig) {
    std::array<unsigned char, 4> b{};
    if (!range_within(offset, 4, source.size()) ||
        !source.read_exact(offset, std::as_writable_bytes(std::span(b))))
      return false;
    return read_le<uint32_t>(b.data()) == sig;
  }

  // Scans backwards over the last 22 + 65535 bytes for the end record. A candidate must have a
  // comment that fits in the file; one whose comment ends exactly at the end of the file wins.
  static std::optional<EndRecord> find_end(const ByteSource& source, Layout& layout) {
    const uint64_t size = source.size();
    if (size < kEocdBytes) {
      layout.add_error("file is shorter than an end of central directory record");
      return std::nullopt;
    }
    const uint64_t tail_len = std::min(size, kEocdBytes + kMaxCommentBytes);
    const uint64_t tail_start = size - tail_len;
    std::vector<unsigned char> tail(static_cast<size_t>(tail_len));
    if (!source.read_exact(tail_start, std::as_writable_bytes(std::span(tail)))) {
      layout.add_error("cannot read the end of the file");
      return std::nullopt;
    }
    std::optional<size_t> exact, loose;
    for (size_t i = tail.size() - kEocdBytes + 1; i-- > 0;) {
      if (read_le<uint32_t>(&tail[i]) != kEocdSig) continue;
      const uint64_t comment_end = i + kEocdBytes + read_le<uint16_t>(&tail[i + 20]);
      if (comment_end == tail.size()) {
        exact = i;
        break;
      }
      if (comment_end < tail.size() && !loose) loose = i;
    }
    if (!exact && !loose) return find_zip64_only_end(source, tail_len, layout);
    const size_t at = exact ? *exact : *loose;
    const unsigned char* p = &tail[at];
    EndRecord r;
    r.offset = tail_start + at;
    r.disk = read_le<uint16_t>(p + 4);
    r.cd_disk = read_le<uint16_t>(p + 6);
    r.entries_on_disk = read_le<uint16_t>(p + 8);
    r.entries = read_le<uint16_t>(p + 10);
    r.cd_size = read_le<uint32_t>(p + 12);
    r.cd_offset = read_le<uint32_t>(p + 16);
    const size_t comment_len = read_le<uint16_t>(p + 20);
    r.comment.assign(reinterpret_cast<const char*>(p + kEocdBytes), comment_len);
    if (!exact) {
      layout.add_error(std::to_string(tail.size() - at - kEocdBytes - comment_len) +
                       " bytes follow the end record's comment");
    }
    // The signature is the first local header (or the end record of an empty archive) at 0; a
    // self-extractor has its stub there, so we point at the end record instead.
    const bool at_zero = signature_at_zero(source);
    layout.magic = ByteRange{at_zero ? 0 : r.offset, 4};
    read_zip64_end(source, r, layout);
    return r;
  }

  static bool signature_at_zero(const ByteSource& source) {
    return signature_at(source, 0, kLocalSig) || signature_at(source, 0, kEocdSig) ||
           signature_at(source, 0, kZip64EocdSig);
  }

  // Without a plain end record, a zip64 end record and locator may still end the archive (the
  // locator is then the last 20 bytes, or follows a zip64 record at 0): its values are used,
  // and the missing record reported.
  static std::optional<EndRecord> find_zip64_only_end(const ByteSource& source, uint64_t searched,
                                                      Layout& layout) {
    const uint64_t size = source.size();
    std::optional<uint64_t> locator_end;
    if (size >= kLocatorBytes && signature_at(source, size - kLocatorBytes, kZip64LocatorSig)) {
      locator_end = size;
    } else if (signature_at(source, 0, kZip64EocdSig)) {
      std::array<unsigned char, 8> n{};
      if (range_within(4, n.size(), size) &&
          source.read_exact(4, std::as_writable_bytes(std::span(n)))) {
        const auto end = checked_add(read_le<uint64_t>(n.data()), 12 + kLocatorBytes);
        if (end && *end <= size && signature_at(source, *end - kLocatorBytes, kZip64LocatorSig))
          locator_end = *end;
      }
    }
    if (!locator_end) {
      layout.add_error("no end of central directory record (PK\\x05\\x06) in the last " +
                       std::to_string(searched) + " bytes");
      return std::nullopt;
    }
    EndRecord r;
    r.offset = *locator_end;
    r.classic = false;
    layout.magic = ByteRange{signature_at_zero(source) ? 0 : *locator_end - kLocatorBytes, 4};
    read_zip64_end(source, r, layout);
    if (!r.zip64) return std::nullopt;  // the locator leads nowhere: reported
    layout.add_error(
        "no end of central directory record (PK\\x05\\x06): the archive ends with "
        "only a zip64 end record (at offset " +
        std::to_string(r.zip64_offset) + ") and its locator");
    if (r.offset != size)
      layout.add_error(std::to_string(size - r.offset) + " bytes follow the zip64 locator");
    return r;
  }

  // The zip64 locator sits right before the end record; its record offset is relative to the
  // archive start, so with prepended data we also look right before the locator (as zipfile).
  static void read_zip64_end(const ByteSource& source, EndRecord& r, Layout& layout) {
    if (r.offset < kLocatorBytes) return;
    const uint64_t loc_at = r.offset - kLocatorBytes;
    std::array<unsigned char, kLocatorBytes> loc{};
    if (!source.read_exact(loc_at, std::as_writable_bytes(std::span(loc))) ||
        read_le<uint32_t>(loc.data()) != kZip64LocatorSig) {
      if (r.entries == 0xFFFF || r.cd_size == 0xFFFFFFFF || r.cd_offset == 0xFFFFFFFF)
        layout.add_error(
            "end record fields are saturated (0xFFFF...) but there is no zip64 "
            "end of central directory locator");
      return;
    }
    const uint64_t stated = read_le<uint64_t>(loc.data() + 8);
    std::optional<uint64_t> at;
    if (signature_at(source, stated, kZip64EocdSig) &&
        range_within(stated, kZip64EocdBytes, loc_at)) {
      at = stated;
    } else if (loc_at >= kZip64EocdBytes &&
               signature_at(source, loc_at - kZip64EocdBytes, kZip64EocdSig)) {
      at = loc_at - kZip64EocdBytes;
    }
    if (!at) {
      layout.add_error("zip64 locator points to offset " + std::to_string(stated) +
                       ", which holds no zip64 end of central directory record");
      return;
    }
    std::array<unsigned char, kZip64EocdBytes> z{};
    if (!source.read_exact(*at, std::as_writable_bytes(std::span(z)))) {
      layout.add_error("cannot read the zip64 end of central directory record");
      return;
    }
    r.zip64 = true;
    r.zip64_offset = *at;
    r.disk = read_le<uint32_t>(z.data() + 16);
    r.cd_disk = read_le<uint32_t>(z.data() + 20);
    r.entries_on_disk = read_le<uint64_t>(z.data() + 24);
    r.entries = read_le<uint64_t>(z.data() + 32);
    r.cd_size = read_le<uint64_t>(z.data() + 40);
    r.cd_offset = read_le<uint64_t>(z.data() + 48);
  }

  static std::vector<CentralEntry> read_central(const ByteSource& source, uint64_t cd_start,
                                                const EndRecord& end, uint64_t shift,
                                                Layout& layout) {
    std::vector<CentralEntry> entries;
    BinaryReader reader(source);
    reader.seek(cd_start);
    const uint64_t cd_stop = cd_start + end.cd_size;  // checked by the caller
    const uint64_t wanted =
        std::min({end.entries, kMaxEntries, end.cd_size / kCentralBytes});  // see parse()
    while (entries.size() < wanted) {
      const uint64_t at = reader.tell();
      if (!range_within(at, kCentralBytes, cd_stop)) {
        layout.add_error("central directory ends after " + std::to_string(entries.size()) + " of " +
                         std::to_string(end.entries) + " entries");
        return entries;
      }
      std::array<unsigned char, kCentralBytes> f{};
      reader.read_into(std::as_writable_bytes(std::span(f)));
      if (!reader.ok() || read_le<uint32_t>(f.data()) != kCentralSig) {
        layout.add_error("no central directory header signature at offset " + std::to_string(at) +
                         " (entry " + std::to_string(entries.size()) + ")");
        return entries;
      }
      CentralEntry e;
      e.flags = read_le<uint16_t>(&f[8]);
      e.method = read_le<uint16_t>(&f[10]);
      e.time = read_le<uint16_t>(&f[12]);
      e.date = read_le<uint16_t>(&f[14]);
      e.crc = read_le<uint32_t>(&f[16]);
      e.csize = read_le<uint32_t>(&f[20]);
      e.usize = read_le<uint32_t>(&f[24]);
      const uint16_t name_len = read_le<uint16_t>(&f[28]), extra_len = read_le<uint16_t>(&f[30]),
                     comment_len = read_le<uint16_t>(&f[32]);
      e.disk16 = read_le<uint16_t>(&f[34]);
      e.disk = e.disk16;
      e.local_offset = read_le<uint32_t>(&f[42]);
      if (!range_within(reader.tell(), uint64_t{name_len} + extra_len + comment_len, cd_stop)) {
        layout.add_error("central directory entry at offset " + std::to_string(at) +
                         " runs past the end of the central directory");
        return entries;
      }
      const std::string raw_name = reader.text(name_len);
      const std::string extra = reader.text(extra_len);
      reader.skip(comment_len);
      if (!reader.ok()) {
        layout.add_error("cannot read central directory entry at offset " + std::to_string(at));
        return entries;
      }
      const bool utf8_flag = (e.flags & 0x0800) != 0;
      e.name =
          utf8_flag || utf8_or_escaped(raw_name) == raw_name ? raw_name : cp437_to_utf8(raw_name);
      if (const auto err = read_extra(extra, e)) {
        layout.add_error("entry '" + utf8_or_escaped(e.name) + "': " + *err);
      }
      const auto shifted = checked_add(e.local_offset, shift);
      if (!shifted) {
        layout.add_error("entry '" + utf8_or_escaped(e.name) + "': local header offset overflows");
        continue;
      }
      e.local_offset = *shifted;
      entries.push_back(std::move(e));
    }
    if (reader.tell() != cd_stop) {
      layout.add_error("central directory has " + std::to_string(cd_stop - reader.tell()) +
                       " bytes after its " + std::to_string(entries.size()) + " entries");
    }
    return entries;
  }

  // Extra fields: 0x0001 (zip64 sizes/offset/disk, present only for the saturated fields, in
  // this order) and 0x5455 (extended timestamp; the central copy holds at most the mtime).
  static std::optional<std::string> read_extra(const std::string& extra, CentralEntry& e) {
    const auto* p = reinterpret_cast<const unsigned char*>(extra.data());
    size_t i = 0;
    while (i + 4 <= extra.size()) {
      const uint16_t id = read_le<uint16_t>(p + i);
      const size_t len = read_le<uint16_t>(p + i + 2);
      if (len > extra.size() - i - 4) return "extra field 0x" + hex16(id) + " runs past its end";
      const unsigned char* d = p + i + 4;
      if (id == 0x0001) {
        size_t k = 0;
        auto take = [&](uint64_t& field, const char* what) -> std::optional<std::string> {
          if (k + 8 > len) return std::string("zip64 extra field lacks the ") + what;
          field = read_le<uint64_t>(d + k);
          k += 8;
          return std::nullopt;
        };
        if (e.usize == 0xFFFFFFFF)
          if (auto err = take(e.usize, "uncompressed size")) return err;
        if (e.csize == 0xFFFFFFFF)
          if (auto err = take(e.csize, "compressed size")) return err;
        if (e.local_offset == 0xFFFFFFFF)
          if (auto err = take(e.local_offset, "local header offset")) return err;
        if (e.disk16 == 0xFFFF) {
          if (k + 4 > len) return "zip64 extra field lacks the disk number";
          e.disk = read_le<uint32_t>(d + k);
        }
      } else if (id == 0x5455 && len >= 5 && (d[0] & 1) != 0) {
        e.unix_mtime = static_cast<int32_t>(read_le<uint32_t>(d + 1));
      }
      i += 4 + len;
    }
    return std::nullopt;
  }

  static std::string hex16(uint16_t v) {
    char buf[8];
    std::snprintf(buf, sizeof buf, "%04x", v);
    return buf;
  }

  // The stored bytes start after the local header, whose name and extra lengths can differ
  // from the central directory's copy.
  static void add_slice(const ByteSource& source, const CentralEntry& e, uint64_t this_disk,
                        Layout& layout) {
    const std::string where = "entry '" + utf8_or_escaped(e.name) + "'";
    if (e.disk != this_disk) {
      layout.add_error(where + " is on disk " + std::to_string(e.disk) +
                       " (multi-disk archives are not supported)");
      return;
    }
    std::array<unsigned char, kLocalBytes> l{};
    if (!range_within(e.local_offset, kLocalBytes, source.size()) ||
        !source.read_exact(e.local_offset, std::as_writable_bytes(std::span(l)))) {
      layout.add_error(where + ": local header offset " + std::to_string(e.local_offset) +
                       " lies outside the file");
      return;
    }
    if (read_le<uint32_t>(l.data()) != kLocalSig) {
      layout.add_error(where + ": no local header signature at offset " +
                       std::to_string(e.local_offset));
      return;
    }
    const uint64_t data =
        e.local_offset + kLocalBytes + read_le<uint16_t>(&l[26]) + read_le<uint16_t>(&l[28]);
    if (!range_within(data, e.csize, source.size())) {
      layout.add_error(where + ": " + std::to_string(e.csize) + " stored bytes at offset " +
                       std::to_string(data) + " run past the end of the file");
      return;
    }
    Json a = Json::object();
    a["method"] = e.method;
    a["method_name"] = method_name(e.method);
    a["crc32"] = e.crc;
    a["compressed_size"] = e.csize;
    a["uncompressed_size"] = e.usize;
    a["mtime"] = dos_time(e.date, e.time);
    if (e.unix_mtime) a["mtime_utc"] = unix_time_utc(*e.unix_mtime);
    a["encrypted"] = (e.flags & 0x0001) != 0;
    a["flags"] = e.flags;
    a["local_header_offset"] = e.local_offset;
    const bool stored = e.method == 0 && (e.flags & 0x0001) == 0;  // not deflated, not encrypted
    layout.slices.push_back(Slice{e.name, {data, e.csize}, std::move(a), stored});
  }
};

}  // namespace

std::unique_ptr<Format> make_zip() {
  return std::make_unique<Zip>();
}

}  // namespace payloadfs::formats

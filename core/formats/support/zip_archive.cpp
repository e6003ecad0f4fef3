// After PKWARE's APPNOTE.TXT 6.3.10: sections 4.3.6 (overall layout), 4.3.7 (local file
// header), 4.3.12 (central directory header), 4.3.14-4.3.16 (zip64 end of central directory
// record and locator, end of central directory record), 4.5.3 (zip64 extended information
// extra field) and 4.5.2/Info-ZIP extra.fld (0x5455 extended timestamp). Like Info-ZIP and
// Python's zipfile we find the end record from the end of the file and trust the central
// directory, not the local headers, except for where each member's data starts.

#include "core/formats/support/zip_archive.hpp"

#include <algorithm>
#include <array>
#include <cstdio>

#include "core/io/binary_reader.hpp"
#include "core/io/checked_math.hpp"
#include "core/io/endian.hpp"
#include "core/render/json_text.hpp"

namespace payloadfs::formats::zip_archive {
namespace {

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

std::string hex16(uint16_t v) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "%04x", v);
  return buf;
}

// Extra fields: 0x0001 (zip64 sizes/offset/disk, present only for the saturated fields, in
// this order) and 0x5455 (extended timestamp; the central copy holds at most the mtime).
std::optional<std::string> read_extra(const std::string& extra, CentralEntry& e) {
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

// The zip64 locator sits right before the end record; its record offset is relative to the
// archive start, so with prepended data we also look right before the locator (as zipfile).
void read_zip64_end(const ByteSource& source, EndRecord& r, Layout& layout) {
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

bool signature_at_zero(const ByteSource& source) {
  return signature_at(source, 0, kLocalSig) || signature_at(source, 0, kEocdSig) ||
         signature_at(source, 0, kZip64EocdSig);
}

// Without a plain end record, a zip64 end record and locator may still end the archive (the
// locator is then the last 20 bytes, or follows a zip64 record at 0): its values are used,
// and the missing record reported.
std::optional<EndRecord> find_zip64_only_end(const ByteSource& source, uint64_t searched,
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

// Scans backwards over the last 22 + 65535 bytes for the end record. A candidate must have a
// comment that fits in the file; one whose comment ends exactly at the end of the file wins.
std::optional<EndRecord> find_end(const ByteSource& source, Layout& layout) {
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

// Offsets in the archive are relative to its first byte. With data prepended (a
// self-extractor stub) every stored offset is short by the stub's length; like Info-ZIP
// and zipfile, we infer that from where the central directory must end.
uint64_t prepended_bytes(const ByteSource& source, const EndRecord& end, Layout& layout) {
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
void check_entry_count(const EndRecord& end, Layout& layout) {
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

std::vector<CentralEntry> read_central(const ByteSource& source, uint64_t cd_start,
                                       const EndRecord& end, uint64_t shift, Layout& layout) {
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

}  // namespace

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

bool signature_at(const ByteSource& source, uint64_t offset, uint32_t sig) {
  std::array<unsigned char, 4> b{};
  if (!range_within(offset, 4, source.size()) ||
      !source.read_exact(offset, std::as_writable_bytes(std::span(b))))
    return false;
  return read_le<uint32_t>(b.data()) == sig;
}

std::optional<Directory> read_directory(const ByteSource& source, Layout& layout) {
  auto end = find_end(source, layout);
  if (!end) return std::nullopt;
  Directory dir;
  dir.end = std::move(*end);
  dir.shift = prepended_bytes(source, dir.end, layout);
  if (dir.end.disk != dir.end.cd_disk) {
    layout.add_error("the central directory is on disk " + std::to_string(dir.end.cd_disk) +
                     ", not on this disk (" + std::to_string(dir.end.disk) +
                     "); multi-disk archives are not supported");
    return dir;
  }
  check_entry_count(dir.end, layout);
  const auto cd_start = checked_add(dir.end.cd_offset, dir.shift);
  if (!cd_start || !range_within(*cd_start, dir.end.cd_size, source.size())) {
    layout.add_error("central directory [" + std::to_string(dir.end.cd_offset) + "+" +
                     std::to_string(dir.end.cd_size) + "] lies outside the file");
    return dir;
  }
  dir.central_read = true;
  dir.entries = read_central(source, *cd_start, dir.end, dir.shift, layout);
  return dir;
}

std::optional<uint64_t> member_data_offset(const ByteSource& source, const CentralEntry& e,
                                           uint64_t this_disk, std::string& error) {
  const std::string where = "entry '" + utf8_or_escaped(e.name) + "'";
  if (e.disk != this_disk) {
    error = where + " is on disk " + std::to_string(e.disk) +
            " (multi-disk archives are not supported)";
    return std::nullopt;
  }
  std::array<unsigned char, kLocalBytes> l{};
  if (!range_within(e.local_offset, kLocalBytes, source.size()) ||
      !source.read_exact(e.local_offset, std::as_writable_bytes(std::span(l)))) {
    error = where + ": local header offset " + std::to_string(e.local_offset) +
            " lies outside the file";
    return std::nullopt;
  }
  if (read_le<uint32_t>(l.data()) != kLocalSig) {
    error = where + ": no local header signature at offset " + std::to_string(e.local_offset);
    return std::nullopt;
  }
  // No overflow: local_offset + 30 lies inside the file, and the lengths are 16-bit.
  const uint64_t data =
      e.local_offset + kLocalBytes + read_le<uint16_t>(&l[26]) + read_le<uint16_t>(&l[28]);
  if (!range_within(data, e.csize, source.size())) {
    error = where + ": " + std::to_string(e.csize) + " stored bytes at offset " +
            std::to_string(data) + " run past the end of the file";
    return std::nullopt;
  }
  return data;
}

std::optional<LocalHeaderView> local_header_in(std::span<const std::byte> head, uint64_t offset) {
  if (!range_within(offset, kLocalBytes, head.size())) return std::nullopt;
  const std::byte* p = head.data() + offset;
  if (read_le<uint32_t>(p) != kLocalSig) return std::nullopt;
  const uint16_t name_len = read_le<uint16_t>(p + 26), extra_len = read_le<uint16_t>(p + 28);
  if (!range_within(offset + kLocalBytes, uint64_t{name_len} + extra_len, head.size()))
    return std::nullopt;
  LocalHeaderView v;
  v.flags = read_le<uint16_t>(p + 6);
  v.method = read_le<uint16_t>(p + 8);
  v.name.assign(reinterpret_cast<const char*>(p + kLocalBytes), name_len);
  v.data_offset = offset + kLocalBytes + name_len + extra_len;
  const uint32_t csize = read_le<uint32_t>(p + 18), usize = read_le<uint32_t>(p + 22);
  // Sizes follow the data when bit 3 is set; a saturated size is in the zip64 extra field,
  // which in a local header holds both sizes (APPNOTE 4.5.3).
  if ((v.flags & 0x0008) != 0) return v;
  if (csize != 0xFFFFFFFF && usize != 0xFFFFFFFF) {
    v.csize = csize;
    return v;
  }
  const std::byte* extra = p + kLocalBytes + name_len;
  for (size_t i = 0; i + 4 <= extra_len;) {
    const uint16_t id = read_le<uint16_t>(extra + i);
    const size_t len = read_le<uint16_t>(extra + i + 2);
    if (len > extra_len - i - 4) break;
    if (id == 0x0001 && len >= 16) {
      v.csize = read_le<uint64_t>(extra + i + 4 + 8);
      break;
    }
    i += 4 + len;
  }
  return v;
}

std::vector<LocalHeaderView> local_headers_in(std::span<const std::byte> head, size_t max) {
  std::vector<LocalHeaderView> out;
  uint64_t at = 0;
  while (out.size() < max) {
    auto v = local_header_in(head, at);
    if (!v) break;
    const auto next = v->csize ? checked_add(v->data_offset, *v->csize) : std::nullopt;
    out.push_back(std::move(*v));
    if (!next) break;
    at = *next;
  }
  return out;
}

}  // namespace payloadfs::formats::zip_archive

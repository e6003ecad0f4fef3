#pragma once
// Reading a ZIP archive's directory (PKWARE's APPNOTE.TXT 6.3.10), shared by the formats that
// are zip archives (zip, npz, pytorch): the end of central directory record (zip64 included,
// found from the end of the file as Info-ZIP and Python's zipfile do), the central directory's
// entries, and where each member's data starts, from its own local header (whose extra field
// may differ from the central copy: torch pads its members to 64 bytes there).
// Problems go to the layout's errors; the archive's magic range is set on the layout.

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "core/io/byte_source.hpp"
#include "core/model/layout.hpp"

namespace payloadfs::formats::zip_archive {

// Entries read from one central directory; more are reported, not read.
inline constexpr uint64_t kMaxEntries = 1'000'000;
// The fixed parts of the records (APPNOTE 4.3.7, 4.3.12, 4.3.14-4.3.16).
inline constexpr uint64_t kEocdBytes = 22;
inline constexpr uint64_t kMaxCommentBytes = 0xFFFF;
inline constexpr uint64_t kLocatorBytes = 20;
inline constexpr uint64_t kZip64EocdBytes = 56;  // without its extensible data
inline constexpr uint64_t kCentralBytes = 46;
inline constexpr uint64_t kLocalBytes = 30;
inline constexpr uint32_t kLocalSig = 0x04034b50;
inline constexpr uint32_t kCentralSig = 0x02014b50;
inline constexpr uint32_t kEocdSig = 0x06054b50;
inline constexpr uint32_t kZip64EocdSig = 0x06064b50;
inline constexpr uint32_t kZip64LocatorSig = 0x07064b50;

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
  uint64_t csize = 0, usize = 0, disk = 0;
  uint64_t local_offset = 0;  // in the file: with the prepended bytes added
  std::string name;           // UTF-8 (code page 437 names converted)
  std::optional<int64_t> unix_mtime;
};

struct Directory {
  EndRecord end;
  uint64_t shift = 0;  // bytes prepended to the archive (a self-extractor's stub)
  // Whether the central directory could be looked for: on this disk, inside the file.
  bool central_read = false;
  std::vector<CentralEntry> entries;
};

// The end record, the prepended bytes and the central directory's entries; nullopt (with the
// error added) when no end record is found. Sets layout.magic.
[[nodiscard]] std::optional<Directory> read_directory(const ByteSource& source, Layout& layout);

// Where the stored bytes of `entry` start: after its local header's name and extra field.
// nullopt, with the reason (prefixed by "entry '<name>'") in `error`, when the entry is on
// another disk, its local header is missing, or its stored bytes run past the end of the file.
[[nodiscard]] std::optional<uint64_t> member_data_offset(const ByteSource& source,
                                                         const CentralEntry& entry,
                                                         uint64_t this_disk, std::string& error);

// APPNOTE 4.4.5's name of a compression method ("stored", "deflated", ...; "unknown").
[[nodiscard]] std::string method_name(uint16_t method);

// Whether the 4 bytes at `offset` are the little-endian signature `sig`.
[[nodiscard]] bool signature_at(const ByteSource& source, uint64_t offset, uint32_t sig);

// A member whose bytes are stored as they are (method 0) and not encrypted.
[[nodiscard]] inline bool stored_plain(const CentralEntry& entry) {
  return entry.method == 0 && (entry.flags & 0x0001) == 0;
}

// A local file header seen in a file's first bytes (for detection, which sees no more).
struct LocalHeaderView {
  uint16_t flags = 0, method = 0;
  std::optional<uint64_t> csize;  // unknown when the sizes follow the data (flag bit 3)
  std::string name;
  uint64_t data_offset = 0;  // where its data starts (may lie past the bytes seen)
};

// The local header at `offset` of `head`, if it lies there whole (signature, fixed part, name,
// extra field).
[[nodiscard]] std::optional<LocalHeaderView> local_header_in(std::span<const std::byte> head,
                                                             uint64_t offset);

// The local headers that follow one another from offset 0 inside `head`, at most `max`: the
// walk stops at a header not wholly seen or one whose data size is unknown.
[[nodiscard]] std::vector<LocalHeaderView> local_headers_in(std::span<const std::byte> head,
                                                            size_t max);

}  // namespace payloadfs::formats::zip_archive

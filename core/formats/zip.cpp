// ZIP archives including ZIP64, after PKWARE's APPNOTE.TXT 6.3.10. The directory (end records,
// zip64, central directory, where each member's data starts) is read by support/zip_archive,
// which npz and pytorch share; this file shows it: the end record's fields, DOS and Unix times,
// one slice per file entry.

#include <algorithm>
#include <array>
#include <ctime>
#include <optional>
#include <string>
#include <vector>

#include "core/formats/builtin.hpp"
#include "core/formats/support/zip_archive.hpp"
#include "core/io/binary_reader.hpp"
#include "core/io/checked_math.hpp"
#include "core/render/json_text.hpp"

namespace payloadfs::formats {
namespace {

using namespace zip_archive;

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
    const auto dir = read_directory(source, layout);
    if (!dir) return layout;
    describe_end(dir->end, layout.header);
    layout.header["prepended_bytes"] = dir->shift;
    if (dir->central_read) add_entries(source, dir->entries, dir->end.disk, layout);
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

  // The stored bytes start after the local header, whose name and extra lengths can differ
  // from the central directory's copy.
  static void add_slice(const ByteSource& source, const CentralEntry& e, uint64_t this_disk,
                        Layout& layout) {
    std::string error;
    const auto data = member_data_offset(source, e, this_disk, error);
    if (!data) {
      layout.add_error(std::move(error));
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
    layout.slices.push_back(Slice{e.name, {*data, e.csize}, std::move(a), stored});
  }
};

}  // namespace

std::unique_ptr<Format> make_zip() {
  return std::make_unique<Zip>();
}

}  // namespace payloadfs::formats

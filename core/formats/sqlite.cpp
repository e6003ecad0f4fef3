// SQLite 3 database file (https://www.sqlite.org/fileformat2.html, section 1.3 "The Database
// Header"): the 100-byte header at the start of page 1, all multi-byte fields big-endian. The
// in-header database size is trusted only when it is nonzero and version-valid-for equals the
// file change counter; otherwise SQLite (btree.c lockBtree) takes the size from the file, and so
// do we. Only the header is decoded; b-tree pages are not walked.

#include <array>
#include <optional>
#include <string>

#include "core/formats/builtin.hpp"
#include "core/formats/support/signature.hpp"
#include "core/io/binary_reader.hpp"

namespace payloadfs::formats {
namespace {

constexpr auto kMagic = byte_string("SQLite format 3\0");
constexpr uint64_t kHeaderBytes = 100;
constexpr uint32_t kMaxSchemaFormat = 4;  // SQLITE_MAX_FILE_FORMAT
constexpr uint32_t kMinUsableSize = 480;

std::string dotted_version(uint32_t n) {
  return std::to_string(n / 1'000'000) + "." + std::to_string(n / 1000 % 1000) + "." +
         std::to_string(n % 1000);
}

Json encoding_name(uint32_t encoding) {
  switch (encoding) {
    case 1:
      return "utf-8";
    case 2:
      return "utf-16le";
    case 3:
      return "utf-16be";
    default:
      return nullptr;  // 0: not yet set (an empty database); others are invalid
  }
}

// The 100-byte header's fields, in file order, and what follows from them and the file size.
struct DbHeader {
  uint16_t page_size_raw = 0;
  uint8_t write_version = 0, read_version = 0, reserved_space = 0;
  uint8_t max_fraction = 0, min_fraction = 0, leaf_fraction = 0;
  uint32_t change_counter = 0, page_count = 0, freelist_trunk = 0, freelist_pages = 0;
  uint32_t schema_cookie = 0, schema_format = 0;
  int32_t default_cache_size = 0;
  uint32_t top_root = 0, text_encoding = 0;
  int32_t user_version = 0;
  uint32_t incremental_vacuum = 0;
  int32_t application_id = 0;
  std::array<std::byte, 20> reserved{};
  uint32_t version_valid_for = 0, sqlite_version = 0;

  uint64_t file_size = 0;
  uint32_t page_size = 0;
  bool page_size_ok = false;
  bool count_valid = false;
  std::optional<uint64_t> file_pages;
  std::optional<uint64_t> pages;

  void read(BinaryReader& r);
  void derive(uint64_t size);
  void describe(Json& h) const;
  void check(Layout& layout) const;
  void check_pages(Layout& layout) const;
};

void DbHeader::read(BinaryReader& r) {
  page_size_raw = r.u16();
  write_version = r.u8();
  read_version = r.u8();
  reserved_space = r.u8();
  max_fraction = r.u8();
  min_fraction = r.u8();
  leaf_fraction = r.u8();
  change_counter = r.u32();
  page_count = r.u32();
  freelist_trunk = r.u32();
  freelist_pages = r.u32();
  schema_cookie = r.u32();
  schema_format = r.u32();
  default_cache_size = r.i32();
  top_root = r.u32();
  text_encoding = r.u32();
  user_version = r.i32();
  incremental_vacuum = r.u32();
  application_id = r.i32();
  r.read_into(reserved);
  version_valid_for = r.u32();
  sqlite_version = r.u32();
}

void DbHeader::derive(uint64_t size) {
  file_size = size;
  // Page size: a power of two from 512 to 32768, or 1 meaning 65536.
  page_size = page_size_raw == 1 ? 65536U : page_size_raw;
  page_size_ok = page_size >= 512 && page_size <= 65536 && (page_size & (page_size - 1)) == 0;
  count_valid = page_count != 0 && version_valid_for == change_counter;
  if (page_size_ok) file_pages = (file_size + page_size - 1) / page_size;
  pages = count_valid ? std::optional<uint64_t>(page_count) : file_pages;
}

void DbHeader::describe(Json& h) const {
  h["page_size"] = page_size;
  h["page_size_raw"] = page_size_raw;
  h["write_version"] = write_version;
  h["read_version"] = read_version;
  h["reserved_space"] = reserved_space;
  h["max_payload_fraction"] = max_fraction;
  h["min_payload_fraction"] = min_fraction;
  h["leaf_payload_fraction"] = leaf_fraction;
  h["file_change_counter"] = change_counter;
  h["page_count"] = page_count;
  h["first_freelist_trunk"] = freelist_trunk;
  h["freelist_pages"] = freelist_pages;
  h["schema_cookie"] = schema_cookie;
  h["schema_format"] = schema_format;
  h["default_cache_size"] = default_cache_size;
  h["autovacuum_top_root"] = top_root;
  h["text_encoding"] = text_encoding;
  h["text_encoding_name"] = encoding_name(text_encoding);
  h["user_version"] = user_version;
  h["incremental_vacuum"] = incremental_vacuum;
  h["application_id"] = application_id;
  h["version_valid_for"] = version_valid_for;
  h["sqlite_version"] = sqlite_version;
  h["sqlite_version_string"] = dotted_version(sqlite_version);
  h["page_count_valid"] = count_valid;
  h["database_pages"] = pages ? Json(*pages) : Json(nullptr);
  h["database_pages_source"] = count_valid ? "header" : "file size";
  h["journal_mode"] = write_version == 2 && read_version == 2 ? "wal" : "rollback";
}

void DbHeader::check(Layout& layout) const {
  if (!page_size_ok)
    layout.add_error("page size field " + std::to_string(page_size_raw) +
                     " is not a power of two from 512 to 32768 or 1 (65536)");
  if (write_version < 1 || write_version > 2)
    layout.add_error("write version " + std::to_string(write_version) +
                     " is not 1 (legacy) or 2 (WAL); SQLite opens such files read-only");
  if (read_version < 1 || read_version > 2)
    layout.add_error("read version " + std::to_string(read_version) +
                     " is not 1 (legacy) or 2 (WAL); SQLite refuses to read such files");
  if (page_size_ok && page_size - reserved_space < kMinUsableSize)
    layout.add_error("usable page size " + std::to_string(page_size - reserved_space) +
                     " (page size minus " + std::to_string(reserved_space) +
                     " reserved bytes) is below the minimum of 480");
  if (max_fraction != 64 || min_fraction != 32 || leaf_fraction != 32)
    layout.add_error("payload fractions are " + std::to_string(max_fraction) + "/" +
                     std::to_string(min_fraction) + "/" + std::to_string(leaf_fraction) +
                     "; the format requires 64/32/32");
  check_pages(layout);
  if (schema_format > kMaxSchemaFormat)
    layout.add_error("schema format " + std::to_string(schema_format) +
                     " is newer than the formats 1-4 SQLite knows");
  if (text_encoding > 3)
    layout.add_error("text encoding " + std::to_string(text_encoding) +
                     " is not 1 (UTF-8), 2 (UTF-16le) or 3 (UTF-16be)");
  if (incremental_vacuum != 0 && top_root == 0)
    layout.add_error("incremental vacuum is set but auto-vacuum is off (largest root page 0)");
  for (std::byte b : reserved) {
    if (b != std::byte{0}) {
      layout.add_error("bytes 72-91 (reserved for expansion) are not all zero");
      break;
    }
  }
}

// The checks on the file size, the page count and the page numbers in the header.
void DbHeader::check_pages(Layout& layout) const {
  if (page_size_ok && file_size % page_size != 0)
    layout.add_error("file size " + std::to_string(file_size) + " is not a whole number of " +
                     std::to_string(page_size) + "-byte pages");
  if (count_valid && file_pages && page_count > *file_pages)
    layout.add_error("the header says " + std::to_string(page_count) +
                     " pages but the file holds only " + std::to_string(*file_pages));
  if (pages) {
    if (freelist_trunk > *pages)
      layout.add_error("first freelist trunk page " + std::to_string(freelist_trunk) +
                       " is past the last page " + std::to_string(*pages));
    if (freelist_pages >= *pages && freelist_pages != 0)
      layout.add_error("freelist of " + std::to_string(freelist_pages) +
                       " pages does not fit a database of " + std::to_string(*pages));
    if (top_root > *pages)
      layout.add_error("largest root b-tree page " + std::to_string(top_root) +
                       " is past the last page " + std::to_string(*pages));
  }
  if ((freelist_trunk == 0) != (freelist_pages == 0))
    layout.add_error("first freelist trunk page " + std::to_string(freelist_trunk) +
                     " and freelist page count " + std::to_string(freelist_pages) + " disagree");
}

class Sqlite final : public Format {
 public:
  std::string_view name() const noexcept override { return "sqlite"; }
  std::string_view description() const noexcept override { return "SQLite 3 database file"; }
  std::string_view signature() const noexcept override {
    return "'SQLite format 3' followed by a NUL byte (16 bytes) at 0";
  }

  bool detect(std::span<const std::byte> head, uint64_t) const override {
    return starts_with(head, kMagic);
  }

  Layout parse(const ByteSource& source) const override {
    Layout layout;
    layout.magic = magic_at_start(kMagic);
    const uint64_t file_size = source.size();
    if (file_size < kHeaderBytes) {
      layout.add_error("file is " + std::to_string(file_size) +
                       " bytes long, shorter than the 100-byte database header");
      return layout;
    }
    BinaryReader r(source, Endian::big);
    r.seek(kMagic.size());
    DbHeader db;
    db.read(r);
    if (!r.ok()) {
      layout.add_error("cannot read the database header: " + *r.error());
      return layout;
    }
    layout.slices.push_back(Slice{"header", {0, kHeaderBytes}, Json::object()});
    db.derive(file_size);
    db.describe(layout.header);
    db.check(layout);
    return layout;
  }
};

}  // namespace

std::unique_ptr<Format> make_sqlite() {
  return std::make_unique<Sqlite>();
}

}  // namespace payloadfs::formats

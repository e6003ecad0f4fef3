// cpio archives (GNU cpio's manual, "Options" -H; FreeBSD's cpio(5); the Linux kernel's
// Documentation/driver-api/early-userspace/buffer-format.rst for initramfs). Each entry is a
// header, its NUL-terminated name and its data; the entry named "TRAILER!!!" ends an archive.
// - newc ("070701") and crc ("070702", the same with a checksum of the data): a 110-byte
//   header of 8-digit hex fields ino mode uid gid nlink mtime filesize devmajor devminor
//   rdevmajor rdevminor namesize check; header plus name, and data, padded to 4 bytes.
// - odc ("070707", POSIX portable ASCII): a 76-byte header of octal fields dev[6] ino[6]
//   mode[6] uid[6] gid[6] nlink[6] rdev[6] mtime[11] namesize[6] filesize[11]; no padding.
// - old binary (magic 070707 as a u16 in the writer's byte order): 13 u16 fields magic dev ino
//   mode uid gid nlink rdev mtime[2] namesize filesize[2] (32-bit values high half first);
//   name and data padded to 2 bytes.
// An initramfs is often several archives one after another, with zero bytes between them; the
// walk goes on after a trailer, over zeros, while another archive header follows.

#include <algorithm>
#include <array>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "core/formats/builtin.hpp"
#include "core/formats/support/ascii_number.hpp"
#include "core/formats/support/signature.hpp"
#include "core/io/binary_reader.hpp"
#include "core/io/checked_math.hpp"
#include "core/render/json_text.hpp"

namespace payloadfs::formats {
namespace {

constexpr auto kNewcMagic = byte_string("070701");
constexpr auto kCrcMagic = byte_string("070702");
constexpr auto kOdcMagic = byte_string("070707");
constexpr uint16_t kBinMagic = 070707;
constexpr uint64_t kNewcHeaderBytes = 110;
constexpr uint64_t kOdcHeaderBytes = 76;
constexpr uint64_t kBinHeaderBytes = 26;
constexpr std::string_view kTrailer = "TRAILER!!!";
// Limits on hostile input: entries walked (trailers included), archives one after another,
// archives and non-regular entries listed in header.json, bytes of a name (PATH_MAX, as the
// kernel's initramfs reader) and of a symlink target shown, and zero bytes skipped between two
// archives.
constexpr uint64_t kMaxMembers = 1'000'000;
constexpr uint64_t kMaxArchives = 65'536;
constexpr size_t kMaxListedArchives = 256;
constexpr size_t kMaxListedOthers = 4096;
constexpr uint64_t kMaxNameBytes = 4096;
constexpr uint64_t kMaxLinkTargetBytes = 4096;
constexpr uint64_t kMaxZeroPadding = 16ULL << 20;
constexpr uint64_t kZeroScanStep = 4096;

enum class Kind { newc, crc, odc, bin_little, bin_big };

const char* kind_name(Kind kind) {
  switch (kind) {
    case Kind::newc:
      return "newc";
    case Kind::crc:
      return "crc";
    case Kind::odc:
      return "odc";
    case Kind::bin_little:
    case Kind::bin_big:
      return "bin";
  }
  return "unknown";
}

uint64_t header_bytes(Kind kind) {
  switch (kind) {
    case Kind::newc:
    case Kind::crc:
      return kNewcHeaderBytes;
    case Kind::odc:
      return kOdcHeaderBytes;
    default:
      return kBinHeaderBytes;
  }
}

// The alignment of name and data: newc and crc pad to 4, binary to 2, odc not at all.
uint64_t alignment(Kind kind) {
  return kind == Kind::odc ? 1 : kind == Kind::bin_little || kind == Kind::bin_big ? 2 : 4;
}

// The kind of header whose magic opens `head`, if any.
std::optional<Kind> kind_at(std::span<const std::byte> head) {
  if (starts_with(head, kNewcMagic)) return Kind::newc;
  if (starts_with(head, kCrcMagic)) return Kind::crc;
  if (starts_with(head, kOdcMagic)) return Kind::odc;
  if (head.size() >= 2 && read_le<uint16_t>(head.data()) == kBinMagic) return Kind::bin_little;
  if (head.size() >= 2 && read_be<uint16_t>(head.data()) == kBinMagic) return Kind::bin_big;
  return std::nullopt;
}

// One entry's header fields, as numbers.
struct Entry {
  Kind kind = Kind::newc;
  uint64_t header_offset = 0;
  uint64_t dev = 0, devminor = 0, ino = 0, mode = 0, uid = 0, gid = 0, nlink = 0, rdev = 0,
           rdevminor = 0, mtime = 0, size = 0, namesize = 0, check = 0;
};

// The fields of an ASCII header (`header` holds all its bytes); the error when one is not a
// number of its base.
std::optional<std::string> parse_ascii(std::string_view header, Entry& e) {
  struct AsciiField {
    const char* name;
    size_t width;
    uint64_t* value;
  };
  const bool odc = e.kind == Kind::odc;
  const std::array<AsciiField, 13> newc_fields{{{"ino", 8, &e.ino},
                                                {"mode", 8, &e.mode},
                                                {"uid", 8, &e.uid},
                                                {"gid", 8, &e.gid},
                                                {"nlink", 8, &e.nlink},
                                                {"mtime", 8, &e.mtime},
                                                {"filesize", 8, &e.size},
                                                {"devmajor", 8, &e.dev},
                                                {"devminor", 8, &e.devminor},
                                                {"rdevmajor", 8, &e.rdev},
                                                {"rdevminor", 8, &e.rdevminor},
                                                {"namesize", 8, &e.namesize},
                                                {"check", 8, &e.check}}};
  const std::array<AsciiField, 10> odc_fields{{{"dev", 6, &e.dev},
                                               {"ino", 6, &e.ino},
                                               {"mode", 6, &e.mode},
                                               {"uid", 6, &e.uid},
                                               {"gid", 6, &e.gid},
                                               {"nlink", 6, &e.nlink},
                                               {"rdev", 6, &e.rdev},
                                               {"mtime", 11, &e.mtime},
                                               {"namesize", 6, &e.namesize},
                                               {"filesize", 11, &e.size}}};
  const std::span<const AsciiField> fields =
      odc ? std::span<const AsciiField>(odc_fields) : std::span<const AsciiField>(newc_fields);
  size_t at = kNewcMagic.size();
  for (const AsciiField& f : fields) {
    const std::string_view text = header.substr(at, f.width);
    const auto value = parse_digits(text, odc ? 8 : 16);
    if (!value)
      return std::string("the ") + f.name + " field '" + utf8_or_escaped(text) + "' is not " +
             (odc ? "an octal" : "a hex") + " number";
    *f.value = *value;
    at += f.width;
  }
  return std::nullopt;
}

// The fields of an old binary header (26 bytes at `p`).
void parse_binary(const std::byte* p, Entry& e) {
  const Endian endian = e.kind == Kind::bin_little ? Endian::little : Endian::big;
  auto half = [&](size_t index) -> uint64_t {
    return read_endian<uint16_t>(p + 2 * index, endian);
  };
  e.dev = half(1);
  e.ino = half(2);
  e.mode = half(3);
  e.uid = half(4);
  e.gid = half(5);
  e.nlink = half(6);
  e.rdev = half(7);
  e.mtime = half(8) << 16 | half(9);
  e.namesize = half(10);
  e.size = half(11) << 16 | half(12);
}

// Parses the header of `kind` held in `bytes` (at least header_bytes(kind) long).
std::optional<std::string> parse_header(std::span<const std::byte> bytes, Entry& e) {
  if (e.kind == Kind::bin_little || e.kind == Kind::bin_big) {
    parse_binary(bytes.data(), e);
    return std::nullopt;
  }
  return parse_ascii(
      std::string_view(reinterpret_cast<const char*>(bytes.data()), header_bytes(e.kind)), e);
}

bool known_file_type(uint64_t mode) {
  switch (mode & 0170000) {
    case 0100000:
    case 0040000:
    case 0120000:
    case 0020000:
    case 0060000:
    case 0010000:
    case 0140000:
      return true;
    default:
      return false;
  }
}

const char* type_name(uint64_t mode) {
  switch (mode & 0170000) {
    case 0100000:
      return "file";
    case 0040000:
      return "directory";
    case 0120000:
      return "symlink";
    case 0020000:
      return "character device";
    case 0060000:
      return "block device";
    case 0010000:
      return "fifo";
    case 0140000:
      return "socket";
    default:
      return "unknown";
  }
}

// Whether `head` opens with a cpio header whose fields parse; the old binary header, whose
// magic is only 2 bytes, must also have a known file type and a NUL-terminated name.
bool detect_header(std::span<const std::byte> head) {
  const auto kind = kind_at(head);
  if (!kind || head.size() < header_bytes(*kind)) return false;
  Entry e;
  e.kind = *kind;
  if (parse_header(head, e) || e.namesize == 0) return false;
  if (*kind != Kind::bin_little && *kind != Kind::bin_big) return true;
  if (e.namesize > kMaxNameBytes || !known_file_type(e.mode)) return false;
  const uint64_t name_end = kBinHeaderBytes + e.namesize;
  if (head.size() < name_end) return false;
  return head[kBinHeaderBytes] != std::byte{0} && head[name_end - 1] == std::byte{0};
}

uint64_t align_up(uint64_t value, uint64_t to) {
  return (value + to - 1) / to * to;
}

struct Counts {
  uint64_t members = 0, regular = 0, directories = 0, symlinks = 0, other = 0, regular_bytes = 0;
};

// The walk over the entries of every archive in the file.
class CpioWalk {
 public:
  CpioWalk(const ByteSource& source, Layout& layout)
      : reader_(source), size_(source.size()), layout_(layout) {}

  void run() {
    begin_archive(0);
    while (step()) {
    }
    summarize();
  }

 private:
  void fail(std::string message) { layout_.add_error(std::move(message)); }

  void begin_archive(uint64_t offset) {
    archive_start_ = pos_ = offset;
    ++archive_count_;
    archive_members_ = 0;
  }

  // Closes the current archive's entry in header.json's list.
  void end_archive(std::optional<uint64_t> trailer_offset) {
    if (archives_.size() >= kMaxListedArchives) return;
    archives_.push_back({{"offset", archive_start_},
                         {"format", archive_format_},
                         {"members", archive_members_},
                         {"trailer_offset", trailer_offset ? Json(*trailer_offset) : Json()}});
  }

  // Walks one entry; false when the walk stops.
  bool step() {
    if (pos_ >= size_) {
      fail("archive at offset " + std::to_string(archive_start_) +
           " ends without its TRAILER!!! entry");
      end_marker_ = "eof";
      end_archive(std::nullopt);
      return false;
    }
    if (entries_ == kMaxMembers) {
      fail("more than " + std::to_string(kMaxMembers) + " entries; stopped at offset " +
           std::to_string(pos_));
      end_archive(std::nullopt);
      return false;
    }
    Entry e;
    std::string name;
    uint64_t data_offset = 0;
    if (!read_entry(e, name, data_offset)) {
      end_archive(std::nullopt);
      return false;
    }
    ++entries_;
    const uint64_t data_end = data_offset + e.size;  // read_entry checked it fits the file
    const uint64_t next = archive_start_ + align_up(data_end - archive_start_, alignment(e.kind));
    pos_ = std::min(next, size_);
    if (name == kTrailer) {
      end_marker_ = "TRAILER!!!";
      end_archive(e.header_offset);
      return next_archive();
    }
    ++archive_members_;
    add_entry(e, name, data_offset);
    return true;
  }

  // Reads the entry at pos_: its header, name and where its data starts; false (with the
  // error) when the walk stops.
  bool read_entry(Entry& e, std::string& name, uint64_t& data_offset) {
    const std::string where = "entry at offset " + std::to_string(pos_);
    std::array<std::byte, kNewcHeaderBytes> bytes{};
    const uint64_t available = std::min<uint64_t>(size_ - pos_, bytes.size());
    BinaryReader head = reader_.sub(pos_, available);
    head.read_into(std::span(bytes).first(static_cast<size_t>(available)));
    const auto kind = kind_at(std::span(bytes).first(static_cast<size_t>(available)));
    if (!head.ok() || !kind) {
      fail(where + " has no cpio magic");
      return false;
    }
    if (archive_members_ == 0) archive_format_ = kind_name(*kind);
    e.kind = *kind;
    e.header_offset = pos_;
    if (available < header_bytes(*kind)) {
      fail("truncated header: " + where + " has " + std::to_string(available) + " of " +
           std::to_string(header_bytes(*kind)) + " bytes");
      return false;
    }
    if (const auto error = parse_header(bytes, e)) {
      fail(where + ": " + *error);
      return false;
    }
    if (!read_name(e, name)) return false;
    const uint64_t name_end = pos_ + header_bytes(e.kind) + e.namesize;
    data_offset = archive_start_ + align_up(name_end - archive_start_, alignment(e.kind));
    if (!range_within(data_offset, e.size, size_)) {
      fail("entry '" + utf8_or_escaped(name) + "' at offset " + std::to_string(pos_) +
           ": its data (" + std::to_string(e.size) + " bytes) runs past the end of the file");
      return false;
    }
    return true;
  }

  // The name after the header: namesize bytes, up to the first NUL.
  bool read_name(const Entry& e, std::string& name) {
    const std::string where = "entry at offset " + std::to_string(pos_);
    if (e.namesize == 0) {
      fail(where + " has an empty name (namesize 0)");
      return false;
    }
    if (e.namesize > kMaxNameBytes) {
      fail(where + ": a name of " + std::to_string(e.namesize) + " bytes exceeds the limit of " +
           std::to_string(kMaxNameBytes));
      return false;
    }
    BinaryReader text = reader_.sub(pos_ + header_bytes(e.kind), e.namesize);
    name = text.text(e.namesize);
    if (!text.ok()) {
      fail(where + ": its name (" + std::to_string(e.namesize) +
           " bytes) runs past the end of the file");
      return false;
    }
    name.resize(std::min(name.size(), name.find('\0')));
    return true;
  }

  // After a trailer: zero padding, then another archive, the end of the file, or other data
  // (a compressed archive, in an initramfs) where the walk stops without an error.
  bool next_archive() {
    if (!skip_zeros()) return false;
    if (pos_ == size_) return false;
    std::array<std::byte, 6> magic{};
    const uint64_t n = std::min<uint64_t>(size_ - pos_, magic.size());
    BinaryReader head = reader_.sub(pos_, n);
    head.read_into(std::span(magic).first(static_cast<size_t>(n)));
    if (!head.ok() || !kind_at(std::span(magic).first(static_cast<size_t>(n)))) {
      trailing_offset_ = pos_;
      return false;
    }
    if (archive_count_ == kMaxArchives) {
      fail("more than " + std::to_string(kMaxArchives) + " archives; stopped at offset " +
           std::to_string(pos_));
      return false;
    }
    begin_archive(pos_);
    return true;
  }

  // Moves pos_ over zero bytes; false when the limit stops it.
  bool skip_zeros() {
    const uint64_t start = pos_;
    std::array<std::byte, kZeroScanStep> chunk{};
    while (pos_ < size_) {
      if (pos_ - start >= kMaxZeroPadding) {
        fail("more than " + std::to_string(kMaxZeroPadding) + " zero bytes after the archive " +
             "trailer at offset " + std::to_string(start) + "; stopped there");
        return false;
      }
      const uint64_t n = std::min<uint64_t>(size_ - pos_, chunk.size());
      BinaryReader data = reader_.sub(pos_, n);
      const auto bytes = std::span(chunk).first(static_cast<size_t>(n));
      if (!data.read_into(bytes)) return false;
      const auto nonzero =
          std::find_if(bytes.begin(), bytes.end(), [](std::byte b) { return b != std::byte{0}; });
      pos_ += static_cast<uint64_t>(nonzero - bytes.begin());
      if (nonzero != bytes.end()) break;
    }
    return true;
  }

  void add_entry(const Entry& e, const std::string& name, uint64_t data_offset) {
    ++counts_.members;
    const uint64_t type = e.mode & 0170000;
    if (type != 0100000) {
      ++(type == 0040000   ? counts_.directories
         : type == 0120000 ? counts_.symlinks
                           : counts_.other);
      list_other(e, name, data_offset);
      return;
    }
    ++counts_.regular;
    counts_.regular_bytes = checked_add(counts_.regular_bytes, e.size).value_or(UINT64_MAX);
    std::string_view slice_name = name;
    while (slice_name.starts_with("./") && slice_name.size() > 2) slice_name.remove_prefix(2);
    Json attributes = Json::object();
    attributes["mode"] = octal_text(e.mode);
    attributes["mtime"] = e.mtime;
    attributes["uid"] = e.uid;
    attributes["gid"] = e.gid;
    attributes["ino"] = e.ino;
    attributes["nlink"] = e.nlink;
    attributes["size"] = e.size;
    if (e.kind == Kind::crc) attributes["check"] = e.check;
    attributes["header_offset"] = e.header_offset;
    attributes["archive"] = archive_count_ - 1;
    attributes["stored_name"] = utf8_or_escaped(name);
    layout_.slices.push_back(
        Slice{std::string(slice_name), {data_offset, e.size}, std::move(attributes)});
  }

  // Directories, symlinks (with their target) and devices, listed in header.json.
  void list_other(const Entry& e, const std::string& name, uint64_t data_offset) {
    if (others_.size() >= kMaxListedOthers) {
      others_cut_ = true;
      return;
    }
    Json other = {
        {"path", utf8_or_escaped(name)}, {"type", type_name(e.mode)}, {"mode", octal_text(e.mode)}};
    if ((e.mode & 0170000) == 0120000 && e.size <= kMaxLinkTargetBytes) {
      BinaryReader target = reader_.sub(data_offset, e.size);
      const std::string text = target.text(e.size);
      if (target.ok()) other["target"] = utf8_or_escaped(text);
    }
    others_.push_back(std::move(other));
  }

  void summarize() {
    auto& h = layout_.header;
    h["format"] = archives_.empty() ? Json(archive_format_) : archives_.front()["format"];
    h["members"] = counts_.members;
    h["regular_files"] = counts_.regular;
    h["directories"] = counts_.directories;
    h["symlinks"] = counts_.symlinks;
    h["other_members"] = counts_.other;
    h["regular_bytes"] = counts_.regular_bytes;
    h["archive_count"] = archive_count_;
    h["archives"] = archives_;
    h["others"] = others_;
    if (others_cut_)
      fail("more than " + std::to_string(kMaxListedOthers) +
           " directories, links and devices; only the first are listed");
    if (archive_count_ > kMaxListedArchives)
      fail(std::to_string(archive_count_) + " archives; only the first " +
           std::to_string(kMaxListedArchives) + " are listed");
    h["end_marker"] = end_marker_;
    h["trailing_data_offset"] = trailing_offset_ ? Json(*trailing_offset_) : Json(nullptr);
    // The first archive's magic: 2 bytes for the binary format, 6 for the others.
    const bool binary = h["format"] == "bin";
    layout_.magic = ByteRange{0, binary ? 2 : kNewcMagic.size()};
  }

  BinaryReader reader_;
  const uint64_t size_;
  Layout& layout_;
  uint64_t pos_ = 0, archive_start_ = 0, entries_ = 0;
  uint64_t archive_count_ = 0, archive_members_ = 0;
  std::string archive_format_ = "unknown";
  Counts counts_;
  Json archives_ = Json::array();
  Json others_ = Json::array();
  bool others_cut_ = false;
  std::string end_marker_ = "none";
  std::optional<uint64_t> trailing_offset_;
};

class Cpio final : public Format {
 public:
  std::string_view name() const noexcept override { return "cpio"; }
  std::string_view description() const noexcept override {
    return "cpio archive (newc, crc, odc, old binary; concatenated initramfs archives)";
  }
  std::string_view signature() const noexcept override {
    return "'070701', '070702' or '070707' at 0 followed by a header of valid hex or octal "
           "fields; or the binary magic 070707 as a u16 in either byte order with a known file "
           "type and a NUL-terminated name";
  }

  bool detect(std::span<const std::byte> head, uint64_t) const override {
    return detect_header(head);
  }

  Layout parse(const ByteSource& source) const override {
    Layout layout;
    CpioWalk(source, layout).run();
    return layout;
  }
};

}  // namespace

std::unique_ptr<Format> make_cpio() {
  return std::make_unique<Cpio>();
}

}  // namespace payloadfs::formats

// tar archives: POSIX.1-1988 ustar and POSIX.1-2001 pax (IEEE Std 1003.1-2017, "pax", section
// "ustar Interchange Format" and "pax Interchange Format"), the GNU format (GNU tar manual,
// "Basic Tar Format" / tar.h: ././@LongLink 'L'/'K' headers, base-256 numbers, old sparse 'S'
// headers) and Unix v7 headers. An archive is a sequence of 512-byte header blocks, each
// followed by its data rounded up to 512 bytes, ended by two zero blocks. We walk the headers
// only and seek over member data.

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "core/formats/builtin.hpp"
#include "core/io/byte_source.hpp"
#include "core/io/checked_math.hpp"
#include "core/render/json_text.hpp"

namespace payloadfs::formats {
namespace {

constexpr uint64_t kBlock = 512;
constexpr uint64_t kMaxMembers = 1'000'000;
// Every block we look at as a header (members, pax/long-name headers, sparse extensions).
constexpr uint64_t kMaxHeaderBlocks = 4'000'000;
// Size limit of one pax extended header or GNU long name/link.
constexpr uint64_t kMaxMetaBytes = 1 << 20;

using Block = std::array<unsigned char, kBlock>;

// Field offsets and widths of the ustar header.
struct Field {
  size_t offset;
  size_t width;
};
// (linkname 157/100 and version 263/2 are not needed.)
constexpr Field kName{0, 100}, kMode{100, 8}, kUid{108, 8}, kGid{116, 8}, kSize{124, 12},
    kMtime{136, 12}, kChksum{148, 8}, kMagic{257, 6}, kUname{265, 32}, kGname{297, 32},
    kPrefix{345, 155};
constexpr size_t kTypeflag = 156;
constexpr size_t kGnuIsExtended = 482;        // old GNU sparse header: more sparse blocks follow
constexpr size_t kSparseExtIsExtended = 504;  // the same flag in a sparse extension block

std::string_view field_view(const Block& b, Field f) {
  return {reinterpret_cast<const char*>(b.data()) + f.offset, f.width};
}

// A NUL-terminated string field (the whole field when it has no NUL).
std::string field_string(const Block& b, Field f) {
  const std::string_view v = field_view(b, f);
  return std::string(v.substr(0, v.find('\0')));
}

// A numeric field: octal digits with optional leading/trailing spaces, ended by NUL or space
// (what tarfile.nti and GNU tar accept), or GNU base-256 when the first byte is 0x80 (positive)
// or 0xff (negative two's complement).
std::optional<int64_t> parse_numeric(std::string_view f) {
  if (f.empty()) return 0;
  const auto first = static_cast<unsigned char>(f[0]);
  if (first == 0x80 || first == 0xff) {
    uint64_t value = first == 0xff ? ~uint64_t{0} : 0;  // sign-extend negatives
    for (size_t i = 1; i < f.size(); ++i) {
      const uint64_t top = value >> 56;
      // Every byte shifted out must be pure sign extension, or the number needs > 64 bits.
      if (top != (first == 0xff ? 0xffu : 0u)) return std::nullopt;
      value = (value << 8) | static_cast<unsigned char>(f[i]);
    }
    const auto signed_value = static_cast<int64_t>(value);
    if ((first == 0xff) != (signed_value < 0)) return std::nullopt;
    return signed_value;
  }
  f = f.substr(0, f.find('\0'));
  while (!f.empty() && f.front() == ' ') f.remove_prefix(1);
  while (!f.empty() && f.back() == ' ') f.remove_suffix(1);
  uint64_t value = 0;
  for (const char c : f) {
    if (c < '0' || c > '7') return std::nullopt;
    if (value > (uint64_t{INT64_MAX} >> 3)) return std::nullopt;
    value = value * 8 + static_cast<uint64_t>(c - '0');
  }
  return static_cast<int64_t>(value);
}

// The checksum is the sum of the header bytes with the checksum field taken as spaces;
// historic writers summed signed chars, so both sums are accepted (as tarfile and GNU tar do).
bool checksum_ok(const Block& b) {
  const auto stored = parse_numeric(field_view(b, kChksum));
  if (!stored) return false;
  int64_t unsigned_sum = 0, signed_sum = 0;
  for (size_t i = 0; i < kBlock; ++i) {
    const bool in_field = i >= kChksum.offset && i < kChksum.offset + kChksum.width;
    const unsigned char c = in_field ? ' ' : b[i];
    unsigned_sum += c;
    signed_sum += static_cast<signed char>(c);
  }
  return *stored == unsigned_sum || *stored == signed_sum;
}

bool all_zero(const Block& b) {
  return std::all_of(b.begin(), b.end(), [](unsigned char c) { return c == 0; });
}

enum class Magic { posix, gnu, none };

Magic magic_of(const Block& b) {
  const std::string_view m = field_view(b, Field{kMagic.offset, 8});
  if (m.substr(0, 6) == std::string_view("ustar\0", 6)) return Magic::posix;
  if (m == std::string_view("ustar  \0", 8)) return Magic::gnu;
  return Magic::none;
}

// A v7 header has no magic, so we ask more of it: a checksum that validates, a printable
// name, numeric fields that parse, a v7 type flag and no ustar fields.
bool plausible_v7(const Block& b) {
  if (!checksum_ok(b)) return false;
  const std::string_view name = field_view(b, kName);
  const size_t end = name.find('\0');
  if (end == 0) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    const auto c = static_cast<unsigned char>(name[i]);
    if (i < end ? c < 0x20 || c == 0x7f : c != 0) return false;
  }
  for (const Field f : {kMode, kUid, kGid, kSize, kMtime})
    if (!parse_numeric(field_view(b, f))) return false;
  const char t = static_cast<char>(b[kTypeflag]);
  if (t != '\0' && (t < '0' || t > '7')) return false;
  // v7 headers end at 257. GNU tar's v7 output also fills devmajor/devminor (329..344).
  auto zero = [&](size_t from, size_t to) {
    return std::all_of(b.begin() + static_cast<ptrdiff_t>(from),
                       b.begin() + static_cast<ptrdiff_t>(to),
                       [](unsigned char c) { return c == 0; });
  };
  return zero(kMagic.offset, 329) && parse_numeric(field_view(b, Field{329, 8})) &&
         parse_numeric(field_view(b, Field{337, 8})) && zero(345, kBlock);
}

bool detect_block(const Block& b) {
  if (magic_of(b) != Magic::none) return checksum_ok(b);
  return plausible_v7(b);
}

// pax keywords we use; others (atime, ctime, hdrcharset, vendor keys) are ignored.
bool interesting_key(std::string_view key) {
  static constexpr std::string_view kKeys[] = {"path", "linkpath", "size",  "uid",
                                               "gid",  "uname",    "gname", "mtime"};
  if (std::find(std::begin(kKeys), std::end(kKeys), key) != std::end(kKeys)) return true;
  return key.starts_with("GNU.sparse.");
}

using PaxRecords = std::map<std::string, std::string, std::less<>>;

// Parses "<len> <key>=<value>\n" records; <len> counts the whole record. Records with an empty
// value delete the keyword (POSIX), which we keep as an empty string so it overrides globals.
std::optional<std::string> parse_pax(std::string_view data, PaxRecords& out) {
  size_t p = 0;
  while (p < data.size()) {
    size_t q = p;
    uint64_t len = 0;
    while (q < data.size() && data[q] >= '0' && data[q] <= '9' && len <= data.size()) {
      len = len * 10 + static_cast<uint64_t>(data[q] - '0');
      ++q;
    }
    if (q == p || q >= data.size() || data[q] != ' ')
      return "pax record at byte " + std::to_string(p) + " has no length";
    if (len < q - p + 3 || len > data.size() - p)
      return "pax record at byte " + std::to_string(p) + " has a bad length " + std::to_string(len);
    const size_t end = p + static_cast<size_t>(len);
    if (data[end - 1] != '\n')
      return "pax record at byte " + std::to_string(p) + " does not end with a newline";
    const std::string_view kv = data.substr(q + 1, end - 1 - (q + 1));
    const size_t eq = kv.find('=');
    if (eq == std::string_view::npos || eq == 0)
      return "pax record at byte " + std::to_string(p) + " has no keyword=value";
    const std::string_view key = kv.substr(0, eq);
    if (interesting_key(key)) out[std::string(key)] = std::string(kv.substr(eq + 1));
    p = end;
  }
  return std::nullopt;
}

std::optional<int64_t> parse_decimal(std::string_view s) {
  bool negative = false;
  if (!s.empty() && s.front() == '-') {
    negative = true;
    s.remove_prefix(1);
  }
  if (s.empty()) return std::nullopt;
  uint64_t v = 0;
  for (const char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    const auto digit = static_cast<uint64_t>(c - '0');
    if (v > (uint64_t{INT64_MAX} - digit) / 10) return std::nullopt;
    v = v * 10 + digit;
  }
  return negative ? -static_cast<int64_t>(v) : static_cast<int64_t>(v);
}

// pax mtime: decimal seconds with an optional fraction; integers stay integers in JSON.
std::optional<Json> parse_pax_time(std::string_view s) {
  const size_t dot = s.find('.');
  const auto whole = parse_decimal(s.substr(0, dot));
  if (!whole) return std::nullopt;
  if (dot == std::string_view::npos) return Json(*whole);
  const std::string_view frac = s.substr(dot + 1);
  double f = 0, scale = 0.1;
  for (const char c : frac) {
    if (c < '0' || c > '9') return std::nullopt;
    f += scale * (c - '0');
    scale /= 10;
  }
  const bool negative = !s.empty() && s.front() == '-';
  return Json(static_cast<double>(*whole) + (negative ? -f : f));
}

std::string octal_mode(int64_t mode) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%04llo", static_cast<unsigned long long>(mode));
  return buf;
}

struct Counts {
  uint64_t members = 0, regular = 0, directories = 0, symlinks = 0, hardlinks = 0, sparse = 0,
           other = 0, regular_bytes = 0, pax_headers = 0, pax_global_headers = 0,
           gnu_long_names = 0;
};

class Tar final : public Format {
 public:
  std::string_view name() const noexcept override { return "tar"; }
  std::string_view description() const noexcept override {
    return "tar archive (POSIX ustar and pax, GNU, v7)";
  }
  std::string_view signature() const noexcept override {
    return "'ustar\\0' or 'ustar  \\0' at 257 with a valid header checksum; or a v7 header (no "
           "magic) whose checksum validates, with a printable name and octal fields";
  }

  bool detect(std::span<const std::byte> head, uint64_t size) const override {
    if (head.size() < kBlock || size < kBlock) return false;
    Block b;
    std::memcpy(b.data(), head.data(), kBlock);
    return detect_block(b);
  }

  Layout parse(const ByteSource& source) const override {
    Layout layout;
    Walk walk(source, layout);
    while (walk.step()) {
    }
    walk.summarize();
    return layout;
  }

 private:
  // The walk over the header blocks, and what it carries from one header to the next.
  class Walk {
   public:
    Walk(const ByteSource& source, Layout& layout)
        : source_(source), layout_(layout), size_(source.size()) {}

    // Walks one header and its data; false when the walk stops.
    bool step() {
      Block b;
      if (!read_header(b)) return false;
      const Magic magic = magic_of(b);
      if (!archive_magic_) archive_magic_ = magic;
      if (!meta_pending_) member_start_ = pos_;
      const char type = static_cast<char>(b[kTypeflag]);
      const auto header_size = parse_numeric(field_view(b, kSize));
      if (!header_size || *header_size < 0) {
        fail("header at offset " + std::to_string(pos_) + " has an invalid size field");
        return false;
      }
      uint64_t data_start = pos_ + kBlock;
      uint64_t data_size = static_cast<uint64_t>(*header_size);
      const bool is_meta = type == 'x' || type == 'X' || type == 'g' || type == 'L' || type == 'K';

      PaxRecords merged;  // global records overridden by this member's own
      if (!is_meta) merged = merged_records(data_size);
      // POSIX: links, devices, FIFOs and directories have no data records, whatever their
      // size field says (tarfile agrees).
      if (type >= '1' && type <= '6') data_size = 0;
      if (type == 'S') {  // old GNU sparse: extension blocks of the sparse map follow the header
        skip_sparse_map(b, data_start);
        if (data_start > size_) return false;
      }
      const auto padded = checked_add(data_size, kBlock - 1);
      const auto next = padded ? checked_add(data_start, *padded / kBlock * kBlock) : std::nullopt;
      const bool data_fits = range_within(data_start, data_size, size_);

      if (is_meta) {
        if (!read_meta(type, data_start, data_size, data_fits)) return false;
      } else {
        if (++counts_.members > kMaxMembers) {
          fail("more than " + std::to_string(kMaxMembers) + " members; stopping");
          return false;
        }
        add_member(b, magic, type, member_start_, data_start, data_size, data_fits, merged,
                   long_name_, counts_, layout_);
        local_.clear();
        long_name_.reset();
        meta_pending_ = false;
      }
      if (!next || *next > size_) {
        fail("member data at offset " + std::to_string(data_start) + " (" +
             std::to_string(data_size) + " bytes) runs past the end of the file");
        end_marker_ = "eof";
        return false;
      }
      pos_ = *next;
      return true;
    }

    void summarize() {
      auto& h = layout_.header;
      h["format"] = format_name(archive_magic_, counts_);
      h["members"] = std::min(counts_.members, kMaxMembers);
      h["regular_files"] = counts_.regular;
      h["directories"] = counts_.directories;
      h["symlinks"] = counts_.symlinks;
      h["hardlinks"] = counts_.hardlinks;
      h["sparse_files"] = counts_.sparse;
      h["other_members"] = counts_.other;
      h["regular_bytes"] = counts_.regular_bytes;
      h["pax_headers"] = counts_.pax_headers;
      h["pax_global_headers"] = counts_.pax_global_headers;
      h["gnu_long_name_headers"] = counts_.gnu_long_names;
      h["end_offset"] = end_offset_ ? Json(*end_offset_) : Json(nullptr);
      h["end_marker"] = end_marker_;
      if (archive_magic_ && *archive_magic_ != Magic::none)
        layout_.magic = ByteRange{kMagic.offset, 8};
    }

   private:
    void fail(const std::string& message) { layout_.add_error(message); }

    // Reads the header block at pos_; false when the walk stops there (the end of the archive,
    // of the file, or a header that cannot be trusted).
    bool read_header(Block& b) {
      if (pos_ == size_) {
        fail(meta_pending_ ? "archive ends after an extended header, before its member"
                           : "archive ends at offset " + std::to_string(pos_) +
                                 " without the two zero blocks that end a tar archive");
        end_marker_ = "eof";
        return false;
      }
      if (size_ - pos_ < kBlock) {
        fail("truncated header: " + std::to_string(size_ - pos_) + " bytes at offset " +
             std::to_string(pos_));
        return false;
      }
      // Exactly one block per header, so member data is never read.
      if (!source_.read_exact(pos_, std::as_writable_bytes(std::span(b)))) {
        fail("cannot read the header at offset " + std::to_string(pos_));
        return false;
      }
      if (all_zero(b)) {
        end_of_archive();
        return false;
      }
      if (++blocks_ > kMaxHeaderBlocks) {
        fail("more than " + std::to_string(kMaxHeaderBlocks) + " header blocks; stopping");
        return false;
      }
      if (!checksum_ok(b)) {
        fail("header at offset " + std::to_string(pos_) + " has a bad checksum");
        return false;
      }
      return true;
    }

    // A zero block at pos_: the end of the archive, which should be two of them.
    void end_of_archive() {
      end_offset_ = pos_;
      if (meta_pending_)
        fail("extended header at offset " + std::to_string(member_start_) +
             " is followed by the end of the archive");
      Block next{};
      const bool second =
          size_ - pos_ >= 2 * kBlock &&
          source_.read_exact(pos_ + kBlock, std::as_writable_bytes(std::span(next))) &&
          all_zero(next);
      if (second) {
        end_marker_ = "two zero blocks";
      } else {
        end_marker_ = "one zero block";
        fail("lone zero block at offset " + std::to_string(pos_) +
             " (the end of an archive is two zero blocks)");
      }
    }

    // The pax records that apply to the member: globals overridden by the member's own, with
    // deleted keywords dropped. A pax size replaces data_size.
    PaxRecords merged_records(uint64_t& data_size) {
      PaxRecords merged = global_;
      for (const auto& [k, v] : local_) merged[k] = v;
      for (auto it = merged.begin(); it != merged.end();) {
        it = it->second.empty() ? merged.erase(it) : std::next(it);
      }
      if (const auto it = merged.find("size"); it != merged.end()) {
        const auto v = parse_decimal(it->second);
        if (v && *v >= 0)
          data_size = static_cast<uint64_t>(*v);
        else
          fail("member at offset " + std::to_string(member_start_) + ": bad pax size '" +
               utf8_or_escaped(it->second) + "'");
      }
      return merged;
    }

    // Moves data_start past the extension blocks of an old GNU sparse map; past the end of
    // the file when the map is truncated.
    void skip_sparse_map(const Block& b, uint64_t& data_start) {
      bool extended = b[kGnuIsExtended] != 0;
      Block ext;
      while (extended) {
        if (++blocks_ > kMaxHeaderBlocks || !range_within(data_start, kBlock, size_) ||
            !source_.read_exact(data_start, std::as_writable_bytes(std::span(ext)))) {
          fail("sparse header at offset " + std::to_string(pos_) + " has a truncated map");
          data_start = size_ + 1;  // marks the walk as unable to continue
          return;
        }
        extended = ext[kSparseExtIsExtended] != 0;
        data_start += kBlock;
      }
    }

    // Reads an extended header ('x', 'X', 'g', 'L' or 'K'); false when the walk stops.
    bool read_meta(char type, uint64_t data_start, uint64_t data_size, bool data_fits) {
      meta_pending_ = true;
      if (data_size > kMaxMetaBytes || !data_fits) {
        fail(std::string("extended header ('") + type + "') at offset " + std::to_string(pos_) +
             (data_fits ? " exceeds the limit of " + std::to_string(kMaxMetaBytes) + " bytes"
                        : " runs past the end of the file"));
        return false;
      }
      std::string data(static_cast<size_t>(data_size), '\0');
      if (!source_.read_exact(data_start, std::as_writable_bytes(std::span(data)))) {
        fail("cannot read the extended header at offset " + std::to_string(pos_));
        return false;
      }
      if (type == 'L' || type == 'K') {
        ++counts_.gnu_long_names;
        if (type == 'L') long_name_ = data.substr(0, data.find('\0'));
        return true;
      }
      const bool is_global = type == 'g';
      ++(is_global ? counts_.pax_global_headers : counts_.pax_headers);
      PaxRecords& target = is_global ? global_ : local_;
      if (const auto err = parse_pax(data, target))
        fail("pax header at offset " + std::to_string(pos_) + ": " + *err);
      if (is_global) {
        // POSIX: an empty value in a global header removes the default.
        for (auto it = global_.begin(); it != global_.end();)
          it = it->second.empty() ? global_.erase(it) : std::next(it);
        meta_pending_ = !local_.empty() || long_name_;
      }
      return true;
    }

    const ByteSource& source_;
    Layout& layout_;
    const uint64_t size_;
    Counts counts_;
    PaxRecords global_;                     // from 'g' headers: defaults for every later member
    PaxRecords local_;                      // from 'x' headers: the next member only
    std::optional<std::string> long_name_;  // GNU 'L'; 'K' (long link target) is not needed
    std::optional<Magic> archive_magic_;
    bool meta_pending_ = false;
    uint64_t pos_ = 0, blocks_ = 0, member_start_ = 0;
    std::optional<uint64_t> end_offset_;
    std::string end_marker_ = "none";
  };

  static std::string format_name(std::optional<Magic> magic, const Counts& counts) {
    if (!magic) return "unknown";
    switch (*magic) {
      case Magic::gnu:
        return "gnu";
      case Magic::posix:
        return counts.pax_headers + counts.pax_global_headers > 0 ? "pax" : "ustar";
      case Magic::none:
        return "v7";
    }
    return "unknown";
  }

  // The member's name: pax path, else GNU long name, else the header's (prefix and) name.
  static std::string member_name(const Block& b, Magic magic, char type, const PaxRecords& pax,
                                 const std::optional<std::string>& long_name) {
    if (const auto it = pax.find("path"); it != pax.end()) return it->second;
    if (long_name) return *long_name;
    std::string name = field_string(b, kName);
    const std::string prefix = field_string(b, kPrefix);
    // The prefix field exists in POSIX ustar only; GNU keeps atime/ctime there.
    if (magic == Magic::posix && !prefix.empty() && type != 'L' && type != 'K')
      name = prefix + "/" + name;
    return name;
  }

  static void add_member(const Block& b, Magic magic, char type, uint64_t header_offset,
                         uint64_t data_start, uint64_t data_size, bool data_fits,
                         const PaxRecords& pax, const std::optional<std::string>& long_name,
                         Counts& counts, Layout& layout) {
    const std::string name = member_name(b, magic, type, pax, long_name);
    const bool sparse = type == 'S' || std::any_of(pax.begin(), pax.end(), [](const auto& kv) {
                          return kv.first.starts_with("GNU.sparse.");
                        });
    // Old archives mark directories with a trailing slash on a regular type flag (GNU tar and
    // tarfile read them as directories).
    const bool file_type = type == '0' || type == '\0' || type == '7';
    const bool regular = file_type && !name.ends_with('/');
    if (sparse) {
      ++counts.sparse;
      return;
    }
    if (type == '5' || (file_type && !regular))
      ++counts.directories;
    else if (type == '2')
      ++counts.symlinks;
    else if (type == '1')
      ++counts.hardlinks;
    else if (!regular)
      ++counts.other;
    if (!regular) return;
    ++counts.regular;
    counts.regular_bytes = checked_add(counts.regular_bytes, data_size).value_or(UINT64_MAX);
    if (!data_fits) return;  // the walk reports the truncation

    Json attrs = member_attributes(b, magic, type, header_offset, data_size, pax, name, layout);
    // `tar -cf a.tar .` stores "./x"; the slice is "x". Other names (absolute ones included)
    // stay as stored, so raw/ shows their odd components.
    std::string_view slice_name = name;
    while (slice_name.starts_with("./") && slice_name.size() > 2) slice_name.remove_prefix(2);
    layout.slices.push_back(
        Slice{std::string(slice_name), {data_start, data_size}, std::move(attrs)});
  }

  // A regular file's attributes: pax records override the header's fields.
  static Json member_attributes(const Block& b, Magic magic, char type, uint64_t header_offset,
                                uint64_t data_size, const PaxRecords& pax, const std::string& name,
                                Layout& layout) {
    const std::string where =
        "member '" + utf8_or_escaped(name) + "' at offset " + std::to_string(header_offset);
    Json attrs = Json::object();
    auto numeric = [&](const char* key, Field f) -> int64_t {
      if (const auto it = pax.find(key); it != pax.end()) {
        if (const auto v = parse_decimal(it->second)) return *v;
        layout.add_error(where + ": bad pax " + key + " '" + utf8_or_escaped(it->second) + "'");
      }
      const auto v = parse_numeric(field_view(b, f));
      if (!v) layout.add_error(where + ": bad " + key + " field");
      return v.value_or(0);
    };
    auto text = [&](const char* key, Field f) {
      if (const auto it = pax.find(key); it != pax.end()) return utf8_or_escaped(it->second);
      return utf8_or_escaped(field_string(b, f));
    };
    const auto mode = parse_numeric(field_view(b, kMode));
    if (!mode) layout.add_error(where + ": bad mode field");
    attrs["mode"] = octal_mode(mode.value_or(0));
    attrs["uid"] = numeric("uid", kUid);
    attrs["gid"] = numeric("gid", kGid);
    Json mtime;
    if (const auto it = pax.find("mtime"); it != pax.end()) {
      if (auto t = parse_pax_time(it->second))
        mtime = std::move(*t);
      else
        layout.add_error(where + ": bad pax mtime '" + utf8_or_escaped(it->second) + "'");
    }
    if (mtime.is_null()) {
      const auto v = parse_numeric(field_view(b, kMtime));
      if (!v) layout.add_error(where + ": bad mtime field");
      mtime = v.value_or(0);
    }
    attrs["mtime"] = std::move(mtime);
    attrs["size"] = data_size;
    if (magic != Magic::none) {
      attrs["uname"] = text("uname", kUname);
      attrs["gname"] = text("gname", kGname);
    }
    attrs["typeflag"] = type == '\0' ? std::string() : std::string(1, type);
    attrs["header_offset"] = header_offset;
    attrs["stored_name"] = utf8_or_escaped(name);
    return attrs;
  }
};

}  // namespace

std::unique_ptr<Format> make_tar() {
  return std::make_unique<Tar>();
}

}  // namespace payloadfs::formats

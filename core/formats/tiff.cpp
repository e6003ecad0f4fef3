// TIFF 6.0 and BigTIFF: "II" or "MM", then 42 (classic: u32 offsets, 12-byte IFD entries, u16
// entry count) or 43 (BigTIFF: u16 offset size 8, u16 0, u64 offsets, 20-byte entries, u64
// entry count). Each IFD lists tags (tag, type, count, value or offset to it) and links to the
// next; SubIFDs (tag 330) hang more IFDs off one. Image data lies in strips (StripOffsets /
// StripByteCounts) or tiles (TileOffsets / TileByteCounts). GeoTIFF 1.1's GeoKeyDirectory
// (tag 34735) is decoded into its keys.

#include <algorithm>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/formats/builtin.hpp"
#include "core/formats/support/signature.hpp"
#include "core/formats/support/tiff_tags.hpp"
#include "core/io/binary_reader.hpp"
#include "core/io/checked_math.hpp"
#include "core/render/json_text.hpp"

namespace payloadfs::formats {
namespace {

using namespace tiff;

// Limits on hostile input: IFDs walked (chain and SubIFDs), entries of one IFD, values read
// from one tag, values listed in header.json per tag, strips or tiles of one IFD.
constexpr uint64_t kMaxIfds = 4096;
constexpr uint64_t kMaxEntries = 4096;
constexpr uint64_t kMaxValuesRead = 1'000'000;
constexpr uint64_t kMaxListedValues = 64;
constexpr uint64_t kMaxBlocksPerIfd = 1'000'000;
// Values read over the whole file (all tags of all IFDs), and errors listed.
constexpr uint64_t kMaxTotalValues = 8'000'000;
constexpr size_t kMaxListedErrors = 1000;

constexpr uint16_t kStripOffsets = 273, kStripByteCounts = 279, kTileOffsets = 324,
                   kTileByteCounts = 325, kCompression = 259, kSubIfds = 330,
                   kGeoKeyDirectory = 34735, kGeoDoubleParams = 34736, kGeoAsciiParams = 34737;

struct Entry {
  uint16_t tag = 0, type = 0;
  uint64_t count = 0;
  std::vector<double> numbers;  // numeric types (rationals as num/den)
  std::vector<uint64_t> integers;
  std::string text;  // ASCII, UNDEFINED (bounded)
  bool cut = false;  // more values than kMaxValuesRead
};

class TiffWalk {
 public:
  TiffWalk(const ByteSource& source, Layout& layout)
      : reader_(source), size_(source.size()), layout_(layout) {}

  void run() {
    reader_.set_endian(reader_.u16() == 0x4d4d ? Endian::big : Endian::little);
    const uint16_t version = reader_.u16();
    big_ = version == 43;
    if (big_) {
      const uint16_t offset_size = reader_.u16();
      reader_.u16();
      if (offset_size != 8)
        layout_.add_error("BigTIFF offset size " + std::to_string(offset_size) + " is not 8");
    }
    const uint64_t first = big_ ? reader_.u64() : reader_.u32();
    layout_.magic = ByteRange{0, 4};
    layout_.header["byte_order"] = reader_.endian() == Endian::big ? "big" : "little";
    layout_.header["bigtiff"] = big_;
    if (!reader_.ok()) {
      layout_.add_error("truncated TIFF header");
    } else {
      for (uint64_t offset = first; offset != 0;) offset = walk_ifd(offset, Json(nullptr));
      for (size_t i = 0; i < sub_queue_.size(); ++i)
        walk_ifd(sub_queue_[i].first, sub_queue_[i].second);
    }
    if (dropped_errors_ > 0)
      layout_.add_error(std::to_string(dropped_errors_) + " more errors after the first " +
                        std::to_string(kMaxListedErrors) + " are not listed");
    layout_.header["ifd_count"] = ifds_.size();
    layout_.header["ifds"] = std::move(ifds_);
  }

 private:
  uint64_t offset_bytes() const { return big_ ? 8 : 4; }

  // Reads one entry's values (inline or at their offset), bounded by kMaxValuesRead.
  Entry read_entry(BinaryReader& r) {
    Entry e;
    e.tag = r.u16();
    e.type = r.u16();
    e.count = big_ ? r.u64() : r.u32();
    const uint64_t field_pos = r.tell();
    r.skip(offset_bytes());
    const uint64_t unit = type_size(e.type);
    if (unit == 0 || !r.ok()) return e;
    const uint64_t budget = kMaxTotalValues - values_read_;
    if (e.count > budget && budget_note_ == false) {
      budget_note_ = true;
      problem("more than " + std::to_string(kMaxTotalValues) +
              " tag values in the file; later values are not read");
    }
    const uint64_t count = std::min({e.count, kMaxValuesRead, budget});
    values_read_ += count;
    e.cut = count < e.count;
    const auto total = checked_mul(e.count, unit);
    uint64_t where = field_pos;
    if (!total || *total > offset_bytes()) {
      BinaryReader at = reader_.sub(field_pos, offset_bytes());
      where = big_ ? at.u64() : at.u32();
      if (!total || !range_within(where, std::min(*total, count * unit), size_)) {
        problem("tag " + std::to_string(e.tag) + ": its " + std::to_string(e.count) +
                " values at offset " + std::to_string(where) + " run past the end of the file");
        e.count = 0;
        return e;
      }
    }
    BinaryReader v = reader_.sub(where, count * unit);
    read_values(v, e, count);
    return e;
  }

  static void read_values(BinaryReader& v, Entry& e, uint64_t count) {
    if (e.type == kAscii || e.type == kUndefined || e.type == kByte || e.type == kSByte) {
      e.text = v.text(std::min<uint64_t>(count, BinaryReader::kMaxTextBytes));
      if (e.type == kAscii) {
        while (!e.text.empty() && e.text.back() == '\0') e.text.pop_back();
        return;
      }
      for (unsigned char c : e.text)
        e.integers.push_back(e.type == kSByte ? static_cast<uint64_t>(static_cast<int8_t>(c)) : c);
      for (unsigned char c : e.text)
        e.numbers.push_back(e.type == kSByte ? static_cast<int8_t>(c) : c);
      return;
    }
    for (uint64_t i = 0; i < count && v.ok(); ++i) {
      const auto [number, integer] = read_number(v, e.type);
      e.numbers.push_back(number);
      e.integers.push_back(integer);
    }
  }

  // One numeric value as a double and as an integer (signed ones two's complement).
  static std::pair<double, uint64_t> read_number(BinaryReader& v, uint16_t type) {
    auto whole = [](uint64_t u) { return std::pair{static_cast<double>(u), u}; };
    auto signed_whole = [](int64_t s) {
      return std::pair{static_cast<double>(s), static_cast<uint64_t>(s)};
    };
    auto ratio = [](double n, double d) { return std::pair{d != 0 ? n / d : 0.0, uint64_t{0}}; };
    switch (type) {
      case kShort:
        return whole(v.u16());
      case kSShort:
        return signed_whole(v.i16());
      case kLong:
      case kIfd:
        return whole(v.u32());
      case kSLong:
        return signed_whole(v.i32());
      case kLong8:
      case kIfd8:
        return whole(v.u64());
      case kSLong8:
        return signed_whole(v.i64());
      case kFloat:
        return {static_cast<double>(v.f32()), 0};
      case kDouble:
        return {v.f64(), 0};
      case kRational: {
        const double n = v.u32();
        return ratio(n, v.u32());
      }
      case kSRational: {
        const double n = v.i32();
        return ratio(n, v.i32());
      }
      default:
        return {0.0, 0};
    }
  }

  // Errors can come with every strip, so only the first kMaxListedErrors are listed.
  void problem(std::string message) {
    if (layout_.errors.size() < kMaxListedErrors)
      layout_.add_error(std::move(message));
    else
      ++dropped_errors_;
  }

  Json value_json(const Entry& e) const {
    if (e.type == kAscii) return utf8_or_escaped(e.text);
    const bool integral =
        e.type != kFloat && e.type != kDouble && e.type != kRational && e.type != kSRational;
    const bool is_signed =
        e.type == kSShort || e.type == kSLong || e.type == kSLong8 || e.type == kSByte;
    auto one = [&](size_t i) -> Json {
      if (!integral) return e.numbers[i];
      if (is_signed) return static_cast<int64_t>(e.integers[i]);
      return e.integers[i];
    };
    if (e.numbers.size() == 1 && e.count == 1) return one(0);
    Json values = Json::array();
    for (size_t i = 0; i < e.numbers.size() && i < kMaxListedValues; ++i) values.push_back(one(i));
    if (e.count <= kMaxListedValues && !e.cut) return values;
    return {{"count", e.count}, {"first", std::move(values)}};
  }

  // GeoKeyDirectory: version, revision, minor, key count, then (key, location, count, value).
  Json geokeys(const std::vector<Entry>& entries) const {
    const Entry* dir = nullptr;
    const Entry* doubles = nullptr;
    const Entry* ascii = nullptr;
    for (const Entry& e : entries) {
      if (e.tag == kGeoKeyDirectory) dir = &e;
      if (e.tag == kGeoDoubleParams) doubles = &e;
      if (e.tag == kGeoAsciiParams) ascii = &e;
    }
    if (dir == nullptr || dir->integers.size() < 4) return nullptr;
    const auto& k = dir->integers;
    Json keys = Json::object();
    for (uint64_t i = 0; i < k[3] && 4 * (i + 2) <= k.size(); ++i) {
      const uint64_t id = k[4 + 4 * i], location = k[5 + 4 * i], count = k[6 + 4 * i],
                     value = k[7 + 4 * i];
      Json decoded = nullptr;
      if (location == 0) {
        decoded = value;
      } else if (location == kGeoDoubleParams && doubles &&
                 value + count <= doubles->numbers.size()) {
        if (count == 1)
          decoded = doubles->numbers[value];
        else {
          decoded = Json::array();
          for (uint64_t j = 0; j < count && j < kMaxListedValues; ++j)
            decoded.push_back(doubles->numbers[value + j]);
        }
      } else if (location == kGeoAsciiParams && ascii && value + count <= ascii->text.size() + 1) {
        std::string s = ascii->text.substr(value, count);
        while (!s.empty() && (s.back() == '|' || s.back() == '\0')) s.pop_back();
        decoded = utf8_or_escaped(s);
      } else if (location == kGeoKeyDirectory && value + count <= k.size()) {
        decoded = Json::array();
        for (uint64_t j = 0; j < count && j < kMaxListedValues; ++j)
          decoded.push_back(k[value + j]);
      }
      keys[geokey_name(static_cast<uint16_t>(id))] = std::move(decoded);
    }
    return {{"version", k[0]},
            {"revision", std::to_string(k[1]) + "." + std::to_string(k[2])},
            {"keys", std::move(keys)}};
  }

  // Strips or tiles of IFD `index` as slices.
  void add_blocks(uint64_t index, const std::vector<Entry>& entries, uint64_t compression) {
    const Entry *offsets = nullptr, *counts = nullptr;
    std::string kind = "strip";
    for (const Entry& e : entries) {
      if (e.tag == kStripOffsets) offsets = offsets ? offsets : &e;
      if (e.tag == kStripByteCounts) counts = counts ? counts : &e;
    }
    for (const Entry& e : entries) {
      if (e.tag == kTileOffsets) offsets = &e, kind = "tile";
      if (e.tag == kTileByteCounts) counts = &e;
    }
    if (offsets == nullptr) return;
    const std::string where = "IFD " + std::to_string(index);
    if (counts == nullptr || counts->integers.size() != offsets->integers.size()) {
      problem(where + ": " + kind + " offsets and byte counts differ in number");
      return;
    }
    const uint64_t n = std::min<uint64_t>(offsets->integers.size(), kMaxBlocksPerIfd);
    if (offsets->cut || n < offsets->integers.size())
      problem(where + ": more than " + std::to_string(n) + " " + kind + "s; only those are listed");
    const std::string name = compression_name(compression);
    for (uint64_t j = 0; j < n; ++j) {
      const uint64_t off = offsets->integers[j], len = counts->integers[j];
      if (!range_within(off, len, size_)) {
        problem(where + ": " + kind + " " + std::to_string(j) + " (" + std::to_string(len) +
                " bytes at offset " + std::to_string(off) + ") runs past the end of the file");
        continue;
      }
      Slice s{"ifd/" + std::to_string(index) + "/" + kind + "/" + std::to_string(j),
              {off, len},
              {{"compression", name}}};
      s.stored = compression == 1;
      layout_.slices.push_back(std::move(s));
    }
  }

  // Walks the IFD at `offset`; the next IFD's offset (0 at the end or when the walk stops).
  uint64_t walk_ifd(uint64_t offset, Json parent) {
    if (!visited_.insert(offset).second) {
      problem("IFD at offset " + std::to_string(offset) + " is reached twice (a loop); stopped");
      return 0;
    }
    if (ifds_.size() == kMaxIfds) {
      problem("more than " + std::to_string(kMaxIfds) + " IFDs; stopped");
      return 0;
    }
    const uint64_t index = ifds_.size();
    BinaryReader r = reader_.sub(offset, size_ - std::min(offset, size_));
    const uint64_t declared = big_ ? r.u64() : r.u16();
    if (!r.ok()) {
      problem("IFD " + std::to_string(index) + " at offset " + std::to_string(offset) +
              " lies past the end of the file");
      return 0;
    }
    if (declared > kMaxEntries) {
      problem("IFD " + std::to_string(index) + " at offset " + std::to_string(offset) + " claims " +
              std::to_string(declared) + " entries, more than the limit of " +
              std::to_string(kMaxEntries));
      return 0;
    }
    std::vector<Entry> entries;
    for (uint64_t i = 0; i < declared && r.ok(); ++i) entries.push_back(read_entry(r));
    const uint64_t next = big_ ? r.u64() : r.u32();
    if (!r.ok()) {
      problem("IFD " + std::to_string(index) + " at offset " + std::to_string(offset) +
              " is cut by the end of the file");
      if (!entries.empty()) entries.pop_back();
    }
    Json tags = Json::object();
    uint64_t compression = 1;
    for (const Entry& e : entries) {
      tags[tag_name(e.tag)] = value_json(e);
      if (e.tag == kCompression && !e.integers.empty()) compression = e.integers[0];
      if (e.tag == kSubIfds)
        for (uint64_t sub : e.integers) sub_queue_.emplace_back(sub, Json(index));
    }
    Json ifd = {{"index", index},
                {"offset", offset},
                {"parent_ifd", parent},
                {"compression", compression_name(compression)},
                {"tags", std::move(tags)}};
    if (Json g = geokeys(entries); !g.is_null()) ifd["geokeys"] = std::move(g);
    ifds_.push_back(std::move(ifd));
    add_blocks(index, entries, compression);
    return r.ok() ? next : 0;
  }

  BinaryReader reader_;
  const uint64_t size_;
  Layout& layout_;
  bool big_ = false;
  Json ifds_ = Json::array();
  std::set<uint64_t> visited_;
  uint64_t values_read_ = 0, dropped_errors_ = 0;
  bool budget_note_ = false;
  std::vector<std::pair<uint64_t, Json>> sub_queue_;  // (offset, parent IFD index)
};

constexpr auto kClassicLittle = byte_string("II*\0"), kClassicBig = byte_string("MM\0*"),
               kBigLittle = byte_string("II+\0"), kBigBig = byte_string("MM\0+");

class Tiff final : public Format {
 public:
  std::string_view name() const noexcept override { return "tiff"; }
  std::string_view description() const noexcept override {
    return "TIFF and BigTIFF images (strips, tiles, SubIFDs, GeoTIFF keys)";
  }
  std::string_view signature() const noexcept override {
    return "'II*\\0' or 'MM\\0*' (classic), 'II+\\0' or 'MM\\0+' (BigTIFF) at 0";
  }

  bool detect(std::span<const std::byte> head, uint64_t) const override {
    return starts_with(head, kClassicLittle) || starts_with(head, kClassicBig) ||
           starts_with(head, kBigLittle) || starts_with(head, kBigBig);
  }

  Layout parse(const ByteSource& source) const override {
    Layout layout;
    TiffWalk(source, layout).run();
    return layout;
  }
};

}  // namespace

std::unique_ptr<Format> make_tiff() {
  return std::make_unique<Tiff>();
}

}  // namespace payloadfs::formats

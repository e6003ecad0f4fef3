// FITS (Flexible Image Transport System, FITS Standard 4.0): 2880-byte blocks; each HDU is a
// header of 80-character ASCII cards ending with END, padded to whole blocks, then its data
// unit padded to whole blocks. The primary HDU starts with SIMPLE = T; extensions with
// XTENSION= 'IMAGE', 'BINTABLE', 'TABLE' (or any other name: the size rule is the same).
// Data size in bytes (standard 4.4.1.1 and 7.4.1): |BITPIX|/8 * GCOUNT * (PCOUNT + NAXIS1 *
// ... * NAXISn); random groups (NAXIS1 = 0, GROUPS = T) leave NAXIS1 out of the product.

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/formats/builtin.hpp"
#include "core/formats/support/signature.hpp"
#include "core/io/binary_reader.hpp"
#include "core/io/checked_math.hpp"
#include "core/render/json_text.hpp"

namespace payloadfs::formats {
namespace {

constexpr uint64_t kBlockBytes = 2880;
constexpr uint64_t kCardBytes = 80;
constexpr uint64_t kCardsPerBlock = kBlockBytes / kCardBytes;
// Limits on hostile input: HDUs walked, header blocks of one HDU (36 cards each), axes
// (the standard allows 999).
constexpr uint64_t kMaxHdus = 10'000;
constexpr uint64_t kMaxHeaderBlocks = 10'000;
constexpr int64_t kMaxAxes = 999;
// Cards kept in header.json over the whole file (the walk stops at the HDU that passes it).
constexpr uint64_t kMaxCards = 1'000'000;

constexpr auto kSignature = byte_string("SIMPLE  =");

std::string trim(std::string_view s) {
  while (!s.empty() && s.back() == ' ') s.remove_suffix(1);
  while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
  return std::string(s);
}

// A quoted string value: '' is a quote; trailing spaces are not significant (standard 4.2.1).
std::optional<std::string> quoted_string(std::string_view v) {
  std::string out;
  for (size_t i = 1; i < v.size(); ++i) {
    if (v[i] != '\'') {
      out += v[i];
      continue;
    }
    if (i + 1 < v.size() && v[i + 1] == '\'') {
      out += '\'';
      ++i;
      continue;
    }
    while (!out.empty() && out.back() == ' ') out.pop_back();
    return out;
  }
  return std::nullopt;  // no closing quote
}

// A card's value field (after "= "): string, logical, integer, real; else the text itself.
Json card_value(std::string_view field) {
  const std::string text = trim(field);
  if (text.starts_with('\'')) {
    if (auto s = quoted_string(text)) return utf8_or_escaped(*s);
    return utf8_or_escaped(text);
  }
  const std::string value = trim(text.substr(0, text.find('/')));
  if (value == "T") return true;
  if (value == "F") return false;
  if (value.empty()) return nullptr;
  char* end = nullptr;
  errno = 0;
  const long long integer = std::strtoll(value.c_str(), &end, 10);
  if (end == value.c_str() + value.size() && errno == 0) return integer;
  std::string real = value;
  for (char& c : real)
    if (c == 'D' || c == 'd') c = 'E';  // Fortran double exponent
  errno = 0;
  const double number = std::strtod(real.c_str(), &end);
  if (end == real.c_str() + real.size() && errno == 0) return number;
  return utf8_or_escaped(value);
}

struct Hdu {
  uint64_t header_offset = 0;
  uint64_t header_blocks = 0;
  Json cards = Json::object();
  bool ended = false;  // END seen
};

int64_t int_card(const Json& cards, const std::string& key, int64_t fallback) {
  const auto it = cards.find(key);
  return it != cards.end() && it->is_number_integer() ? it->get<int64_t>() : fallback;
}

std::optional<std::string> dtype_of_bitpix(int64_t bitpix) {
  switch (bitpix) {
    case 8:
      return "|u1";
    case 16:
      return ">i2";
    case 32:
      return ">i4";
    case 64:
      return ">i8";
    case -32:
      return ">f4";
    case -64:
      return ">f8";
    default:
      return std::nullopt;
  }
}

class FitsWalk {
 public:
  FitsWalk(const ByteSource& source, Layout& layout)
      : reader_(source), size_(source.size()), layout_(layout) {}

  void run() {
    layout_.magic = magic_at_start(kSignature);
    uint64_t pos = 0;
    for (uint64_t index = 0; pos < size_; ++index) {
      if (index == kMaxHdus) {
        layout_.add_error("more than " + std::to_string(kMaxHdus) + " HDUs; stopped at offset " +
                          std::to_string(pos));
        break;
      }
      if (index > 0 && !starts_extension(pos)) {
        layout_.header["trailing_bytes"] = size_ - pos;
        break;
      }
      const auto next = walk_hdu(index, pos);
      if (!next) break;
      pos = *next;
    }
    layout_.header["hdu_count"] = hdus_.size();
    layout_.header["hdus"] = std::move(hdus_);
  }

 private:
  bool starts_extension(uint64_t pos) {
    BinaryReader r = reader_.sub(pos, std::min<uint64_t>(9, size_ - pos));
    return r.text(9) == "XTENSION=";
  }

  // Reads one card into the HDU; false after END.
  bool read_card(std::string_view card, Hdu& hdu) {
    const std::string key = trim(card.substr(0, 8));
    if (key == "END") return false;
    const bool has_value = card.size() >= 10 && card.substr(8, 2) == "= ";
    if (key == "COMMENT" || key == "HISTORY" || key.empty() || !has_value) {
      if (key.empty() && trim(card).empty()) return true;  // blank padding card
      const std::string list = key.empty() ? "BLANK" : utf8_or_escaped(key);
      const std::string text = trim(card.substr(std::min<size_t>(8, card.size())));
      if (!hdu.cards.contains(list) || !hdu.cards[list].is_array()) hdu.cards[list] = Json::array();
      hdu.cards[list].push_back(utf8_or_escaped(text));
      return true;
    }
    hdu.cards[utf8_or_escaped(key)] = card_value(card.substr(10));
    return true;
  }

  // Reads header blocks at `pos` until END; false (with the error) when it cannot.
  bool read_header(uint64_t index, uint64_t pos, Hdu& hdu) {
    hdu.header_offset = pos;
    while (!hdu.ended) {
      if (hdu.header_blocks == kMaxHeaderBlocks) {
        layout_.add_error("HDU " + std::to_string(index) + ": no END within " +
                          std::to_string(kMaxHeaderBlocks) + " header blocks");
        return false;
      }
      const uint64_t block = pos + hdu.header_blocks * kBlockBytes;
      if (size_ - block < kBlockBytes) {
        layout_.add_error("HDU " + std::to_string(index) + " at offset " + std::to_string(pos) +
                          ": the header has no END card before the end of the file");
        return false;
      }
      BinaryReader r = reader_.sub(block, kBlockBytes);
      const std::string text = r.text(kBlockBytes);
      if (!r.ok()) {
        layout_.add_error("HDU " + std::to_string(index) + ": " + r.error().value_or(""));
        return false;
      }
      ++hdu.header_blocks;
      cards_ += kCardsPerBlock;
      if (cards_ > kMaxCards) {
        layout_.add_error("more than " + std::to_string(kMaxCards) +
                          " header cards; stopped at HDU " + std::to_string(index));
        return false;
      }
      for (uint64_t c = 0; c < kCardsPerBlock && !hdu.ended; ++c)
        hdu.ended = !read_card(std::string_view(text).substr(c * kCardBytes, kCardBytes), hdu);
    }
    return true;
  }

  // The axes NAXIS1..NAXISn, or nullopt (with the error).
  std::optional<std::vector<uint64_t>> axes(uint64_t index, const Json& cards) {
    const int64_t naxis = int_card(cards, "NAXIS", -1);
    if (naxis < 0 || naxis > kMaxAxes) {
      layout_.add_error("HDU " + std::to_string(index) + ": NAXIS " + std::to_string(naxis) +
                        " is missing or outside 0.." + std::to_string(kMaxAxes));
      return std::nullopt;
    }
    std::vector<uint64_t> out;
    for (int64_t i = 1; i <= naxis; ++i) {
      const int64_t n = int_card(cards, "NAXIS" + std::to_string(i), -1);
      if (n < 0) {
        layout_.add_error("HDU " + std::to_string(index) + ": NAXIS" + std::to_string(i) +
                          " is missing, negative or not a 64-bit integer");
        return std::nullopt;
      }
      out.push_back(static_cast<uint64_t>(n));
    }
    return out;
  }

  // Bytes of the data unit (without the fill), or nullopt when it overflows.
  static std::optional<uint64_t> data_bytes(const Json& cards, const std::vector<uint64_t>& axes,
                                            uint64_t item) {
    if (axes.empty()) return 0;
    const bool groups = axes[0] == 0 && cards.value("GROUPS", false) == true;
    std::optional<uint64_t> product = 1;
    for (size_t i = groups ? 1 : 0; i < axes.size() && product; ++i)
      product = checked_mul(*product, axes[i]);
    const int64_t pcount = int_card(cards, "PCOUNT", 0), gcount = int_card(cards, "GCOUNT", 1);
    if (!product || pcount < 0 || gcount < 0) return std::nullopt;
    if (auto sum = checked_add(*product, static_cast<uint64_t>(pcount)))
      if (auto groups_total = checked_mul(*sum, static_cast<uint64_t>(gcount)))
        return checked_mul(*groups_total, item);
    return std::nullopt;
  }

  // dtype and shape of a data slice, where the data is one array.
  static void describe(Json& attrs, const Json& cards, const std::vector<uint64_t>& axes,
                       const std::string& xtension, const std::optional<std::string>& dtype) {
    const bool plain = int_card(cards, "PCOUNT", 0) == 0 && int_card(cards, "GCOUNT", 1) == 1;
    if (!plain) return;
    if (xtension == "BINTABLE" || xtension == "TABLE") {
      if (axes.size() != 2) return;
      // One record per row: opaque bytes for binary rows, text for ASCII rows.
      attrs["dtype"] = (xtension == "BINTABLE" ? "|V" : "|S") + std::to_string(axes[0]);
      attrs["shape"] = Json::array({axes[1]});
      return;
    }
    if (!dtype || (!xtension.empty() && xtension != "IMAGE")) return;
    if (!axes.empty() && axes[0] == 0 && cards.value("GROUPS", false) == true) return;
    attrs["dtype"] = *dtype;
    attrs["shape"] = Json::array();
    for (auto it = axes.rbegin(); it != axes.rend(); ++it) attrs["shape"].push_back(*it);
  }

  // Walks the HDU at `pos`; the offset of the next one, or nullopt when the walk stops.
  std::optional<uint64_t> walk_hdu(uint64_t index, uint64_t pos) {
    Hdu hdu;
    if (!read_header(index, pos, hdu)) return std::nullopt;
    const std::string i = std::to_string(index);
    const uint64_t header_bytes = hdu.header_blocks * kBlockBytes;
    layout_.slices.push_back(Slice{"header/" + i, {pos, header_bytes}, Json::object()});
    const Json& cards = hdu.cards;
    const std::string xtension = cards.value("XTENSION", std::string());
    Json entry = {{"index", index},
                  {"xtension", xtension.empty() ? Json(nullptr) : Json(utf8_or_escaped(xtension))},
                  {"extname", cards.contains("EXTNAME") ? cards["EXTNAME"] : Json(nullptr)},
                  {"header_offset", pos},
                  {"header_bytes", header_bytes}};
    const int64_t bitpix = int_card(cards, "BITPIX", 0);
    const auto dtype = dtype_of_bitpix(bitpix);
    entry["bitpix"] = bitpix;
    for (const char* key : {"BSCALE", "BZERO"})
      if (cards.contains(key))
        entry[key == std::string("BSCALE") ? "bscale" : "bzero"] = cards[key];
    const auto axis_list = axes(index, cards);
    std::optional<uint64_t> bytes;
    if (!dtype)
      layout_.add_error("HDU " + i + ": BITPIX " + std::to_string(bitpix) + " is not a FITS value");
    else if (axis_list &&
             !(bytes = data_bytes(cards, *axis_list, bitpix < 0 ? -bitpix / 8 : bitpix / 8)))
      layout_.add_error("HDU " + i + ": the data size overflows 64 bits");
    const uint64_t data_offset = pos + header_bytes;
    entry["data_offset"] = data_offset;
    entry["data_bytes"] = bytes ? Json(*bytes) : Json(nullptr);
    entry["cards"] = cards;
    hdus_.push_back(std::move(entry));
    if (!bytes) return std::nullopt;
    if (*bytes > size_ - data_offset) {
      layout_.add_error("HDU " + i + ": its data (" + std::to_string(*bytes) + " bytes at offset " +
                        std::to_string(data_offset) + ") runs past the end of the file");
      return std::nullopt;
    }
    if (*bytes > 0) {
      Json attrs = {{"hdu", index}, {"bitpix", bitpix}};
      if (!xtension.empty()) attrs["xtension"] = utf8_or_escaped(xtension);
      if (cards.contains("EXTNAME")) attrs["extname"] = cards["EXTNAME"];
      describe(attrs, cards, *axis_list, xtension, dtype);
      layout_.slices.push_back(Slice{"data/" + i, {data_offset, *bytes}, std::move(attrs)});
    }
    const uint64_t padded = (*bytes + kBlockBytes - 1) / kBlockBytes * kBlockBytes;
    return data_offset + padded;  // no overflow: bytes <= size - data_offset
  }

  BinaryReader reader_;
  const uint64_t size_;
  Layout& layout_;
  Json hdus_ = Json::array();
  uint64_t cards_ = 0;  // read so far, for kMaxCards
};

class Fits final : public Format {
 public:
  std::string_view name() const noexcept override { return "fits"; }
  std::string_view description() const noexcept override {
    return "FITS (astronomy images and tables: primary HDU and IMAGE, BINTABLE, TABLE extensions)";
  }
  std::string_view signature() const noexcept override {
    return "'SIMPLE  =' at 0 with 'T' in column 30";
  }

  bool detect(std::span<const std::byte> head, uint64_t) const override {
    return starts_with(head, kSignature) && head.size() > 29 && head[29] == std::byte{'T'};
  }

  Layout parse(const ByteSource& source) const override {
    Layout layout;
    FitsWalk(source, layout).run();
    return layout;
  }
};

}  // namespace

std::unique_ptr<Format> make_fits() {
  return std::make_unique<Fits>();
}

}  // namespace payloadfs::formats

// DICOM Part 10 files (PS3.10 section 7, PS3.5 sections 7-10 and A.4): a 128-byte preamble,
// "DICM", the File Meta group (0002,xxxx) in explicit VR little endian, then the dataset in
// the transfer syntax (0002,0010) names: implicit VR little endian, explicit VR little endian,
// explicit VR big endian, or an encapsulated (compressed) syntax, whose dataset is explicit VR
// little endian and whose Pixel Data (7FE0,0010) has undefined length and holds items: the
// basic offset table, then the fragments. Sequences (SQ, and UN of undefined length) hold
// items, each a nested dataset, of defined or undefined length (ended by delimitation items).
// Deflated datasets are not read.

#include <algorithm>
#include <array>
#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include "core/formats/builtin.hpp"
#include "core/formats/support/ascii_number.hpp"
#include "core/formats/support/dicom_dictionary.hpp"
#include "core/formats/support/signature.hpp"
#include "core/io/binary_reader.hpp"
#include "core/io/checked_math.hpp"
#include "core/render/json_text.hpp"

namespace payloadfs::formats {
namespace {

constexpr auto kMagic = byte_string("DICM");
constexpr uint64_t kMagicOffset = 128;
constexpr uint64_t kMetaStart = kMagicOffset + 4;
constexpr uint32_t kUndefinedLength = 0xFFFFFFFF;
constexpr uint32_t kItem = 0xFFFEE000;
constexpr uint32_t kItemDelimiter = 0xFFFEE00D;
constexpr uint32_t kSequenceDelimiter = 0xFFFEE0DD;
constexpr uint32_t kPixelData = 0x7FE00010;
constexpr uint32_t kTransferSyntax = 0x00020010;
// Sequences nest at most kMaxDepth deep; at most kMaxListedElements elements and items are
// listed in header.json (about 150 bytes each: the header stays under its 4 MiB; the rest are
// still walked, so the pixel data after them is found); values of at most kMaxValueBytes are
// shown; at most kMaxFragments pixel data fragments.
constexpr int kMaxDepth = 16;
constexpr uint64_t kMaxListedElements = 16384;
constexpr uint32_t kMaxValueBytes = 256;
constexpr uint64_t kMaxFragments = 65536;

enum class Encoding { implicit_le, explicit_le, explicit_be, deflated, encapsulated };

struct TransferSyntax {
  std::string_view uid;
  std::string_view name;
  Encoding encoding;
};

constexpr std::array<TransferSyntax, 19> kTransferSyntaxes = {{
    {"1.2.840.10008.1.2", "Implicit VR Little Endian", Encoding::implicit_le},
    {"1.2.840.10008.1.2.1", "Explicit VR Little Endian", Encoding::explicit_le},
    {"1.2.840.10008.1.2.1.99", "Deflated Explicit VR Little Endian", Encoding::deflated},
    {"1.2.840.10008.1.2.2", "Explicit VR Big Endian", Encoding::explicit_be},
    {"1.2.840.10008.1.2.4.50", "JPEG Baseline (Process 1)", Encoding::encapsulated},
    {"1.2.840.10008.1.2.4.51", "JPEG Extended (Process 2 and 4)", Encoding::encapsulated},
    {"1.2.840.10008.1.2.4.57", "JPEG Lossless, Non-Hierarchical (Process 14)",
     Encoding::encapsulated},
    {"1.2.840.10008.1.2.4.70", "JPEG Lossless, Non-Hierarchical, First-Order Prediction",
     Encoding::encapsulated},
    {"1.2.840.10008.1.2.4.80", "JPEG-LS Lossless Image Compression", Encoding::encapsulated},
    {"1.2.840.10008.1.2.4.81", "JPEG-LS Lossy (Near-Lossless) Image Compression",
     Encoding::encapsulated},
    {"1.2.840.10008.1.2.4.90", "JPEG 2000 Image Compression (Lossless Only)",
     Encoding::encapsulated},
    {"1.2.840.10008.1.2.4.91", "JPEG 2000 Image Compression", Encoding::encapsulated},
    {"1.2.840.10008.1.2.4.100", "MPEG2 Main Profile / Main Level", Encoding::encapsulated},
    {"1.2.840.10008.1.2.4.102", "MPEG-4 AVC/H.264 High Profile / Level 4.1",
     Encoding::encapsulated},
    {"1.2.840.10008.1.2.4.201", "High-Throughput JPEG 2000 Image Compression (Lossless Only)",
     Encoding::encapsulated},
    {"1.2.840.10008.1.2.4.202",
     "High-Throughput JPEG 2000 with RPCL Options Image Compression (Lossless Only)",
     Encoding::encapsulated},
    {"1.2.840.10008.1.2.4.203", "High-Throughput JPEG 2000 Image Compression",
     Encoding::encapsulated},
    {"1.2.840.10008.1.2.5", "RLE Lossless", Encoding::encapsulated},
    {"1.2.840.10008.1.2.8.1", "SMPTE ST 2110-20 Uncompressed Progressive Active Video",
     Encoding::encapsulated},
}};

// VRs whose explicit encoding has two reserved bytes and a 32-bit length (PS3.5 7.1.2).
bool long_length_vr(std::string_view vr) {
  static constexpr std::array<std::string_view, 13> kLong = {
      "OB", "OD", "OF", "OL", "OV", "OW", "SQ", "SV", "UC", "UN", "UR", "UT", "UV"};
  return std::find(kLong.begin(), kLong.end(), vr) != kLong.end();
}

bool text_vr(std::string_view vr) {
  static constexpr std::array<std::string_view, 17> kText = {"AE", "AS", "CS", "DA", "DS", "DT",
                                                             "IS", "LO", "LT", "PN", "SH", "ST",
                                                             "TM", "UC", "UI", "UR", "UT"};
  return std::find(kText.begin(), kText.end(), vr) != kText.end();
}

std::string tag_text(uint32_t tag) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "(%04X,%04X)", tag >> 16, tag & 0xFFFF);
  return buf;
}

struct ElementHeader {
  uint32_t tag = 0;
  std::string vr;
  uint32_t length = 0;
  uint64_t value_at = 0;
};

class DicomParser {
 public:
  DicomParser(const ByteSource& source, Layout& layout) : r_(source), layout_(layout) {}

  void run() {
    r_.seek(kMetaStart);
    Json meta = read_dataset(r_.size(), false, 0, true);
    const auto syntax = transfer_syntax(meta);
    layout_.header["file_meta"] = std::move(meta);
    if (!syntax) return;
    explicit_ = syntax->encoding != Encoding::implicit_le;
    if (syntax->encoding == Encoding::explicit_be) r_.set_endian(Endian::big);
    Json elements = read_dataset(r_.size(), false, 0, false);
    summarize(elements);
    layout_.header["elements"] = std::move(elements);
  }

 private:
  std::optional<TransferSyntax> transfer_syntax(const Json& meta) {
    auto& h = layout_.header;
    std::string uid;
    for (const auto& e : meta)
      if (e["tag"] == tag_text(kTransferSyntax) && e.contains("value") && e["value"].is_string())
        uid = e["value"].get<std::string>();
    const auto it = std::find_if(kTransferSyntaxes.begin(), kTransferSyntaxes.end(),
                                 [&](const TransferSyntax& t) { return t.uid == uid; });
    h["transfer_syntax"] = {
        {"uid", uid.empty() ? Json(nullptr) : Json(uid)},
        {"name", it == kTransferSyntaxes.end() ? Json(nullptr) : Json(std::string(it->name))}};
    if (uid.empty()) {
      layout_.add_error("no Transfer Syntax UID (0002,0010) in the file meta group");
      return std::nullopt;
    }
    if (it == kTransferSyntaxes.end()) {
      layout_.add_error("unknown transfer syntax " + uid + "; the dataset is not read");
      return std::nullopt;
    }
    if (it->encoding == Encoding::deflated) {
      layout_.add_error("deflated transfer syntax " + uid + " is not supported");
      return std::nullopt;
    }
    encapsulated_ = it->encoding == Encoding::encapsulated;
    return *it;
  }

  // Reads an element's tag, VR and length at the cursor; false (and fatal_) when cut.
  bool read_header(ElementHeader& h, bool meta) {
    const uint64_t at = r_.tell();
    const uint16_t group = r_.u16();
    const uint16_t element = r_.u16();
    h.tag = uint32_t{group} << 16 | element;
    const auto entry = dicom::lookup(h.tag);
    if (group == 0xFFFE) {
      h.vr.clear();
      h.length = r_.u32();
    } else if (explicit_ || meta) {
      h.vr = r_.text(2);
      if (long_length_vr(h.vr)) {
        r_.skip(2);
        h.length = r_.u32();
      } else {
        h.length = r_.u16();
      }
    } else {
      h.vr = entry ? std::string(entry->vr) : (element == 0 ? "UL" : "UN");
      h.length = r_.u32();
    }
    h.value_at = r_.tell();
    if (!r_.ok()) return fail("file cut inside the element header at offset " + std::to_string(at));
    return true;
  }

  bool fail(std::string message) {
    layout_.add_error(std::move(message));
    fatal_ = true;
    return false;
  }

  // Whether the element or item just read is listed (the first kMaxListedElements are).
  bool count_element() {
    if (++elements_ <= kMaxListedElements) return true;
    if (elements_ == kMaxListedElements + 1)
      layout_.add_error("more than " + std::to_string(kMaxListedElements) +
                        " elements and items; the rest are walked but not listed");
    return false;
  }

  // Elements up to `end`, or up to an item delimiter when `delimited`; the file meta group
  // (`meta`) ends before the first element of another group.
  Json read_dataset(uint64_t end, bool delimited, int depth, bool meta) {
    Json list = Json::array();
    while (!fatal_ && r_.tell() < end) {
      const uint64_t at = r_.tell();
      if (meta) {
        const uint16_t group = r_.u16();
        r_.seek(at);
        if (!r_.ok() || group != 0x0002) break;
      }
      ElementHeader h;
      if (!read_header(h, meta)) break;
      const bool listed = count_element();
      if (h.tag == kItemDelimiter) {
        if (delimited) return list;
        fail("item delimiter outside an item at offset " + std::to_string(at));
        break;
      }
      if ((h.tag >> 16) == 0xFFFE) {
        fail("unexpected item tag " + tag_text(h.tag) + " at offset " + std::to_string(at));
        break;
      }
      Json element = read_element(h, end, depth, meta);
      if (listed) list.push_back(std::move(element));
    }
    if (delimited && !fatal_) fail("item of undefined length without its delimiter");
    return list;
  }

  Json read_element(const ElementHeader& h, uint64_t end, int depth, bool meta) {
    Json e = Json::object();
    e["tag"] = tag_text(h.tag);
    const auto entry = dicom::lookup(h.tag);
    e["keyword"] = entry ? Json(std::string(entry->keyword)) : Json(nullptr);
    e["vr"] = utf8_or_escaped(h.vr);
    e["length"] = h.length == kUndefinedLength ? Json("undefined") : Json(h.length);
    e["offset"] = h.value_at;
    const bool top = depth == 0 && !meta;
    if (h.length == kUndefinedLength) {
      if (h.tag == kPixelData && top) {
        read_fragments();
      } else if (h.vr == "SQ" || h.vr == "UN") {
        e["items"] = read_sequence(end, true, depth);
      } else {
        fail("element " + tag_text(h.tag) + " (VR " + h.vr + ") of undefined length");
      }
      return e;
    }
    if (!range_within(h.value_at, h.length, end)) {
      if (h.tag == kPixelData && top && h.value_at <= end) {  // cut: show what the file holds
        pixel_slice_ = layout_.slices.size();
        layout_.slices.push_back(
            Slice{"pixel_data", {h.value_at, end - h.value_at}, Json::object()});
      }
      fail("element " + tag_text(h.tag) + " at offset " + std::to_string(h.value_at) +
           ": its length " + std::to_string(h.length) + " runs past the end of the " +
           (end == r_.size() ? std::string("file") : std::string("enclosing item")));
      return e;
    }
    const uint64_t next = h.value_at + h.length;
    if (h.vr == "SQ") {
      e["items"] = read_sequence(next, false, depth);
    } else if (h.tag == kPixelData && top) {
      pixel_slice_ = layout_.slices.size();
      layout_.slices.push_back(Slice{"pixel_data", {h.value_at, h.length}, Json::object()});
    } else if (h.length <= kMaxValueBytes) {
      e["value"] = read_value(h);
    }
    if (!fatal_) r_.seek(next);
    return e;
  }

  // The items of a sequence, each a nested dataset.
  Json read_sequence(uint64_t end, bool delimited, int depth) {
    Json items = Json::array();
    if (depth + 1 > kMaxDepth) {
      fail("sequences nest deeper than " + std::to_string(kMaxDepth) + " at offset " +
           std::to_string(r_.tell()));
      return items;
    }
    while (!fatal_ && (delimited || r_.tell() < end)) {
      ElementHeader h;
      const uint64_t at = r_.tell();
      if (!read_header(h, false)) break;
      const bool listed = count_element();
      if (h.tag == kSequenceDelimiter && delimited) break;
      if (h.tag != kItem) {
        fail("expected an item in a sequence at offset " + std::to_string(at) + ", found " +
             tag_text(h.tag));
        break;
      }
      if (h.length == kUndefinedLength) {
        Json item = read_dataset(end, true, depth + 1, false);
        if (listed) items.push_back(std::move(item));
      } else if (!range_within(h.value_at, h.length, end)) {
        fail("item at offset " + std::to_string(at) + " runs past the end of its sequence");
      } else {
        Json item = read_dataset(h.value_at + h.length, false, depth + 1, false);
        if (listed) items.push_back(std::move(item));
        if (!fatal_) r_.seek(h.value_at + h.length);
      }
    }
    return items;
  }

  // Encapsulated pixel data: the basic offset table, then one slice per fragment.
  void read_fragments() {
    for (uint64_t i = 0; !fatal_; ++i) {
      ElementHeader h;
      const uint64_t at = r_.tell();
      if (!read_header(h, false)) break;
      if (h.tag == kSequenceDelimiter) break;
      if (h.tag != kItem || h.length == kUndefinedLength) {
        fail("encapsulated pixel data: expected an item of defined length at offset " +
             std::to_string(at));
        break;
      }
      if (!range_within(h.value_at, h.length, r_.size())) {
        fail("pixel data fragment at offset " + std::to_string(at) + ": its length " +
             std::to_string(h.length) + " runs past the end of the file");
        break;
      }
      if (i == 0) {
        layout_.header["basic_offset_table"] = {{"offset", h.value_at}, {"length", h.length}};
      } else if (i > kMaxFragments) {
        fail("more than " + std::to_string(kMaxFragments) + " pixel data fragments");
        break;
      } else {
        Slice s{"pixel_data/" + std::to_string(i - 1),
                {h.value_at, h.length},
                Json{{"index", i - 1}, {"length", h.length}}};
        s.stored = false;
        layout_.slices.push_back(std::move(s));
        ++fragments_;
      }
      r_.seek(h.value_at + h.length);
    }
    layout_.header["fragments"] = fragments_;
  }

  Json read_value(const ElementHeader& h) {
    r_.seek(h.value_at);
    if (text_vr(h.vr)) {
      std::string text = r_.text(h.length);
      while (!text.empty() && (text.back() == ' ' || text.back() == '\0')) text.pop_back();
      if (h.vr != "LT" && h.vr != "ST" && h.vr != "UT")
        text.erase(0, std::min(text.find_first_not_of(' '), text.size()));
      return utf8_or_escaped(text);
    }
    Json values = Json::array();
    const auto each = [&](uint32_t width, auto read) {
      for (uint32_t i = 0; i + width <= h.length; i += width) values.push_back(read());
    };
    if (h.vr == "US")
      each(2, [&] { return r_.u16(); });
    else if (h.vr == "SS")
      each(2, [&] { return r_.i16(); });
    else if (h.vr == "UL")
      each(4, [&] { return r_.u32(); });
    else if (h.vr == "SL")
      each(4, [&] { return r_.i32(); });
    else if (h.vr == "UV")
      each(8, [&] { return r_.u64(); });
    else if (h.vr == "SV")
      each(8, [&] { return r_.i64(); });
    else if (h.vr == "FL")
      each(4, [&] { return Json(r_.f32()); });
    else if (h.vr == "FD")
      each(8, [&] { return Json(r_.f64()); });
    else if (h.vr == "AT")
      each(4, [&] {
        const uint16_t group = r_.u16();
        return tag_text(uint32_t{group} << 16 | r_.u16());
      });
    else
      return nullptr;  // binary values (OB, OW, UN, ...) are not shown
    if (values.size() == 1) return values[0];
    return values;
  }

  static std::optional<uint64_t> top_number(const Json& elements, uint32_t tag) {
    for (const auto& e : elements) {
      if (e["tag"] != tag_text(tag) || !e.contains("value")) continue;
      const auto& v = e["value"];
      if (v.is_number_unsigned()) return v.get<uint64_t>();
      if (v.is_string()) return parse_digits(v.get<std::string>(), 10);
    }
    return std::nullopt;
  }

  static Json top_value(const Json& elements, uint32_t tag) {
    for (const auto& e : elements)
      if (e["tag"] == tag_text(tag) && e.contains("value")) return e["value"];
    return nullptr;
  }

  void summarize(const Json& elements);

  BinaryReader r_;
  Layout& layout_;
  bool explicit_ = true;
  bool encapsulated_ = false;
  bool fatal_ = false;
  uint64_t elements_ = 0;
  uint64_t fragments_ = 0;
  std::optional<size_t> pixel_slice_;
};

// The image keys of the header, and the native pixel data's dtype and shape.
void DicomParser::summarize(const Json& elements) {
  auto& h = layout_.header;
  h["sop_class_uid"] = top_value(elements, 0x00080016);
  h["modality"] = top_value(elements, 0x00080060);
  const auto rows = top_number(elements, 0x00280010);
  const auto columns = top_number(elements, 0x00280011);
  const auto bits = top_number(elements, 0x00280100);
  const auto samples = top_number(elements, 0x00280002).value_or(1);
  const auto frames = top_number(elements, 0x00280008);
  const auto sign = top_number(elements, 0x00280103).value_or(0);
  const auto planar = top_number(elements, 0x00280006).value_or(0);
  const auto opt = [](std::optional<uint64_t> v) { return v ? Json(*v) : Json(nullptr); };
  h["rows"] = opt(rows);
  h["columns"] = opt(columns);
  h["bits_allocated"] = opt(bits);
  h["pixel_representation"] = sign;
  h["samples_per_pixel"] = samples;
  h["number_of_frames"] = opt(frames);
  h["photometric_interpretation"] = top_value(elements, 0x00280004);
  h["encapsulated"] = encapsulated_;
  if (!pixel_slice_ || encapsulated_) return;
  auto& slice = layout_.slices[*pixel_slice_];
  if (!rows || !columns || !bits || (*bits != 8 && *bits != 16 && *bits != 32)) return;
  const char order = r_.endian() == Endian::big ? '>' : '<';
  slice.attributes["dtype"] =
      std::string(1, order) + (sign == 1 ? "i" : "u") + std::to_string(*bits / 8);
  Json shape = Json::array();
  if (frames && *frames > 1) shape.push_back(*frames);
  if (samples > 1 && planar == 1) shape.push_back(samples);
  shape.push_back(*rows);
  shape.push_back(*columns);
  if (samples > 1 && planar != 1) shape.push_back(samples);
  uint64_t needed = *bits / 8;
  for (const auto& d : shape) needed = checked_mul(needed, d.get<uint64_t>()).value_or(UINT64_MAX);
  slice.attributes["shape"] = std::move(shape);
  if (needed > slice.range.length)
    layout_.add_error("pixel data holds " + std::to_string(slice.range.length) +
                      " bytes, fewer than its shape needs (" + std::to_string(needed) + ")");
}

class Dicom final : public Format {
 public:
  std::string_view name() const noexcept override { return "dicom"; }
  std::string_view description() const noexcept override { return "DICOM Part 10 file"; }
  std::string_view signature() const noexcept override {
    return "\"DICM\" at 128 (after the 128-byte preamble)";
  }

  bool detect(std::span<const std::byte> head, uint64_t) const override {
    return matches_at(head, kMagicOffset, kMagic);
  }

  Layout parse(const ByteSource& source) const override {
    Layout layout;
    layout.magic = ByteRange{kMagicOffset, kMagic.size()};
    if (source.size() < kMetaStart) {
      layout.add_error("file too short for the preamble and \"DICM\"");
      return layout;
    }
    DicomParser(source, layout).run();
    return layout;
  }
};

}  // namespace

std::unique_ptr<Format> make_dicom() {
  return std::make_unique<Dicom>();
}

}  // namespace payloadfs::formats

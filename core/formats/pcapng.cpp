// pcapng capture files (draft-ietf-opsawg-pcapng): a sequence of blocks, each
// type u32 | total length u32 | body | total length u32, in the byte order of the enclosing
// section, whose Section Header Block (type 0a0d0d0a, palindromic) carries the byte-order magic
// 1a2b3c4d. Interface Description Blocks number the section's interfaces from 0 and carry the
// timestamp resolution (if_tsresol) and offset (if_tsoffset); packets come in Enhanced (6),
// Simple (3, no timestamp, interface 0) and obsolete Packet (2) blocks. Other blocks are
// skipped by their length.

#include <array>
#include <climits>
#include <cmath>
#include <optional>
#include <string>
#include <vector>

#include "core/formats/builtin.hpp"
#include "core/formats/support/linktypes.hpp"
#include "core/formats/support/record_fields.hpp"
#include "core/formats/support/signature.hpp"
#include "core/io/binary_reader.hpp"
#include "core/io/checked_math.hpp"
#include "core/render/json_text.hpp"
#include "core/render/time_text.hpp"

namespace payloadfs::formats {
namespace {

constexpr uint32_t kShb = 0x0A0D0D0A;
// The Section Header Block's type as it opens every section, in either byte order.
constexpr auto kShbType = byte_string("\x0a\x0d\x0d\x0a");
constexpr uint32_t kIdb = 0x00000001;
constexpr uint32_t kPb = 0x00000002;
constexpr uint32_t kSpb = 0x00000003;
constexpr uint32_t kEpb = 0x00000006;
constexpr uint32_t kByteOrderMagic = 0x1A2B3C4D;

// Hard caps: packets indexed, blocks walked, interfaces and sections described.
constexpr uint64_t kMaxPackets = 10'000'000;
constexpr uint64_t kMaxBlocks = 50'000'000;
constexpr size_t kMaxInterfaces = 65536;
constexpr size_t kMaxSections = 10000;
constexpr size_t kMaxOptions = 1024;  // per block

// How an interface's timestamps read: resolution 10^-exponent, or 2^-exponent when binary,
// shifted by tsoffset seconds. 16 bytes, kept per interface for reading packets back.
struct Clock {
  int64_t tsoffset = 0;
  uint8_t exponent = 6;  // decimal: at most 19
  bool binary = false;
};

struct Interface {
  Clock clock;
  uint32_t snaplen = 0;
};

// A packet record's tag: bits 31..30 the block kind, bit 29 set for a big-endian section,
// bits 28..0 the global interface index (kNoInterface: none described).
enum class Kind : uint32_t { epb = 0, spb = 1, pb = 2 };
constexpr uint32_t kNoInterface = (uint32_t{1} << 29) - 1;
static_assert(kMaxInterfaces < kNoInterface, "interface indexes must fit the tag's 29 bits");

constexpr uint32_t packet_tag(Kind kind, Endian endian, uint32_t interface) {
  return (static_cast<uint32_t>(kind) << 30) | (endian == Endian::big ? uint32_t{1} << 29 : 0) |
         interface;
}

// Fixed bytes of each block kind between the block header and the packet data (the record's
// offset): SPB original length; EPB/PB interface, timestamp, captured and original length.
constexpr uint64_t kSpbFixed = 4;
constexpr uint64_t kPacketFixed = 20;

__extension__ using Uint128 = unsigned __int128;

std::optional<std::string> timestamp(const Clock& clock, uint64_t units) {
  uint64_t seconds = 0;
  uint64_t fraction = 0;
  unsigned digits = 0;
  if (!clock.binary) {
    uint64_t divisor = 1;
    for (unsigned i = 0; i < clock.exponent; ++i) divisor *= 10;
    seconds = units / divisor;
    fraction = units % divisor;
    digits = clock.exponent;
  } else {
    const unsigned k = clock.exponent;
    seconds = k >= 64 ? 0 : units >> k;
    const uint64_t rem = k >= 64 ? units : units & ((uint64_t{1} << k) - 1);
    // Binary fractions are shown in nanoseconds (rounded down).
    fraction = static_cast<uint64_t>((Uint128{rem} * 1'000'000'000U) >> k);
    digits = k == 0 ? 0 : 9;
  }
  if (seconds > static_cast<uint64_t>(INT64_MAX)) return std::nullopt;
  int64_t total = 0;
  if (__builtin_add_overflow(static_cast<int64_t>(seconds), clock.tsoffset, &total))
    return std::nullopt;
  return utc_timestamp(total, fraction, digits);
}

// A packet's attributes, read back from its block's fixed fields (one read just before its
// data) and the clocks of the described interfaces.
Json packet_attributes(const ByteSource& source, const Record& record,
                       const std::vector<Clock>& clocks) {
  const auto kind = static_cast<Kind>(record.tag >> 30);
  const Endian endian = (record.tag >> 29 & 1) != 0 ? Endian::big : Endian::little;
  const uint32_t interface = record.tag & kNoInterface;
  std::array<std::byte, kPacketFixed> raw{};
  const std::span<std::byte> fixed =
      std::span(raw).first(kind == Kind::spb ? kSpbFixed : kPacketFixed);
  if (!read_fields_before(source, record, fixed)) return Json::object();
  const auto field = [&](size_t at) { return read_endian<uint32_t>(raw.data() + at, endian); };
  Json a = Json::object();
  const bool known = interface != kNoInterface && interface < clocks.size();
  if (known) {
    a["interface"] = interface;
    if (kind != Kind::spb) {
      const uint64_t units = (uint64_t{field(4)} << 32) | field(8);
      if (auto ts = timestamp(clocks[interface], units)) a["ts"] = std::move(*ts);
    }
  }
  a["caplen"] = record.length;
  a["origlen"] = field(kind == Kind::spb ? 0 : 16);
  return a;
}

class Pcapng final : public Format {
 public:
  std::string_view name() const noexcept override { return "pcapng"; }
  std::string_view description() const noexcept override {
    return "pcapng capture file (Wireshark/tshark .pcapng; sections, interfaces, EPB/SPB/PB)";
  }
  std::string_view signature() const noexcept override {
    return "0a 0d 0d 0a at 0 (Section Header Block) with byte-order magic 1a 2b 3c 4d or "
           "4d 3c 2b 1a at 8";
  }

  bool detect(std::span<const std::byte> head, uint64_t) const override {
    if (head.size() < 12 || !starts_with(head, kShbType)) return false;
    return byte_order(head.subspan(8, 4)).has_value();
  }

  Layout parse(const ByteSource& source) const override {
    Layout layout;
    layout.magic = magic_at_start(kShbType);
    const uint64_t size = source.size();
    BinaryReader reader(source);
    Json sections = Json::array();
    Json interfaces_json = Json::array();
    std::vector<Interface> interfaces;  // the first kMaxInterfaces
    uint64_t interface_total = 0;
    RecordTable table;
    table.dir = "packet";
    auto& records = table.records;
    uint64_t section_first = 0;  // global index of the current section's interface 0
    bool in_section = false;
    uint64_t sections_seen = 0;
    uint64_t blocks = 0;
    uint64_t bad_interface = 0;
    uint64_t over_snaplen = 0;
    uint64_t offset = 0;
    while (offset < size) {
      if (blocks++ >= kMaxBlocks) {
        layout.add_error("more than " + std::to_string(kMaxBlocks) +
                         " blocks; the rest of the file (from offset " + std::to_string(offset) +
                         ") is not indexed");
        break;
      }
      if (size - offset < 12) {
        layout.add_error("truncated capture: " + std::to_string(size - offset) +
                         " bytes at offset " + std::to_string(offset) + " are too few for a block");
        break;
      }
      std::array<std::byte, 12> head{};
      reader.seek(offset);
      if (!reader.read_into(head)) {
        layout.add_error("cannot read the block at offset " + std::to_string(offset) + ": " +
                         reader.error().value_or(""));
        break;
      }
      const bool shb = starts_with(head, kShbType);
      if (shb) {
        const auto endian = byte_order(std::span(head).subspan(8, 4));
        if (!endian) {
          layout.add_error("Section Header Block at offset " + std::to_string(offset) +
                           " has no valid byte-order magic; stopping");
          break;
        }
        reader.set_endian(*endian);
      } else if (!in_section) {
        layout.add_error("the file does not start with a Section Header Block");
        break;
      }
      reader.seek(offset);
      const uint32_t type = reader.u32();
      const uint32_t total = reader.u32();
      if (total < 12 || total % 4 != 0) {
        layout.add_error("block at offset " + std::to_string(offset) + " has invalid length " +
                         std::to_string(total) + "; stopping");
        break;
      }
      if (total > size - offset) {
        layout.add_error("truncated capture: block of type " + std::to_string(type) +
                         " at offset " + std::to_string(offset) + " needs " +
                         std::to_string(total) + " bytes, " + std::to_string(size - offset) +
                         " remain");
        break;
      }
      reader.seek(offset + total - 4);
      const uint32_t trailer = reader.u32();
      if (!reader.ok()) {
        layout.add_error("cannot read the block at offset " + std::to_string(offset) + ": " +
                         *reader.error());
        break;
      }
      if (trailer != total) {
        layout.add_error("block at offset " + std::to_string(offset) + ": total length " +
                         std::to_string(total) + " differs from the trailing copy " +
                         std::to_string(trailer) + "; stopping");
        break;
      }
      const uint64_t body = offset + 8;
      const uint64_t body_len = total - 12;
      reader.seek(body);
      if (type == kShb) {
        if (body_len < 16) {
          layout.add_error("Section Header Block at offset " + std::to_string(offset) +
                           " is too short; stopping");
          break;
        }
        reader.skip(4);
        const uint16_t major = reader.u16();
        const uint16_t minor = reader.u16();
        const auto section_length = static_cast<int64_t>(reader.u64());
        Json s = Json::object();
        s["offset"] = offset;
        s["byte_order"] = reader.endian() == Endian::little ? "little" : "big";
        s["version"] = std::to_string(major) + "." + std::to_string(minor);
        s["section_length"] = section_length == -1 ? Json(nullptr) : Json(section_length);
        read_options(
            reader, body + 16, body + body_len, offset, layout,
            [&](uint16_t code) {
              switch (code) {
                case 1:
                  return "comment";
                case 2:
                  return "shb_hardware";
                case 3:
                  return "shb_os";
                case 4:
                  return "shb_userappl";
                default:
                  return "";
              }
            },
            s, nullptr);
        if (sections.size() < kMaxSections) {
          sections.push_back(std::move(s));
        } else if (sections.size() == kMaxSections && sections_seen == kMaxSections) {
          layout.add_error("more than " + std::to_string(kMaxSections) +
                           " sections; only the first are described");
        }
        ++sections_seen;
        section_first = interface_total;
        in_section = true;
        if (major != 1) {
          layout.add_error("section at offset " + std::to_string(offset) + " has version " +
                           std::to_string(major) + "." + std::to_string(minor) +
                           ", only 1.x is understood; stopping");
          break;
        }
      } else if (type == kIdb) {
        if (body_len < 8) {
          layout.add_error("Interface Description Block at offset " + std::to_string(offset) +
                           " is too short");
          // It still takes an interface number in its section.
          if (interface_total++ < kMaxInterfaces) {
            interfaces.push_back(Interface{});
            interfaces_json.push_back(Json{{"section", sections_seen - 1}, {"malformed", true}});
          }
        } else if (interface_total >= kMaxInterfaces) {
          if (interface_total++ == kMaxInterfaces)
            layout.add_error("more than " + std::to_string(kMaxInterfaces) +
                             " interfaces; packets on later ones have no interface");
        } else {
          const uint16_t linktype = reader.u16();
          reader.skip(2);
          Interface iface;
          iface.snaplen = reader.u32();
          Json d = Json::object();
          d["section"] = sections_seen - 1;
          d["linktype"] = linktype;
          if (const auto lt = capture::linktype_name(linktype); !lt.empty())
            d["linktype_name"] = lt;
          d["snaplen"] = iface.snaplen;
          read_options(
              reader, body + 8, body + body_len, offset, layout,
              [](uint16_t code) {
                switch (code) {
                  case 2:
                    return "if_name";
                  case 3:
                    return "if_description";
                  case 12:
                    return "if_os";
                  case 15:
                    return "if_hardware";
                  default:
                    return "";
                }
              },
              d, &iface);
          if (iface.clock.binary) {
            d["if_tsresol"] = std::ldexp(1.0, -static_cast<int>(iface.clock.exponent));
          } else {
            d["if_tsresol"] = std::pow(10.0, -static_cast<double>(iface.clock.exponent));
          }
          d["if_tsoffset"] = iface.clock.tsoffset;
          interfaces_json.push_back(std::move(d));
          interfaces.push_back(iface);
          ++interface_total;
        }
      } else if (type == kEpb || type == kPb || type == kSpb) {
        if (records.size() >= kMaxPackets) {
          layout.add_error("more than " + std::to_string(kMaxPackets) +
                           " packets; the rest of the file (from offset " + std::to_string(offset) +
                           ") is not indexed");
          break;
        }
        const uint64_t local_count = interface_total - section_first;
        Kind kind = Kind::spb;
        uint32_t caplen = 0;
        uint64_t data_offset = 0;
        uint64_t space = 0;
        uint64_t local = 0;
        bool ok = true;
        if (type == kSpb) {
          if (body_len < 4) {
            layout.add_error("Simple Packet Block at offset " + std::to_string(offset) +
                             " is too short");
            ok = false;
          }
          const uint32_t origlen = reader.u32();
          data_offset = body + kSpbFixed;
          space = body_len >= kSpbFixed ? body_len - kSpbFixed : 0;
          local = 0;
          uint64_t cap = std::min<uint64_t>(origlen, space);
          if (local < local_count && section_first < interfaces.size()) {
            const uint32_t snap = interfaces[static_cast<size_t>(section_first)].snaplen;
            if (snap != 0) cap = std::min<uint64_t>(cap, snap);
          }
          caplen = static_cast<uint32_t>(cap);
        } else {
          const uint64_t fixed = kPacketFixed;
          if (body_len < fixed) {
            layout.add_error((type == kEpb ? "Enhanced" : "obsolete") +
                             std::string(" Packet Block at offset ") + std::to_string(offset) +
                             " is too short");
            ok = false;
          }
          if (type == kEpb) {
            kind = Kind::epb;
            local = reader.u32();
          } else {
            kind = Kind::pb;
            local = reader.u16();
            reader.skip(2);  // drops count
          }
          reader.u32();  // timestamp (high, low) and original length are read back when
          reader.u32();  // listed; read here too, so that a short file fails where it did
          caplen = reader.u32();
          reader.u32();
          data_offset = body + fixed;
          space = body_len >= fixed ? body_len - fixed : 0;
          if (ok && caplen > space) {
            layout.add_error("packet block at offset " + std::to_string(offset) +
                             ": captured length " + std::to_string(caplen) +
                             " exceeds the block's " + std::to_string(space) +
                             " data bytes; packet skipped");
            ok = false;
          }
        }
        if (ok && reader.ok()) {
          uint32_t interface = kNoInterface;
          if (local < local_count && section_first + local < interfaces.size()) {
            interface = static_cast<uint32_t>(section_first + local);
            const uint32_t snap = interfaces[interface].snaplen;
            if (snap != 0 && caplen > snap) ++over_snaplen;
          } else {
            ++bad_interface;
          }
          records.push_back(
              Record{data_offset, caplen, packet_tag(kind, reader.endian(), interface)});
        }
      }
      if (!reader.ok()) {
        layout.add_error("block at offset " + std::to_string(offset) + ": " + *reader.error());
        break;
      }
      offset += total;
    }
    if (bad_interface > 0)
      layout.add_error(std::to_string(bad_interface) +
                       " packet(s) refer to an interface not described in their section");
    if (over_snaplen > 0)
      layout.add_error(std::to_string(over_snaplen) +
                       " packet(s) have a captured length above their interface's snaplen");

    auto& h = layout.header;
    h["sections"] = std::move(sections);
    h["interfaces"] = std::move(interfaces_json);
    h["packet_count"] = records.size();
    // Growth by doubling may leave up to half the capacity unused: give it back.
    if (records.capacity() - records.size() > records.size() / 8) records.shrink_to_fit();
    std::vector<Clock> clocks;
    clocks.reserve(interfaces.size());
    for (const auto& iface : interfaces) clocks.push_back(iface.clock);
    table.attributes = [clocks = std::move(clocks)](const ByteSource& src, const Record& record) {
      return packet_attributes(src, record, clocks);
    };
    if (!records.empty()) layout.tables.push_back(std::move(table));
    return layout;
  }

 private:
  static std::optional<Endian> byte_order(std::span<const std::byte> bom) {
    const auto be = read_be<uint32_t>(bom.data());
    if (be == kByteOrderMagic) return Endian::big;
    if (be == 0x4D3C2B1A) return Endian::little;
    return std::nullopt;
  }

  // Reads the options in [start, end): string options named by `name_of` go into `out`
  // (the first of each code), and if_tsresol/if_tsoffset into `iface` when given.
  template <typename NameOf>
  static void read_options(BinaryReader& reader, uint64_t start, uint64_t end,
                           uint64_t block_offset, Layout& layout, NameOf name_of, Json& out,
                           Interface* iface) {
    uint64_t pos = start;
    for (size_t n = 0; pos < end; ++n) {
      const auto where = [&] { return "block at offset " + std::to_string(block_offset); };
      if (n >= kMaxOptions) {
        layout.add_error(where() + ": more than " + std::to_string(kMaxOptions) + " options");
        return;
      }
      if (end - pos < 4) {
        layout.add_error(where() + ": truncated option header");
        return;
      }
      reader.seek(pos);
      const uint16_t code = reader.u16();
      const uint16_t length = reader.u16();
      if (code == 0) return;  // opt_endofopt
      if (length > end - pos - 4) {
        layout.add_error(where() + ": option " + std::to_string(code) + " of " +
                         std::to_string(length) + " bytes runs past the block");
        return;
      }
      const std::string key = name_of(code);
      if (!key.empty()) {
        const std::string value = reader.text(length);
        if (!out.contains(key)) out[key] = utf8_or_escaped(value);
      } else if (iface != nullptr && code == 9 && length >= 1) {
        const uint8_t v = reader.u8();
        const unsigned exponent = v & 0x7Fu;
        if ((v & 0x80) != 0) {
          iface->clock.binary = true;
          iface->clock.exponent = static_cast<uint8_t>(exponent);
        } else if (exponent > 19) {
          layout.add_error(where() + ": if_tsresol 10^-" + std::to_string(exponent) +
                           " is finer than 64-bit timestamps can hold; using microseconds");
        } else {
          iface->clock.binary = false;
          iface->clock.exponent = static_cast<uint8_t>(exponent);
        }
      } else if (iface != nullptr && code == 14 && length >= 8) {
        iface->clock.tsoffset = reader.i64();
      }
      pos += 4 + ((uint64_t{length} + 3) & ~uint64_t{3});
    }
  }
};

}  // namespace

std::unique_ptr<Format> make_pcapng() {
  return std::make_unique<Pcapng>();
}

}  // namespace payloadfs::formats

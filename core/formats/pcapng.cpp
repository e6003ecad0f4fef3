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
    BlockWalk(source, layout).run();
    return layout;
  }

 private:
  // A packet block's fields, as indexed.
  struct Packet {
    Kind kind = Kind::spb;
    uint32_t caplen = 0;
    uint64_t data_offset = 0;
    uint64_t local = 0;  // the interface number within its section
    bool ok = true;
  };

  // The walk over the blocks, and what it collects.
  class BlockWalk {
   public:
    BlockWalk(const ByteSource& source, Layout& layout)
        : size_(source.size()), reader_(source), layout_(layout) {
      table_.dir = "packet";
    }

    void run() {
      while (offset_ < size_ && step()) {
      }
      summarize();
    }

   private:
    // Walks one block; false when the walk stops.
    bool step() {
      if (blocks_++ >= kMaxBlocks) {
        layout_.add_error("more than " + std::to_string(kMaxBlocks) +
                          " blocks; the rest of the file (from offset " + std::to_string(offset_) +
                          ") is not indexed");
        return false;
      }
      if (size_ - offset_ < 12) {
        layout_.add_error("truncated capture: " + std::to_string(size_ - offset_) +
                          " bytes at offset " + std::to_string(offset_) +
                          " are too few for a block");
        return false;
      }
      uint32_t type = 0;
      uint32_t total = 0;
      if (!read_frame(type, total)) return false;
      const uint64_t body = offset_ + 8;
      const uint64_t body_len = total - 12;
      reader_.seek(body);
      if (type == kShb) {
        if (!read_shb(body, body_len)) return false;
      } else if (type == kIdb) {
        read_idb(body, body_len);
      } else if (type == kEpb || type == kPb || type == kSpb) {
        if (!read_packet(type, body, body_len)) return false;
      }
      if (!reader_.ok()) {
        layout_.add_error("block at offset " + std::to_string(offset_) + ": " + *reader_.error());
        return false;
      }
      offset_ += total;
      return true;
    }

    // Reads the block's type and total length, and checks its framing (an SHB also sets the
    // byte order); false when the walk stops.
    bool read_frame(uint32_t& type, uint32_t& total) {
      std::array<std::byte, 12> head{};
      reader_.seek(offset_);
      if (!reader_.read_into(head)) {
        layout_.add_error("cannot read the block at offset " + std::to_string(offset_) + ": " +
                          reader_.error().value_or(""));
        return false;
      }
      if (starts_with(head, kShbType)) {
        const auto endian = byte_order(std::span(head).subspan(8, 4));
        if (!endian) {
          layout_.add_error("Section Header Block at offset " + std::to_string(offset_) +
                            " has no valid byte-order magic; stopping");
          return false;
        }
        reader_.set_endian(*endian);
      } else if (!in_section_) {
        layout_.add_error("the file does not start with a Section Header Block");
        return false;
      }
      reader_.seek(offset_);
      type = reader_.u32();
      total = reader_.u32();
      if (total < 12 || total % 4 != 0) {
        layout_.add_error("block at offset " + std::to_string(offset_) + " has invalid length " +
                          std::to_string(total) + "; stopping");
        return false;
      }
      if (total > size_ - offset_) {
        layout_.add_error("truncated capture: block of type " + std::to_string(type) +
                          " at offset " + std::to_string(offset_) + " needs " +
                          std::to_string(total) + " bytes, " + std::to_string(size_ - offset_) +
                          " remain");
        return false;
      }
      reader_.seek(offset_ + total - 4);
      const uint32_t trailer = reader_.u32();
      if (!reader_.ok()) {
        layout_.add_error("cannot read the block at offset " + std::to_string(offset_) + ": " +
                          *reader_.error());
        return false;
      }
      if (trailer != total) {
        layout_.add_error("block at offset " + std::to_string(offset_) + ": total length " +
                          std::to_string(total) + " differs from the trailing copy " +
                          std::to_string(trailer) + "; stopping");
        return false;
      }
      return true;
    }

    // A Section Header Block: starts a section; false when the walk stops.
    bool read_shb(uint64_t body, uint64_t body_len) {
      if (body_len < 16) {
        layout_.add_error("Section Header Block at offset " + std::to_string(offset_) +
                          " is too short; stopping");
        return false;
      }
      reader_.skip(4);
      const uint16_t major = reader_.u16();
      const uint16_t minor = reader_.u16();
      const auto section_length = static_cast<int64_t>(reader_.u64());
      Json s = Json::object();
      s["offset"] = offset_;
      s["byte_order"] = reader_.endian() == Endian::little ? "little" : "big";
      s["version"] = std::to_string(major) + "." + std::to_string(minor);
      s["section_length"] = section_length == -1 ? Json(nullptr) : Json(section_length);
      read_options(reader_, body + 16, body + body_len, offset_, layout_, shb_option_name, s,
                   nullptr);
      if (sections_.size() < kMaxSections) {
        sections_.push_back(std::move(s));
      } else if (sections_.size() == kMaxSections && sections_seen_ == kMaxSections) {
        layout_.add_error("more than " + std::to_string(kMaxSections) +
                          " sections; only the first are described");
      }
      ++sections_seen_;
      section_first_ = interface_total_;
      in_section_ = true;
      if (major != 1) {
        layout_.add_error("section at offset " + std::to_string(offset_) + " has version " +
                          std::to_string(major) + "." + std::to_string(minor) +
                          ", only 1.x is understood; stopping");
        return false;
      }
      return true;
    }

    static const char* shb_option_name(uint16_t code) {
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
    }

    static const char* idb_option_name(uint16_t code) {
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
    }

    // An Interface Description Block: the next interface of the current section.
    void read_idb(uint64_t body, uint64_t body_len) {
      if (body_len < 8) {
        layout_.add_error("Interface Description Block at offset " + std::to_string(offset_) +
                          " is too short");
        // It still takes an interface number in its section.
        if (interface_total_++ < kMaxInterfaces) {
          interfaces_.push_back(Interface{});
          interfaces_json_.push_back(Json{{"section", sections_seen_ - 1}, {"malformed", true}});
        }
        return;
      }
      if (interface_total_ >= kMaxInterfaces) {
        if (interface_total_++ == kMaxInterfaces)
          layout_.add_error("more than " + std::to_string(kMaxInterfaces) +
                            " interfaces; packets on later ones have no interface");
        return;
      }
      const uint16_t linktype = reader_.u16();
      reader_.skip(2);
      Interface iface;
      iface.snaplen = reader_.u32();
      Json d = Json::object();
      d["section"] = sections_seen_ - 1;
      d["linktype"] = linktype;
      if (const auto lt = capture::linktype_name(linktype); !lt.empty()) d["linktype_name"] = lt;
      d["snaplen"] = iface.snaplen;
      read_options(reader_, body + 8, body + body_len, offset_, layout_, idb_option_name, d,
                   &iface);
      if (iface.clock.binary) {
        d["if_tsresol"] = std::ldexp(1.0, -static_cast<int>(iface.clock.exponent));
      } else {
        d["if_tsresol"] = std::pow(10.0, -static_cast<double>(iface.clock.exponent));
      }
      d["if_tsoffset"] = iface.clock.tsoffset;
      interfaces_json_.push_back(std::move(d));
      interfaces_.push_back(iface);
      ++interface_total_;
    }

    // An Enhanced, Simple or obsolete Packet Block: one packet; false when the walk stops.
    bool read_packet(uint32_t type, uint64_t body, uint64_t body_len) {
      if (table_.records.size() >= kMaxPackets) {
        layout_.add_error("more than " + std::to_string(kMaxPackets) +
                          " packets; the rest of the file (from offset " + std::to_string(offset_) +
                          ") is not indexed");
        return false;
      }
      const uint64_t local_count = interface_total_ - section_first_;
      const Packet p =
          type == kSpb ? read_spb(body, body_len, local_count) : read_epb(type, body, body_len);
      if (p.ok && reader_.ok()) {
        uint32_t interface = kNoInterface;
        if (p.local < local_count && section_first_ + p.local < interfaces_.size()) {
          interface = static_cast<uint32_t>(section_first_ + p.local);
          const uint32_t snap = interfaces_[interface].snaplen;
          if (snap != 0 && p.caplen > snap) ++over_snaplen_;
        } else {
          ++bad_interface_;
        }
        table_.records.push_back(
            Record{p.data_offset, p.caplen, packet_tag(p.kind, reader_.endian(), interface)});
      }
      return true;
    }

    // A Simple Packet Block: interface 0, captured length from the block and the snaplen.
    Packet read_spb(uint64_t body, uint64_t body_len, uint64_t local_count) {
      Packet p;
      if (body_len < 4) {
        layout_.add_error("Simple Packet Block at offset " + std::to_string(offset_) +
                          " is too short");
        p.ok = false;
      }
      const uint32_t origlen = reader_.u32();
      p.data_offset = body + kSpbFixed;
      const uint64_t space = body_len >= kSpbFixed ? body_len - kSpbFixed : 0;
      p.local = 0;
      uint64_t cap = std::min<uint64_t>(origlen, space);
      if (p.local < local_count && section_first_ < interfaces_.size()) {
        const uint32_t snap = interfaces_[static_cast<size_t>(section_first_)].snaplen;
        if (snap != 0) cap = std::min<uint64_t>(cap, snap);
      }
      p.caplen = static_cast<uint32_t>(cap);
      return p;
    }

    // An Enhanced or obsolete Packet Block.
    Packet read_epb(uint32_t type, uint64_t body, uint64_t body_len) {
      Packet p;
      const uint64_t fixed = kPacketFixed;
      if (body_len < fixed) {
        layout_.add_error((type == kEpb ? "Enhanced" : "obsolete") +
                          std::string(" Packet Block at offset ") + std::to_string(offset_) +
                          " is too short");
        p.ok = false;
      }
      if (type == kEpb) {
        p.kind = Kind::epb;
        p.local = reader_.u32();
      } else {
        p.kind = Kind::pb;
        p.local = reader_.u16();
        reader_.skip(2);  // drops count
      }
      reader_.u32();  // timestamp (high, low) and original length are read back when
      reader_.u32();  // listed; read here too, so that a short file fails where it did
      p.caplen = reader_.u32();
      reader_.u32();
      p.data_offset = body + fixed;
      const uint64_t space = body_len >= fixed ? body_len - fixed : 0;
      if (p.ok && p.caplen > space) {
        layout_.add_error("packet block at offset " + std::to_string(offset_) +
                          ": captured length " + std::to_string(p.caplen) +
                          " exceeds the block's " + std::to_string(space) +
                          " data bytes; packet skipped");
        p.ok = false;
      }
      return p;
    }

    void summarize() {
      if (bad_interface_ > 0)
        layout_.add_error(std::to_string(bad_interface_) +
                          " packet(s) refer to an interface not described in their section");
      if (over_snaplen_ > 0)
        layout_.add_error(std::to_string(over_snaplen_) +
                          " packet(s) have a captured length above their interface's snaplen");
      auto& records = table_.records;
      auto& h = layout_.header;
      h["sections"] = std::move(sections_);
      h["interfaces"] = std::move(interfaces_json_);
      h["packet_count"] = records.size();
      // Growth by doubling may leave up to half the capacity unused: give it back.
      if (records.capacity() - records.size() > records.size() / 8) records.shrink_to_fit();
      std::vector<Clock> clocks;
      clocks.reserve(interfaces_.size());
      for (const auto& iface : interfaces_) clocks.push_back(iface.clock);
      table_.attributes = [clocks = std::move(clocks)](const ByteSource& src,
                                                       const Record& record) {
        return packet_attributes(src, record, clocks);
      };
      if (!records.empty()) layout_.tables.push_back(std::move(table_));
    }

    const uint64_t size_;
    BinaryReader reader_;
    Layout& layout_;
    Json sections_ = Json::array();
    Json interfaces_json_ = Json::array();
    std::vector<Interface> interfaces_;  // the first kMaxInterfaces
    uint64_t interface_total_ = 0;
    RecordTable table_;
    uint64_t section_first_ = 0;  // global index of the current section's interface 0
    bool in_section_ = false;
    uint64_t sections_seen_ = 0;
    uint64_t blocks_ = 0;
    uint64_t bad_interface_ = 0;
    uint64_t over_snaplen_ = 0;
    uint64_t offset_ = 0;
  };

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

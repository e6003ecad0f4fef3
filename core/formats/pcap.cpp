// Classic libpcap capture files (draft-ietf-opsawg-pcap; libpcap sf-pcap.c): a 24-byte file
// header (magic, version 2.4, thiszone, sigfigs, snaplen, LinkType with optional FCS bits),
// then records of a 16-byte header (ts seconds, ts micro- or nanoseconds, captured length,
// original length) followed by the captured bytes. The magic's byte order is the file's byte
// order; magic a1b23c4d marks nanosecond timestamps.

#include <array>
#include <string>
#include <vector>

#include "core/formats/builtin.hpp"
#include "core/formats/support/linktypes.hpp"
#include "core/formats/support/record_fields.hpp"
#include "core/io/binary_reader.hpp"
#include "core/io/checked_math.hpp"
#include "core/render/time_text.hpp"

namespace payloadfs::formats {
namespace {

constexpr uint32_t kMagicMicro = 0xa1b2c3d4;
constexpr uint32_t kMagicNano = 0xa1b23c4d;
constexpr uint64_t kMagicBytes = 4;
constexpr uint64_t kFileHeaderBytes = 24;
constexpr uint64_t kRecordHeaderBytes = 16;
// Records indexed per file; beyond this the rest of the file is reported, not indexed.
constexpr uint64_t kMaxPackets = 10'000'000;

struct Magic {
  Endian endian;
  bool nano;
};

std::optional<Magic> read_magic(std::span<const std::byte> head) {
  if (head.size() < kMagicBytes) return std::nullopt;
  const auto le = read_le<uint32_t>(head.data());
  const auto be = read_be<uint32_t>(head.data());
  if (le == kMagicMicro) return Magic{Endian::little, false};
  if (le == kMagicNano) return Magic{Endian::little, true};
  if (be == kMagicMicro) return Magic{Endian::big, false};
  if (be == kMagicNano) return Magic{Endian::big, true};
  return std::nullopt;
}

// A packet's attributes, read back from its 16-byte record header (just before its data) with
// one read: the table keeps only {data offset, caplen}.
Json packet_attributes(const ByteSource& source, const Record& record, Endian endian, bool nano) {
  std::array<std::byte, kRecordHeaderBytes> raw{};
  if (!read_fields_before(source, record, raw)) return Json::object();
  const auto field = [&](size_t at) { return read_endian<uint32_t>(raw.data() + at, endian); };
  const uint32_t per_second = nano ? 1'000'000'000 : 1'000'000;
  const uint32_t fraction = field(4);
  // A fraction field at or above one second is carried, as Wireshark does.
  const int64_t seconds = static_cast<int64_t>(field(0)) + fraction / per_second;
  Json attributes = Json::object();
  attributes["ts"] = utc_timestamp(seconds, fraction % per_second, nano ? 9 : 6);
  attributes["caplen"] = field(8);
  attributes["origlen"] = field(12);
  return attributes;
}

struct FileHeader {
  uint16_t major = 0;
  uint16_t minor = 0;
  int32_t thiszone = 0;
  uint32_t sigfigs = 0;
  uint32_t snaplen = 0;
  uint32_t network = 0;
};

// Reads the magic; nullopt (with the error added) when the file has none.
std::optional<Magic> parse_magic(const ByteSource& source, Layout& layout) {
  std::array<std::byte, kMagicBytes> head{};
  if (source.size() < kMagicBytes || !source.read_exact(0, head)) {
    layout.add_error("file too short for the pcap magic");
    return std::nullopt;
  }
  const auto magic = read_magic(head);
  if (!magic) layout.add_error("not a pcap magic number");
  return magic;
}

// Reads the rest of the 24-byte file header; the reader stands just after the magic.
std::optional<FileHeader> read_file_header(BinaryReader& reader, Layout& layout) {
  FileHeader fh;
  fh.major = reader.u16();
  fh.minor = reader.u16();
  fh.thiszone = reader.i32();
  fh.sigfigs = reader.u32();
  fh.snaplen = reader.u32();
  fh.network = reader.u32();
  if (!reader.ok()) {
    layout.add_error("truncated file header: " + *reader.error());
    return std::nullopt;
  }
  return fh;
}

// LinkType is the low 16 bits (libpcap keeps 26); bit 26 says the next 4 bits hold the
// FCS length in 16-bit words.
uint32_t linktype_of(const FileHeader& fh) {
  return fh.network & 0x03FFFFFF;
}

void describe_header(const FileHeader& fh, const Magic& magic, Layout& layout) {
  const uint32_t linktype = linktype_of(fh);
  auto& h = layout.header;
  h["version"] = std::to_string(fh.major) + "." + std::to_string(fh.minor);
  h["snaplen"] = fh.snaplen;
  h["linktype"] = linktype;
  if (const auto lt = capture::linktype_name(linktype); !lt.empty()) h["linktype_name"] = lt;
  if ((fh.network & 0x04000000) != 0) h["fcs_bits"] = ((fh.network >> 28) & 0xF) * 16;
  h["byte_order"] = magic.endian == Endian::little ? "little" : "big";
  h["ts_resolution"] = magic.nano ? "ns" : "us";
  h["thiszone"] = fh.thiszone;
  h["sigfigs"] = fh.sigfigs;
  if (fh.major != 2)
    layout.add_error("unsupported pcap version " + std::to_string(fh.major) + "." +
                     std::to_string(fh.minor) + " (expected 2.4); records read as 2.4");
}

// Reads one record header at `offset` (which has at least 16 bytes after it) and returns its
// caplen, or nullopt (with the error added) when the record cannot be indexed.
std::optional<uint32_t> read_caplen(BinaryReader& reader, uint64_t offset, uint64_t index,
                                    uint32_t max_caplen, uint64_t size, Layout& layout) {
  // Timestamp and original length are read back from the file when listed.
  reader.seek(offset);
  reader.skip(8);
  const uint32_t caplen = reader.u32();
  reader.skip(4);
  if (!reader.ok()) {
    layout.add_error("cannot read packet " + std::to_string(index) + ": " + *reader.error());
    return std::nullopt;
  }
  if (caplen > max_caplen) {
    layout.add_error("packet " + std::to_string(index) + " at offset " + std::to_string(offset) +
                     ": captured length " + std::to_string(caplen) + " exceeds the maximum of " +
                     std::to_string(max_caplen) +
                     " for this link type (corrupt record header); the rest of the file is "
                     "not indexed");
    return std::nullopt;
  }
  const uint64_t data = offset + kRecordHeaderBytes;
  if (caplen > size - data) {
    layout.add_error("truncated capture: packet " + std::to_string(index) + " at offset " +
                     std::to_string(offset) + " has captured length " + std::to_string(caplen) +
                     " but only " + std::to_string(size - data) + " bytes remain");
    return std::nullopt;
  }
  return caplen;
}

// Walks the records after the file header into the packet table.
std::vector<Record> index_packets(const ByteSource& source, BinaryReader& reader,
                                  const FileHeader& fh, Layout& layout) {
  const uint32_t max_caplen = capture::max_caplen_for_linktype(linktype_of(fh));
  const uint64_t size = source.size();
  std::vector<Record> records;
  uint64_t offset = kFileHeaderBytes;
  uint64_t over_snaplen = 0;
  uint64_t first_over_snaplen = 0;
  while (offset < size) {
    if (records.size() >= kMaxPackets) {
      layout.add_error("more than " + std::to_string(kMaxPackets) +
                       " packets; the rest of the file (from offset " + std::to_string(offset) +
                       ") is not indexed");
      break;
    }
    const uint64_t index = records.size();
    if (size - offset < kRecordHeaderBytes) {
      layout.add_error("truncated capture: packet " + std::to_string(index) +
                       " record header at offset " + std::to_string(offset) + " needs 16 bytes, " +
                       std::to_string(size - offset) + " remain");
      break;
    }
    const auto caplen = read_caplen(reader, offset, index, max_caplen, size, layout);
    if (!caplen) break;
    if (*caplen > fh.snaplen && over_snaplen++ == 0) first_over_snaplen = index;
    const uint64_t data = offset + kRecordHeaderBytes;
    records.push_back(Record{data, *caplen, 0});
    offset = data + *caplen;
  }
  if (over_snaplen > 0)
    layout.add_error(
        std::to_string(over_snaplen) + " packet(s) have a captured length above the snaplen " +
        std::to_string(fh.snaplen) + " (first: packet " + std::to_string(first_over_snaplen) + ")");
  return records;
}

class Pcap final : public Format {
 public:
  std::string_view name() const noexcept override { return "pcap"; }
  std::string_view description() const noexcept override {
    return "libpcap capture file (tcpdump/Wireshark .pcap; micro- and nanosecond, both byte "
           "orders)";
  }
  std::string_view signature() const noexcept override {
    return "d4 c3 b2 a1 / a1 b2 c3 d4 (microsecond, little/big-endian) or 4d 3c b2 a1 / "
           "a1 b2 3c 4d (nanosecond) at 0";
  }

  bool detect(std::span<const std::byte> head, uint64_t) const override {
    return read_magic(head).has_value();
  }

  Layout parse(const ByteSource& source) const override {
    Layout layout;
    layout.magic = ByteRange{0, kMagicBytes};
    const auto magic = parse_magic(source, layout);
    if (!magic) return layout;
    BinaryReader reader(source, magic->endian);
    reader.seek(kMagicBytes);
    const auto fh = read_file_header(reader, layout);
    if (!fh) return layout;
    describe_header(*fh, *magic, layout);

    RecordTable table;
    table.dir = "packet";
    auto& records = table.records;
    records = index_packets(source, reader, *fh, layout);
    layout.header["packet_count"] = records.size();
    // Growth by doubling may leave up to half the capacity unused: give it back.
    if (records.capacity() - records.size() > records.size() / 8) records.shrink_to_fit();
    table.attributes = [endian = magic->endian, nano = magic->nano](const ByteSource& src,
                                                                    const Record& record) {
      return packet_attributes(src, record, endian, nano);
    };
    if (!records.empty()) layout.tables.push_back(std::move(table));
    return layout;
  }
};

}  // namespace

std::unique_ptr<Format> make_pcap() {
  return std::make_unique<Pcap>();
}

}  // namespace payloadfs::formats

// pcap parser: hand-built edge cases, and real captures (tcpdump on loopback, editcap, scapy,
// big-endian rewrites, a cut-short file) compared with capinfos and tshark
// (see tests/fixtures/gen_pcap.py).

#include <algorithm>
#include <random>
#include <string>

#include "core/render/hex.hpp"
#include "unit/test_support.hpp"

namespace payloadfs::formats {
std::unique_ptr<Format> make_pcap();
}

namespace payloadfs {
namespace {

using testing::expect_in_bounds;
using testing::first_error;
using testing::has_error;

using testing::Bytes;
using testing::parse_bytes;

struct Writer {
  bool big = false;
  Bytes b;
  Writer& n(uint64_t v, int width) {
    if (big)
      b.be(v, width);
    else
      b.le(v, width);
    return *this;
  }
  Writer& header(uint32_t magic, uint32_t snaplen = 65535, uint32_t linktype = 1) {
    return n(magic, 4).n(2, 2).n(4, 2).n(0, 4).n(0, 4).n(snaplen, 4).n(linktype, 4);
  }
  Writer& packet(uint32_t sec, uint32_t frac, const std::string& data, uint32_t origlen = 0) {
    n(sec, 4).n(frac, 4).n(data.size(), 4).n(origlen != 0 ? origlen : data.size(), 4);
    b.raw(data);
    return *this;
  }
};

TEST(Pcap, Detect) {
  auto f = formats::make_pcap();
  for (const uint32_t magic : {0xa1b2c3d4U, 0xa1b23c4dU}) {
    for (const bool big : {false, true}) {
      Writer w{big, {}};
      w.n(magic, 4);
      EXPECT_TRUE(f->detect(w.b.data(), w.b.size())) << magic << big;
    }
  }
  Bytes modified;  // Kuznetzov's modified pcap is a different record layout
  modified.le(0xa1b2cd34, 4);
  EXPECT_FALSE(f->detect(modified.data(), modified.size()));
  Bytes pcapng;
  pcapng.le(0x0A0D0D0A, 4).le(28, 4).le(0x1A2B3C4D, 4);
  EXPECT_FALSE(f->detect(pcapng.data(), pcapng.size()));
  Bytes shorter;
  shorter.u8(0xd4).u8(0xc3).u8(0xb2);
  EXPECT_FALSE(f->detect(shorter.data(), shorter.size()));
}

TEST(Pcap, AllFourMagics) {
  auto f = formats::make_pcap();
  for (const bool nano : {false, true}) {
    for (const bool big : {false, true}) {
      Writer w{big, {}};
      w.header(nano ? 0xa1b23c4d : 0xa1b2c3d4, 96, 113);
      w.packet(0, nano ? 999999999 : 999999, "abc", 60);
      w.packet(1700000000, nano ? 5 : 5, "", 0);
      w.packet(4294967295U, 0, std::string(96, 'z'));
      const Layout l = parse_bytes(*f, w.b.data());
      EXPECT_TRUE(l.errors.empty()) << first_error(l);
      EXPECT_EQ(l.header["version"], "2.4");
      EXPECT_EQ(l.header["snaplen"], 96);
      EXPECT_EQ(l.header["linktype"], 113);
      EXPECT_EQ(l.header["linktype_name"], "LINUX_SLL");
      EXPECT_EQ(l.header["byte_order"], big ? "big" : "little");
      EXPECT_EQ(l.header["ts_resolution"], nano ? "ns" : "us");
      EXPECT_EQ(l.header["packet_count"], 3);
      ASSERT_EQ(l.slices.size(), 3U);
      EXPECT_EQ(l.slices[0].name, "packet/0");
      EXPECT_EQ(l.slices[0].range, (ByteRange{40, 3}));
      EXPECT_EQ(l.slices[0].attributes["caplen"], 3);
      EXPECT_EQ(l.slices[0].attributes["origlen"], 60);
      EXPECT_EQ(l.slices[0].attributes["ts"],
                nano ? "1970-01-01T00:00:00.999999999Z" : "1970-01-01T00:00:00.999999Z");
      EXPECT_EQ(l.slices[1].range, (ByteRange{59, 0}));
      EXPECT_EQ(l.slices[1].attributes["ts"],
                nano ? "2023-11-14T22:13:20.000000005Z" : "2023-11-14T22:13:20.000005Z");
      EXPECT_EQ(l.slices[2].attributes["ts"],
                nano ? "2106-02-07T06:28:15.000000000Z" : "2106-02-07T06:28:15.000000Z");
      EXPECT_EQ(*l.magic, (ByteRange{0, 4}));
    }
  }
}

TEST(Pcap, NamesAreZeroPaddedToTheLargestIndex) {
  auto f = formats::make_pcap();
  Writer w;
  w.header(0xa1b2c3d4);
  for (int i = 0; i < 1000; ++i) w.packet(static_cast<uint32_t>(i), 0, "x");
  const Layout l = parse_bytes(*f, w.b.data());
  ASSERT_EQ(l.slices.size(), 1000U);
  EXPECT_EQ(l.slices[0].name, "packet/000");
  EXPECT_EQ(l.slices[999].name, "packet/999");
  Writer ten;
  ten.header(0xa1b2c3d4);
  for (int i = 0; i < 10; ++i) ten.packet(0, 0, "");
  const Layout t = parse_bytes(*f, ten.b.data());
  EXPECT_EQ(t.slices[9].name, "packet/9");
  Writer none;
  none.header(0xa1b2c3d4);
  const Layout n = parse_bytes(*f, none.b.data());
  EXPECT_TRUE(n.errors.empty());
  EXPECT_EQ(n.header["packet_count"], 0);
  EXPECT_TRUE(n.slices.empty());
}

TEST(Pcap, TruncatedAtEveryByte) {
  auto f = formats::make_pcap();
  Writer w;
  w.header(0xa1b2c3d4).packet(1, 2, "hello").packet(3, 4, "world!");
  const auto& full = w.b.data();
  for (size_t n = 0; n < full.size(); ++n) {
    const std::vector<std::byte> cut(full.begin(), full.begin() + static_cast<std::ptrdiff_t>(n));
    const Layout l = parse_bytes(*f, cut);
    const size_t complete = n >= 24 + 21 + 22 ? 2 : n >= 24 + 21 ? 1 : 0;
    EXPECT_EQ(l.slices.size(), complete) << n;
    // Ends exactly after the header or a packet: nothing is missing.
    EXPECT_EQ(l.errors.empty(), n == 24 || n == 45) << "cut at " << n;
    if (n > 24 && n != 45) {
      EXPECT_TRUE(has_error(l, "truncated")) << n;
    }
    expect_in_bounds(l, n);
  }
}

TEST(Pcap, BogusLengths) {
  auto f = formats::make_pcap();
  {  // caplen 2^32-1: corrupt header, everything before it kept
    Writer w;
    w.header(0xa1b2c3d4).packet(0, 0, "ok");
    w.n(0, 4).n(0, 4).n(0xFFFFFFFF, 4).n(0xFFFFFFFF, 4).b.raw("rest");
    const Layout l = parse_bytes(*f, w.b.data());
    EXPECT_TRUE(has_error(l, "exceeds the maximum of 262144"));
    EXPECT_EQ(l.slices.size(), 1U);
  }
  {  // caplen above the snaplen but plausible: kept, reported
    Writer w;
    w.header(0xa1b2c3d4, 4).packet(0, 0, "123456").packet(0, 0, "1234");
    const Layout l = parse_bytes(*f, w.b.data());
    EXPECT_TRUE(has_error(l, "1 packet(s) have a captured length above the snaplen 4"));
    EXPECT_EQ(l.slices.size(), 2U);
  }
  {  // D-Bus allows 128 MiB packets; a 300000-byte caplen is then just truncation
    Writer w;
    w.header(0xa1b2c3d4, 0, 231);
    w.n(0, 4).n(0, 4).n(300000, 4).n(300000, 4).b.raw("short");
    const Layout l = parse_bytes(*f, w.b.data());
    EXPECT_TRUE(has_error(l, "truncated capture"));
    EXPECT_EQ(l.header["linktype_name"], "DBUS");
  }
  {  // microsecond field >= 10^6 is carried into the seconds; unknown link type has no name
    Writer w;
    w.header(0xa1b2c3d4, 65535, 4000).packet(0, 2500000, "");
    const Layout l = parse_bytes(*f, w.b.data());
    EXPECT_EQ(l.slices[0].attributes["ts"], "1970-01-01T00:00:02.500000Z");
    EXPECT_FALSE(l.header.contains("linktype_name"));
    EXPECT_EQ(l.header["linktype"], 4000);
  }
  {  // FCS bits in the link type field
    Writer w;
    w.header(0xa1b2c3d4, 65535, 0x24000001);
    const Layout l = parse_bytes(*f, w.b.data());
    EXPECT_EQ(l.header["linktype"], 1);
    EXPECT_EQ(l.header["fcs_bits"], 32);
  }
  {  // unknown version: reported, records still read
    Writer w;
    w.n(0xa1b2c3d4, 4).n(3, 2).n(0, 2).n(0, 4).n(0, 4).n(100, 4).n(1, 4).packet(0, 0, "p");
    const Layout l = parse_bytes(*f, w.b.data());
    EXPECT_TRUE(has_error(l, "unsupported pcap version 3.0"));
    EXPECT_EQ(l.slices.size(), 1U);
  }
}

TEST(Pcap, Robustness) {
  auto f = formats::make_pcap();
  std::vector<std::vector<std::byte>> seeds;
  Writer w;
  w.header(0xa1b2c3d4).packet(1, 2, "hello").packet(3, 4, std::string(40, 'q'));
  seeds.push_back(w.b.data());
  Writer big{true, {}};
  big.header(0xa1b23c4d).packet(1, 2, "x").packet(5, 6, "yy");
  seeds.push_back(big.b.data());
  const std::string dir = testing::fixtures_dir() + "/pcap";
  for (const char* name : {"lo_snap96.pcap", "scapy_raw_ns.pcap"}) {
    auto bytes = testing::read_file(dir + "/" + name);
    if (!bytes.empty()) seeds.push_back(std::move(bytes));
  }
  testing::mutate_and_parse(*f, seeds, 4242, 3000);
}

TEST(Pcap, PacketsAreARecordTableOf16ByteRecords) {
  const std::string dir = testing::fixtures_dir() + "/pcap";
  const Json manifest = testing::read_fixture_json(dir + "/manifest.json");
  ASSERT_FALSE(manifest.is_null()) << "run tests/fixtures/gen_pcap.py " << dir;
  auto f = formats::make_pcap();
  size_t compared = 0;
  for (const auto& [file, expect] : manifest.items()) {
    SCOPED_TRACE(file);
    const auto bytes = testing::read_file(dir + "/" + file);
    const MemorySource source(bytes);
    const Layout l = f->parse(source);
    EXPECT_TRUE(l.slices.empty());
    const Json& packets = expect["packets"];
    if (packets.empty()) {
      EXPECT_TRUE(l.tables.empty());
      continue;
    }
    ASSERT_EQ(l.tables.size(), 1U);
    const RecordTable& t = l.tables[0];
    EXPECT_EQ(t.dir, "packet");
    ASSERT_TRUE(t.attributes);
    ASSERT_EQ(t.records.size(), packets.size());
    EXPECT_EQ(l.header["packet_count"], t.records.size());
    EXPECT_LE(t.records.capacity() * sizeof(Record), 2 * t.records.size() * sizeof(Record) + 64);
    for (size_t i = 0; i < packets.size(); ++i) {
      const Record& r = t.records[i];
      const Json& p = packets[i];
      EXPECT_EQ(r.tag, 0U) << i;
      EXPECT_EQ(r.length, p["cap_len"]) << i;
      EXPECT_EQ(to_hex(testing::slice_bytes(bytes, {"", {r.offset, r.length}, {}})),
                p["hex"].get<std::string>())
          << i;
      // Exactly the attributes each packet's slice had: same keys, same order, same values.
      const Json want = {{"ts", p["iso"]}, {"caplen", p["cap_len"]}, {"origlen", p["len"]}};
      EXPECT_EQ(t.attributes(source, r).dump(), want.dump()) << i;
      ++compared;
    }
  }
  EXPECT_GE(compared, 80U);
  static_assert(sizeof(Record) == 16);
}

TEST(Pcap, AMillionTinyPacketsIndexInBoundedMemory) {
  constexpr size_t kPackets = 1'000'000;
  Writer w;
  w.header(0xa1b23c4d);
  Writer one;  // a 16-byte record header and one byte of data
  one.packet(1700000000, 0, "p");
  auto& bytes = w.b.data();
  const auto& record = one.b.data();
  bytes.reserve(bytes.size() + kPackets * record.size());
  for (size_t i = 0; i < kPackets; ++i) bytes.insert(bytes.end(), record.begin(), record.end());
  bytes[24 + 16 * kPackets + kPackets - 1] = std::byte{'!'};  // the last packet's data byte
  auto f = formats::make_pcap();
  const MemorySource source(bytes);
  const Layout l = f->parse(source);
  EXPECT_TRUE(l.errors.empty()) << first_error(l);
  EXPECT_TRUE(l.slices.empty());  // no per-packet Slice
  EXPECT_EQ(l.header["packet_count"], kPackets);
  ASSERT_EQ(l.tables.size(), 1U);
  const RecordTable& t = l.tables[0];
  ASSERT_EQ(t.records.size(), kPackets);
  EXPECT_LE(t.records.capacity() * sizeof(Record), size_t{32} << 20);
  const Record& last = t.records.back();
  EXPECT_EQ(last.offset, bytes.size() - 1);
  EXPECT_EQ(last.length, 1U);
  EXPECT_EQ(bytes[last.offset], std::byte{'!'});
  EXPECT_EQ(t.attributes(source, last).dump(),
            R"({"ts":"2023-11-14T22:13:20.000000000Z","caplen":1,"origlen":1})");
  EXPECT_EQ(t.dir + "/" + SliceTree::record_name(kPackets - 1, kPackets), "packet/999999");
  EXPECT_EQ(t.dir + "/" + SliceTree::record_name(42, kPackets), "packet/000042");
}

TEST(Pcap, RealCapturesMatchTshark) {
  const std::string dir = testing::fixtures_dir() + "/pcap";
  const Json manifest = testing::read_fixture_json(dir + "/manifest.json");
  ASSERT_FALSE(manifest.is_null()) << "run tests/fixtures/gen_pcap.py " << dir;
  ASSERT_GE(manifest.size(), 9U);
  auto f = formats::make_pcap();
  size_t compared = 0;
  for (const auto& [file, expect] : manifest.items()) {
    SCOPED_TRACE(file);
    const auto bytes = testing::read_file(dir + "/" + file);
    ASSERT_TRUE(f->detect(std::span(bytes).first(std::min<size_t>(bytes.size(), kDetectHeadBytes)),
                          bytes.size()));
    const Layout l = parse_bytes(*f, bytes);
    const Json& h = l.header;
    if (expect["expect_errors"].get<bool>()) {
      EXPECT_TRUE(has_error(l, "truncated capture"));
    } else {
      EXPECT_TRUE(l.errors.empty()) << first_error(l);
    }
    const Json& ci = expect["capinfos"];
    EXPECT_EQ(h["version"], "2.4");
    EXPECT_EQ(h["linktype"], expect["linktype"]);
    EXPECT_EQ(h["linktype_name"], expect["linktype"] == 1 ? "ETHERNET" : "RAW");
    EXPECT_EQ(std::to_string(h["snaplen"].get<uint64_t>()), ci["Packet size limit"]);
    EXPECT_EQ(std::to_string(h["packet_count"].get<uint64_t>()), ci["Number of packets"]);
    EXPECT_EQ(h["ts_resolution"] == "ns" ? "nanoseconds" : "microseconds",
              ci["File time precision"]);
    EXPECT_EQ(h["byte_order"], expect["byte_order"]);
    EXPECT_EQ(h["ts_resolution"], expect["ts_resolution"]);
    const Json& packets = expect["packets"];
    ASSERT_EQ(l.slices.size(), packets.size());
    for (size_t i = 0; i < packets.size(); ++i) {
      const Slice& s = l.slices[i];
      const Json& p = packets[i];
      EXPECT_EQ(s.attributes["caplen"], p["cap_len"]) << i;
      EXPECT_EQ(s.attributes["origlen"], p["len"]) << i;
      EXPECT_EQ(s.attributes["ts"], p["iso"]) << i;
      EXPECT_EQ(to_hex(testing::slice_bytes(bytes, s)), p["hex"].get<std::string>()) << i;
      ++compared;
    }
  }
  EXPECT_GE(compared, 80U);
}

}  // namespace
}  // namespace payloadfs

// pcapng parser: hand-built edge cases, and real files (dumpcap on loopback, text2pcap,
// editcap, mergecap, hand-built sections checked with tshark) compared with capinfos and tshark
// (see tests/fixtures/gen_pcapng.py).

#include <algorithm>
#include <cmath>
#include <random>
#include <string>

#include "core/render/hex.hpp"
#include "unit/test_support.hpp"

namespace payloadfs::formats {
std::unique_ptr<Format> make_pcapng();
}

namespace payloadfs {
namespace {

using testing::expect_in_bounds;
using testing::first_error;
using testing::has_error;

using testing::Bytes;
using testing::parse_bytes;

std::string pad(std::string s) {
  while (s.size() % 4 != 0) s.push_back('\0');
  return s;
}

// Blocks of one section in one byte order.
struct Ng {
  bool big = false;
  Bytes b;
  std::string num(uint64_t v, int width) const {
    Bytes t;
    if (big)
      t.be(v, width);
    else
      t.le(v, width);
    return std::string(reinterpret_cast<const char*>(t.data().data()), t.size());
  }
  std::string opt(uint16_t code, const std::string& value) const {
    return num(code, 2) + num(value.size(), 2) + pad(value);
  }
  std::string end_opts() const { return num(0, 4); }
  Ng& block(uint32_t type, const std::string& body) {
    const std::string p = pad(body);
    b.raw(num(type, 4) + num(12 + p.size(), 4) + p + num(12 + p.size(), 4));
    return *this;
  }
  Ng& shb(const std::string& options = "") {
    return block(0x0A0D0D0A,
                 num(0x1A2B3C4D, 4) + num(1, 2) + num(0, 2) + num(UINT64_MAX, 8) + options);
  }
  Ng& idb(uint16_t linktype, uint32_t snaplen, const std::string& options = "") {
    return block(1, num(linktype, 2) + num(0, 2) + num(snaplen, 4) + options);
  }
  Ng& epb(uint32_t iface, uint64_t ts, const std::string& data, uint32_t origlen = 0) {
    return block(6, num(iface, 4) + num(ts >> 32, 4) + num(ts & 0xFFFFFFFF, 4) +
                        num(data.size(), 4) + num(origlen != 0 ? origlen : data.size(), 4) +
                        pad(data));
  }
  Ng& spb(uint32_t origlen, const std::string& data) { return block(3, num(origlen, 4) + data); }
  Ng& pb(uint16_t iface, uint64_t ts, const std::string& data) {
    return block(2, num(iface, 2) + num(0, 2) + num(ts >> 32, 4) + num(ts & 0xFFFFFFFF, 4) +
                        num(data.size(), 4) + num(data.size(), 4) + pad(data));
  }
};

TEST(Pcapng, Detect) {
  auto f = formats::make_pcapng();
  for (const bool big : {false, true}) {
    Ng n{big, {}};
    n.shb();
    EXPECT_TRUE(f->detect(n.b.data(), n.b.size()));
  }
  Bytes bad_bom;
  bad_bom.be(0x0A0D0D0A, 4).le(28, 4).le(0x12345678, 4);
  EXPECT_FALSE(f->detect(bad_bom.data(), bad_bom.size()));
  Bytes pcap;
  pcap.le(0xa1b2c3d4, 4).le(0x00040002, 4).zeros(16);
  EXPECT_FALSE(f->detect(pcap.data(), pcap.size()));
  Bytes shorter;
  shorter.be(0x0A0D0D0A, 4).le(28, 4);
  EXPECT_FALSE(f->detect(shorter.data(), shorter.size()));
}

TEST(Pcapng, EnhancedSimpleAndObsoletePackets) {
  auto f = formats::make_pcapng();
  for (const bool big : {false, true}) {
    Ng n{big, {}};
    n.shb(n.opt(2, "hw") + n.opt(3, "os") + n.opt(4, "app") + n.opt(1, "note") + n.end_opts());
    n.idb(1, 8, n.opt(2, "eth0") + n.opt(3, "desc") + n.opt(9, "\x03") + n.end_opts());
    n.idb(101, 0, n.opt(9, std::string(1, '\x8a')) + n.opt(14, n.num(uint64_t(-10), 8)));
    n.epb(0, 1700000000123ULL, "abc", 60);
    n.spb(20, "0123456789ab");  // caplen = min(20, 12 in block, snaplen 8) = 8
    n.block(4, n.end_opts());   // NRB, skipped
    n.block(0x40000BAD, "custom");
    n.pb(1, (uint64_t{1700000000} << 10) | 512, "pb!");
    const Layout l = parse_bytes(*f, n.b.data());
    EXPECT_TRUE(l.errors.empty()) << first_error(l);
    const Json& s = l.header["sections"][0];
    EXPECT_EQ(s["byte_order"], big ? "big" : "little");
    EXPECT_EQ(s["version"], "1.0");
    EXPECT_EQ(s["section_length"], nullptr);
    EXPECT_EQ(s["shb_hardware"], "hw");
    EXPECT_EQ(s["shb_os"], "os");
    EXPECT_EQ(s["shb_userappl"], "app");
    EXPECT_EQ(s["comment"], "note");
    const Json& i0 = l.header["interfaces"][0];
    EXPECT_EQ(i0["section"], 0);
    EXPECT_EQ(i0["linktype"], 1);
    EXPECT_EQ(i0["linktype_name"], "ETHERNET");
    EXPECT_EQ(i0["snaplen"], 8);
    EXPECT_EQ(i0["if_name"], "eth0");
    EXPECT_EQ(i0["if_description"], "desc");
    EXPECT_DOUBLE_EQ(i0["if_tsresol"].get<double>(), 1e-3);
    const Json& i1 = l.header["interfaces"][1];
    EXPECT_EQ(i1["linktype_name"], "RAW");
    EXPECT_DOUBLE_EQ(i1["if_tsresol"].get<double>(), 1.0 / 1024);
    EXPECT_EQ(i1["if_tsoffset"], -10);
    EXPECT_EQ(l.header["packet_count"], 3);
    ASSERT_EQ(l.slices.size(), 3U);
    EXPECT_EQ(l.slices[0].name, "packet/0");
    EXPECT_EQ(l.slices[0].attributes["interface"], 0);
    EXPECT_EQ(l.slices[0].attributes["ts"], "2023-11-14T22:13:20.123Z");
    EXPECT_EQ(l.slices[0].attributes["caplen"], 3);
    EXPECT_EQ(l.slices[0].attributes["origlen"], 60);
    EXPECT_EQ(l.slices[1].attributes["interface"], 0);
    EXPECT_FALSE(l.slices[1].attributes.contains("ts"));
    EXPECT_EQ(l.slices[1].attributes["caplen"], 8);
    EXPECT_EQ(l.slices[1].attributes["origlen"], 20);
    EXPECT_EQ(testing::slice_bytes(n.b.data(), l.slices[1]),
              testing::slice_bytes(Bytes().raw("01234567").data(), {"", {0, 8}, {}}));
    EXPECT_EQ(l.slices[2].attributes["interface"], 1);
    EXPECT_EQ(l.slices[2].attributes["ts"], "2023-11-14T22:13:10.500000000Z");
    EXPECT_EQ(l.slices[2].range.length, 3U);
    EXPECT_EQ(*l.magic, (ByteRange{0, 4}));
  }
}

TEST(Pcapng, SectionsNumberInterfacesAcrossTheFile) {
  auto f = formats::make_pcapng();
  Ng a{true, {}};
  a.shb().idb(1, 0).idb(1, 0).epb(1, 5000000, "a1");
  Ng b{false, {}};
  b.shb()
      .idb(101, 0, b.opt(9, std::string(1, '\0')) + b.end_opts())
      .epb(0, 7, "b0")
      .epb(1, 0, "bad");
  a.b.append(b.b.data());
  const Layout l = parse_bytes(*f, a.b.data());
  ASSERT_EQ(l.header["sections"].size(), 2U);
  EXPECT_EQ(l.header["sections"][1]["byte_order"], "little");
  ASSERT_EQ(l.header["interfaces"].size(), 3U);
  EXPECT_EQ(l.header["interfaces"][2]["section"], 1);
  ASSERT_EQ(l.slices.size(), 3U);
  EXPECT_EQ(l.slices[0].attributes["interface"], 1);
  EXPECT_EQ(l.slices[0].attributes["ts"], "1970-01-01T00:00:05.000000Z");
  EXPECT_EQ(l.slices[1].attributes["interface"], 2);
  EXPECT_EQ(l.slices[1].attributes["ts"], "1970-01-01T00:00:07Z");
  // Interface 1 does not exist in the second section.
  EXPECT_FALSE(l.slices[2].attributes.contains("interface"));
  EXPECT_TRUE(has_error(l, "1 packet(s) refer to an interface not described"));
}

TEST(Pcapng, TruncatedAtEveryByte) {
  auto f = formats::make_pcapng();
  Ng n;
  n.shb().idb(1, 0).epb(0, 1, "hello").epb(0, 2, "world!");
  const auto& full = n.b.data();
  const size_t first_packet_end = 28 + 20 + 40;
  for (size_t cut_at = 0; cut_at < full.size(); ++cut_at) {
    const std::vector<std::byte> cut(full.begin(),
                                     full.begin() + static_cast<std::ptrdiff_t>(cut_at));
    const Layout l = parse_bytes(*f, cut);
    EXPECT_EQ(l.slices.size(), cut_at >= first_packet_end ? 1U : 0U) << cut_at;
    const bool boundary = cut_at == 0 || cut_at == 28 || cut_at == 48 || cut_at == first_packet_end;
    EXPECT_EQ(l.errors.empty(), boundary) << cut_at;
    expect_in_bounds(l, cut_at);
  }
}

TEST(Pcapng, BadBlocks) {
  auto f = formats::make_pcapng();
  {  // trailing length differs: stop, keep what came before
    Ng n;
    n.shb().idb(1, 0).epb(0, 0, "ok").epb(0, 0, "xx");
    auto& d = n.b.data();
    d[d.size() - 1] = std::byte{0x7F};
    const Layout l = parse_bytes(*f, d);
    EXPECT_TRUE(has_error(l, "differs from the trailing copy"));
    EXPECT_EQ(l.slices.size(), 1U);
  }
  for (const uint32_t length : {0U, 8U, 13U, 0xFFFFFFFFU, 0xFFFFFFFCU}) {
    Ng n;
    n.shb().idb(1, 0);
    n.b.raw(n.num(6, 4) + n.num(length, 4)).zeros(32);
    const Layout l = parse_bytes(*f, n.b.data());
    EXPECT_FALSE(l.errors.empty()) << length;
    EXPECT_TRUE(l.slices.empty());
  }
  {  // caplen beyond the block, 2^32-1
    Ng n;
    n.shb().idb(1, 0);
    n.block(6, n.num(0, 4) + n.num(0, 8) + n.num(0xFFFFFFFF, 4) + n.num(4, 4) + "data");
    n.epb(0, 0, "after");
    const Layout l = parse_bytes(*f, n.b.data());
    EXPECT_TRUE(has_error(l, "exceeds the block"));
    ASSERT_EQ(l.slices.size(), 1U);
    EXPECT_EQ(l.slices[0].attributes["caplen"], 5);
  }
  {  // an option longer than its block; a 2^-127 resolution and 10^-20 (refused)
    Ng n;
    n.shb(n.num(2, 2) + n.num(500, 2) + "abcd");
    n.idb(1, 0, n.opt(9, "\x14"));
    n.idb(1, 0, n.opt(9, "\xff"));
    n.epb(0, UINT64_MAX, "").epb(1, UINT64_MAX, "");
    const Layout l = parse_bytes(*f, n.b.data());
    EXPECT_TRUE(has_error(l, "runs past the block"));
    EXPECT_TRUE(has_error(l, "if_tsresol 10^-20"));
    EXPECT_EQ(l.slices[0].attributes["ts"], "586524-01-19T08:01:49.551615Z");
    EXPECT_EQ(l.slices[1].attributes["ts"], "1970-01-01T00:00:00.000000000Z");
  }
  {  // does not start with an SHB; bad byte-order magic later
    Ng n;
    n.idb(1, 0);
    EXPECT_TRUE(has_error(parse_bytes(*f, n.b.data()), "does not start with a Section"));
    Ng m;
    m.shb().idb(1, 0).epb(0, 0, "p");
    m.b.raw(m.num(0x0A0D0D0A, 4) + m.num(28, 4) + "XXXX").zeros(16);
    const Layout l = parse_bytes(*f, m.b.data());
    EXPECT_TRUE(has_error(l, "no valid byte-order magic"));
    EXPECT_EQ(l.slices.size(), 1U);
  }
  {  // a section of major version 2 is not understood
    Ng n;
    n.block(0x0A0D0D0A, n.num(0x1A2B3C4D, 4) + n.num(2, 2) + n.num(0, 2) + n.num(0, 8));
    n.idb(1, 0).epb(0, 0, "p");
    const Layout l = parse_bytes(*f, n.b.data());
    EXPECT_TRUE(has_error(l, "only 1.x is understood"));
    EXPECT_TRUE(l.slices.empty());
  }
  {  // SPB with no interface; tsoffset that overflows the seconds
    Ng n;
    n.shb().spb(3, "abcd");
    n.idb(1, 0, n.opt(9, std::string(1, '\0')) + n.opt(14, n.num(INT64_MAX, 8)));
    n.epb(0, 5, "");
    const Layout l = parse_bytes(*f, n.b.data());
    EXPECT_TRUE(has_error(l, "refer to an interface"));
    ASSERT_EQ(l.slices.size(), 2U);
    EXPECT_EQ(l.slices[0].range.length, 3U);
    EXPECT_FALSE(l.slices[1].attributes.contains("ts"));
  }
}

TEST(Pcapng, Robustness) {
  auto f = formats::make_pcapng();
  std::vector<std::vector<std::byte>> seeds;
  Ng n{true, {}};
  n.shb(n.opt(2, "hw") + n.end_opts()).idb(1, 64, n.opt(9, "\x09") + n.end_opts());
  n.epb(0, 99, "hello").spb(10, "0123456789").pb(0, 5, "x");
  seeds.push_back(n.b.data());
  const std::string dir = testing::fixtures_dir() + "/pcapng";
  for (const char* name : {"handbuilt_le.pcapng", "mergecap.pcapng"}) {
    auto bytes = testing::read_file(dir + "/" + name);
    if (!bytes.empty()) seeds.push_back(std::move(bytes));
  }
  testing::mutate_and_parse(*f, seeds, 777, 3000);
}

TEST(Pcapng, PacketsAreARecordTableWithKindEndianAndInterfaceTags) {
  auto f = formats::make_pcapng();
  for (const bool big : {false, true}) {
    Ng n{big, {}};
    n.shb().idb(1, 8, n.opt(9, "\x03") + n.end_opts());
    n.idb(101, 0, n.opt(9, std::string(1, '\x8a')) + n.opt(14, n.num(uint64_t(-10), 8)));
    n.epb(0, 1700000000123ULL, "abc", 60);
    n.spb(20, "0123456789ab");
    n.pb(1, (uint64_t{1700000000} << 10) | 512, "pb!");
    n.epb(7, 5, "nowhere");
    const MemorySource source(n.b.data());
    const Layout l = f->parse(source);
    EXPECT_TRUE(l.slices.empty());
    ASSERT_EQ(l.tables.size(), 1U);
    const RecordTable& t = l.tables[0];
    EXPECT_EQ(t.dir, "packet");
    ASSERT_EQ(t.records.size(), 4U);
    // tag: bits 31..30 block kind (0 EPB, 1 SPB, 2 PB), bit 29 big-endian, bits 28..0 the
    // global interface index (2^29-1: none).
    const uint32_t be = big ? 1U << 29 : 0;
    EXPECT_EQ(t.records[0].tag, (0U << 30) | be | 0);
    EXPECT_EQ(t.records[1].tag, (1U << 30) | be | 0);
    EXPECT_EQ(t.records[2].tag, (2U << 30) | be | 1);
    EXPECT_EQ(t.records[3].tag, (0U << 30) | be | ((1U << 29) - 1));
    EXPECT_EQ(t.records[1].length, 8U);  // SPB: min(origlen, data in block, snaplen)
    EXPECT_EQ(t.attributes(source, t.records[0]).dump(),
              R"({"interface":0,"ts":"2023-11-14T22:13:20.123Z","caplen":3,"origlen":60})");
    EXPECT_EQ(t.attributes(source, t.records[1]).dump(),
              R"({"interface":0,"caplen":8,"origlen":20})");
    EXPECT_EQ(t.attributes(source, t.records[2]).dump(),
              R"({"interface":1,"ts":"2023-11-14T22:13:10.500000000Z","caplen":3,"origlen":3})");
    EXPECT_EQ(t.attributes(source, t.records[3]).dump(), R"({"caplen":7,"origlen":7})");
  }
}

TEST(Pcapng, RealFilesAsRecordTables) {
  const std::string dir = testing::fixtures_dir() + "/pcapng";
  const Json manifest = testing::read_fixture_json(dir + "/manifest.json");
  ASSERT_FALSE(manifest.is_null()) << "run tests/fixtures/gen_pcapng.py " << dir;
  auto f = formats::make_pcapng();
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
    ASSERT_EQ(t.records.size(), packets.size());
    for (size_t i = 0; i < packets.size(); ++i) {
      const Record& r = t.records[i];
      const Json& p = packets[i];
      EXPECT_EQ(to_hex(testing::slice_bytes(bytes, {"", {r.offset, r.length}, {}})),
                p["hex"].get<std::string>())
          << i;
      // Exactly the attributes each packet's slice had: same keys, same order, same values.
      Json want = Json::object();
      if (!p["interface"].is_null()) {
        want["interface"] = p["interface"];
        EXPECT_EQ(r.tag & ((1U << 29) - 1), p["interface"]) << i;
      }
      if (!p["iso"].is_null()) want["ts"] = p["iso"];
      want["caplen"] = p["cap_len"];
      want["origlen"] = p["len"];
      EXPECT_EQ(t.attributes(source, r).dump(), want.dump()) << i;
      ++compared;
    }
  }
  EXPECT_GE(compared, 50U);
}

TEST(Pcapng, AMillionTinyPacketsIndexInBoundedMemory) {
  constexpr size_t kPackets = 1'000'000;
  Ng n;
  n.shb().idb(1, 0);
  Ng one;  // a 36-byte Enhanced Packet Block with one data byte
  one.epb(0, 1700000000000000ULL, "p");
  auto& bytes = n.b.data();
  const auto& block = one.b.data();
  bytes.reserve(bytes.size() + kPackets * block.size());
  for (size_t i = 0; i < kPackets; ++i) bytes.insert(bytes.end(), block.begin(), block.end());
  auto f = formats::make_pcapng();
  const MemorySource source(bytes);
  const Layout l = f->parse(source);
  EXPECT_TRUE(l.errors.empty()) << first_error(l);
  EXPECT_TRUE(l.slices.empty());
  EXPECT_EQ(l.header["packet_count"], kPackets);
  ASSERT_EQ(l.tables.size(), 1U);
  const RecordTable& t = l.tables[0];
  ASSERT_EQ(t.records.size(), kPackets);
  EXPECT_LE(t.records.capacity() * sizeof(Record), size_t{32} << 20);
  const Record& last = t.records.back();
  EXPECT_EQ(last.offset, bytes.size() - 8);  // 3 bytes of padding, the trailing length
  EXPECT_EQ(last.length, 1U);
  EXPECT_EQ(t.attributes(source, last).dump(),
            R"({"interface":0,"ts":"2023-11-14T22:13:20.000000Z","caplen":1,"origlen":1})");
}

TEST(Pcapng, RealFilesMatchTshark) {
  const std::string dir = testing::fixtures_dir() + "/pcapng";
  const Json manifest = testing::read_fixture_json(dir + "/manifest.json");
  ASSERT_FALSE(manifest.is_null()) << "run tests/fixtures/gen_pcapng.py " << dir;
  ASSERT_GE(manifest.size(), 8U);
  auto f = formats::make_pcapng();
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
    if (const Json& sections = expect["sections"]; !sections.is_null()) {
      ASSERT_EQ(h["sections"].size(), sections.size());
      for (size_t i = 0; i < sections.size(); ++i)
        for (const auto& [key, value] : sections[i].items())
          EXPECT_EQ(h["sections"][i][key], value) << i << key;
    }
    const Json& ifaces = expect["interfaces"];
    ASSERT_EQ(h["interfaces"].size(), ifaces.size());
    for (size_t i = 0; i < ifaces.size(); ++i) {
      const Json& got = h["interfaces"][i];
      const Json& want = ifaces[i];
      EXPECT_EQ(got["linktype"], want["linktype"]) << i;
      EXPECT_EQ(got["snaplen"], want["snaplen"]) << i;
      EXPECT_EQ(got.value("if_name", Json(nullptr)), want["if_name"]) << i;
      EXPECT_EQ(got.value("if_description", Json(nullptr)), want["if_description"]) << i;
      const double resolution = std::pow(10.0, -want["tsresol"].get<double>());
      EXPECT_NEAR(got["if_tsresol"].get<double>(), resolution, resolution * 1e-9) << i;
    }
    const Json& packets = expect["packets"];
    EXPECT_EQ(h["packet_count"], packets.size());
    ASSERT_EQ(l.slices.size(), packets.size());
    for (size_t i = 0; i < packets.size(); ++i) {
      const Slice& s = l.slices[i];
      const Json& p = packets[i];
      EXPECT_EQ(s.attributes["interface"], p["interface"]) << i;
      EXPECT_EQ(s.attributes["caplen"], p["cap_len"]) << i;
      EXPECT_EQ(s.attributes["origlen"], p["len"]) << i;
      if (p["iso"].is_null()) {
        EXPECT_FALSE(s.attributes.contains("ts")) << i;
      } else {
        EXPECT_EQ(s.attributes["ts"], p["iso"]) << i;
      }
      EXPECT_EQ(to_hex(testing::slice_bytes(bytes, s)), p["hex"].get<std::string>()) << i;
      ++compared;
    }
  }
  EXPECT_GE(compared, 50U);
}

}  // namespace
}  // namespace payloadfs

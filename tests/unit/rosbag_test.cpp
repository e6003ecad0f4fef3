// ROS 1 bag parser: hand-built bags (bag format 2.0) with their malformed variants, and the bags
// rosbag itself wrote (tests/fixtures/gen_rosbag.py), whose messages the mount test compares
// with rosbag's own reader.

#include <filesystem>
#include <set>
#include <string>

#include "unit/test_support.hpp"

namespace payloadfs::formats {
std::unique_ptr<Format> make_rosbag();
}

namespace payloadfs {
namespace {

using testing::first_error;
using testing::has_error;
using testing::parse_bytes;
using testing::to_bytes;

std::string le(uint64_t v, int width) {
  std::string s;
  for (int i = 0; i < width; ++i) s.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
  return s;
}
std::string field(const std::string& name, const std::string& value) {
  return le(name.size() + 1 + value.size(), 4) + name + "=" + value;
}
std::string rec(const std::string& header, const std::string& data) {
  return le(header.size(), 4) + header + le(data.size(), 4) + data;
}
std::string op(uint8_t code) {
  return field("op", std::string(1, static_cast<char>(code)));
}
std::string time_field(uint32_t secs, uint32_t nsecs) {
  return field("time", le(secs, 4) + le(nsecs, 4));
}
std::string connection(uint32_t id, const std::string& topic) {
  return rec(op(0x07) + field("conn", le(id, 4)) + field("topic", topic),
             field("topic", topic) + field("type", "std_msgs/String") + field("md5sum", "abc") +
                 field("message_definition", "string data\n"));
}
std::string message(uint32_t conn, uint32_t secs, const std::string& data) {
  return rec(op(0x02) + field("conn", le(conn, 4)) + time_field(secs, 5), data);
}
std::string chunk(const std::string& body, const std::string& compression = "none",
                  int64_t size_delta = 0) {
  return rec(op(0x05) + field("compression", compression) +
                 field("size", le(body.size() + static_cast<uint64_t>(size_delta), 4)),
             body);
}
const std::string kMagic = "#ROSBAG V2.0\n";

std::string bag(const std::string& records) {
  return kMagic +
         rec(op(0x03) + field("index_pos", le(0, 8)) + field("conn_count", le(2, 4)) +
                 field("chunk_count", le(2, 4)),
             std::string(16, ' ')) +
         records;
}

std::string sample() {
  const std::string first =
      connection(0, "/imu/data") + message(0, 10, "AAAA") + connection(1, "/chatter") +
      // conn before time: the time is not just before data_len.
      rec(field("time", le(11, 4) + le(7, 4)) + field("conn", le(1, 4)) + op(0x02), "hi") +
      message(0, 12, "BBBBBB");
  const std::string info =
      rec(op(0x06) + field("ver", le(1, 4)) + field("chunk_pos", le(0, 8)) +
              field("start_time", le(10, 4) + le(5, 4)) + field("end_time", le(13, 4) + le(5, 4)) +
              field("count", le(2, 4)),
          le(0, 4) + le(3, 4) + le(1, 4) + le(2, 4));
  return bag(chunk(first) + chunk("opaque-bz2", "bz2", 100) + connection(0, "/imu/data") + info);
}

const Slice* find(const Layout& l, const std::string& name) {
  for (const auto& s : l.slices)
    if (s.name == name) return &s;
  return nullptr;
}

TEST(Rosbag, Detect) {
  auto f = formats::make_rosbag();
  const auto good = to_bytes(kMagic);
  EXPECT_TRUE(f->detect(good, good.size()));
  const auto v12 = to_bytes("#ROSBAG V1.2\n");
  EXPECT_FALSE(f->detect(v12, v12.size()));
}

TEST(Rosbag, HandBuiltBag) {
  auto f = formats::make_rosbag();
  const auto bytes = to_bytes(sample());
  const Layout l = parse_bytes(*f, bytes);
  EXPECT_TRUE(l.errors.empty()) << first_error(l);
  const Json& h = l.header;
  EXPECT_EQ(h["version"], "2.0");
  EXPECT_EQ(h["chunk_count"], 2);
  EXPECT_EQ(h["compression"], (Json{{"bz2", 1}, {"none", 1}}));
  ASSERT_EQ(h["connections"].size(), 2U);
  EXPECT_EQ(h["connections"][0]["topic"], "/imu/data");
  EXPECT_EQ(h["connections"][0]["type"], "std_msgs/String");
  EXPECT_EQ(h["connections"][0]["message_count"], 3);  // from the chunk info records
  EXPECT_EQ(h["connections"][1]["message_count"], 2);
  EXPECT_EQ(h["start_time"], 10'000'000'005ULL);
  EXPECT_EQ(h["end_time"], 13'000'000'005ULL);

  const Slice* c0 = find(l, "chunk/0");
  const Slice* c1 = find(l, "chunk/1");
  ASSERT_TRUE(c0 && c1);
  EXPECT_TRUE(c0->stored);
  EXPECT_FALSE(c1->stored);
  EXPECT_EQ(c1->attributes["compression"], "bz2");
  EXPECT_EQ(c1->attributes["size"], 110);
  const Slice* m0 = find(l, "message/imu/data/0");
  const Slice* m1 = find(l, "message/imu/data/1");
  const Slice* chat = find(l, "message/chatter/0");
  ASSERT_TRUE(m0 && m1 && chat);
  const auto text = [&](const Slice* s) {
    const auto b = testing::slice_bytes(bytes, *s);
    return std::string(reinterpret_cast<const char*>(b.data()), b.size());
  };
  EXPECT_EQ(text(m0), "AAAA");
  EXPECT_EQ(text(m1), "BBBBBB");
  EXPECT_EQ(text(chat), "hi");
  EXPECT_EQ(m1->attributes["time"], 12'000'000'005ULL);
  EXPECT_EQ(m1->attributes["connection"], 0);
  EXPECT_EQ(chat->attributes["time"], 11'000'000'007ULL);
  EXPECT_EQ(chat->attributes["connection"], 1);
}

TEST(Rosbag, CutEverywhereStaysInBounds) {
  auto f = formats::make_rosbag();
  const std::string full = sample();
  // A cut between two top-level records leaves a shorter bag that is whole.
  std::set<size_t> boundaries;
  for (size_t pos = kMagic.size(); pos + 4 <= full.size();) {
    boundaries.insert(pos);
    const size_t header_len =
        static_cast<uint8_t>(full[pos]) + 256U * static_cast<uint8_t>(full[pos + 1]);
    const size_t data_at = pos + 4 + header_len;
    const size_t data_len =
        static_cast<uint8_t>(full[data_at]) + 256U * static_cast<uint8_t>(full[data_at + 1]);
    pos = data_at + 4 + data_len;
  }
  for (size_t cut = 0; cut < full.size(); ++cut) {
    const auto bytes = to_bytes(full.substr(0, cut));
    const Layout l = parse_bytes(*f, bytes);
    testing::expect_in_bounds(l, bytes.size());
    if (cut > kMagic.size() && !boundaries.contains(cut)) {
      EXPECT_FALSE(l.errors.empty()) << cut;
    }
  }
}

TEST(Rosbag, LengthsPastTheEnd) {
  auto f = formats::make_rosbag();
  const std::string head = bag("");
  // header_len past the end
  auto l = parse_bytes(*f, to_bytes(head + le(1000, 4) + op(0x05)));
  EXPECT_TRUE(has_error(l, "header_len runs past")) << first_error(l);
  // data_len past the end
  const std::string h = op(0x05) + field("compression", "none") + field("size", le(4, 4));
  l = parse_bytes(*f, to_bytes(head + le(h.size(), 4) + h + le(5000, 4) + "abcd"));
  EXPECT_TRUE(has_error(l, "data_len 5000 runs past")) << first_error(l);
  // a header field longer than its header
  l = parse_bytes(*f, to_bytes(head + rec(le(99, 4) + "op=", "")));
  EXPECT_TRUE(has_error(l, "header field length")) << first_error(l);
  // a record inside a chunk running past the chunk
  l = parse_bytes(*f, to_bytes(head + chunk(message(0, 1, "xyz").substr(0, 20))));
  EXPECT_TRUE(has_error(l, "runs past its chunk")) << first_error(l);
}

TEST(Rosbag, ChunkSizeLies) {
  auto f = formats::make_rosbag();
  const auto bytes = to_bytes(bag(chunk(connection(0, "/a") + message(0, 1, "12345"), "none", 9)));
  const Layout l = parse_bytes(*f, bytes);
  EXPECT_TRUE(has_error(l, "declares size")) << first_error(l);
  EXPECT_NE(find(l, "message/a/0"), nullptr);  // the records it holds still parse
}

TEST(Rosbag, MessageOfUnknownConnectionAndMissingBagHeader) {
  auto f = formats::make_rosbag();
  const Layout l = parse_bytes(*f, to_bytes(kMagic + chunk(message(9, 1, "zz"))));
  EXPECT_TRUE(has_error(l, "no bag header")) << first_error(l);
  EXPECT_TRUE(has_error(l, "no connection record")) << first_error(l);
  EXPECT_NE(find(l, "message/#9/0"), nullptr);
}

TEST(Rosbag, ConnectionsSharingATopicShareItsTable) {
  auto f = formats::make_rosbag();
  const auto bytes = to_bytes(bag(chunk(connection(3, "/a") + connection(4, "/a") +
                                        message(4, 1, "first") + message(3, 2, "second")) +
                                  chunk(message(3, 3, "third") + message(4, 4, "fourth"))));
  const Layout l = parse_bytes(*f, bytes);
  EXPECT_TRUE(l.errors.empty()) << first_error(l);
  EXPECT_EQ(l.header["connections"].size(), 2U);
  EXPECT_EQ(l.header["connections"][1]["message_count"], 2);  // counted: no chunk info
  const char* want[] = {"first", "second", "third", "fourth"};
  for (int i = 0; i < 4; ++i) {
    const Slice* s = find(l, "message/a/" + std::to_string(i));
    ASSERT_NE(s, nullptr) << i;
    const auto b = testing::slice_bytes(bytes, *s);
    EXPECT_EQ(std::string(reinterpret_cast<const char*>(b.data()), b.size()), want[i]);
    EXPECT_EQ(s->attributes["time"], (i + 1) * 1'000'000'000ULL + 5);
  }
}

TEST(Rosbag, RandomMutations) {
  auto f = formats::make_rosbag();
  testing::mutate_and_parse(*f, {to_bytes(sample())}, 1234, 3000);
}

// The bags rosbag wrote: their malformed copies give errors; the good ones none.
TEST(Rosbag, Fixtures) {
  const std::string dir = testing::fixtures_dir() + "/rosbag";
  if (testing::fixtures_dir().empty() || !std::filesystem::exists(dir + "/chunked_none.bag"))
    GTEST_FAIL() << "run tests/fixtures/gen_rosbag.py first (PAYLOADFS_FIXTURES)";
  auto f = formats::make_rosbag();
  for (const char* name : {"chunked_none.bag", "bz2.bag", "lz4.bag"}) {
    const auto bytes = testing::read_file(dir + "/" + name);
    const Layout l = parse_bytes(*f, bytes);
    EXPECT_TRUE(l.errors.empty()) << name << ": " << first_error(l);
    EXPECT_GT(l.header["chunk_count"].get<int>(), 2) << name;
    EXPECT_EQ(l.header["connections"].size(), 3U) << name;
  }
  const std::pair<const char*, const char*> broken[] = {
      {"malformed/cut_mid_record.bag", "runs past the end"},
      {"malformed/header_len_past.bag", "header_len runs past"},
      {"malformed/data_len_past.bag", "data_len"},
      {"malformed/chunk_size_lies.bag", "declares size"},
      {"truncated.bag", "truncated"}};
  for (const auto& [name, text] : broken) {
    const auto bytes = testing::read_file(dir + "/" + name);
    const Layout l = parse_bytes(*f, bytes);
    EXPECT_TRUE(has_error(l, text)) << name << ": " << testing::errors_of(l);
    testing::expect_in_bounds(l, bytes.size());
  }
}

}  // namespace
}  // namespace payloadfs

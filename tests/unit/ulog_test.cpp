// ULog parser: hand-built logs (PX4 ULog format) with malformed variants, and the logs
// tests/fixtures/gen_ulog.py wrote from the specification, compared with what the npm package
// @foxglove/ulog read back from them (expected.json).

#include <filesystem>
#include <string>

#include "core/render/hex.hpp"
#include "unit/test_support.hpp"

namespace payloadfs::formats {
std::unique_ptr<Format> make_ulog();
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
std::string msg(char type, const std::string& payload) {
  return le(payload.size(), 2) + std::string(1, type) + payload;
}
std::string kv(char type, const std::string& key, const std::string& value) {
  return msg(type, std::string(1, static_cast<char>(key.size())) + key + value);
}
const std::string kMagic("ULog\x01\x12\x35", 7);

std::string head() {
  return kMagic + "\x01" + le(123456, 8);
}

std::string sample() {
  return head() + msg('F', "pos:uint64_t timestamp;float[2] xy;") + msg('F', "inner:uint32_t a;") +
         msg('F', "outer:inner[3] in;uint64_t timestamp;") + kv('I', "char[3] sys", "abc") +
         kv('I', "int16_t t", le(0xFFFE, 2)) +
         kv('I', "double[2] d", le(0x3FF0000000000000ULL, 8) + le(0, 8)) +
         kv('P', "float GAIN", le(0x40200000, 4)) +
         msg('A', std::string(1, '\0') + le(5, 2) + "pos") +
         msg('A', std::string(1, '\1') + le(6, 2) + "pos") +
         msg('A', std::string(1, '\0') + le(7, 2) + "outer") +
         msg('D', le(5, 2) + le(1000, 8) + "XXXXXXXX") +
         msg('D', le(6, 2) + le(1001, 8) + "YYYYYYYY") +
         msg('D', le(7, 2) + std::string(12, 'i') + le(1002, 8)) +
         msg('L', "6" + le(1003, 8) + "hello") + msg('O', le(50, 2)) +
         msg('D', le(5, 2) + le(1004, 8) + "ZZZZZZZZ");
}

const Slice* find(const Layout& l, const std::string& name) {
  for (const auto& s : l.slices)
    if (s.name == name) return &s;
  return nullptr;
}

TEST(Ulog, Detect) {
  auto f = formats::make_ulog();
  const auto good = to_bytes(head());
  EXPECT_TRUE(f->detect(good, good.size()));
  const auto other = to_bytes("ULog\x01\x12\x36");
  EXPECT_FALSE(f->detect(other, other.size()));
}

TEST(Ulog, HandBuiltLog) {
  auto f = formats::make_ulog();
  const auto bytes = to_bytes(sample());
  const Layout l = parse_bytes(*f, bytes);
  EXPECT_TRUE(l.errors.empty()) << first_error(l);
  const Json& h = l.header;
  EXPECT_EQ(h["version"], 1);
  EXPECT_EQ(h["timestamp"], 123456);
  EXPECT_EQ(h["info"]["sys"], "abc");
  EXPECT_EQ(h["info"]["t"], -2);
  EXPECT_EQ(h["info"]["d"], (Json{1.0, 0.0}));
  EXPECT_EQ(h["parameters"]["GAIN"], 2.5);
  EXPECT_EQ(h["subscriptions"]["6"]["multi_id"], 1);
  EXPECT_EQ(h["subscriptions"]["5"]["message_count"], 2);
  EXPECT_EQ(h["logged_string_count"], 1);
  EXPECT_EQ(h["dropouts"]["count"], 1);
  EXPECT_EQ(h["dropouts"]["total_duration_ms"], 50);
  const Slice* p0 = find(l, "message/pos/0");
  const Slice* p1 = find(l, "message/pos/1");
  const Slice* multi = find(l, "message/pos~1/0");
  const Slice* outer = find(l, "message/outer/0");
  ASSERT_TRUE(p0 && p1 && multi && outer);
  EXPECT_EQ(p0->attributes["timestamp"], 1000);
  EXPECT_EQ(p1->attributes["timestamp"], 1004);
  EXPECT_EQ(multi->attributes["timestamp"], 1001);
  EXPECT_EQ(multi->attributes["multi_id"], 1);
  EXPECT_EQ(outer->attributes["timestamp"], 1002);  // after 3 nested 4-byte structs
  EXPECT_EQ(p0->range.length, 16U);
}

TEST(Ulog, CutEverywhereStaysInBounds) {
  auto f = formats::make_ulog();
  const std::string full = sample();
  for (size_t cut = 0; cut < full.size(); ++cut) {
    const auto bytes = to_bytes(full.substr(0, cut));
    const Layout l = parse_bytes(*f, bytes);
    testing::expect_in_bounds(l, bytes.size());
  }
  // Cut inside the last message's header and inside its payload.
  // The last message is 21 bytes: 3 of header, 18 of payload.
  for (size_t back : {1, 20}) {
    const auto bytes = to_bytes(full.substr(0, full.size() - back));
    EXPECT_TRUE(has_error(parse_bytes(*f, bytes), "truncated")) << back;
  }
}

TEST(Ulog, MalformedMessages) {
  auto f = formats::make_ulog();
  auto l = parse_bytes(*f, to_bytes(head() + le(500, 2) + "D" + "ab"));
  EXPECT_TRUE(has_error(l, "size 500 runs past")) << first_error(l);
  l = parse_bytes(*f, to_bytes(head() + msg('D', le(42, 2) + le(1, 8))));
  EXPECT_TRUE(has_error(l, "no subscription")) << first_error(l);
  EXPECT_TRUE(l.slices.empty());
  l = parse_bytes(*f, to_bytes(head() + kv('I', "int32_t short", "ab")));
  EXPECT_TRUE(has_error(l, "does not fit its type")) << first_error(l);
  EXPECT_EQ(l.header["info"]["short"], "6162");
  l = parse_bytes(*f, to_bytes(head() + msg('I', std::string(1, '\x30') + "abc")));
  EXPECT_TRUE(has_error(l, "key runs past")) << first_error(l);
  l = parse_bytes(*f, to_bytes(head() + msg('A', "\x01")));
  EXPECT_TRUE(has_error(l, "malformed or truncated")) << first_error(l);
  l = parse_bytes(*f, to_bytes("ULog\x01\x12\x35\x01"));
  EXPECT_TRUE(has_error(l, "missing the ULog header")) << first_error(l);
}

TEST(Ulog, FormatLoop) {
  auto f = formats::make_ulog();
  const std::string log = head() + msg('F', "a:b x;uint64_t timestamp;") + msg('F', "b:a y;") +
                          msg('A', std::string(1, '\0') + le(1, 2) + "a") +
                          msg('D', le(1, 2) + le(9, 8));
  const Layout l = parse_bytes(*f, to_bytes(log));
  EXPECT_TRUE(has_error(l, "(a loop?)")) << testing::errors_of(l);
  const Slice* s = find(l, "message/a/0");
  ASSERT_NE(s, nullptr);
  EXPECT_FALSE(s->attributes.contains("timestamp"));
}

TEST(Ulog, RemovedAndAddedAgainSharesItsTable) {
  auto f = formats::make_ulog();
  const std::string add = msg('A', std::string(1, '\0') + le(1, 2) + "p");
  const std::string log =
      head() + msg('F', "p:uint64_t timestamp;") + add + msg('D', le(1, 2) + le(10, 8)) +
      msg('R', le(1, 2)) + msg('D', le(1, 2) + le(11, 8)) +
      msg('A', std::string(1, '\0') + le(2, 2) + "p") + msg('D', le(2, 2) + le(12, 8));
  const Layout l = parse_bytes(*f, to_bytes(log));
  EXPECT_TRUE(has_error(l, "1 data message(s) name a msg_id with no subscription"))
      << testing::errors_of(l);
  EXPECT_EQ(l.header["subscriptions"]["1"]["message_count"], 1);
  EXPECT_EQ(l.header["subscriptions"]["2"]["message_count"], 1);
  const Slice* a = find(l, "message/p/0");
  const Slice* b = find(l, "message/p/1");
  ASSERT_TRUE(a && b);
  EXPECT_EQ(a->attributes["timestamp"], 10);
  EXPECT_EQ(b->attributes["timestamp"], 12);
  EXPECT_EQ(b->attributes["msg_id"], 2);
}

TEST(Ulog, InstanceNamesStayUnique) {
  auto f = formats::make_ulog();
  const std::string log = head() + msg('F', "a:uint64_t timestamp;") +
                          msg('F', "a~1:uint64_t timestamp;") +
                          msg('A', std::string(1, '\1') + le(1, 2) + "a") +
                          msg('A', std::string(1, '\0') + le(2, 2) + "a~1") +
                          msg('D', le(1, 2) + le(10, 8)) + msg('D', le(2, 2) + le(20, 8));
  const Layout l = parse_bytes(*f, to_bytes(log));
  EXPECT_TRUE(l.errors.empty()) << first_error(l);
  const Slice* instance = find(l, "message/a~1/0");
  const Slice* named = find(l, "message/a~1~0/0");
  ASSERT_TRUE(instance && named);
  EXPECT_EQ(instance->attributes["timestamp"], 10);
  EXPECT_EQ(named->attributes["timestamp"], 20);
}

TEST(Ulog, RandomMutations) {
  auto f = formats::make_ulog();
  testing::mutate_and_parse(*f, {to_bytes(sample())}, 4321, 3000);
}

// The spec-written logs against what @foxglove/ulog read from them.
TEST(Ulog, FixturesAgainstFoxgloveReader) {
  const std::string dir = testing::fixtures_dir() + "/ulog";
  if (testing::fixtures_dir().empty() || !std::filesystem::exists(dir + "/expected.json"))
    GTEST_FAIL() << "run tests/fixtures/gen_ulog.py first (PAYLOADFS_FIXTURES)";
  auto f = formats::make_ulog();
  const Json expected = testing::read_fixture_json(dir + "/expected.json")["sample.ulg"];
  const auto bytes = testing::read_file(dir + "/sample.ulg");
  const Layout l = parse_bytes(*f, bytes);
  EXPECT_TRUE(l.errors.empty()) << first_error(l);
  EXPECT_EQ(l.header["version"], expected["version"]);
  EXPECT_EQ(std::to_string(l.header["timestamp"].get<uint64_t>()), expected["timestamp"]);
  for (const auto& [id, sub] : expected["subscriptions"].items()) {
    const Json& ours = l.header["subscriptions"][id];
    EXPECT_EQ(ours["name"], sub["name"]);
    EXPECT_EQ(ours["multi_id"], sub["multi_id"]);
    const std::string dir_name =
        sub["name"].get<std::string>() + (sub["multi_id"] == 0 ? "" : "~" + sub["multi_id"].dump());
    const Json& messages = expected["messages"][id];
    EXPECT_EQ(ours["message_count"], messages.size());
    for (size_t i = 0; i < messages.size(); ++i) {
      const std::string width_name = "message/" + dir_name + "/" +
                                     (messages.size() > 10 && i < 10 ? "0" : "") +
                                     std::to_string(i);
      const Slice* s = find(l, width_name);
      ASSERT_NE(s, nullptr) << width_name;
      EXPECT_EQ(to_hex(testing::slice_bytes(bytes, *s)), messages[i]["hex"]) << width_name;
      EXPECT_EQ(std::to_string(s->attributes["timestamp"].get<uint64_t>()),
                messages[i]["timestamp"]);
    }
  }
  const std::pair<const char*, const char*> broken[] = {
      {"malformed/size_past_end.ulg", "runs past the end"},
      {"malformed/unknown_msg_id.ulg", "no subscription"},
      {"malformed/format_loop.ulg", "(a loop?)"},
      {"truncated.ulg", "truncated"}};
  for (const auto& [name, text] : broken) {
    const auto data = testing::read_file(dir + "/" + name);
    const Layout bl = parse_bytes(*f, data);
    EXPECT_TRUE(has_error(bl, text)) << name << ": " << testing::errors_of(bl);
    testing::expect_in_bounds(bl, data.size());
  }
}

}  // namespace
}  // namespace payloadfs

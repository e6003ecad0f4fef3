// MCAP parser: hand-built edge cases, and files written by the MCAP project's TypeScript
// library (@mcap/core) compared with what its McapIndexedReader and McapStreamReader read back
// (see tests/fixtures/gen_mcap.py).

#include <algorithm>
#include <map>
#include <random>
#include <string>

#include "core/render/hex.hpp"
#include "unit/test_support.hpp"

namespace payloadfs::formats {
std::unique_ptr<Format> make_mcap();
}

namespace payloadfs {
namespace {

using testing::expect_in_bounds;
using testing::first_error;
using testing::has_error;

using testing::Bytes;
using testing::parse_bytes;

std::string le(uint64_t v, int width) {
  std::string s;
  for (int i = 0; i < width; ++i) s.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
  return s;
}
std::string str(const std::string& s) {
  return le(s.size(), 4) + s;
}
std::string rec(uint8_t op, const std::string& content) {
  return std::string(1, static_cast<char>(op)) + le(content.size(), 8) + content;
}
const std::string kMagic("\x89MCAP0\r\n", 8);

std::string header_rec() {
  return rec(0x01, str("prof") + str("lib"));
}
std::string schema_rec(uint16_t id, const std::string& name) {
  return rec(0x03, le(id, 2) + str(name) + str("enc") + str("{}"));
}
std::string channel_rec(uint16_t id, const std::string& topic) {
  const std::string map = str("k") + str("v");
  return rec(0x04, le(id, 2) + le(1, 2) + str(topic) + str("json") + le(map.size(), 4) + map);
}
std::string message_rec(uint16_t channel, uint32_t seq, uint64_t t, const std::string& data) {
  return rec(0x05, le(channel, 2) + le(seq, 4) + le(t, 8) + le(t + 1, 8) + data);
}
std::string chunk_rec(const std::string& records, const std::string& compression = "") {
  return rec(0x06, le(10, 8) + le(20, 8) + le(records.size(), 8) + le(0, 4) + str(compression) +
                       le(records.size(), 8) + records);
}
std::string attachment_rec(const std::string& name, const std::string& data) {
  return rec(0x09, le(1, 8) + le(2, 8) + str(name) + str("text/plain") + le(data.size(), 8) + data +
                       le(0, 4));
}
std::string metadata_rec(const std::string& name) {
  const std::string map = str("a") + str("1") + str("b") + str("2");
  return rec(0x0C, str(name) + le(map.size(), 4) + map);
}
std::string statistics_rec() {
  const std::string counts = le(1, 2) + le(3, 8);
  return rec(0x0B, le(3, 8) + le(1, 2) + le(2, 4) + le(1, 4) + le(1, 4) + le(1, 4) + le(5, 8) +
                       le(9, 8) + le(counts.size(), 4) + counts);
}
// data section + optional summary + footer + magic
std::string file(const std::string& data, const std::string& summary) {
  std::string out = kMagic + header_rec() + data + rec(0x0F, le(0, 4));
  const uint64_t summary_start = summary.empty() ? 0 : out.size();
  out += summary;
  out += rec(0x02, le(summary_start, 8) + le(0, 8) + le(0, 4));
  return out + kMagic;
}
std::vector<std::byte> bytes_of(const std::string& s) {
  return Bytes().raw(s).data();
}

const Slice* find(const Layout& l, const std::string& name) {
  for (const auto& s : l.slices)
    if (s.name == name) return &s;
  return nullptr;
}

std::string text_of(const std::vector<std::byte>& file_bytes, const Slice& s) {
  const auto b = testing::slice_bytes(file_bytes, s);
  return std::string(reinterpret_cast<const char*>(b.data()), b.size());
}

std::string sample() {
  const std::string inner = channel_rec(2, "/b/c") + message_rec(2, 7, 100, "in-chunk") +
                            message_rec(1, 8, 101, "second");
  const std::string data = schema_rec(1, "S") + channel_rec(1, "a") + message_rec(1, 1, 50, "top") +
                           chunk_rec(inner) + chunk_rec("opaque", "zstd") +
                           attachment_rec("dir/x.txt", "hello") + metadata_rec("meta");
  const std::string summary = schema_rec(1, "S") + channel_rec(1, "a") + channel_rec(2, "/b/c") +
                              channel_rec(3, "idle") + statistics_rec() +
                              rec(0x0E, std::string(1, '\x03') + le(0, 8) + le(0, 8));
  return file(data, summary);
}

TEST(Mcap, Detect) {
  auto f = formats::make_mcap();
  const auto good = bytes_of(kMagic);
  EXPECT_TRUE(f->detect(good, good.size()));
  const auto other = bytes_of(std::string("\x89MCAP1\r\n", 8));
  EXPECT_FALSE(f->detect(other, other.size()));
  const auto shorter = bytes_of(kMagic.substr(0, 7));
  EXPECT_FALSE(f->detect(shorter, shorter.size()));
}

TEST(Mcap, HandBuiltFileWithSummary) {
  auto f = formats::make_mcap();
  const auto bytes = bytes_of(sample());
  const Layout l = parse_bytes(*f, bytes);
  EXPECT_TRUE(l.errors.empty()) << first_error(l);
  const Json& h = l.header;
  EXPECT_EQ(h["profile"], "prof");
  EXPECT_EQ(h["library"], "lib");
  EXPECT_EQ(h["summary"], true);
  ASSERT_EQ(h["schemas"].size(), 1U);
  EXPECT_EQ(h["schemas"][0]["name"], "S");
  ASSERT_EQ(h["channels"].size(), 3U);  // the channel without messages comes from the summary
  EXPECT_EQ(h["channels"][2]["topic"], "idle");
  EXPECT_EQ(h["channels"][0]["metadata"]["k"], "v");
  EXPECT_EQ(h["statistics"]["message_count"], 3);
  EXPECT_EQ(h["statistics"]["channel_message_counts"]["1"], 3);
  ASSERT_EQ(h["metadata"].size(), 1U);
  EXPECT_EQ(h["metadata"][0]["metadata"]["b"], "2");
  EXPECT_EQ(*l.magic, (ByteRange{0, 8}));

  const Slice* att = find(l, "attachment/dir/x.txt");
  ASSERT_NE(att, nullptr);
  EXPECT_EQ(text_of(bytes, *att), "hello");
  EXPECT_EQ(att->attributes["media_type"], "text/plain");
  const Slice* c0 = find(l, "chunk/0");
  ASSERT_NE(c0, nullptr);
  EXPECT_EQ(c0->attributes["compression"], "");
  const Slice* c1 = find(l, "chunk/1");
  ASSERT_NE(c1, nullptr);
  EXPECT_EQ(text_of(bytes, *c1), "opaque");
  EXPECT_EQ(c1->attributes["compression"], "zstd");
  EXPECT_EQ(c1->attributes["message_start_time"], 10);
  const Slice* m0 = find(l, "message/a/0");
  const Slice* m1 = find(l, "message/a/1");
  const Slice* m2 = find(l, "message/b/c/0");  // topic "/b/c"
  ASSERT_TRUE(m0 != nullptr && m1 != nullptr && m2 != nullptr);
  EXPECT_EQ(text_of(bytes, *m0), "top");
  EXPECT_EQ(text_of(bytes, *m1), "second");
  EXPECT_EQ(m1->attributes["sequence"], 8);
  EXPECT_EQ(m1->attributes["log_time"], 101);
  EXPECT_EQ(m1->attributes["publish_time"], 102);
  EXPECT_EQ(m1->attributes["channel_id"], 1);
  EXPECT_EQ(text_of(bytes, *m2), "in-chunk");
  EXPECT_EQ(l.slices.size(), 6U);
}

TEST(Mcap, WithoutSummaryOrFooter) {
  auto f = formats::make_mcap();
  std::string data;
  for (int i = 0; i < 12; ++i) data += message_rec(9, static_cast<uint32_t>(i), 5, "m");
  data = channel_rec(4, "t") + message_rec(4, 0, 7, "x") + data;
  const std::string whole = file(data, "");
  {  // no summary: channels from the data section, computed statistics, unknown channel named
    const auto bytes = bytes_of(whole);
    const Layout l = parse_bytes(*f, bytes);
    EXPECT_TRUE(has_error(l, "12 message(s) refer to a channel id with no Channel record"));
    EXPECT_EQ(l.header["summary"], false);
    EXPECT_EQ(l.header["channels"].size(), 1U);
    EXPECT_EQ(l.header["statistics"]["message_count"], 13);
    EXPECT_EQ(l.header["statistics"]["channel_message_counts"]["9"], 12);
    EXPECT_EQ(l.header["statistics_source"], "computed from the data section");
    EXPECT_NE(find(l, "message/t/0"), nullptr);
    EXPECT_NE(find(l, "message/#9/00"), nullptr);
    EXPECT_NE(find(l, "message/#9/11"), nullptr);
  }
  {  // no footer (cut before it): every record before is still read
    const std::string cut = whole.substr(0, whole.size() - 8 - 29);
    const auto bytes = bytes_of(cut);
    const Layout l = parse_bytes(*f, bytes);
    EXPECT_TRUE(has_error(l, "no Footer"));
    EXPECT_EQ(l.errors.size(), 2U) << first_error(l);  // + the unknown channel
    EXPECT_EQ(l.header["statistics"]["message_count"], 13);
  }
}

TEST(Mcap, TruncatedAtEveryByte) {
  auto f = formats::make_mcap();
  const auto full = bytes_of(sample());
  for (size_t n = 0; n < full.size(); ++n) {
    const std::vector<std::byte> cut(full.begin(), full.begin() + static_cast<std::ptrdiff_t>(n));
    const Layout l = parse_bytes(*f, cut);
    EXPECT_FALSE(l.errors.empty()) << n;
    expect_in_bounds(l, n);
  }
}

TEST(Mcap, HostileLengths) {
  auto f = formats::make_mcap();
  for (const uint64_t length : {uint64_t{0xFFFFFFFF}, UINT64_MAX, UINT64_MAX - 8}) {
    SCOPED_TRACE(length);
    {  // record length
      const std::string data =
          message_rec(1, 0, 0, "ok") + std::string(1, '\x05') + le(length, 8) + "rest";
      const Layout l = parse_bytes(*f, bytes_of(file(data, "")));
      EXPECT_TRUE(has_error(l, "runs past the end of the file"));
      EXPECT_NE(find(l, "message/#1/0"), nullptr);
    }
    {  // chunk records length
      const std::string chunk =
          rec(0x06, le(0, 8) + le(0, 8) + le(0, 8) + le(0, 4) + str("") + le(length, 8) + "abc");
      const Layout l = parse_bytes(*f, bytes_of(file(chunk, "")));
      EXPECT_TRUE(has_error(l, "malformed or truncated"));
      EXPECT_EQ(find(l, "chunk/0"), nullptr);
    }
    {  // attachment data length, string length
      const std::string att =
          rec(0x09, le(0, 8) + le(0, 8) + str("n") + str("t") + le(length, 8) + "data" + le(0, 4));
      const std::string bad_string = rec(0x01, le(length & 0xFFFFFFFF, 4) + "x");
      const Layout l = parse_bytes(*f, bytes_of(file(att + bad_string, "")));
      EXPECT_TRUE(has_error(l, "malformed or truncated"));
      EXPECT_TRUE(has_error(l, "unexpected Header"));
      EXPECT_EQ(find(l, "attachment/n"), nullptr);
    }
  }
  {  // a chunk inside a chunk, a footer whose summary_start points outside
    std::string data = chunk_rec(chunk_rec(message_rec(1, 0, 0, "deep")));
    std::string whole = file(data, "");
    const size_t footer = whole.size() - 8 - 29;
    const std::string bogus = le(whole.size() * 2, 8);
    whole.replace(footer + 9, 8, bogus);
    const Layout l = parse_bytes(*f, bytes_of(whole));
    EXPECT_TRUE(has_error(l, "Chunk record where none is allowed"));
    EXPECT_TRUE(has_error(l, "summary ignored"));
    EXPECT_EQ(l.slices.size(), 1U);
  }
  {  // maps with entries running past their length
    const std::string map = str("key") + str("value-longer-than-the-map");
    const std::string ch = rec(0x04, le(1, 2) + le(0, 2) + str("t") + str("e") + le(5, 4) + map);
    const Layout l = parse_bytes(*f, bytes_of(file(ch, "")));
    EXPECT_TRUE(has_error(l, "malformed map entry"));
  }
}

TEST(Mcap, Robustness) {
  auto f = formats::make_mcap();
  std::vector<std::vector<std::byte>> seeds{bytes_of(sample())};
  const std::string dir = testing::fixtures_dir() + "/mcap";
  for (const char* name : {"chunked_none.mcap", "unchunked.mcap"}) {
    auto b = testing::read_file(dir + "/" + name);
    if (!b.empty()) seeds.push_back(std::move(b));
  }
  testing::mutate_and_parse(*f, seeds, 31337, 3000);
}

// Our numbers as the generator's decimal strings.
std::string dec(const Json& v) {
  return v.is_string() ? v.get<std::string>() : std::to_string(v.get<uint64_t>());
}

TEST(Mcap, MessagesAreOneRecordTablePerTopic) {
  auto f = formats::make_mcap();
  {
    const auto bytes = bytes_of(sample());
    const MemorySource source(bytes);
    const Layout l = f->parse(source);
    EXPECT_TRUE(l.errors.empty()) << first_error(l);
    // Attachments and chunks stay slices, before the tables.
    ASSERT_EQ(l.slices.size(), 3U);
    EXPECT_EQ(l.slices[0].name, "attachment/dir/x.txt");
    EXPECT_EQ(l.slices[1].name, "chunk/0");
    EXPECT_EQ(l.slices[2].name, "chunk/1");
    // Topics in the order of their first message; records in file order, tagged with the
    // channel id.
    ASSERT_EQ(l.tables.size(), 2U);
    const RecordTable& a = l.tables[0];
    const RecordTable& bc = l.tables[1];
    EXPECT_EQ(a.dir, "message/a");
    EXPECT_EQ(bc.dir, "message/b/c");  // topic "/b/c": no "(empty)" directory
    ASSERT_EQ(a.records.size(), 2U);
    ASSERT_EQ(bc.records.size(), 1U);
    EXPECT_EQ(a.records[0].tag, 1U);
    EXPECT_EQ(bc.records[0].tag, 2U);
    EXPECT_EQ(text_of(bytes, {"", {a.records[1].offset, a.records[1].length}, {}}), "second");
    EXPECT_EQ(a.attributes(source, a.records[1]).dump(),
              R"({"sequence":8,"log_time":101,"publish_time":102,"channel_id":1})");
    EXPECT_EQ(bc.attributes(source, bc.records[0]).dump(),
              R"({"sequence":7,"log_time":100,"publish_time":101,"channel_id":2})");
  }
  {  // channels sharing a topic share its table, in file order; unknown channels get #<id>
    std::string data = channel_rec(1, "t") + channel_rec(2, "t");
    for (uint32_t i = 0; i < 6; ++i)
      data += message_rec(static_cast<uint16_t>(i % 3 == 0 ? 2 : i % 3 == 1 ? 1 : 5), i, i, "m");
    const auto bytes = bytes_of(file(data, ""));
    const MemorySource source(bytes);
    const Layout l = f->parse(source);
    EXPECT_TRUE(has_error(l, "2 message(s) refer to a channel id with no Channel record"));
    ASSERT_EQ(l.tables.size(), 2U);
    EXPECT_EQ(l.tables[0].dir, "message/t");
    EXPECT_EQ(l.tables[1].dir, "message/#5");
    const auto& t = l.tables[0].records;
    ASSERT_EQ(t.size(), 4U);
    for (size_t i = 0; i + 1 < t.size(); ++i) EXPECT_LT(t[i].offset, t[i + 1].offset);
    EXPECT_EQ(t[0].tag, 2U);
    EXPECT_EQ(t[1].tag, 1U);
    EXPECT_EQ(l.tables[0].attributes(source, t[3])["sequence"], 4);
    EXPECT_EQ(l.header["statistics"]["channel_message_counts"].dump(), R"({"1":2,"2":2,"5":2})");
  }
}

// Where the messages of `topic` are, among `topics` (an object keyed by topic): message/ and
// the topic without its leading '/', unless another topic is that name already.
std::string message_dir(const Json& topics, const std::string& topic) {
  const bool strip = topic.starts_with('/') && !topics.contains(topic.substr(1));
  return "message/" + (strip ? topic.substr(1) : topic);
}

std::string topic_of_dir(const Json& topics, const std::string& dir) {
  for (const auto& [topic, list] : topics.items())
    if (message_dir(topics, topic) == dir) return topic;
  ADD_FAILURE() << "no topic has " << dir;
  return "";
}

struct TopicDirs {
  std::vector<std::string> dirs;   // each table's dir, as the format names it
  std::vector<std::string> paths;  // where it is under raw/
};

TopicDirs topic_dirs(const std::vector<std::string>& topics) {
  std::string data;
  for (size_t i = 0; i < topics.size(); ++i)
    data += channel_rec(static_cast<uint16_t>(i + 1), topics[i]);
  for (size_t i = 0; i < topics.size(); ++i)
    data += message_rec(static_cast<uint16_t>(i + 1), 0, i, "m" + std::to_string(i));
  const auto bytes = bytes_of(file(data, ""));
  const MemorySource source(bytes);
  const Layout l = formats::make_mcap()->parse(source);
  EXPECT_TRUE(l.errors.empty()) << first_error(l);
  TopicDirs out;
  const SliceTree tree(l.slices, l.tables);
  for (size_t t = 0; t < l.tables.size(); ++t) {
    out.dirs.push_back(l.tables[t].dir);
    out.paths.push_back(tree.table_path(t));
    // Each message is found under its table's path.
    const auto entry = tree.find(out.paths.back() + "/0");
    EXPECT_TRUE(entry.has_value() && entry->kind == SliceTree::Entry::Kind::record) << t;
  }
  return out;
}

TEST(Mcap, LeadingSlashOfATopicMakesNoEmptyDirectory) {
  // ROS topics: message/imu/data/0, not message/(empty)/imu/data/0.
  const TopicDirs ros = topic_dirs({"/imu/data", "/tf", "/camera/image", "/diagnostics"});
  EXPECT_EQ(ros.dirs, (std::vector<std::string>{"message/imu/data", "message/tf",
                                                "message/camera/image", "message/diagnostics"}));
  EXPECT_EQ(ros.paths, ros.dirs);
  // A topic that is also another's parent: the second to publish gets a ~1 directory.
  const TopicDirs nested = topic_dirs({"/camera/image", "/camera/image/compressed"});
  EXPECT_EQ(nested.dirs,
            (std::vector<std::string>{"message/camera/image", "message/camera/image/compressed"}));
  EXPECT_EQ(nested.paths, (std::vector<std::string>{"message/camera/image",
                                                    "message/camera/image~1/compressed"}));
  // "/imu" keeps its '/' when "imu" is a topic too, so that names stay unique; other empty
  // components keep the layout's escaping ("/" is message/(empty), "//odd" message/(empty)/odd).
  const TopicDirs mixed = topic_dirs({"/imu", "imu", "/", "//odd"});
  EXPECT_EQ(mixed.dirs,
            (std::vector<std::string>{"message//imu", "message/imu", "message/", "message//odd"}));
  EXPECT_EQ(mixed.paths, (std::vector<std::string>{"message/(empty)/imu", "message/imu",
                                                   "message/(empty)~1", "message/(empty)/odd"}));
}

TEST(Mcap, RealFilesAsRecordTables) {
  const std::string dir = testing::fixtures_dir() + "/mcap";
  const Json expected = testing::read_fixture_json(dir + "/expected.json");
  ASSERT_FALSE(expected.is_null()) << "run tests/fixtures/gen_mcap.py " << dir;
  auto f = formats::make_mcap();
  size_t compared = 0;
  for (const auto& [file_name, want] : expected.items()) {
    SCOPED_TRACE(file_name);
    if (!want["truncated_from"].is_null() || !want["messages_sliceable"].get<bool>()) continue;
    const auto bytes = testing::read_file(dir + "/" + file_name);
    const MemorySource source(bytes);
    const Layout l = f->parse(source);
    for (const auto& s : l.slices) EXPECT_NE(s.name.rfind("message/", 0), 0U) << s.name;
    ASSERT_EQ(l.tables.size(), want["messages"].size());
    for (const RecordTable& t : l.tables) {
      SCOPED_TRACE(t.dir);
      ASSERT_EQ(t.dir.rfind("message/", 0), 0U);
      const Json& list = want["messages"][topic_of_dir(want["messages"], t.dir)];
      ASSERT_EQ(t.records.size(), list.size());
      for (size_t i = 0; i < list.size(); ++i) {
        const Record& r = t.records[i];
        const Json& m = list[i];
        EXPECT_EQ(r.tag, m["channel_id"]) << i;
        EXPECT_EQ(to_hex(testing::slice_bytes(bytes, {"", {r.offset, r.length}, {}})), m["hex"])
            << i;
        // Exactly the attributes each message's slice had, in the same order.
        const Json a = t.attributes(source, r);
        ASSERT_EQ(a.size(), 4U);
        auto key = a.items().begin();
        for (const char* name : {"sequence", "log_time", "publish_time", "channel_id"}) {
          EXPECT_EQ(key.key(), name);
          ++key;
        }
        EXPECT_EQ(a["sequence"], m["sequence"]) << i;
        EXPECT_EQ(dec(a["log_time"]), m["log_time"]) << i;
        EXPECT_EQ(dec(a["publish_time"]), m["publish_time"]) << i;
        EXPECT_EQ(a["channel_id"], m["channel_id"]) << i;
        ++compared;
      }
    }
  }
  EXPECT_GE(compared, 60U);
}

TEST(Mcap, AMillionTinyMessagesIndexInBoundedMemory) {
  constexpr size_t kMessages = 1'000'000;
  std::string data = channel_rec(1, "even") + channel_rec(2, "odd");
  const std::string even = message_rec(1, 0, 7, "e");
  const std::string odd = message_rec(2, 0, 8, "o");
  data.reserve(data.size() + kMessages * even.size());
  for (size_t i = 0; i < kMessages; ++i) data += i % 2 == 0 ? even : odd;
  const auto bytes = bytes_of(file(data, ""));
  data.clear();
  data.shrink_to_fit();
  auto f = formats::make_mcap();
  const MemorySource source(bytes);
  const Layout l = f->parse(source);
  EXPECT_TRUE(l.errors.empty()) << first_error(l);
  EXPECT_TRUE(l.slices.empty());
  EXPECT_EQ(l.header["statistics"]["message_count"], kMessages);
  ASSERT_EQ(l.tables.size(), 2U);
  size_t bytes_held = 0;
  for (const RecordTable& t : l.tables) {
    ASSERT_EQ(t.records.size(), kMessages / 2);
    bytes_held += t.records.capacity() * sizeof(Record);
  }
  EXPECT_LE(bytes_held, size_t{32} << 20);
  EXPECT_EQ(l.tables[1].dir, "message/odd");
  EXPECT_EQ(l.tables[1].attributes(source, l.tables[1].records.back()).dump(),
            R"({"sequence":0,"log_time":8,"publish_time":9,"channel_id":2})");
}

TEST(Mcap, RealFilesMatchTheReferenceReader) {
  const std::string dir = testing::fixtures_dir() + "/mcap";
  const Json expected = testing::read_fixture_json(dir + "/expected.json");
  ASSERT_FALSE(expected.is_null()) << "run tests/fixtures/gen_mcap.py " << dir;
  ASSERT_GE(expected.size(), 5U);
  auto f = formats::make_mcap();
  size_t messages_compared = 0;
  for (const auto& [file_name, want] : expected.items()) {
    SCOPED_TRACE(file_name);
    const auto bytes = testing::read_file(dir + "/" + file_name);
    ASSERT_TRUE(f->detect(bytes, bytes.size()));
    const Layout l = parse_bytes(*f, bytes);
    const Json& h = l.header;
    const bool truncated = !want["truncated_from"].is_null();
    if (truncated) {
      EXPECT_FALSE(l.errors.empty());
    } else {
      EXPECT_TRUE(l.errors.empty()) << first_error(l);
    }
    EXPECT_EQ(h["profile"], want["header"]["profile"]);
    EXPECT_EQ(h["library"], want["header"]["library"]);

    // Slices by kind, in file order.
    std::vector<const Slice*> attachments;
    std::vector<const Slice*> chunks;
    std::map<std::string, std::vector<const Slice*>> messages;
    for (const auto& s : l.slices) {
      if (s.name.rfind("attachment/", 0) == 0) attachments.push_back(&s);
      if (s.name.rfind("chunk/", 0) == 0) chunks.push_back(&s);
      if (s.name.rfind("message/", 0) == 0) {
        const std::string rest = s.name.substr(8);
        messages[rest.substr(0, rest.rfind('/'))].push_back(&s);
      }
    }
    // A truncated file shows a prefix of each list; a whole one shows all of it.
    auto check_count = [&](size_t got, size_t total) {
      if (truncated) {
        EXPECT_LE(got, total);
      } else {
        EXPECT_EQ(got, total);
      }
    };
    check_count(attachments.size(), want["attachments"].size());
    for (size_t i = 0; i < attachments.size(); ++i) {
      const Json& a = want["attachments"][i];
      EXPECT_EQ(attachments[i]->name, "attachment/" + a["name"].get<std::string>());
      EXPECT_EQ(to_hex(testing::slice_bytes(bytes, *attachments[i])), a["hex"]);
      EXPECT_EQ(attachments[i]->attributes["media_type"], a["media_type"]);
      EXPECT_EQ(dec(attachments[i]->attributes["log_time"]), a["log_time"]);
      EXPECT_EQ(dec(attachments[i]->attributes["create_time"]), a["create_time"]);
    }
    check_count(chunks.size(), want["chunks"].size());
    for (size_t i = 0; i < chunks.size(); ++i) {
      const Json& c = want["chunks"][i];
      const Json& a = chunks[i]->attributes;
      const size_t width = std::to_string(chunks.size() - 1).size();
      std::string index = std::to_string(i);
      index.insert(0, width - index.size(), '0');
      EXPECT_EQ(chunks[i]->name, "chunk/" + index);
      EXPECT_EQ(a["compression"], c["compression"]);
      EXPECT_EQ(dec(a["compressed_size"]), c["compressed_size"]);
      EXPECT_EQ(dec(a["uncompressed_size"]), c["uncompressed_size"]);
      EXPECT_EQ(a["uncompressed_crc"], c["uncompressed_crc"]);
      EXPECT_EQ(dec(a["message_start_time"]), c["message_start_time"]);
      EXPECT_EQ(dec(a["message_end_time"]), c["message_end_time"]);
      if (c.contains("offset")) {
        EXPECT_EQ(std::to_string(chunks[i]->range.offset), c["offset"]);
      }
      EXPECT_EQ(to_hex(testing::slice_bytes(bytes, *chunks[i])), c["hex"]);
    }
    if (!want["messages_sliceable"].get<bool>()) {
      EXPECT_TRUE(messages.empty());
    } else {
      for (const auto& [topic, list] : want["messages"].items()) {
        SCOPED_TRACE(topic);
        const auto& got = messages[message_dir(want["messages"], topic).substr(8)];
        check_count(got.size(), list.size());
        for (size_t i = 0; i < got.size(); ++i) {
          const Json& m = list[i];
          const Json& a = got[i]->attributes;
          EXPECT_EQ(a["channel_id"], m["channel_id"]);
          EXPECT_EQ(a["sequence"], m["sequence"]);
          EXPECT_EQ(dec(a["log_time"]), m["log_time"]);
          EXPECT_EQ(dec(a["publish_time"]), m["publish_time"]);
          EXPECT_EQ(to_hex(testing::slice_bytes(bytes, *got[i])), m["hex"]);
          ++messages_compared;
        }
      }
      EXPECT_EQ(messages.size(), want["messages"].size());
      if (truncated) {
        EXPECT_FALSE(messages.empty());
      }
    }
    if (truncated) continue;

    // Schemas and channels by id.
    std::map<uint64_t, Json> schemas;
    for (const auto& s : h["schemas"]) schemas[s["id"].get<uint64_t>()] = s;
    ASSERT_EQ(schemas.size(), want["schemas"].size());
    for (const auto& s : want["schemas"]) {
      const Json& got = schemas[s["id"].get<uint64_t>()];
      EXPECT_EQ(got["name"], s["name"]);
      EXPECT_EQ(got["encoding"], s["encoding"]);
    }
    std::map<uint64_t, Json> channels;
    for (const auto& c : h["channels"]) channels[c["id"].get<uint64_t>()] = c;
    ASSERT_EQ(channels.size(), want["channels"].size());
    for (const auto& c : want["channels"]) {
      const Json& got = channels[c["id"].get<uint64_t>()];
      EXPECT_EQ(got["topic"], c["topic"]);
      EXPECT_EQ(got["message_encoding"], c["message_encoding"]);
      EXPECT_EQ(got["schema_id"], c["schema_id"]);
      EXPECT_EQ(got["metadata"].dump(), c["metadata"].dump());
    }
    EXPECT_EQ(h["metadata"].dump(), want["metadata"].dump());
    const Json& st = h["statistics"];
    if (const Json& s = want["statistics"]; !s.is_null()) {
      EXPECT_EQ(h["summary"], true);
      for (const char* key : {"message_count", "message_start_time", "message_end_time"})
        EXPECT_EQ(dec(st[key]), s[key]) << key;
      for (const char* key :
           {"schema_count", "channel_count", "attachment_count", "metadata_count", "chunk_count"})
        EXPECT_EQ(st[key], s[key]) << key;
      ASSERT_EQ(st["channel_message_counts"].size(), s["channel_message_counts"].size());
      for (const auto& [id, count] : s["channel_message_counts"].items())
        EXPECT_EQ(dec(st["channel_message_counts"][id]), count) << id;
    } else {
      // Without a summary the parser counts the data section; the writer's data is known.
      EXPECT_EQ(h["summary"], false);
      uint64_t total = 0;
      for (const auto& [topic, list] : want["messages"].items()) total += list.size();
      EXPECT_EQ(st["message_count"], total);
      EXPECT_EQ(st["attachment_count"], want["attachments"].size());
      EXPECT_EQ(st["metadata_count"], want["metadata"].size());
      EXPECT_EQ(st["chunk_count"], want["chunks"].size());
      EXPECT_EQ(st["channel_count"], want["channels"].size());
    }
  }
  EXPECT_GE(messages_compared, 60U);
}

}  // namespace
}  // namespace payloadfs

// tfrecord: records written from the specification by tests/fixtures/gen_tfrecord.py (no
// Debian TensorFlow) compared with its expected.json; CRC-32C against the standard check
// value; hand-built malformed files (bad CRCs, cut records, a huge length).

#include <string>
#include <vector>

#include "core/formats/builtin.hpp"
#include "core/formats/support/crc32c.hpp"
#include "core/model/layout.hpp"
#include "unit/test_support.hpp"

namespace payloadfs {
namespace {

using testing::has_error;
using testing::parse_bytes;
using testing::to_bytes;

const std::unique_ptr<Format> kTfRecord = formats::make_tfrecord();

void put_le(std::string& out, uint64_t value, int bytes) {
  for (int i = 0; i < bytes; ++i) out.push_back(static_cast<char>((value >> (8 * i)) & 0xFF));
}

uint32_t masked_crc_of(const std::string& s) {
  return formats::tfrecord_masked_crc(formats::crc32c(to_bytes(s)));
}

std::string record(const std::string& data, bool bad_length_crc = false,
                   bool bad_data_crc = false) {
  std::string length;
  put_le(length, data.size(), 8);
  std::string out = length;
  put_le(out, masked_crc_of(length) ^ (bad_length_crc ? 1u : 0u), 4);
  out += data;
  put_le(out, masked_crc_of(data) ^ (bad_data_crc ? 1u : 0u), 4);
  return out;
}

Layout parse(const std::string& s) {
  return parse_bytes(*kTfRecord, to_bytes(s));
}

TEST(TfRecordCrc, StandardCheckValue) {
  EXPECT_EQ(formats::crc32c(to_bytes("123456789")), 0xE3069283u);
  EXPECT_EQ(formats::crc32c(to_bytes("")), 0u);
}

TEST(TfRecordDetect, FirstRecordLengthCrcAndFit) {
  EXPECT_TRUE(testing::detects(*kTfRecord, to_bytes(record("abc"))));
  EXPECT_TRUE(testing::detects(*kTfRecord, to_bytes(record(""))));
  EXPECT_FALSE(testing::detects(*kTfRecord, to_bytes(record("abc", true))));
  const std::string whole = record("abcdef");
  EXPECT_FALSE(testing::detects(*kTfRecord, to_bytes(whole.substr(0, whole.size() - 1))));
  EXPECT_FALSE(testing::detects(*kTfRecord, to_bytes(std::string(64, '\0'))));
  EXPECT_FALSE(testing::detects(*kTfRecord, to_bytes("short")));
}

TEST(TfRecordParse, RecordsAndCrcVerdicts) {
  const Layout layout = parse(record("one") + record("") + record("three", false, true));
  EXPECT_EQ(layout.header["record_count"], 3);
  const auto& records = layout.slices;
  ASSERT_EQ(records.size(), 3u);
  EXPECT_EQ(records[0].name, "record/0");
  EXPECT_EQ(records[0].range, (ByteRange{12, 3}));
  EXPECT_EQ(records[2].range.length, 5u);
  EXPECT_EQ(records[0].attributes["length"], 3);
  EXPECT_EQ(records[0].attributes["data_crc_ok"], true);
  EXPECT_EQ(records[0].attributes["length_crc_ok"], true);
  EXPECT_EQ(records[2].attributes["data_crc_ok"], false);
  EXPECT_TRUE(has_error(layout, "data CRC mismatch"));
}

TEST(TfRecordMalformed, BadLengthCrcEndsTheIndex) {
  const Layout layout = parse(record("one") + record("two", true) + record("three"));
  ASSERT_EQ(layout.slices.size(), 2u);
  EXPECT_EQ(layout.slices[1].attributes["length_crc_ok"], false);
  EXPECT_TRUE(has_error(layout, "length CRC mismatch"));
}

TEST(TfRecordMalformed, CutRecordsAndHugeLengths) {
  const std::string two = record("one") + record("second record");
  for (size_t cut = 16; cut < two.size(); ++cut) {
    if (cut == record("one").size()) continue;  // a whole first record: a valid file
    const Layout layout = parse(two.substr(0, cut));
    EXPECT_FALSE(layout.errors.empty()) << cut;
    testing::expect_in_bounds(layout, cut);
  }
  std::string huge;
  put_le(huge, UINT64_MAX - 3, 8);
  std::string length = huge;
  put_le(huge, masked_crc_of(length), 4);
  const Layout layout = parse(record("ok") + huge + "xxxx");
  EXPECT_TRUE(has_error(layout, "truncated file"));
  EXPECT_EQ(layout.slices.size(), 1u);
}

TEST(TfRecordFixtures, MatchTheGeneratorsRecords) {
  const std::string dir = testing::fixtures_dir() + "/tfrecord";
  const Json expected = testing::read_fixture_json(dir + "/expected.json");
  ASSERT_TRUE(expected.is_object()) << "run tests/fixtures/gen_tfrecord.py " << dir;
  for (const auto& [rel, want] : expected["files"].items()) {
    const auto bytes = testing::read_file(dir + "/" + rel);
    EXPECT_TRUE(testing::detects(*kTfRecord, bytes)) << rel;
    const Layout layout = parse_bytes(*kTfRecord, bytes);
    EXPECT_EQ(!layout.errors.empty(), want["errors"].get<bool>()) << rel;
    ASSERT_EQ(layout.slices.size(), want["records"].size()) << rel;
    for (size_t i = 0; i < layout.slices.size(); ++i) {
      const auto& w = want["records"][i];
      const auto data = testing::slice_bytes(bytes, layout.slices[i]);
      std::string hex;
      for (const std::byte b : data) {
        static constexpr char kHex[] = "0123456789abcdef";
        hex += kHex[static_cast<uint8_t>(b) >> 4];
        hex += kHex[static_cast<uint8_t>(b) & 0xF];
      }
      EXPECT_EQ(hex, w["data_hex"].get<std::string>()) << rel << " " << i;
      EXPECT_EQ(layout.slices[i].attributes["data_crc_ok"], w["data_crc_ok"]) << rel << " " << i;
      EXPECT_EQ(layout.slices[i].attributes["length_crc_ok"], w["length_crc_ok"]) << rel;
    }
  }
}

}  // namespace
}  // namespace payloadfs

#include <gtest/gtest.h>

#include <fstream>

#include "core/formats/builtin.hpp"
#include "core/render/hex.hpp"
#include "unit/test_support.hpp"

namespace payloadfs {
namespace {

using testing::Bytes;
using testing::has_error;

Bytes safetensors(const std::string& header, size_t data_bytes) {
  Bytes b;
  b.le(header.size(), 8).raw(header);
  for (size_t i = 0; i < data_bytes; ++i) b.u8(static_cast<uint8_t>(i * 7));
  return b;
}

class SafetensorsTest : public ::testing::Test {
 protected:
  std::unique_ptr<Format> format = formats::make_safetensors();

  Layout parse(const Bytes& b) { return testing::parse_bytes(*format, b.data()); }
};

TEST_F(SafetensorsTest, DetectsByStructure) {
  const auto good = safetensors(R"({"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}})", 2);
  EXPECT_TRUE(format->detect(good.data(), good.size()));
  Bytes not_json;
  not_json.le(4, 8).raw("abcd");
  EXPECT_FALSE(format->detect(not_json.data(), not_json.size()));
  Bytes implausible;
  implausible.le(0x0100000000000000ULL, 8).raw("{}");
  EXPECT_FALSE(format->detect(implausible.data(), implausible.size()));
  // A wrong header length is an error in a safetensors file, not another format.
  Bytes too_long;
  too_long.le(1000, 8).raw("{}");
  EXPECT_TRUE(format->detect(too_long.data(), too_long.size()));
}

TEST_F(SafetensorsTest, TensorsAndMetadata) {
  const auto file = safetensors(
      R"({"__metadata__":{"k":"v"},"b":{"dtype":"F16","shape":[2],"data_offsets":[8,12]},)"
      R"("a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})",
      12);
  const Layout l = parse(file);
  ASSERT_TRUE(l.errors.empty()) << l.errors.front();
  EXPECT_EQ(l.header["tensor_count"], 2);
  EXPECT_EQ(l.header["__metadata__"]["k"], "v");
  ASSERT_EQ(l.slices.size(), 2u);
  const uint64_t base = 8 + file.size() - 12 - 8;
  EXPECT_EQ(l.slices[0].name, "a");  // file order
  EXPECT_EQ(l.slices[0].range, (ByteRange{base, 8}));
  EXPECT_EQ(l.slices[1].range, (ByteRange{base + 8, 4}));
  EXPECT_EQ(l.slices[1].attributes["dtype"], "F16");
  EXPECT_EQ(l.slices[1].attributes["data_offsets"], Json::array({8, 12}));
  EXPECT_FALSE(l.magic.has_value());  // no signature: Payload shows the first 4 bytes
}

TEST_F(SafetensorsTest, SubByteDtypes) {
  const auto ok = safetensors(R"({"q":{"dtype":"F4","shape":[4],"data_offsets":[0,2]}})", 2);
  EXPECT_TRUE(parse(ok).errors.empty());
  const auto odd = safetensors(R"({"q":{"dtype":"F4","shape":[3],"data_offsets":[0,2]}})", 2);
  EXPECT_TRUE(has_error(parse(odd), "whole bytes"));
  const auto f6 = safetensors(R"({"q":{"dtype":"F6_E2M3","shape":[4],"data_offsets":[0,3]}})", 3);
  EXPECT_TRUE(parse(f6).errors.empty());
}

TEST_F(SafetensorsTest, RejectsBadFilesAsErrors) {
  EXPECT_TRUE(has_error(parse(safetensors("{not json}", 0)), "not valid JSON"));
  EXPECT_TRUE(has_error(parse(safetensors("[1,2]", 0)), "not an object"));
  Bytes past_eof;
  past_eof.le(1000, 8).raw("{}");
  EXPECT_TRUE(has_error(parse(past_eof), "runs past the end"));
  Bytes huge;
  huge.le(0xFFFFFFFFFFFFFFFFULL, 8).raw("{}");
  EXPECT_TRUE(has_error(parse(huge), "exceeds the limit"));
  Bytes claim_100mb;
  claim_100mb.le(100'000'001, 8).raw("{}");
  EXPECT_TRUE(has_error(parse(claim_100mb), "exceeds the limit"));
  EXPECT_TRUE(
      has_error(parse(safetensors(R"({"a":{"dtype":"X9","shape":[1],"data_offsets":[0,1]}})", 1)),
                "unknown dtype"));
  EXPECT_TRUE(
      has_error(parse(safetensors(R"({"a":{"dtype":"U8","shape":[9],"data_offsets":[0,9]}})", 4)),
                "run past the end of the data buffer"));
  EXPECT_TRUE(has_error(
      parse(safetensors(R"({"a":{"dtype":"U8","shape":[3],"data_offsets":[0,2]}})", 2)), "need 3"));
  EXPECT_TRUE(
      has_error(parse(safetensors(R"({"a":{"dtype":"U8","shape":[2],"data_offsets":[2,1]}})", 2)),
                "begin 2 > end 1"));
  EXPECT_TRUE(
      has_error(parse(safetensors(R"({"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}})", 5)),
                "trailing bytes"));
  EXPECT_TRUE(has_error(parse(safetensors(R"({"__metadata__":{"k":1}})", 0)), "not a string"));
  EXPECT_TRUE(has_error(parse(safetensors("{\"a\":\"\xff\"}", 0)), "UTF-8"));
}

TEST_F(SafetensorsTest, OverlapsAndHolesAreReportedButInRangeTensorsKept) {
  const auto overlap = safetensors(R"({"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},)"
                                   R"("b":{"dtype":"U8","shape":[2],"data_offsets":[2,4]}})",
                                   4);
  const Layout l = parse(overlap);
  EXPECT_TRUE(has_error(l, "overlaps"));
  EXPECT_EQ(l.slices.size(), 2u);
  const auto hole = safetensors(R"({"a":{"dtype":"U8","shape":[2],"data_offsets":[2,4]}})", 4);
  EXPECT_TRUE(has_error(parse(hole), "belong to no tensor"));
}

TEST_F(SafetensorsTest, DeepJsonIsRefusedBeforeParsing) {
  const std::string deep = "{\"a\":" + std::string(100000, '[') + std::string(100000, ']') + "}";
  EXPECT_TRUE(has_error(parse(safetensors(deep, 0)), "nests deeper"));
}

TEST_F(SafetensorsTest, ShapeOverflow) {
  const auto file = safetensors(
      R"({"a":{"dtype":"F64","shape":[4294967296,4294967296],"data_offsets":[0,0]}})", 0);
  EXPECT_TRUE(has_error(parse(file), "product fits 64 bits"));
}

// Files written per the specification, compared with an independent reader's view.
TEST_F(SafetensorsTest, SpecFilesMatchReferenceReading) {
  const std::string dir = testing::fixtures_dir() + "/safetensors";
  const Json expected = testing::read_fixture_json(dir + "/expected.json");
  ASSERT_FALSE(expected.is_null())
      << "fixtures missing: run tests/fixtures/generate.py (ctest does)";
  for (const auto& [file, tensors] : expected["tensors"].items()) {
    SCOPED_TRACE(file);
    const auto bytes = testing::read_file(dir + "/" + file + ".safetensors");
    const Layout l = testing::parse_bytes(*format, bytes);
    ASSERT_TRUE(l.errors.empty()) << l.errors.front();
    EXPECT_EQ(l.header["tensor_count"], tensors.size());
    EXPECT_EQ(l.header["__metadata__"], expected["metadata"][file]);
    ASSERT_EQ(l.slices.size(), tensors.size());
    for (const Slice& s : l.slices) {
      const Json& want = tensors.at(s.name);
      EXPECT_EQ(s.attributes["dtype"], want.at("dtype")) << s.name;
      EXPECT_EQ(s.attributes["shape"], want.at("shape")) << s.name;
      EXPECT_EQ(s.attributes["data_offsets"], want.at("data_offsets")) << s.name;
      EXPECT_EQ(s.range.offset, want.at("offset").get<uint64_t>()) << s.name;
      EXPECT_EQ(s.range.length, want.at("length").get<uint64_t>()) << s.name;
      EXPECT_EQ(to_hex(testing::slice_bytes(bytes, s)), want.at("bytes_hex")) << s.name;
    }
  }
}

}  // namespace
}  // namespace payloadfs

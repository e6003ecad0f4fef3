// onnx parser and protobuf wire reader tests: models written by the onnx package
// (tests/fixtures/gen_onnx.py), hand-built ModelProtos, and malformed input (a truncated
// varint, a length past the end, a nesting bomb, huge repeated counts), with a bounded
// mutation run.

#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "core/formats/builtin.hpp"
#include "core/formats/support/onnx_model.hpp"
#include "core/formats/support/protobuf_wire.hpp"
#include "unit/test_support.hpp"

namespace payloadfs {
namespace {

using testing::Bytes;
using testing::has_error;

const Format& onnx_format() {
  static const auto format = formats::make_onnx();
  return *format;
}

// Protobuf encoding helpers.
std::string varint(uint64_t v) {
  std::string out;
  do {
    const uint8_t byte = v & 0x7F;
    v >>= 7;
    out.push_back(static_cast<char>(byte | (v != 0 ? 0x80 : 0)));
  } while (v != 0);
  return out;
}
std::string key(uint32_t number, uint32_t type) {
  return varint(uint64_t{number} << 3 | type);
}
std::string vfield(uint32_t number, uint64_t value) {
  return key(number, 0) + varint(value);
}
std::string lfield(uint32_t number, const std::string& payload) {
  return key(number, 2) + varint(payload.size()) + payload;
}

std::vector<std::byte> bytes_of(const std::string& s) {
  return testing::to_bytes(s);
}

std::string float_tensor(const std::string& name, const std::string& raw, uint64_t n) {
  return lfield(1, varint(n)) + vfield(2, 1) + lfield(8, name) + lfield(9, raw);
}

std::string model_with_graph(const std::string& graph) {
  return vfield(1, 8) + lfield(2, "test") + lfield(7, graph) +
         lfield(8, lfield(1, "") + vfield(2, 13));
}

TEST(ProtobufWire, VarintsAndWireTypes) {
  const std::string msg = vfield(1, 300) + key(2, 1) + std::string(8, '\x01') + key(3, 5) +
                          std::string(4, '\x02') + lfield(4, "abc") + vfield(5, UINT64_MAX);
  const auto data = bytes_of(msg);
  MemorySource src(data);
  BinaryReader r(src);
  protobuf::WireReader w(r);
  protobuf::Field f;
  ASSERT_TRUE(w.next(f));
  EXPECT_EQ(f.number, 1u);
  EXPECT_EQ(f.value, 300u);
  ASSERT_TRUE(w.next(f));
  EXPECT_EQ(f.type, protobuf::WireType::i64);
  EXPECT_EQ(f.value, 0x0101010101010101u);
  ASSERT_TRUE(w.next(f));
  EXPECT_EQ(f.value, 0x02020202u);
  ASSERT_TRUE(w.next(f));
  EXPECT_EQ(w.text(f, 100), "abc");
  ASSERT_TRUE(w.next(f));
  EXPECT_EQ(f.value, UINT64_MAX);
  EXPECT_FALSE(w.next(f));
  EXPECT_TRUE(w.ok());
}

TEST(ProtobufWire, MalformedInputFails) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {vfield(1, 5).substr(0, 1) + "\x80", "cut"},           // truncated varint
      {key(1, 0) + std::string(10, '\xff') + "\x01", "64"},  // varint longer than 10 bytes
      {key(1, 0) + std::string(9, '\xff') + "\x02", "64"},   // 10th byte above 1
      {key(4, 2) + varint(50) + "abc", "runs past"},         // length past the end
      {key(4, 3), "group"},
      {key(4, 7), "invalid"},
      {std::string("\x00", 1), "out of range"},  // field number 0
      {key(4, 1) + "1234", "cut"},
  };
  for (const auto& [msg, why] : cases) {
    SCOPED_TRACE(why);
    const auto data = bytes_of(msg);
    MemorySource src(data);
    BinaryReader r(src);
    protobuf::WireReader w(r);
    protobuf::Field f;
    while (w.next(f)) {
    }
    ASSERT_FALSE(w.ok());
    EXPECT_NE(w.error()->find(why), std::string::npos) << *w.error();
  }
}

TEST(ProtobufWire, NestingIsBounded) {
  std::string msg = vfield(1, 1);
  for (int i = 0; i < 100; ++i) msg = lfield(1, msg);
  const auto data = bytes_of(msg);
  MemorySource src(data);
  BinaryReader r(src);
  protobuf::WireReader top(r);
  // Descend recursively until a reader refuses.
  std::function<std::string(protobuf::WireReader&)> descend = [&](protobuf::WireReader& w) {
    protobuf::Field f;
    if (!w.next(f)) return w.error().value_or("");
    if (f.type != protobuf::WireType::len) return std::string("bottom");
    protobuf::WireReader child(w, f);
    return descend(child);
  };
  const std::string result = descend(top);
  EXPECT_NE(result.find("deeper than 32"), std::string::npos) << result;
}

TEST(OnnxHandBuilt, RawInitializerIsASlice) {
  const std::string raw(12, '\x07');
  const std::string model =
      model_with_graph(lfield(2, "g") + lfield(1, "node") + lfield(5, float_tensor("w", raw, 3)));
  const auto data = bytes_of(model);
  ASSERT_TRUE(testing::detects(onnx_format(), data));
  const Layout l = testing::parse_bytes(onnx_format(), data);
  EXPECT_TRUE(l.errors.empty()) << testing::errors_of(l);
  ASSERT_EQ(l.slices.size(), 1u);
  EXPECT_EQ(l.slices[0].name, "w");
  EXPECT_EQ(l.slices[0].attributes["dtype"], "<f4");
  EXPECT_EQ(l.slices[0].attributes["shape"], Json::array({3}));
  EXPECT_EQ(testing::slice_bytes(data, l.slices[0]), bytes_of(raw));
  EXPECT_EQ(l.header["ir_version"], 8);
  EXPECT_EQ(l.header["graph"]["node_count"], 1);
  EXPECT_EQ(l.header["initializer_count"], 1);
}

TEST(OnnxHandBuilt, RawSizeMismatchIsAnErrorWithoutDtype) {
  const auto data = bytes_of(model_with_graph(lfield(5, float_tensor("w", "12345", 3))));
  const Layout l = testing::parse_bytes(onnx_format(), data);
  EXPECT_TRUE(has_error(l, "raw_data holds 5 bytes"));
  ASSERT_EQ(l.slices.size(), 1u);
  EXPECT_FALSE(l.slices[0].attributes.contains("dtype"));
}

TEST(OnnxHandBuilt, LengthPastTheEndKeepsWhatIsThere) {
  const std::string good = lfield(5, float_tensor("a", std::string(4, 'a'), 1));
  std::string model =
      model_with_graph(good + lfield(5, float_tensor("b", std::string(400, 'b'), 100)));
  model.resize(model.size() - 300);
  const auto data = bytes_of(model);
  ASSERT_TRUE(testing::detects(onnx_format(), data));
  const Layout l = testing::parse_bytes(onnx_format(), data);
  EXPECT_TRUE(has_error(l, "runs past the end"));
  ASSERT_EQ(l.slices.size(), 1u);
  EXPECT_EQ(l.slices[0].name, "a");
  testing::expect_in_bounds(l, data.size());
}

TEST(OnnxHandBuilt, TypeNestingBomb) {
  // sequence_type { elem_type { sequence_type { ... } } }, far deeper than the limits.
  std::string type = lfield(1, vfield(1, 1));
  for (int i = 0; i < 1000; ++i) type = lfield(4, lfield(1, type));
  const std::string graph = lfield(11, lfield(1, "x") + lfield(2, type));
  const auto data = bytes_of(model_with_graph(graph));
  const Layout l = testing::parse_bytes(onnx_format(), data);
  EXPECT_TRUE(has_error(l, "types nest deeper than " + std::to_string(onnx::kMaxTypeDepth)))
      << testing::errors_of(l);
}

TEST(OnnxHandBuilt, HugeRepeatedCountsAreCut) {
  std::string graph;
  for (uint64_t i = 0; i < onnx::kMaxListedValues + 10; ++i) graph += lfield(11, lfield(1, "v"));
  std::string dims;
  for (uint64_t i = 0; i < onnx::kMaxDims + 5; ++i) dims += varint(1);
  graph += lfield(5, lfield(1, dims) + vfield(2, 1) + lfield(8, "many_dims") + lfield(9, ""));
  for (int i = 0; i < 200000; ++i) graph += lfield(1, "");  // nodes: counted only
  const auto data = bytes_of(model_with_graph(graph));
  const Layout l = testing::parse_bytes(onnx_format(), data);
  EXPECT_TRUE(
      has_error(l, "more than " + std::to_string(onnx::kMaxListedValues) + " graph inputs"));
  EXPECT_TRUE(has_error(l, "dims are malformed or more than"));
  EXPECT_EQ(l.header["graph"]["input_count"], onnx::kMaxListedValues + 10);
  EXPECT_EQ(l.header["graph"]["inputs"].size(), onnx::kMaxListedValues);
  EXPECT_EQ(l.header["graph"]["node_count"], 200000);
}

TEST(OnnxHandBuilt, ExternalDataIsListedWithoutASlice) {
  const std::string entry = [] {
    std::string e;
    for (const auto& [k, v] : {std::pair<std::string, std::string>{"location", "w.bin"},
                               {"offset", "4096"},
                               {"length", "12"}})
      e += lfield(13, lfield(1, k) + lfield(2, v));
    return e;
  }();
  const std::string t =
      lfield(1, varint(3)) + vfield(2, 1) + lfield(8, "w") + entry + vfield(14, 1);
  const Layout l = testing::parse_bytes(onnx_format(), bytes_of(model_with_graph(lfield(5, t))));
  EXPECT_TRUE(l.errors.empty()) << testing::errors_of(l);
  EXPECT_TRUE(l.slices.empty());
  const Json& w = l.header["initializers"]["w"];
  EXPECT_EQ(w["storage"], "external");
  EXPECT_EQ(w["location"], "w.bin");
  EXPECT_EQ(w["offset"], 4096);
  EXPECT_EQ(w["length"], 12);
}

TEST(OnnxDetect, OnlyModelProtoShapedInput) {
  EXPECT_TRUE(testing::detects(onnx_format(), bytes_of(model_with_graph(""))));
  EXPECT_FALSE(testing::detects(onnx_format(), bytes_of("")));
  EXPECT_FALSE(testing::detects(onnx_format(), bytes_of(vfield(1, 8))));  // one field
  EXPECT_FALSE(testing::detects(onnx_format(), bytes_of(vfield(1, 500) + lfield(2, "x"))));
  EXPECT_FALSE(testing::detects(onnx_format(), bytes_of(vfield(1, 8) + vfield(2, 1))));
  EXPECT_FALSE(testing::detects(onnx_format(), bytes_of(vfield(1, 8) + lfield(9, "x"))));
  EXPECT_FALSE(testing::detects(onnx_format(), bytes_of("hello, world\n")));
  EXPECT_FALSE(testing::detects(onnx_format(), bytes_of(std::string("\x08\x01\x12\x40", 4))));
  // A cut graph is a damaged model; a cut producer_name is not taken as one.
  EXPECT_TRUE(testing::detects(onnx_format(), bytes_of(std::string("\x08\x07\x3a\x40\x0a", 5))));
}

class OnnxFixtures : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::fixtures_dir() + "/onnx";
    if (testing::fixtures_dir().empty() || !std::filesystem::exists(dir_ + "/manifest.json"))
      GTEST_FAIL() << "run tests/fixtures/gen_onnx.py first (PAYLOADFS_FIXTURES)";
  }
  std::string dir_;
};

TEST_F(OnnxFixtures, ModelsParseCleanly) {
  for (const auto& entry : testing::read_fixture_json(dir_ + "/manifest.json")) {
    const std::string name = entry.get<std::string>();
    SCOPED_TRACE(name);
    const auto file = testing::read_file(dir_ + "/" + name);
    EXPECT_TRUE(testing::detects(onnx_format(), file));
    const Layout l = testing::parse_bytes(onnx_format(), file);
    EXPECT_TRUE(l.errors.empty()) << testing::errors_of(l);
    EXPECT_EQ(l.header["producer_name"], "payloadfs-gen_onnx");
    testing::expect_in_bounds(l, file.size());
  }
}

TEST_F(OnnxFixtures, MalformedCopiesGiveErrors) {
  const Json manifest = testing::read_fixture_json(dir_ + "/malformed/manifest.json");
  ASSERT_GE(manifest.size(), 5u);
  for (const auto& entry : manifest) {
    const std::string name = entry["file"];
    SCOPED_TRACE(name);
    const auto file = testing::read_file(dir_ + "/malformed/" + name);
    EXPECT_TRUE(testing::detects(onnx_format(), file));
    const Layout l = testing::parse_bytes(onnx_format(), file);
    EXPECT_FALSE(l.errors.empty());
    testing::expect_in_bounds(l, file.size());
  }
}

TEST_F(OnnxFixtures, MutatedModelsStayInBounds) {
  std::vector<std::vector<std::byte>> seeds;
  for (const auto& entry : testing::read_fixture_json(dir_ + "/manifest.json"))
    seeds.push_back(testing::read_file(dir_ + "/" + entry.get<std::string>()));
  ASSERT_FALSE(seeds.empty());
  testing::mutate_and_parse(onnx_format(), seeds, 20261207, 3000);
}

}  // namespace
}  // namespace payloadfs

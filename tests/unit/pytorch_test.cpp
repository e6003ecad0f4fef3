// pytorch: archives written by torch.save compared with torch.load, zipfile and pickletools
// (tests/fixtures/gen_pytorch.py); hand-built archives with a hand-written pickle for byte
// order, detection and the malformed cases (data.pkl missing, storages too short, pickle
// errors, truncation).

#include <gtest/gtest.h>

#include <filesystem>

#include "core/formats/builtin.hpp"
#include "core/model/registry.hpp"
#include "unit/test_support.hpp"
#include "unit/zip_builder.hpp"

namespace payloadfs {
namespace {

using testing::build_zip;
using testing::has_error;
using testing::parse_bytes;
using testing::stored_member;

const std::unique_ptr<Format> kPytorch = formats::make_pytorch();

std::string fixture_dir() {
  return testing::fixtures_dir() + "/pytorch";
}

std::string detected_name(const std::vector<std::byte>& bytes) {
  const size_t n = std::min<size_t>(bytes.size(), kDetectHeadBytes);
  return std::string(
      Registry::with_builtins().detect(std::span(bytes.data(), n), bytes.size()).name());
}

std::string hex_of(const std::vector<std::byte>& bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  for (const auto b : bytes) {
    out.push_back(kDigits[static_cast<uint8_t>(b) >> 4]);
    out.push_back(kDigits[static_cast<uint8_t>(b) & 0xF]);
  }
  return out;
}

const Slice* slice_named(const Layout& layout, const std::string& name) {
  for (const auto& s : layout.slices)
    if (s.name == name) return &s;
  return nullptr;
}

// Where the central directory entry of `name` starts in `bytes`.
size_t central_entry(const std::vector<std::byte>& bytes, const std::string& name) {
  const std::string text(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  const size_t at =
      text.find(std::string("PK\x01\x02", 4), text.rfind(std::string("PK\x03\x04", 4)));
  for (size_t i = at; i != std::string::npos; i = text.find(std::string("PK\x01\x02", 4), i + 4))
    if (text.compare(i + 46, name.size(), name) == 0) return i;
  ADD_FAILURE() << "no central entry " << name;
  return 0;
}

void put_le32(std::vector<std::byte>& bytes, size_t at, uint32_t v) {
  for (int i = 0; i < 4; ++i) bytes[at + i] = static_cast<std::byte>((v >> (8 * i)) & 0xFF);
}

// A protocol 2 pickle, as torch.save writes it, of {'w': <2x2 tensor of `storage_type`,
// storage '0', numel `numel`, offset `offset`>}.
std::string tensor_pickle(const std::string& storage_type = "FloatStorage", int numel = 4,
                          int offset = 0) {
  const auto unicode = [](const std::string& s) {
    std::string out = "X";
    for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((s.size() >> (8 * i)) & 0xFF));
    return out + s;
  };
  std::string p = "\x80\x02}(";
  p += unicode("w");
  p += "ctorch._utils\n_rebuild_tensor_v2\n((";
  p += unicode("storage") + "ctorch\n" + storage_type + "\n" + unicode("0") + unicode("cpu");
  p += "K" + std::string(1, static_cast<char>(numel)) + "tQ";
  p += "K" + std::string(1, static_cast<char>(offset));
  p += "K\x02K\x02\x86K\x02K\x01\x86\x89";
  p += "ccollections\nOrderedDict\n)RtRu.";
  return p;
}

const std::string kFloats("\x00\x00\x80\x3f\x00\x00\x00\x40\x00\x00\x40\x40\x00\x00\x80\x40", 16);

TEST(PytorchReal, MatchesTorchLoadZipfileAndPickletools) {
  if (!std::filesystem::exists(fixture_dir() + "/expected.json"))
    GTEST_FAIL() << "run tests/fixtures/gen_pytorch.py " << fixture_dir();
  const Json expected = testing::read_fixture_json(fixture_dir() + "/expected.json");
  ASSERT_GE(expected["files"].size(), 8u);
  for (const auto& [file, want] : expected["files"].items()) {
    SCOPED_TRACE(file);
    const auto bytes = testing::read_file(fixture_dir() + "/" + file);
    EXPECT_EQ(detected_name(bytes), "pytorch");
    const Layout layout = parse_bytes(*kPytorch, bytes);
    EXPECT_TRUE(layout.errors.empty()) << testing::errors_of(layout);
    const Json& h = layout.header;
    EXPECT_EQ(h["prefix"], want["prefix"]);
    EXPECT_EQ(h["version"], want["version"]);
    EXPECT_EQ(h["byteorder"], want["byteorder"]);
    EXPECT_EQ(h["globals"], want["globals"]);
    EXPECT_EQ(h["values"], want["values"]);
    ASSERT_EQ(h["tensor_count"], want["tensors"].size());
    for (const auto& [key, t] : want["tensors"].items()) {
      SCOPED_TRACE(key);
      const Json& got = h["tensors"][key];
      for (const char* field :
           {"dtype", "torch_dtype", "shape", "stride", "storage_offset", "contiguous"})
        EXPECT_EQ(got[field], t[field]) << field;
      const Slice* s = slice_named(layout, key);
      ASSERT_EQ(s != nullptr, t["contiguous"] == true);
      if (s == nullptr) continue;
      EXPECT_EQ(hex_of(testing::slice_bytes(bytes, *s)), t["data_hex"].get<std::string>());
      // torch aligns each storage member's data to 64 bytes with a local-header-only extra.
      const uint64_t itemsize = std::stoul(t["dtype"].get<std::string>().substr(2));
      const uint64_t member_start =
          s->range.offset - t["storage_offset"].get<uint64_t>() * itemsize;
      EXPECT_EQ(member_start % 64, 0u);
    }
  }
}

TEST(PytorchReal, TruncatedAnywhereGivesErrorsInsideTheFile) {
  const auto bytes = testing::read_file(fixture_dir() + "/state_dict.pt");
  ASSERT_FALSE(bytes.empty());
  for (size_t cut = 0; cut < bytes.size(); cut += 5) {
    const std::vector<std::byte> part(bytes.begin(), bytes.begin() + static_cast<long>(cut));
    const Layout layout = parse_bytes(*kPytorch, part);
    EXPECT_FALSE(layout.errors.empty()) << cut;
    testing::expect_in_bounds(layout, part.size());
  }
}

TEST(PytorchReal, Mutations) {
  std::vector<std::vector<std::byte>> seeds;
  for (const char* f : {"state_dict.pt", "views.pt", "halves.pt", "checkpoint.pt"})
    seeds.push_back(testing::read_file(fixture_dir() + "/" + f));
  testing::mutate_and_parse(*kPytorch, seeds, 17, 4000);
}

TEST(PytorchReal, DataPklMissing) {
  auto bytes = testing::read_file(fixture_dir() + "/views.pt");
  const size_t at = central_entry(bytes, "views/data.pkl");
  bytes[at + 46 + 13] = std::byte{'X'};  // the central directory now names views/data.pkX
  const Layout l = parse_bytes(*kPytorch, bytes);
  EXPECT_TRUE(has_error(l, "no member 'views/data.pkl'")) << testing::errors_of(l);
  EXPECT_TRUE(l.slices.empty());
}

TEST(PytorchReal, StorageTooShortForItsTensors) {
  auto bytes = testing::read_file(fixture_dir() + "/views.pt");
  const size_t at = central_entry(bytes, "views/data/0");
  put_le32(bytes, at + 20, 40);  // 10 of the storage's 20 floats
  put_le32(bytes, at + 24, 40);
  const Layout l = parse_bytes(*kPytorch, bytes);
  EXPECT_TRUE(has_error(l,
                        "tensor 'base': needs 80 bytes at element 0 of storage '0', which "
                        "holds 40 bytes"))
      << testing::errors_of(l);
  EXPECT_TRUE(has_error(l, "tensor 'tail': needs 32 bytes at element 12"));
  ASSERT_NE(slice_named(l, "row"), nullptr);  // elements 5..9 are still there
  EXPECT_EQ(slice_named(l, "base"), nullptr);
}

TEST(PytorchReal, PickleErrorsSurface) {
  auto bytes = testing::read_file(fixture_dir() + "/views.pt");
  const size_t at = central_entry(bytes, "views/data.pkl");
  // Cut data.pkl to 30 bytes: the machine stops without STOP.
  auto cut = bytes;
  put_le32(cut, at + 20, 30);
  const Layout l = parse_bytes(*kPytorch, cut);
  ASSERT_FALSE(l.errors.empty());
  EXPECT_TRUE(l.errors.front().starts_with("data.pkl: ")) << testing::errors_of(l);
  EXPECT_TRUE(l.slices.empty());
  EXPECT_TRUE(l.header["globals"].is_array());
}

TEST(PytorchBuilt, HandWrittenPickleAndByteOrder) {
  const std::string pad(40, '\0');
  for (const char* order : {"little", "big"}) {
    const auto bytes = build_zip(
        {stored_member("m/data.pkl", tensor_pickle()), stored_member("m/byteorder", order),
         stored_member("m/data/0", kFloats, "FB" + pad), stored_member("m/version", "3\n")});
    EXPECT_EQ(detected_name(bytes), "pytorch");
    const Layout l = parse_bytes(*kPytorch, bytes);
    EXPECT_TRUE(l.errors.empty()) << testing::errors_of(l);
    EXPECT_EQ(l.header["byteorder"], order);
    EXPECT_EQ(l.header["version"], "3");
    EXPECT_EQ(l.header["prefix"], "m");
    ASSERT_EQ(l.slices.size(), 1u);
    EXPECT_EQ(l.slices[0].name, "w");
    EXPECT_EQ(l.slices[0].attributes["dtype"], std::string(order) == "big" ? ">f4" : "<f4");
    EXPECT_EQ(testing::slice_bytes(bytes, l.slices[0]), testing::to_bytes(kFloats));
    EXPECT_EQ(l.header["globals"], Json::array({"torch._utils._rebuild_tensor_v2",
                                                "torch.FloatStorage", "collections.OrderedDict"}));
  }
}

TEST(PytorchBuilt, MalformedTensors) {
  {  // an unknown storage type
    const auto bytes = build_zip({stored_member("m/data.pkl", tensor_pickle("EvilStorage")),
                                  stored_member("m/data/0", kFloats)});
    const Layout l = parse_bytes(*kPytorch, bytes);
    EXPECT_TRUE(has_error(l, "tensor 'w': unknown storage type torch.EvilStorage"));
    EXPECT_TRUE(l.slices.empty());
  }
  {  // an offset past the storage; the storage member missing
    const Layout past = parse_bytes(
        *kPytorch, build_zip({stored_member("m/data.pkl", tensor_pickle("FloatStorage", 4, 2)),
                              stored_member("m/data/0", kFloats)}));
    EXPECT_TRUE(has_error(past, "tensor 'w': needs 16 bytes at element 2 of storage '0'"));
    const Layout missing =
        parse_bytes(*kPytorch, build_zip({stored_member("m/data.pkl", tensor_pickle())}));
    EXPECT_TRUE(has_error(missing, "tensor 'w': no storage member 'm/data/0'"));
  }
  {  // an opcode the machine does not know
    std::string p = tensor_pickle();
    p[2] = '\xfe';
    const Layout l = parse_bytes(
        *kPytorch, build_zip({stored_member("m/data.pkl", p), stored_member("m/data/0", kFloats)}));
    EXPECT_TRUE(has_error(l, "data.pkl: ")) << testing::errors_of(l);
    EXPECT_TRUE(l.slices.empty());
  }
  {  // a deflated data.pkl; no members at all
    const Layout l = parse_bytes(
        *kPytorch, build_zip({testing::deflated_member("m/data.pkl", tensor_pickle())}));
    EXPECT_TRUE(has_error(l, "member 'm/data.pkl' is deflated, not stored"));
    EXPECT_TRUE(has_error(parse_bytes(*kPytorch, build_zip({})), "the archive has no members"));
  }
}

TEST(PytorchDetect, NeedsDataPklUnderThePrefix) {
  EXPECT_EQ(detected_name(build_zip({stored_member("data.pkl", tensor_pickle())})), "zip");
  EXPECT_EQ(detected_name(build_zip(
                {stored_member("a/x", "1"), stored_member("b/data.pkl", tensor_pickle())})),
            "zip");
  EXPECT_EQ(detected_name(build_zip({stored_member("a/data.pkl", "not a pickle")})), "zip");
  EXPECT_EQ(detected_name(build_zip(
                {stored_member("a/version", "3"), stored_member("a/data.pkl", tensor_pickle())})),
            "pytorch");
}

}  // namespace
}  // namespace payloadfs

// npz: archives written by numpy.savez / savez_compressed compared with numpy.load and zipfile
// (tests/fixtures/gen_npz.py); hand-built archives for detection and the malformed cases.

#include <gtest/gtest.h>

#include <filesystem>

#include "core/formats/builtin.hpp"
#include "core/model/registry.hpp"
#include "unit/test_support.hpp"
#include "unit/zip_builder.hpp"

namespace payloadfs {
namespace {

using testing::build_zip;
using testing::deflated_member;
using testing::has_error;
using testing::parse_bytes;
using testing::stored_member;

const std::unique_ptr<Format> kNpz = formats::make_npz();

std::string fixture_dir() {
  return testing::fixtures_dir() + "/npz";
}

bool detects(const std::vector<std::byte>& bytes) {
  return testing::detects(*kNpz, bytes);
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

// A version 1.0 .npy file: magic, header dict padded to 64 bytes, then `data`.
std::string npy(const std::string& dict, const std::string& data) {
  std::string header = dict + std::string((64 - (10 + dict.size() + 1) % 64) % 64, ' ') + "\n";
  std::string out = "\x93NUMPY\x01";
  out.push_back('\0');
  out.push_back(static_cast<char>(header.size() & 0xFF));
  out.push_back(static_cast<char>(header.size() >> 8));
  return out + header + data;
}

const std::string kF4Dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }";

TEST(NpzReal, MatchesNumpyLoadAndZipfile) {
  if (!std::filesystem::exists(fixture_dir() + "/expected.json"))
    GTEST_FAIL() << "run tests/fixtures/gen_npz.py " << fixture_dir();
  const Json expected = testing::read_fixture_json(fixture_dir() + "/expected.json");
  ASSERT_GE(expected["files"].size(), 3u);
  for (const auto& [file, want] : expected["files"].items()) {
    SCOPED_TRACE(file);
    const auto bytes = testing::read_file(fixture_dir() + "/" + file);
    EXPECT_EQ(detected_name(bytes), "npz");
    const Layout layout = parse_bytes(*kNpz, bytes);
    EXPECT_TRUE(layout.errors.empty()) << testing::errors_of(layout);
    const Json& arrays = layout.header["arrays"];
    ASSERT_EQ(arrays.size(), want["arrays"].size());
    size_t stored = 0;
    for (const auto& [name, w] : want["arrays"].items()) {
      SCOPED_TRACE(name);
      ASSERT_TRUE(arrays.contains(name));
      const Json& got = arrays[name];
      EXPECT_EQ(got["member"], w["member"]);
      EXPECT_EQ(got["compressed"], w["compressed"]);
      EXPECT_EQ(got["dtype"], w["descr"]);
      EXPECT_EQ(got["shape"], w["shape"]);
      EXPECT_EQ(got["fortran_order"], w["fortran_order"]);
      EXPECT_EQ(got["version"], w["version"]);
      if (w["compressed"] == true) continue;
      const auto it = std::find_if(layout.slices.begin(), layout.slices.end(),
                                   [&wanted = name](const Slice& s) { return s.name == wanted; });
      ASSERT_NE(it, layout.slices.end());
      EXPECT_EQ(hex_of(testing::slice_bytes(bytes, *it)), w["data_hex"].get<std::string>());
      EXPECT_EQ(it->attributes["member"], w["member"]);
      ++stored;
    }
    EXPECT_EQ(layout.slices.size(), stored);
  }
}

TEST(NpzReal, TruncatedAnywhereGivesErrorsInsideTheFile) {
  const auto bytes = testing::read_file(fixture_dir() + "/stored.npz");
  ASSERT_FALSE(bytes.empty());
  for (size_t cut = 0; cut < bytes.size(); cut += 7) {
    const std::vector<std::byte> part(bytes.begin(), bytes.begin() + static_cast<long>(cut));
    const Layout layout = parse_bytes(*kNpz, part);
    EXPECT_FALSE(layout.errors.empty()) << cut;
    testing::expect_in_bounds(layout, part.size());
  }
}

TEST(NpzReal, Mutations) {
  std::vector<std::vector<std::byte>> seeds;
  for (const char* f : {"stored.npz", "compressed.npz", "positional.npz"})
    seeds.push_back(testing::read_file(fixture_dir() + "/" + f));
  testing::mutate_and_parse(*kNpz, seeds, 16, 3000);
}

TEST(NpzBuilt, StoredAndDeflatedMembers) {
  const std::string data("\x00\x00\x80\x3f\x00\x00\x00\x40", 8);
  const auto bytes = build_zip(
      {stored_member("a.b.npy", npy(kF4Dict, data)), deflated_member("z.npy", npy(kF4Dict, data))});
  EXPECT_TRUE(detects(bytes));
  const Layout layout = parse_bytes(*kNpz, bytes);
  EXPECT_TRUE(layout.errors.empty()) << testing::errors_of(layout);
  ASSERT_EQ(layout.slices.size(), 1u);
  EXPECT_EQ(layout.slices[0].name, "a.b");
  EXPECT_EQ(testing::slice_bytes(bytes, layout.slices[0]), testing::to_bytes(data));
  EXPECT_EQ(layout.slices[0].attributes["dtype"], "<f4");
  const Json& z = layout.header["arrays"]["z"];
  EXPECT_EQ(z["compressed"], true);
  EXPECT_EQ(z["method"], "deflated");
  EXPECT_EQ(z["shape"], Json::array({2}));
}

TEST(NpzDetect, NeedsNpyMembersWithTheMagic) {
  const std::string data(8, '\0');
  EXPECT_FALSE(detects(build_zip({stored_member("a.txt", npy(kF4Dict, data))})));
  EXPECT_FALSE(detects(build_zip({stored_member("a.npy", "not an array")})));
  EXPECT_FALSE(detects(
      build_zip({stored_member("a.npy", npy(kF4Dict, data)), stored_member("b.txt", "text")})));
  EXPECT_FALSE(detects(build_zip({stored_member(".npy", npy(kF4Dict, data))})));
  EXPECT_FALSE(detects(build_zip({})));
  // A plain zip stays a zip.
  EXPECT_EQ(detected_name(build_zip({stored_member("a.txt", "x")})), "zip");
}

TEST(NpzDetect, WalksLocalHeadersThroughTheirZip64Sizes) {
  // numpy writes each member with force_zip64: sizes may be only in the local zip64 field.
  const std::string data(8, '\0');
  auto first = stored_member("a.npy", npy(kF4Dict, data));
  first.local_zip64 = true;
  EXPECT_TRUE(detects(build_zip({first, stored_member("b.npy", npy(kF4Dict, data))})));
  EXPECT_FALSE(detects(build_zip({first, stored_member("b.txt", "text")})));
  const auto bytes = build_zip({first});
  const Layout l = parse_bytes(*kNpz, bytes);
  EXPECT_TRUE(l.errors.empty()) << testing::errors_of(l);
  ASSERT_EQ(l.slices.size(), 1u);
  EXPECT_EQ(testing::slice_bytes(bytes, l.slices[0]), testing::to_bytes(data));
}

TEST(NpzBuilt, NamesThatAreNotUtf8StayValidJson) {
  // Flag bit 11 says UTF-8, the bytes are not (found by fuzz_npz): the header escapes them.
  auto bytes = build_zip({stored_member("w\x92.npy", npy(kF4Dict, std::string(8, '\0')))});
  const std::string text(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  const size_t central = text.find(std::string("PK\x01\x02", 4));
  ASSERT_NE(central, std::string::npos);
  bytes[central + 9] = std::byte{0x08};  // general purpose flags: 0x0800
  const Layout l = parse_bytes(*kNpz, bytes);
  EXPECT_TRUE(l.errors.empty()) << testing::errors_of(l);
  EXPECT_NO_THROW((void)l.header.dump(-1, ' ', false, Json::error_handler_t::strict));
  ASSERT_EQ(l.slices.size(), 1u);
  EXPECT_NO_THROW((void)l.slices[0].attributes.dump(-1, ' ', false, Json::error_handler_t::strict));
}

TEST(NpzBuilt, MalformedMembersAreErrors) {
  const std::string data(8, '\x01');
  {  // a member that is not .npy
    const Layout l = parse_bytes(*kNpz, build_zip({stored_member("a.npy", npy(kF4Dict, data)),
                                                   stored_member("notes.txt", "x")}));
    EXPECT_TRUE(has_error(l, "'notes.txt' is not a .npy array"));
    EXPECT_EQ(l.slices.size(), 1u);
  }
  {  // array data past the member's end
    const Layout l = parse_bytes(*kNpz, build_zip({stored_member("a.npy", npy(kF4Dict, "1234")),
                                                   stored_member("b.npy", npy(kF4Dict, data))}));
    EXPECT_TRUE(has_error(l, "member 'a.npy': array data needs 8 bytes")) << testing::errors_of(l);
    ASSERT_EQ(l.slices.size(), 1u);
    EXPECT_EQ(l.slices[0].name, "b");
  }
  {  // no magic, a bad header, an object array
    const Layout l = parse_bytes(
        *kNpz, build_zip({stored_member("a.npy", "PLAIN TEXT"),
                          stored_member("b.npy", npy("{'descr': '<f4'}", data)),
                          stored_member("c.npy", npy("{'descr': '|O', 'fortran_order': False, "
                                                     "'shape': (1,), }",
                                                     data))}));
    EXPECT_TRUE(has_error(l, "member 'a.npy': does not start with the npy magic"));
    EXPECT_TRUE(has_error(l, "member 'b.npy': header lacks the key 'shape'"));
    EXPECT_TRUE(has_error(l, "member 'c.npy': object arrays"));
    EXPECT_TRUE(l.slices.empty());
  }
  {  // a corrupt deflate stream, and a repeated name
    auto bad = deflated_member("z.npy", npy(kF4Dict, data));
    bad.data = "\xff\xff\xff\xff";
    const Layout l = parse_bytes(*kNpz, build_zip({bad, stored_member("y.npy", npy(kF4Dict, data)),
                                                   stored_member("y.npy", npy(kF4Dict, data))}));
    EXPECT_TRUE(has_error(l, "member 'z.npy': deflate stream is corrupt")) << testing::errors_of(l);
    EXPECT_TRUE(has_error(l, "member 'y.npy' repeats an earlier name"));
    EXPECT_EQ(l.slices.size(), 1u);
  }
}

}  // namespace
}  // namespace payloadfs

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "core/formats/builtin.hpp"
#include "unit/test_support.hpp"

namespace payloadfs {
namespace {

using testing::Bytes;

// A .npy file with the given header dict text, padded the way numpy pads it.
Bytes npy(std::string dict, uint8_t major = 1, size_t data_bytes = 0) {
  const size_t preamble = major == 1 ? 10 : 12;
  dict += std::string((64 - (preamble + dict.size() + 1) % 64) % 64, ' ') + "\n";
  Bytes b;
  b.raw("\x93NUMPY").u8(major).u8(0);
  if (major == 1)
    b.le(dict.size(), 2);
  else
    b.le(dict.size(), 4);
  b.raw(dict);
  for (size_t i = 0; i < data_bytes; ++i) b.u8(static_cast<uint8_t>(i));
  return b;
}

class NpyTest : public ::testing::Test {
 protected:
  std::unique_ptr<Format> format = formats::make_npy();
};

TEST_F(NpyTest, Detects) {
  const auto good = npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", 1, 8);
  EXPECT_TRUE(format->detect(good.data(), good.size()));
  Bytes other;
  other.raw("\x93NUMPX");
  EXPECT_FALSE(format->detect(other.data(), other.size()));
}

TEST_F(NpyTest, SimpleArray) {
  const auto file = npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", 1, 24);
  const Layout l = testing::parse_bytes(*format, file.data());
  ASSERT_TRUE(l.errors.empty()) << l.errors.front();
  EXPECT_EQ(l.header["version"], "1.0");
  EXPECT_EQ(l.header["descr"], "<f4");
  EXPECT_EQ(l.header["shape"], Json::array({2, 3}));
  ASSERT_EQ(l.slices.size(), 1u);
  EXPECT_EQ(l.slices[0].name, "data");
  EXPECT_EQ(l.slices[0].range, (ByteRange{file.size() - 24, 24}));
  EXPECT_EQ(l.slices[0].range.offset % 64, 0u);  // numpy aligns the data
  EXPECT_EQ(l.magic, (ByteRange{0, 6}));
}

TEST_F(NpyTest, ItemSizes) {
  const std::pair<const char*, uint64_t> cases[] = {
      {"'|u1'", 1},
      {"'<c16'", 16},
      {"'|S7'", 7},
      {"'<U3'", 12},
      {"'<M8[ns]'", 8},
      {"'|b1'", 1},
      {"'|V16'", 16},
      {"[('a', '<f4'), ('b', '<i8', (2, 3))]", 52},
      {"[('p', [('x', '<f4'), ('y', '<f4')]), ('', '|V8')]", 16},
      {"[(('title', 'n'), '<i2')]", 2}};
  for (const auto& [descr, itemsize] : cases) {
    const auto file =
        npy(std::string("{'descr': ") + descr + ", 'fortran_order': False, 'shape': (3,), }", 1,
            3 * itemsize);
    const Layout l = testing::parse_bytes(*format, file.data());
    ASSERT_TRUE(l.errors.empty()) << descr << ": " << l.errors.front();
    EXPECT_EQ(l.slices.at(0).range.length, 3 * itemsize) << descr;
  }
}

TEST_F(NpyTest, Version2And3) {
  for (const uint8_t major : {uint8_t{2}, uint8_t{3}}) {
    const auto file = npy("{'descr': '<i2', 'fortran_order': True, 'shape': (4,), }", major, 8);
    const Layout l = testing::parse_bytes(*format, file.data());
    ASSERT_TRUE(l.errors.empty()) << l.errors.front();
    EXPECT_EQ(l.header["version"], std::to_string(major) + ".0");
    EXPECT_EQ(l.slices.at(0).range.offset, file.size() - 8);
  }
}

TEST_F(NpyTest, Version1HeadersAreLatin1) {
  const auto file =
      npy("{'descr': [('\xe9', '<i2')], 'fortran_order': False, 'shape': (1,), }", 1, 2);
  const Layout l = testing::parse_bytes(*format, file.data());
  ASSERT_TRUE(l.errors.empty()) << l.errors.front();
  EXPECT_EQ(l.header["descr"][0][0], "\xc3\xa9");
}

TEST_F(NpyTest, MalformedFilesReportErrors) {
  const std::string ok = "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }";
  const std::pair<Bytes, std::string> cases[] = {
      {npy(ok, 1, 7), "array data needs 8 bytes"},
      {npy("{'descr': '|O', 'fortran_order': False, 'shape': (2,), }", 1, 16), "pickled"},
      {npy("{'descr': '<f4', 'shape': (2,), }", 1, 8), "lacks the key 'fortran_order'"},
      {npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'x': 1}", 1, 8),
       "unexpected key"},
      {npy("{'descr': '<f4', 'fortran_order': False, 'shape': (-2,), }", 1, 8), "non-negative"},
      {npy("{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296), }", 1, 8),
       "overflows"},
      {npy("not a dict", 1, 8), "not a Python literal"},
      {npy(ok, 4, 8), "unsupported .npy format version"},
  };
  for (const auto& [file, expected] : cases) {
    const Layout l = testing::parse_bytes(*format, file.data());
    ASSERT_FALSE(l.errors.empty()) << expected;
    EXPECT_NE(l.errors.front().find(expected), std::string::npos) << l.errors.front();
    EXPECT_TRUE(l.slices.empty());
  }
}

TEST_F(NpyTest, TruncatedAtEveryByteNeverYieldsAnOutOfRangeSlice) {
  const auto full = npy("{'descr': '<f8', 'fortran_order': False, 'shape': (3,), }", 1, 24);
  for (size_t n = 0; n < full.size(); ++n) {
    std::vector<std::byte> cut(full.data().begin(), full.data().begin() + static_cast<long>(n));
    const Layout l = testing::parse_bytes(*format, cut);
    EXPECT_FALSE(l.errors.empty()) << n;
    EXPECT_TRUE(l.slices.empty()) << n;
  }
}

TEST_F(NpyTest, HeaderLengthPastEnd) {
  Bytes b;
  b.raw("\x93NUMPY").u8(2).u8(0).le(0xFFFFFFFF, 4).raw("{}");
  const Layout l = testing::parse_bytes(*format, b.data());
  ASSERT_FALSE(l.errors.empty());
  EXPECT_NE(l.errors.front().find("exceeds the limit"), std::string::npos) << l.errors.front();
}

// Files written by numpy itself, compared with numpy's own reading of them.
TEST_F(NpyTest, RealFilesMatchNumpy) {
  const std::string dir = testing::fixtures_dir() + "/numpy";
  const Json expected = testing::read_fixture_json(dir + "/expected.json");
  ASSERT_FALSE(expected.is_null())
      << "fixtures missing: run tests/fixtures/generate.py (ctest does)";
  ASSERT_GE(expected.size(), 15u);
  for (const auto& [name, want] : expected.items()) {
    SCOPED_TRACE(name);
    const auto bytes = testing::read_file(dir + "/" + name + ".npy");
    const Layout l = testing::parse_bytes(*format, bytes);
    ASSERT_TRUE(l.errors.empty()) << l.errors.front();
    EXPECT_EQ(l.header["version"], want["version"]);
    EXPECT_EQ(l.header["descr"], want["descr"]);
    EXPECT_EQ(l.header["shape"], want["shape"]);
    EXPECT_EQ(l.header["fortran_order"], want["fortran_order"]);
    ASSERT_EQ(l.slices.size(), 1u);
    EXPECT_EQ(l.slices[0].range.offset, want["data_offset"].get<uint64_t>());
    EXPECT_EQ(l.slices[0].range.length, want["length"].get<uint64_t>());
    EXPECT_EQ(testing::slice_bytes(bytes, l.slices[0]),
              testing::read_file(dir + "/" + name + ".data"));
  }
}

}  // namespace
}  // namespace payloadfs

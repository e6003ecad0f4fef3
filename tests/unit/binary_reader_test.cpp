#include "core/io/binary_reader.hpp"

#include <gtest/gtest.h>

#include <limits>

#include "core/io/checked_math.hpp"
#include "unit/test_support.hpp"

namespace payloadfs {
namespace {

using testing::Bytes;

TEST(CheckedMath, DetectsOverflow) {
  EXPECT_EQ(checked_add(1, 2), 3u);
  EXPECT_FALSE(checked_add(std::numeric_limits<uint64_t>::max(), 1));
  EXPECT_FALSE(checked_mul(1ULL << 32, 1ULL << 32));
  EXPECT_EQ(checked_mul(1ULL << 31, 2), 1ULL << 32);
  EXPECT_TRUE(range_within(0, 10, 10));
  EXPECT_TRUE(range_within(10, 0, 10));
  EXPECT_FALSE(range_within(11, 0, 10));
  EXPECT_FALSE(range_within(5, 6, 10));
  EXPECT_FALSE(range_within(1, std::numeric_limits<uint64_t>::max(), 10));
}

TEST(BinaryReader, ReadsBothEndians) {
  Bytes b;
  b.le(0x0102, 2).be(0x0304, 2).le(0x05060708, 4).be(0x090A0B0C0D0E0F10ULL, 8);
  MemorySource src(b.data());
  BinaryReader r(src);
  EXPECT_EQ(r.u16(), 0x0102);
  r.set_endian(Endian::big);
  EXPECT_EQ(r.u16(), 0x0304);
  r.set_endian(Endian::little);
  EXPECT_EQ(r.u32(), 0x05060708u);
  r.set_endian(Endian::big);
  EXPECT_EQ(r.u64(), 0x090A0B0C0D0E0F10ULL);
  EXPECT_TRUE(r.ok());
  EXPECT_EQ(r.remaining(), 0u);
}

TEST(BinaryReader, SignedAndFloat) {
  Bytes b;
  b.le(0xFF, 1).le(0xFFFE, 2).le(0x3F800000, 4);
  MemorySource src(b.data());
  BinaryReader r(src);
  EXPECT_EQ(r.i8(), -1);
  EXPECT_EQ(r.i16(), -2);
  EXPECT_FLOAT_EQ(r.f32(), 1.0f);
}

TEST(BinaryReader, FirstErrorSticks) {
  Bytes b;
  b.le(7, 2);
  MemorySource src(b.data());
  BinaryReader r(src);
  EXPECT_EQ(r.u32(), 0u);  // past the end
  EXPECT_FALSE(r.ok());
  const std::string first = *r.error();
  EXPECT_NE(first.find("past the end"), std::string::npos) << first;
  EXPECT_EQ(r.u8(), 0u);  // later reads do nothing
  r.fail("another");
  EXPECT_EQ(*r.error(), first);
  EXPECT_EQ(r.tell(), 0u);
}

TEST(BinaryReader, SeekAndSkipAreChecked) {
  Bytes b;
  b.zeros(16);
  MemorySource src(b.data());
  BinaryReader r(src);
  r.seek(16);
  EXPECT_TRUE(r.ok());
  r.skip(std::numeric_limits<uint64_t>::max());
  EXPECT_FALSE(r.ok());

  BinaryReader r2(src);
  r2.seek(17);
  EXPECT_FALSE(r2.ok());
}

TEST(BinaryReader, TextIsBounded) {
  Bytes b;
  b.raw("hello world");
  MemorySource src(b.data());
  BinaryReader r(src);
  EXPECT_EQ(r.text(5), "hello");
  EXPECT_EQ(r.text(100), "");
  EXPECT_FALSE(r.ok());

  BinaryReader r2(src);
  EXPECT_EQ(r2.text(4, 3), "");
  EXPECT_FALSE(r2.ok());
}

TEST(BinaryReader, WindowServesRandomAccessCorrectly) {
  Bytes b;
  for (uint32_t i = 0; i < 40000; ++i) b.le(i, 4);
  MemorySource src(b.data());
  BinaryReader r(src);
  for (uint32_t i : {39999u, 0u, 20000u, 4095u, 4096u, 12345u}) {
    r.seek(uint64_t{i} * 4);
    EXPECT_EQ(r.u32(), i);
  }
  std::vector<std::byte> big(100000);
  r.seek(4);
  EXPECT_TRUE(r.read_into(big));
  EXPECT_EQ(std::to_integer<int>(big[0]), 1);
  EXPECT_TRUE(r.ok());
}

}  // namespace
}  // namespace payloadfs

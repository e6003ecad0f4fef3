#include "core/io/binary_reader.hpp"

#include <gtest/gtest.h>

#include <array>
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

// A source whose bytes from `bad` on cannot be read (an I/O error within its size).
class FailingSource final : public ByteSource {
 public:
  FailingSource(std::span<const std::byte> bytes, uint64_t bad) : bytes_(bytes), bad_(bad) {}
  [[nodiscard]] uint64_t size() const noexcept override { return bytes_.size(); }
  [[nodiscard]] bool read_exact(uint64_t offset, std::span<std::byte> out) const noexcept override {
    if (offset + out.size() > bad_) return false;
    return bytes_.read_exact(offset, out);
  }

 private:
  MemorySource bytes_;
  uint64_t bad_;
};

TEST(Endian, LoadsBothByteOrders) {
  const std::array<std::byte, 8> p = {std::byte{0x01}, std::byte{0x02}, std::byte{0x03},
                                      std::byte{0x04}, std::byte{0x05}, std::byte{0x06},
                                      std::byte{0x07}, std::byte{0x88}};
  EXPECT_EQ(read_le<uint8_t>(p.data()), 0x01);
  EXPECT_EQ(read_le<uint16_t>(p.data()), 0x0201);
  EXPECT_EQ(read_be<uint16_t>(p.data()), 0x0102);
  EXPECT_EQ(read_le<uint32_t>(p.data()), 0x04030201u);
  EXPECT_EQ(read_be<uint32_t>(p.data() + 4), 0x05060788u);
  EXPECT_EQ(read_le<uint64_t>(p.data()), 0x8807060504030201ULL);
  EXPECT_EQ(read_be<uint64_t>(p.data()), 0x0102030405060788ULL);
  EXPECT_EQ(read_le<int16_t>(p.data() + 6), static_cast<int16_t>(0x8807));
  EXPECT_EQ(read_be<int8_t>(p.data() + 7), static_cast<int8_t>(0x88));
  EXPECT_EQ(read_endian<uint32_t>(p.data(), Endian::big), 0x01020304u);
  EXPECT_EQ(read_endian<uint32_t>(p.data(), Endian::little), 0x04030201u);
  const std::array<unsigned char, 2> u = {0xfe, 0xff};
  EXPECT_EQ(read_le<uint16_t>(u.data()), 0xfffe);
  EXPECT_EQ(read_be<uint16_t>(u.data()), 0xfeff);
  static constexpr std::array<std::byte, 2> kTwo = {std::byte{0x12}, std::byte{0x34}};
  static_assert(read_be<uint16_t>(kTwo.data()) == 0x1234);
}

TEST(BinaryReader, SubReadsInsideItsRangeAtFileOffsets) {
  Bytes b;
  b.le(0x11, 1).le(0x2222, 2).le(0x33333333, 4).le(0x44, 1);
  MemorySource src(b.data());
  BinaryReader r(src, Endian::little);
  BinaryReader s = r.sub(1, 6);
  EXPECT_EQ(s.tell(), 1u);
  EXPECT_EQ(s.end(), 7u);
  EXPECT_EQ(s.remaining(), 6u);
  EXPECT_EQ(s.endian(), Endian::little);
  EXPECT_EQ(s.u16(), 0x2222);
  EXPECT_EQ(s.u32(), 0x33333333u);
  EXPECT_EQ(s.remaining(), 0u);
  EXPECT_TRUE(s.ok());
  EXPECT_EQ(s.u8(), 0u);  // byte 7 lies outside the range
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.error()->find("its range [1, 7)"), std::string::npos) << *s.error();
  // The parent is not failed by its sub-reader's range, nor moved.
  EXPECT_TRUE(r.ok());
  EXPECT_EQ(r.tell(), 0u);
  EXPECT_EQ(r.u8(), 0x11);
}

TEST(BinaryReader, SubSeekSkipNeedAndTextStayInRange) {
  Bytes b;
  b.raw("abcdefghij");
  MemorySource src(b.data());
  BinaryReader r(src);
  BinaryReader s = r.sub(2, 5);  // "cdefg"
  EXPECT_TRUE(s.need(5));
  EXPECT_EQ(s.text(3), "cde");
  s.seek(7);  // the end itself is a valid position
  EXPECT_TRUE(s.ok());
  s.seek(2);
  s.skip(4);
  EXPECT_EQ(s.text(1), "g");
  EXPECT_FALSE(s.need(1));

  BinaryReader before = r.sub(2, 5);
  before.seek(1);
  EXPECT_FALSE(before.ok());
  BinaryReader past = r.sub(2, 5);
  past.seek(8);
  EXPECT_FALSE(past.ok());
  BinaryReader text = r.sub(2, 5);
  EXPECT_EQ(text.text(6), "");
  EXPECT_FALSE(text.ok());
  BinaryReader overflow = r.sub(2, 5);
  overflow.skip(std::numeric_limits<uint64_t>::max());
  EXPECT_FALSE(overflow.ok());
  EXPECT_TRUE(r.ok());
}

TEST(BinaryReader, SubRangesAreCheckedAgainstTheParent) {
  Bytes b;
  b.zeros(16);
  MemorySource src(b.data());
  BinaryReader r(src);
  EXPECT_TRUE(r.sub(0, 16).ok());
  EXPECT_TRUE(r.sub(16, 0).ok());
  EXPECT_FALSE(r.sub(8, 9).ok());
  EXPECT_FALSE(r.sub(17, 0).ok());
  EXPECT_FALSE(r.sub(1, std::numeric_limits<uint64_t>::max()).ok());  // offset + length overflows
  BinaryReader s = r.sub(4, 8);
  EXPECT_TRUE(s.sub(4, 8).ok());
  EXPECT_TRUE(s.sub(6, 2).ok());
  EXPECT_FALSE(s.sub(3, 2).ok());   // starts before the parent's range
  EXPECT_FALSE(s.sub(10, 3).ok());  // ends after it
  EXPECT_TRUE(r.ok());
  EXPECT_TRUE(s.ok());

  BinaryReader failed(src);
  failed.fail("earlier");
  const BinaryReader child = failed.sub(0, 4);
  EXPECT_FALSE(child.ok());
  EXPECT_EQ(*child.error(), "earlier");
}

TEST(BinaryReader, SubIoErrorsFailTheParentToo) {
  // Past the reader's read-ahead window (16 KiB), so that the good read does not touch it.
  Bytes b;
  b.zeros(40000);
  FailingSource src(b.data(), 32768);
  BinaryReader r(src);
  BinaryReader good = r.sub(0, 16);
  EXPECT_EQ(good.u64(), 0u);
  EXPECT_TRUE(good.ok());
  BinaryReader bad = r.sub(36000, 8);
  EXPECT_EQ(bad.u64(), 0u);
  EXPECT_FALSE(bad.ok());
  EXPECT_NE(bad.error()->find("I/O error"), std::string::npos) << *bad.error();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(*r.error(), *bad.error());
}

}  // namespace
}  // namespace payloadfs

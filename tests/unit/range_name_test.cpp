#include "core/vfs/range_name.hpp"

#include <gtest/gtest.h>

namespace payloadfs {
namespace {

TEST(RangeName, StartEndAndStartLength) {
  EXPECT_EQ(parse_range_name("0-10", 100), (ByteRange{0, 10}));
  EXPECT_EQ(parse_range_name("4096+512", 8192), (ByteRange{4096, 512}));
  EXPECT_EQ(parse_range_name("0x10-0x20", 100), (ByteRange{16, 16}));
  EXPECT_EQ(parse_range_name("0X10+0Xa", 100), (ByteRange{16, 10}));
  EXPECT_EQ(parse_range_name("5-5", 10), (ByteRange{5, 0}));
  EXPECT_EQ(parse_range_name("0-100", 100), (ByteRange{0, 100}));
}

TEST(RangeName, RejectsMalformed) {
  for (const char* bad :
       {"", "-", "+", "1", "a-b", "1-", "-1", "+1", "1--2", "1-2-3", "0x-1", "1 -2", " 1-2", "1-2 ",
        "0x1g-2", "1e3-2000", "18446744073709551616-1", "0x10000000000000000+1"}) {
    EXPECT_FALSE(parse_range_name(bad, 1000)) << bad;
  }
}

TEST(RangeName, RejectsOutOfBounds) {
  EXPECT_FALSE(parse_range_name("0-101", 100));
  EXPECT_FALSE(parse_range_name("101+0", 100));
  EXPECT_FALSE(parse_range_name("10-5", 100));
  EXPECT_FALSE(parse_range_name("1+18446744073709551615", 100));
  EXPECT_FALSE(parse_range_name("18446744073709551615+18446744073709551615", 100));
}

}  // namespace
}  // namespace payloadfs

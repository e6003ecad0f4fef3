#include "core/render/json_text.hpp"

#include <gtest/gtest.h>

#include "core/render/hex.hpp"

namespace payloadfs {
namespace {

TEST(JsonText, ValidUtf8IsUnchanged) {
  EXPECT_EQ(utf8_or_escaped("plain"), "plain");
  EXPECT_EQ(utf8_or_escaped("\xC3\xA9t\xC3\xA9 \xF0\x9F\x98\x80"),
            "\xC3\xA9t\xC3\xA9 \xF0\x9F\x98\x80");
}

TEST(JsonText, InvalidBytesBecomeBackslashX) {
  EXPECT_EQ(utf8_or_escaped("a\xFF"
                            "b"),
            "a\\xFFb");
  EXPECT_EQ(utf8_or_escaped("\xC3"), "\\xC3");                    // truncated sequence
  EXPECT_EQ(utf8_or_escaped("\xC0\x80"), "\\xC0\\x80");           // overlong
  EXPECT_EQ(utf8_or_escaped("\xED\xA0\x80"), "\\xED\\xA0\\x80");  // surrogate
}

TEST(Hex, LowerCaseTwoDigits) {
  const std::byte bytes[] = {std::byte{0x00}, std::byte{0x7f}, std::byte{0xAB}};
  EXPECT_EQ(to_hex(bytes), "007fab");
}

}  // namespace
}  // namespace payloadfs

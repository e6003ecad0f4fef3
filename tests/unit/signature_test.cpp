// Signature helpers: byte strings, matching at an offset, the magic range.

#include "core/formats/support/signature.hpp"

#include <gtest/gtest.h>

#include <array>
#include <vector>

namespace payloadfs::formats {
namespace {

std::vector<std::byte> bytes_of(std::string_view text) {
  std::vector<std::byte> out;
  for (const char c : text) out.push_back(static_cast<std::byte>(c));
  return out;
}

TEST(Signature, ByteStringDropsOnlyTheTerminator) {
  constexpr auto gguf = byte_string("GGUF");
  static_assert(gguf.size() == 4);
  EXPECT_EQ(gguf[0], std::byte{'G'});
  constexpr auto sqlite = byte_string("SQLite format 3\0");
  static_assert(sqlite.size() == 16);
  EXPECT_EQ(sqlite[15], std::byte{0});
  constexpr auto elf = byte_string(
      "\x7f"
      "ELF");
  static_assert(elf.size() == 4 && elf[0] == std::byte{0x7f} && elf[3] == std::byte{'F'});
}

TEST(Signature, MatchesOnlyWhenTheHeadHoldsIt) {
  constexpr auto kMagic = byte_string("PK\x03\x04");
  const auto head = bytes_of(std::string_view("PK\x03\x04rest", 8));
  EXPECT_TRUE(starts_with(head, kMagic));
  EXPECT_FALSE(starts_with(std::span(head).first(3), kMagic));  // too short to tell
  EXPECT_FALSE(starts_with(std::span(head).subspan(1), kMagic));
  EXPECT_TRUE(matches_at(head, 4, byte_string("rest")));
  EXPECT_FALSE(matches_at(head, 5, byte_string("rest")));
  EXPECT_FALSE(matches_at(head, 9, byte_string("")));
  EXPECT_TRUE(matches_at(head, 8, byte_string("")));
  EXPECT_FALSE(matches_at(head, UINT64_MAX, kMagic));
  EXPECT_EQ(magic_at_start(kMagic), (ByteRange{0, 4}));
}

}  // namespace
}  // namespace payloadfs::formats

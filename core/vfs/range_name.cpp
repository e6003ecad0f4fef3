#include "core/vfs/range_name.hpp"

#include "core/io/checked_math.hpp"

namespace payloadfs {
namespace {

std::optional<uint64_t> parse_number(std::string_view text) {
  unsigned base = 10;
  if (text.size() > 2 && text[0] == '0' && (text[1] == 'x' || text[1] == 'X')) {
    base = 16;
    text.remove_prefix(2);
  }
  if (text.empty() || text.size() > 20) return std::nullopt;
  uint64_t value = 0;
  for (const char c : text) {
    unsigned digit = 0;
    if (c >= '0' && c <= '9')
      digit = static_cast<unsigned>(c - '0');
    else if (base == 16 && c >= 'a' && c <= 'f')
      digit = static_cast<unsigned>(c - 'a' + 10);
    else if (base == 16 && c >= 'A' && c <= 'F')
      digit = static_cast<unsigned>(c - 'A' + 10);
    else
      return std::nullopt;
    const auto shifted = checked_mul(value, base);
    const auto next = shifted ? checked_add(*shifted, digit) : std::nullopt;
    if (!next) return std::nullopt;
    value = *next;
  }
  return value;
}

}  // namespace

std::optional<ByteRange> parse_range_name(std::string_view name, uint64_t file_size) {
  const size_t sep = name.find_first_of("-+");
  if (sep == std::string_view::npos) return std::nullopt;
  const auto start = parse_number(name.substr(0, sep));
  const auto second = parse_number(name.substr(sep + 1));
  if (!start || !second) return std::nullopt;
  ByteRange range{*start, 0};
  if (name[sep] == '-') {
    if (*second < *start) return std::nullopt;
    range.length = *second - *start;
  } else {
    range.length = *second;
  }
  if (!range_within(range.offset, range.length, file_size)) return std::nullopt;
  return range;
}

}  // namespace payloadfs

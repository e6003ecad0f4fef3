#include "core/formats/support/thrift_compact.hpp"

#include <algorithm>

namespace payloadfs::formats::thrift {

std::string CompactReader::error() const {
  if (!error_.empty()) return error_;
  return r_.error().value_or("");
}

void CompactReader::fail(std::string message) {
  if (error_.empty()) error_ = std::move(message);
}

bool CompactReader::enter(int depth) {
  if (depth <= kMaxDepth) return true;
  fail("thrift values nested deeper than " + std::to_string(kMaxDepth) + " at offset " +
       std::to_string(r_.tell()));
  return false;
}

uint64_t CompactReader::varint() {
  uint64_t value = 0;
  for (int i = 0; i < kMaxVarintBytes && ok(); ++i) {
    const uint8_t b = r_.u8();
    if (!r_.ok()) return 0;
    value |= uint64_t{b & 0x7Fu} << (7 * i);
    if ((b & 0x80) == 0) return value;
  }
  fail("thrift varint longer than " + std::to_string(kMaxVarintBytes) + " bytes at offset " +
       std::to_string(r_.tell()));
  return 0;
}

int64_t CompactReader::integer(Type type) {
  switch (type) {
    case Type::byte:
      return r_.i8();
    case Type::i16:
    case Type::i32:
    case Type::i64:
      return zigzag();
    default:
      fail("thrift field of type " + std::to_string(static_cast<int>(type)) +
           " where an integer was expected, at offset " + std::to_string(r_.tell()));
      return 0;
  }
}

std::string CompactReader::binary(uint64_t max_bytes, bool* cut) {
  const uint64_t length = varint();
  if (!ok()) return {};
  if (length > r_.remaining()) {
    fail("thrift binary of " + std::to_string(length) + " bytes runs past the end at offset " +
         std::to_string(r_.tell()));
    return {};
  }
  const uint64_t shown = std::min(length, max_bytes);
  std::string text = r_.text(shown);
  r_.skip(length - shown);
  if (cut != nullptr) *cut = shown < length;
  return text;
}

uint64_t CompactReader::list_header(Type& element_type) {
  const uint8_t head = r_.u8();
  element_type = static_cast<Type>(head & 0x0F);
  uint64_t count = head >> 4;
  if (count == 15) count = varint();
  if (!ok()) return 0;
  // Every element takes at least one byte: a count beyond the bytes left is a lie.
  if (count > r_.remaining()) {
    fail("thrift list of " + std::to_string(count) + " elements with " +
         std::to_string(r_.remaining()) + " bytes left, at offset " + std::to_string(r_.tell()));
    return 0;
  }
  return count;
}

uint64_t CompactReader::read_list(int depth, const ElementVisitor& on_element) {
  if (!enter(depth)) return 0;
  Type element_type = Type::stop;
  const uint64_t count = list_header(element_type);
  for (uint64_t i = 0; i < count && ok(); ++i) {
    if (element_type == Type::bool_true || element_type == Type::bool_false) {
      r_.skip(1);  // a bool inside a list is a whole byte
      continue;
    }
    if (!on_element(i, element_type, depth + 1)) skip(element_type, depth + 1);
  }
  return count;
}

void CompactReader::read_struct(int depth, const FieldVisitor& on_field) {
  if (!enter(depth)) return;
  int16_t last_id = 0;
  while (ok()) {
    const uint8_t head = r_.u8();
    if (!r_.ok()) return;
    const auto type = static_cast<Type>(head & 0x0F);
    if (type == Type::stop) return;
    const uint8_t delta = head >> 4;
    const int64_t id = delta != 0 ? last_id + delta : zigzag();
    if (!ok()) return;
    if (id < INT16_MIN || id > INT16_MAX) {
      fail("thrift field id " + std::to_string(id) + " out of range");
      return;
    }
    last_id = static_cast<int16_t>(id);
    if (type == Type::bool_true || type == Type::bool_false) {
      // The value is the type itself; a visitor that wants it reads `type`.
      on_field(last_id, type, depth + 1);
      continue;
    }
    if (!on_field(last_id, type, depth + 1)) skip(type, depth + 1);
  }
}

void CompactReader::skip(Type type, int depth) {
  if (!enter(depth)) return;
  switch (type) {
    case Type::bool_true:
    case Type::bool_false:
      return;
    case Type::byte:
      r_.skip(1);
      return;
    case Type::i16:
    case Type::i32:
    case Type::i64:
      varint();
      return;
    case Type::double_:
      r_.skip(8);
      return;
    case Type::binary:
      binary(0);
      return;
    case Type::list:
    case Type::set:
      read_list(depth, [](uint64_t, Type, int) { return false; });
      return;
    case Type::struct_:
      read_struct(depth, [](int16_t, Type, int) { return false; });
      return;
    case Type::map: {
      const uint64_t count = varint();
      if (count == 0 || !ok()) return;
      const uint8_t kinds = r_.u8();
      if (count > r_.remaining()) {
        fail("thrift map of " + std::to_string(count) + " entries runs past the end");
        return;
      }
      for (uint64_t i = 0; i < count && ok(); ++i) {
        skip(static_cast<Type>(kinds >> 4), depth + 1);
        skip(static_cast<Type>(kinds & 0x0F), depth + 1);
      }
      return;
    }
    default:
      fail("unknown thrift type " + std::to_string(static_cast<int>(type)) + " at offset " +
           std::to_string(r_.tell()));
  }
}

}  // namespace payloadfs::formats::thrift

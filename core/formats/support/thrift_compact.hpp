#pragma once
// A small, bounded reader of the Thrift compact protocol (thrift's doc/specs/thrift-compact-
// protocol.md), enough for Parquet's footer: field headers with id deltas, varint and zigzag
// integers, binary, list/set headers, nested structs, and skipping of unknown fields and maps.
// Every read is bounds-checked through BinaryReader; nesting depth is limited and a list's
// count can never exceed the bytes left (each element takes at least one byte).

#include <cstdint>
#include <functional>
#include <string>

#include "core/io/binary_reader.hpp"

namespace payloadfs::formats::thrift {

enum class Type : uint8_t {
  stop = 0,
  bool_true = 1,
  bool_false = 2,
  byte = 3,
  i16 = 4,
  i32 = 5,
  i64 = 6,
  double_ = 7,
  binary = 8,
  list = 9,
  set = 10,
  map = 11,
  struct_ = 12,
};

// Structs, lists and maps nested deeper than this are refused (Parquet needs about 6).
inline constexpr int kMaxDepth = 32;
// A varint of a 64-bit value takes at most 10 bytes.
inline constexpr int kMaxVarintBytes = 10;

class CompactReader {
 public:
  explicit CompactReader(BinaryReader& r) : r_(r) {}

  [[nodiscard]] bool ok() const { return error_.empty() && r_.ok(); }
  // The first failure: ours, or the byte reader's.
  [[nodiscard]] std::string error() const;
  void fail(std::string message);
  [[nodiscard]] uint64_t tell() const { return r_.tell(); }

  uint64_t varint();
  int64_t zigzag() {
    const uint64_t v = varint();
    return static_cast<int64_t>(v >> 1) ^ -static_cast<int64_t>(v & 1);
  }
  // An integer field of type byte, i16, i32 or i64; fails on any other type.
  int64_t integer(Type type);
  // A binary/string of at most max_bytes shown (the rest skipped, `cut` set).
  std::string binary(uint64_t max_bytes, bool* cut = nullptr);

  // Calls on_field(id, type, depth) for each field of the struct that starts here; a field
  // it does not read (it returns false) is skipped. Stops at the first failure.
  using FieldVisitor = std::function<bool(int16_t id, Type type, int depth)>;
  void read_struct(int depth, const FieldVisitor& on_field);
  // Reads a list or set header and calls on_element(index, element type, depth) per element;
  // an element it does not read is skipped. Returns the count the header gave.
  using ElementVisitor = std::function<bool(uint64_t index, Type type, int depth)>;
  uint64_t read_list(int depth, const ElementVisitor& on_element);
  // Skips one value of `type`.
  void skip(Type type, int depth);

 private:
  bool enter(int depth);
  uint64_t list_header(Type& element_type);

  BinaryReader& r_;
  std::string error_;
};

}  // namespace payloadfs::formats::thrift

#pragma once
// The compiled form of a descriptor: what the loader (loader.cpp) makes of the JSON once it has
// checked it, and what the interpreter (interpreter.cpp) reads files with. Names in expressions
// are resolved to slots: `size`, `i`, `@`, then one per field.

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/descriptor/descriptor.hpp"
#include "core/descriptor/expression.hpp"
#include "core/io/binary_reader.hpp"

namespace payloadfs::descriptor {

enum class FieldType {
  u8,
  u16,
  u32,
  u64,
  i8,
  i16,
  i32,
  i64,
  f32,
  f64,
  boolean,
  str,
  bytes,
  computed
};

struct TypeInfo {
  std::string_view name;
  FieldType type;
  unsigned width;  // bytes; 0 for str/bytes (their length is an expression)
};
inline constexpr TypeInfo kTypes[] = {
    {"u8", FieldType::u8, 1},       {"u16", FieldType::u16, 2},      {"u32", FieldType::u32, 4},
    {"u64", FieldType::u64, 8},     {"i8", FieldType::i8, 1},        {"i16", FieldType::i16, 2},
    {"i32", FieldType::i32, 4},     {"i64", FieldType::i64, 8},      {"f32", FieldType::f32, 4},
    {"f64", FieldType::f64, 8},     {"bool", FieldType::boolean, 1}, {"str", FieldType::str, 0},
    {"bytes", FieldType::bytes, 0},
};

inline bool is_integer_type(FieldType t) {
  return t <= FieldType::i64 || t == FieldType::computed;
}
inline bool is_signed_type(FieldType t) {
  return (t >= FieldType::i8 && t <= FieldType::i64) || t == FieldType::computed;
}

struct FieldSpec {
  std::string name;
  FieldType type = FieldType::u8;
  unsigned width = 0;
  std::optional<Expression> offset;            // read fields
  std::optional<Expression> length;            // str and bytes
  std::optional<Expression> value;             // computed fields
  uint8_t endian = 0;                          // 0: the descriptor's default, 1 little, 2 big
  std::map<uint64_t, std::string> enum_names;  // value bits -> name
  std::map<unsigned, std::string> flag_names;  // bit number -> name
  size_t slot = 0;
};

struct Validation {
  Expression expr;
  std::string message;
};

enum class SliceKind { single, table, walk };

struct SliceSpec {
  SliceKind kind = SliceKind::single;
  std::string name;  // may contain {i}
  std::optional<Expression> offset, length, count, start, until, data_offset, data_length;
  std::vector<FieldSpec> fields;
  // Tables and walks named "<dir>/{i}" whose <dir> no other slices entry uses: <dir>, and their
  // records become a compact RecordTable; empty otherwise (one Slice per record).
  std::string table_dir;
  bool fields_use_index = false;  // a record field's expression uses `i`
};

struct MagicSpec {
  uint64_t offset = 0;
  std::vector<std::byte> bytes;
  std::optional<Endian> endian;
};

struct Compiled {
  std::string name, description, signature, source_path;
  Endian endian = Endian::little;
  std::vector<MagicSpec> magics;
  std::vector<FieldSpec> fields;
  std::vector<Validation> validations;
  std::vector<SliceSpec> slices;
  size_t slot_count = 0;
  Limits limits;
};

namespace detail {

// The slots every descriptor has; header fields follow, then the fields of the slices entry
// being read (entries share those slots, so slot_count covers the largest).
constexpr size_t kSlotSize = 0, kSlotIndex = 1, kSlotAt = 2, kFirstFieldSlot = 3;

}  // namespace detail

}  // namespace payloadfs::descriptor

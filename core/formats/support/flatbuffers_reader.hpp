#pragma once
// A small, bounds-checked reader of FlatBuffers (flatbuffers.dev, "Internals"): a root uoffset,
// tables with a signed offset to their vtable, vtables of u16 field offsets, uoffsets to child
// tables, vectors and strings, and unions (a type field and a table). Every position is checked
// against the buffer before it is read, so a wrong offset gives nullopt, never a read outside
// it. The buffer is a copy of the bytes in memory; the caller bounds its size and the depth of
// the tables it follows.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>

namespace payloadfs::formats::flatbuf {

struct Table {
  uint32_t pos = 0;     // where the table starts (its soffset to the vtable)
  uint32_t vtable = 0;  // where its vtable starts
  uint16_t vtable_size = 0;
  uint16_t table_size = 0;
};

struct Vector {
  uint32_t pos = 0;  // the first element
  uint32_t count = 0;
};

class Reader {
 public:
  explicit Reader(std::span<const std::byte> data) : data_(data) {}

  // The root table (the uoffset at 0), or nullopt.
  [[nodiscard]] std::optional<Table> root() const { return table_at_offset(0); }

  // A field's position inside the buffer, or nullopt when absent from the vtable (or outside
  // the table).
  [[nodiscard]] std::optional<uint32_t> field(const Table& t, int id) const;

  template <typename T>
  [[nodiscard]] T scalar(const Table& t, int id, T fallback) const {
    const auto at = field(t, id);
    if (!at || !fits(*at, sizeof(T))) return fallback;
    return read<T>(*at);
  }
  [[nodiscard]] bool has(const Table& t, int id) const { return field(t, id).has_value(); }

  // A child table, string or vector that field `id` points at.
  [[nodiscard]] std::optional<Table> table(const Table& t, int id) const;
  [[nodiscard]] std::optional<std::string> string(const Table& t, int id, uint32_t max_bytes) const;
  // A vector of `element_size`-byte elements, all inside the buffer.
  [[nodiscard]] std::optional<Vector> vector(const Table& t, int id, uint32_t element_size) const;
  // Element `i` of a vector of tables (uoffsets) or of strings.
  [[nodiscard]] std::optional<Table> table_element(const Vector& v, uint32_t i) const;
  [[nodiscard]] std::optional<std::string> string_element(const Vector& v, uint32_t i,
                                                          uint32_t max_bytes) const;

  // A little-endian scalar at `pos`, which the caller checked with fits().
  template <typename T>
  [[nodiscard]] T read(uint32_t pos) const;
  [[nodiscard]] bool fits(uint64_t pos, uint64_t length) const {
    return pos <= data_.size() && length <= data_.size() - pos;
  }

 private:
  // The table a uoffset at `at` points at.
  [[nodiscard]] std::optional<Table> table_at_offset(uint32_t at) const;
  [[nodiscard]] std::optional<Table> table_at(uint64_t pos) const;
  [[nodiscard]] std::optional<uint32_t> follow(uint32_t at) const;
  [[nodiscard]] std::optional<std::string> string_at(uint32_t pos, uint32_t max_bytes) const;

  std::span<const std::byte> data_;
};

}  // namespace payloadfs::formats::flatbuf

#include "core/formats/support/flatbuffers_reader.hpp"

#include "core/io/endian.hpp"

namespace payloadfs::formats::flatbuf {

template <typename T>
T Reader::read(uint32_t pos) const {
  return read_le<T>(data_.data() + pos);
}
template uint8_t Reader::read<uint8_t>(uint32_t) const;
template int8_t Reader::read<int8_t>(uint32_t) const;
template uint16_t Reader::read<uint16_t>(uint32_t) const;
template int16_t Reader::read<int16_t>(uint32_t) const;
template uint32_t Reader::read<uint32_t>(uint32_t) const;
template int32_t Reader::read<int32_t>(uint32_t) const;
template uint64_t Reader::read<uint64_t>(uint32_t) const;
template int64_t Reader::read<int64_t>(uint32_t) const;

std::optional<uint32_t> Reader::follow(uint32_t at) const {
  if (!fits(at, 4)) return std::nullopt;
  const uint64_t target = uint64_t{at} + read<uint32_t>(at);
  if (target >= data_.size()) return std::nullopt;
  return static_cast<uint32_t>(target);
}

std::optional<Table> Reader::table_at_offset(uint32_t at) const {
  const auto pos = follow(at);
  if (!pos) return std::nullopt;
  return table_at(*pos);
}

std::optional<Table> Reader::table_at(uint64_t pos) const {
  if (!fits(pos, 4)) return std::nullopt;
  // The vtable is at pos - soffset (soffset is signed: either side of the table).
  const int64_t vtable = static_cast<int64_t>(pos) - read<int32_t>(static_cast<uint32_t>(pos));
  if (vtable < 0 || !fits(static_cast<uint64_t>(vtable), 4)) return std::nullopt;
  Table t;
  t.pos = static_cast<uint32_t>(pos);
  t.vtable = static_cast<uint32_t>(vtable);
  t.vtable_size = read<uint16_t>(t.vtable);
  t.table_size = read<uint16_t>(t.vtable + 2);
  // The vtable holds its two sizes and whole u16 slots; both it and the table must fit.
  if (t.vtable_size < 4 || t.vtable_size % 2 != 0 || !fits(t.vtable, t.vtable_size) ||
      t.table_size < 4 || !fits(t.pos, t.table_size))
    return std::nullopt;
  return t;
}

std::optional<uint32_t> Reader::field(const Table& t, int id) const {
  if (id < 0) return std::nullopt;
  const uint32_t slot = 4 + 2 * static_cast<uint32_t>(id);
  if (slot + 2 > t.vtable_size) return std::nullopt;
  const uint16_t offset = read<uint16_t>(t.vtable + slot);
  if (offset == 0 || offset >= t.table_size) return std::nullopt;
  return t.pos + offset;
}

std::optional<Table> Reader::table(const Table& t, int id) const {
  const auto at = field(t, id);
  if (!at) return std::nullopt;
  return table_at_offset(*at);
}

std::optional<std::string> Reader::string_at(uint32_t pos, uint32_t max_bytes) const {
  if (!fits(pos, 4)) return std::nullopt;
  const uint32_t length = read<uint32_t>(pos);
  if (!fits(uint64_t{pos} + 4, length)) return std::nullopt;
  const uint32_t shown = length < max_bytes ? length : max_bytes;
  return std::string(reinterpret_cast<const char*>(data_.data() + pos + 4), shown);
}

std::optional<std::string> Reader::string(const Table& t, int id, uint32_t max_bytes) const {
  const auto at = field(t, id);
  if (!at) return std::nullopt;
  const auto pos = follow(*at);
  if (!pos) return std::nullopt;
  return string_at(*pos, max_bytes);
}

std::optional<Vector> Reader::vector(const Table& t, int id, uint32_t element_size) const {
  const auto at = field(t, id);
  if (!at) return std::nullopt;
  const auto pos = follow(*at);
  if (!pos || !fits(*pos, 4)) return std::nullopt;
  const uint32_t count = read<uint32_t>(*pos);
  if (!fits(uint64_t{*pos} + 4, uint64_t{count} * element_size)) return std::nullopt;
  return Vector{*pos + 4, count};
}

std::optional<Table> Reader::table_element(const Vector& v, uint32_t i) const {
  if (i >= v.count) return std::nullopt;
  return table_at_offset(v.pos + 4 * i);
}

std::optional<std::string> Reader::string_element(const Vector& v, uint32_t i,
                                                  uint32_t max_bytes) const {
  if (i >= v.count) return std::nullopt;
  const auto pos = follow(v.pos + 4 * i);
  if (!pos) return std::nullopt;
  return string_at(*pos, max_bytes);
}

}  // namespace payloadfs::formats::flatbuf

// Stored HDF5 elements as JSON, from a datatype's description (hdf5_datatype.cpp): numbers,
// strings (fixed and variable length), lists for arrays and sequences, objects for compounds,
// names for enum values. Variable-length data lives in the global heap
// (hdf5_global_heap.cpp); every byte decoded counts against the decoder's budget.

#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <string_view>

#include "core/formats/support/hdf5_values.hpp"
#include "core/io/checked_math.hpp"
#include "core/render/json_text.hpp"

namespace payloadfs::formats::hdf5 {
namespace {

uint64_t read_unsigned(std::span<const std::byte> bytes, bool big) {
  uint64_t value = 0;
  const size_t n = std::min<size_t>(bytes.size(), 8);
  for (size_t i = 0; i < n; ++i) {
    const auto byte = static_cast<uint64_t>(bytes[big ? bytes.size() - 1 - i : i]);
    value |= byte << (8 * i);
  }
  return value;
}

Json integer_json(const Json& type, std::span<const std::byte> bytes) {
  const bool big = type.value("byte_order", "") == "big";
  const uint64_t raw = read_unsigned(bytes, big);
  if (!type.value("signed", false)) return raw;
  const size_t n = bytes.size();
  if (n > 0 && n < 8 && (raw >> (8 * n - 1)) != 0)
    return static_cast<int64_t>(raw | (~uint64_t{0} << (8 * n)));
  return static_cast<int64_t>(raw);
}

double half_to_double(uint16_t h) {
  const int exponent = (h >> 10) & 0x1F;
  const int mantissa = h & 0x3FF;
  const double sign = (h & 0x8000) != 0 ? -1.0 : 1.0;
  if (exponent == 0) return sign * std::ldexp(mantissa, -24);
  if (exponent == 31)
    return mantissa != 0 ? std::nan("") : sign * std::numeric_limits<double>::infinity();
  return sign * std::ldexp(mantissa + 1024, exponent - 25);
}

Json float_value(const Json& type, std::span<const std::byte> bytes) {
  if (!type.value("ieee", false)) return nullptr;
  const bool big = type.value("byte_order", "") == "big";
  const uint64_t raw = read_unsigned(bytes, big);
  if (bytes.size() == 2) return float_json(half_to_double(static_cast<uint16_t>(raw)));
  if (bytes.size() == 4) {
    float f = 0;
    const auto bits = static_cast<uint32_t>(raw);
    std::memcpy(&f, &bits, 4);
    return float_json(static_cast<double>(f));
  }
  double d = 0;
  std::memcpy(&d, &raw, 8);
  return float_json(d);
}

// A fixed or variable-length string's bytes, cut per its padding, as JSON text.
Json string_json(const Json& type, std::string_view text) {
  const std::string padding = type.value("padding", "nullterm");
  if (padding == "nullterm") {
    text = text.substr(0, text.find('\0'));
  } else {
    const char pad = padding == "spacepad" ? ' ' : '\0';
    while (!text.empty() && text.back() == pad) text.remove_suffix(1);
  }
  return utf8_or_escaped(text);
}

// h5py's bool: an enum FALSE = 0, TRUE = 1 over a 1-byte integer (NumPy's |b1).
bool is_h5py_bool(const Json& type) {
  const Json& m = type["members"];
  return type.value("size", 0) == 1 && m.size() == 2 && m[0]["name"] == "FALSE" &&
         m[0]["value"] == 0 && m[1]["name"] == "TRUE" && m[1]["value"] == 1;
}

Json enum_json(const Json& type, std::span<const std::byte> bytes) {
  Json value = integer_json(type["base"], bytes);
  if (is_h5py_bool(type) && (value == 0 || value == 1)) return value == 1;
  for (const Json& m : type["members"])
    if (m["value"] == value) return m["name"];
  return value;
}

std::string hex(std::span<const std::byte> bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  for (std::byte b : bytes) {
    out.push_back(kDigits[static_cast<unsigned>(b) >> 4]);
    out.push_back(kDigits[static_cast<unsigned>(b) & 0xF]);
  }
  return out;
}

std::vector<uint64_t> dims_of(const Json& list) {
  std::vector<uint64_t> dims;
  for (const Json& d : list) dims.push_back(d.get<uint64_t>());
  return dims;
}

}  // namespace

Json float_json(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "Infinity" : "-Infinity";
  return value;
}

Json ValueDecoder::elements(const Json& type, std::span<const std::byte> bytes,
                            const std::vector<uint64_t>& dims, unsigned depth) {
  const uint64_t size = type.value("size", uint64_t{0});
  if (dims.empty()) return bytes.size() < size ? Json(nullptr) : element(type, bytes, depth);
  uint64_t inner = size;
  for (size_t i = 1; i < dims.size(); ++i) inner = checked_mul(inner, dims[i]).value_or(~0ULL);
  const std::vector<uint64_t> rest(dims.begin() + 1, dims.end());
  Json list = Json::array();
  for (uint64_t i = 0; i < dims[0] && values_left > 0; ++i) {
    const auto offset = checked_mul(i, inner);
    if (!offset || inner == 0 || !range_within(*offset, inner, bytes.size())) {
      if (inner != 0 && error.empty()) error = "an array value runs past its data";
      break;
    }
    list.push_back(elements(type, bytes.subspan(*offset, inner), rest, depth + 1));
  }
  return list;
}

Json ValueDecoder::element(const Json& type, std::span<const std::byte> bytes, unsigned depth) {
  const std::string cls = type.value("class", "");
  const uint64_t size = type.value("size", uint64_t{0});
  if (depth > 2 * kMaxTypeDepth + kMaxRank || bytes.size() < size) return nullptr;
  if (values_left == 0) {
    if (error.empty())
      error = "the value decodes to more than " + std::to_string(kMaxDecodedValues) + " values";
    return nullptr;
  }
  --values_left;
  bytes = bytes.first(size);
  if (cls == "integer" || cls == "bitfield" || cls == "time") return integer_json(type, bytes);
  if (cls == "float") return float_value(type, bytes);
  if (cls == "enum") return enum_json(type, bytes);
  if (cls == "string")
    return string_json(type, {reinterpret_cast<const char*>(bytes.data()), bytes.size()});
  if (cls == "opaque") return hex(bytes);
  if (cls == "reference") return read_unsigned(bytes.first(std::min<size_t>(size, 8)), false);
  if (cls == "array") return elements(type["base"], bytes, dims_of(type["dims"]), depth + 1);
  if (cls == "compound") {
    Json object = Json::object();
    for (const Json& m : type["members"]) {
      if (values_left == 0) break;
      const uint64_t offset = m["offset"].get<uint64_t>();
      if (offset > bytes.size()) break;
      const auto rest = bytes.subspan(offset);
      object[m["name"].get<std::string>()] =
          m.contains("dims") ? elements(m["type"], rest, dims_of(m["dims"]), depth + 1)
                             : element(m["type"], rest, depth + 1);
    }
    return object;
  }
  if (cls == "vlen" || cls == "vlen-string") return vlen(type, bytes, depth);
  return nullptr;
}

// A variable-length element: a 4-byte length (base elements, or bytes of a string), then a
// global heap ID (collection address, object index).
Json ValueDecoder::vlen(const Json& type, std::span<const std::byte> bytes, unsigned depth) {
  const uint64_t id_size = 4 + uint64_t{sizes.offsets} + 4;
  if (bytes.size() < id_size) return nullptr;
  const uint64_t length = read_unsigned(bytes.first(4), false);
  const uint64_t address = read_unsigned(bytes.subspan(4, sizes.offsets), false);
  const auto index =
      static_cast<uint32_t>(read_unsigned(bytes.subspan(4 + sizes.offsets, 4), false));
  const bool is_string = type.value("class", "") == "vlen-string";
  if (length == 0) return is_string ? Json("") : Json::array();
  const Json& base = type["base"];
  const uint64_t unit = is_string ? 1 : base.value("size", uint64_t{0});
  const auto needed = checked_mul(length, unit);
  if (!needed || *needed > budget) {
    if (error.empty()) error = "a variable-length value exceeds the decoding limit";
    return nullptr;
  }
  auto object = heap_object(address, index);
  if (!object) return nullptr;
  if (object->length < *needed) {
    if (error.empty())
      error = "global heap object " + std::to_string(index) + " holds fewer bytes than its length";
    return nullptr;
  }
  budget -= *needed;
  std::vector<std::byte> data(static_cast<size_t>(*needed));
  if (!file.read_exact(object->offset, data)) {
    if (error.empty()) error = "global heap object " + std::to_string(index) + " cannot be read";
    return nullptr;
  }
  if (is_string)
    return string_json(type, {reinterpret_cast<const char*>(data.data()), data.size()});
  return elements(base, data, {length}, depth + 1);
}

std::optional<ByteRange> ValueDecoder::heap_object(uint64_t address, uint32_t index) {
  auto found = collections_.find(address);
  if (found == collections_.end()) {
    constexpr size_t kMaxCollectionsKept = 64;
    if (collections_.size() >= kMaxCollectionsKept) collections_.clear();
    std::string heap_error;
    auto objects = read_global_heap(file, sizes, address, heap_error);
    if (!objects) {
      if (error.empty()) error = heap_error;
      return std::nullopt;
    }
    found = collections_.emplace(address, std::move(*objects)).first;
  }
  for (const GlobalHeapObject& object : found->second)
    if (object.index == index) return object.data;
  if (error.empty())
    error = "global heap collection at " + std::to_string(address) + " has no object " +
            std::to_string(index);
  return std::nullopt;
}

}  // namespace payloadfs::formats::hdf5

// The HDF5 datatype message (File Format Specification 3.0, IV.A.2.d), versions 1 to 4, as a
// NumPy dtype in array-interface form, named as h5py names it, and a description that the
// value decoder (hdf5_values.cpp) works from.

#include <algorithm>
#include <string>
#include <utility>

#include "core/formats/support/hdf5_messages.hpp"
#include "core/formats/support/hdf5_values.hpp"
#include "core/io/binary_reader.hpp"
#include "core/io/checked_math.hpp"
#include "core/render/json_text.hpp"

namespace payloadfs::formats::hdf5 {
namespace {

// Names of compound members and enum members, and opaque tags.
constexpr uint64_t kMaxTypeNameBytes = 4096;
// Dimensions of an array datatype (the specification allows 255; NumPy allows 32).
constexpr unsigned kMaxArrayRank = 32;

struct TypeReader {
  BinaryReader& reader;
  std::string error;
  void fail(std::string message) {
    if (error.empty()) error = std::move(message);
    reader.fail(error);
  }
  [[nodiscard]] bool ok() const { return error.empty() && reader.ok(); }
};

std::optional<Datatype> parse_type(TypeReader& in, unsigned depth);

std::string order_char(bool big_endian, uint64_t size) {
  if (size == 1) return "|";
  return big_endian ? ">" : "<";
}

// A name NUL-terminated, then (versions 1 and 2) padded with NULs to a multiple of 8 bytes,
// counted from the name's start.
std::string read_name(TypeReader& in, bool padded) {
  std::string name;
  const uint64_t start = in.reader.tell();
  while (in.ok()) {
    const uint8_t c = in.reader.u8();
    if (!in.reader.ok()) break;
    if (c == 0) break;
    if (name.size() >= kMaxTypeNameBytes) {
      in.fail("a datatype member name at offset " + std::to_string(start) + " exceeds " +
              std::to_string(kMaxTypeNameBytes) + " bytes");
      return {};
    }
    name.push_back(static_cast<char>(c));
  }
  if (padded) {
    const uint64_t used = in.reader.tell() - start;
    in.reader.skip((8 - used % 8) % 8);
  }
  return utf8_or_escaped(name);  // names become JSON keys and dtype field names
}

void parse_fixed_point(TypeReader& in, uint32_t bits, Datatype& type) {
  const bool big = (bits & 1) != 0;
  const bool is_signed = (bits & 8) != 0;
  const uint16_t bit_offset = in.reader.u16();
  const uint16_t precision = in.reader.u16();
  type.hdf5_class = "integer";
  type.description["byte_order"] = big ? "big" : "little";
  type.description["signed"] = is_signed;
  if (bit_offset != 0 || precision != type.size * 8) {
    type.description["bit_offset"] = bit_offset;
    type.description["precision"] = precision;
  }
  const uint64_t s = type.size;
  if (s == 1 || s == 2 || s == 4 || s == 8)
    type.dtype = order_char(big, s) + (is_signed ? "i" : "u") + std::to_string(s);
}

// Whether a floating-point layout is IEEE 754 binary16/32/64 as NumPy stores it.
bool is_ieee(uint64_t size, uint32_t bits, uint16_t offset, uint16_t precision, uint8_t exp_loc,
             uint8_t exp_size, uint8_t mant_loc, uint8_t mant_size, uint32_t bias) {
  struct Ieee {
    uint64_t size;
    uint8_t exp_loc, exp_size, mant_size;
    uint32_t bias;
  };
  constexpr Ieee kLayouts[] = {{2, 10, 5, 10, 15}, {4, 23, 8, 23, 127}, {8, 52, 11, 52, 1023}};
  const unsigned sign_location = (bits >> 8) & 0xFF;
  const unsigned normalization = (bits >> 4) & 3;
  if ((bits & 0x40) != 0) return false;  // VAX byte order
  for (const auto& l : kLayouts)
    if (l.size == size && offset == 0 && precision == size * 8 && exp_loc == l.exp_loc &&
        exp_size == l.exp_size && mant_loc == 0 && mant_size == l.mant_size && bias == l.bias &&
        sign_location == size * 8 - 1 && normalization == 2)
      return true;
  return false;
}

void parse_float(TypeReader& in, uint32_t bits, Datatype& type) {
  const bool big = (bits & 1) != 0;
  const uint16_t offset = in.reader.u16();
  const uint16_t precision = in.reader.u16();
  const uint8_t exp_loc = in.reader.u8();
  const uint8_t exp_size = in.reader.u8();
  const uint8_t mant_loc = in.reader.u8();
  const uint8_t mant_size = in.reader.u8();
  const uint32_t bias = in.reader.u32();
  type.hdf5_class = "float";
  type.description["byte_order"] = (bits & 0x40) != 0 ? "vax" : big ? "big" : "little";
  const bool ieee =
      is_ieee(type.size, bits, offset, precision, exp_loc, exp_size, mant_loc, mant_size, bias);
  type.description["ieee"] = ieee;
  if (!ieee) {
    type.description["precision"] = precision;
    type.description["exponent"] = Json::array({exp_loc, exp_size, bias});
    type.description["mantissa"] = Json::array({mant_loc, mant_size});
    return;
  }
  type.dtype = order_char(big, type.size) + "f" + std::to_string(type.size);
}

const char* padding_name(unsigned padding) {
  switch (padding) {
    case 0:
      return "nullterm";
    case 1:
      return "nullpad";
    case 2:
      return "spacepad";
    default:
      return "reserved";
  }
}

const char* charset_name(unsigned charset) {
  return charset == 1 ? "utf-8" : "ascii";
}

void parse_string(uint32_t bits, Datatype& type) {
  type.hdf5_class = "string";
  type.description["padding"] = padding_name(bits & 0xF);
  type.description["charset"] = charset_name((bits >> 4) & 0xF);
  type.dtype = "|S" + std::to_string(type.size);
}

void parse_opaque(TypeReader& in, uint32_t bits, Datatype& type) {
  const unsigned tag_length = bits & 0xFF;
  std::string tag = in.reader.text(tag_length);
  in.reader.skip((8 - tag_length % 8) % 8);
  tag = utf8_or_escaped(tag.substr(0, tag.find('\0')));
  type.hdf5_class = "opaque";
  type.description["tag"] = tag;
  type.dtype = "|V" + std::to_string(type.size);
}

// Version 1 compound members may be arrays of up to 4 dimensions.
std::optional<std::vector<uint64_t>> read_member_dims_v1(TypeReader& in) {
  const uint8_t rank = in.reader.u8();
  in.reader.skip(3 + 4 + 4);  // reserved, permutation index, reserved
  std::vector<uint64_t> dims;
  for (unsigned i = 0; i < 4; ++i) {
    const uint32_t d = in.reader.u32();
    if (i < rank) dims.push_back(d);
  }
  if (rank > 4) {
    in.fail("a compound member has " + std::to_string(rank) + " dimensions (at most 4)");
    return std::nullopt;
  }
  return dims;
}

struct Member {
  std::string name;
  uint64_t offset = 0;
  std::vector<uint64_t> dims;  // of a version 1 array member
  Datatype type;
};

uint64_t member_offset(TypeReader& in, unsigned version, uint64_t compound_size) {
  if (version < 3) return in.reader.u32();
  unsigned width = 1;  // the fewest bytes that hold the compound's size
  while (width < 8 && (compound_size >> (8 * width)) != 0) ++width;
  uint64_t value = 0;
  for (unsigned i = 0; i < width; ++i) value |= uint64_t{in.reader.u8()} << (8 * i);
  return value;
}

// The member's dtype entry: [name, dtype] or [name, dtype, shape].
Json member_entry(const Member& m) {
  Json shape = Json::array();
  for (uint64_t d : m.dims) shape.push_back(d);
  if (m.type.hdf5_class == "array") shape = m.type.description["dims"];
  Json entry = Json::array({m.name, m.type.dtype});
  if (!shape.empty()) entry.push_back(shape);
  return entry;
}

// The members sorted by offset with "|V<n>" padding entries, or null when NumPy cannot hold
// them (a member without a dtype, overlapping or past the end).
Json compound_dtype(std::vector<const Member*> members, uint64_t size,
                    const std::vector<uint64_t>& extents) {
  std::vector<size_t> order(members.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return members[a]->offset < members[b]->offset; });
  Json dtype = Json::array();
  uint64_t at = 0;
  for (size_t i : order) {
    const Member& m = *members[i];
    if (m.type.dtype.is_null() || m.offset < at) return nullptr;
    if (m.offset > at) dtype.push_back(Json::array({"", "|V" + std::to_string(m.offset - at)}));
    dtype.push_back(member_entry(m));
    at = m.offset + extents[i];
  }
  if (at > size) return nullptr;
  if (at < size) dtype.push_back(Json::array({"", "|V" + std::to_string(size - at)}));
  return dtype;
}

std::optional<Member> parse_member(TypeReader& in, unsigned version, uint64_t size,
                                   unsigned depth) {
  Member m;
  m.name = read_name(in, version < 3);
  m.offset = member_offset(in, version, size);
  if (version == 1) {
    auto dims = read_member_dims_v1(in);
    if (!dims) return std::nullopt;
    m.dims = std::move(*dims);
  }
  auto type = parse_type(in, depth + 1);
  if (!type) return std::nullopt;
  m.type = std::move(*type);
  return m;
}

void parse_compound(TypeReader& in, unsigned version, uint32_t bits, Datatype& type,
                    unsigned depth) {
  const unsigned count = bits & 0xFFFF;
  type.hdf5_class = "compound";
  if (count > kMaxCompoundMembers) {
    in.fail("a compound datatype has " + std::to_string(count) + " members (limit " +
            std::to_string(kMaxCompoundMembers) + ")");
    return;
  }
  std::vector<Member> members;
  Json described = Json::array();
  for (unsigned i = 0; i < count && in.ok(); ++i) {
    auto m = parse_member(in, version, type.size, depth);
    if (!m) return;
    Json d = {{"name", m->name}, {"offset", m->offset}, {"type", m->type.description}};
    if (!m->dims.empty()) d["dims"] = m->dims;
    described.push_back(std::move(d));
    members.push_back(std::move(*m));
  }
  type.description["members"] = std::move(described);
  std::vector<const Member*> pointers;
  std::vector<uint64_t> extents;
  for (const Member& m : members) {
    uint64_t extent = m.type.size;
    for (uint64_t d : m.dims) extent = checked_mul(extent, d).value_or(~uint64_t{0});
    pointers.push_back(&m);
    extents.push_back(extent);
    if (!checked_add(m.offset, extent) || m.offset + extent > type.size)
      in.fail("compound member '" + m.name + "' lies past the datatype's " +
              std::to_string(type.size) + " bytes");
  }
  if (in.ok()) type.dtype = compound_dtype(pointers, type.size, extents);
}

void parse_reference(uint32_t bits, Datatype& type) {
  type.hdf5_class = "reference";
  const unsigned kind = bits & 0xF;
  type.description["kind"] = kind == 0   ? "object"
                             : kind == 1 ? "region"
                                         : "reference-" + std::to_string(kind);
}

void parse_enum(TypeReader& in, unsigned version, uint32_t bits, Datatype& type, unsigned depth) {
  const unsigned count = bits & 0xFFFF;
  type.hdf5_class = "enum";
  auto base = parse_type(in, depth + 1);
  if (!base) return;
  if (count > kMaxCompoundMembers || base->hdf5_class != "integer" || base->size > 8) {
    in.fail("an enum datatype has " + std::to_string(count) + " members of class '" +
            base->hdf5_class + "' (at most " + std::to_string(kMaxCompoundMembers) + " integers)");
    return;
  }
  std::vector<std::string> names;
  for (unsigned i = 0; i < count && in.ok(); ++i) names.push_back(read_name(in, version < 3));
  Json members = Json::array();
  const bool is_signed = base->description.value("signed", false);
  const bool big = base->description.value("byte_order", "") == "big";
  for (unsigned i = 0; i < count && in.ok(); ++i) {
    uint64_t raw = 0;
    for (uint64_t b = 0; b < base->size; ++b) {
      const uint64_t byte = in.reader.u8();
      const uint64_t position = big ? base->size - 1 - b : b;
      if (position < 8) raw |= byte << (8 * position);
    }
    Json value = raw;
    if (is_signed && base->size > 0 && base->size < 8 && (raw >> (8 * base->size - 1)) != 0)
      value = static_cast<int64_t>(raw | (~uint64_t{0} << (8 * base->size)));
    else if (is_signed)
      value = static_cast<int64_t>(raw);
    members.push_back({{"name", names[i]}, {"value", value}});
  }
  if (!in.ok()) return;
  const bool h5py_bool = base->size == 1 && is_signed && count == 2 && names[0] == "FALSE" &&
                         names[1] == "TRUE" && members[0]["value"] == 0 && members[1]["value"] == 1;
  type.dtype = h5py_bool ? Json("|b1") : base->dtype;
  type.description["base"] = base->description;
  type.description["members"] = std::move(members);
}

void parse_vlen(TypeReader& in, uint32_t bits, Datatype& type, unsigned depth) {
  const bool is_string = (bits & 0xF) == 1;
  auto base = parse_type(in, depth + 1);
  if (!base) return;
  type.hdf5_class = is_string ? "vlen-string" : "vlen";
  if (is_string) {
    type.description["padding"] = padding_name((bits >> 4) & 0xF);
    type.description["charset"] = charset_name((bits >> 8) & 0xF);
  }
  type.description["base"] = base->description;
}

void parse_array(TypeReader& in, unsigned version, Datatype& type, unsigned depth) {
  type.hdf5_class = "array";
  const uint8_t rank = in.reader.u8();
  if (rank > kMaxArrayRank) {
    in.fail("an array datatype has " + std::to_string(rank) + " dimensions (limit " +
            std::to_string(kMaxArrayRank) + ")");
    return;
  }
  if (version < 3) in.reader.skip(3);
  std::vector<uint64_t> dims;
  for (unsigned i = 0; i < rank; ++i) dims.push_back(in.reader.u32());
  if (version < 3) in.reader.skip(4ULL * rank);  // permutation indices
  auto base = parse_type(in, depth + 1);
  if (!base) return;
  uint64_t total = base->size;
  for (uint64_t d : dims) total = checked_mul(total, d).value_or(~uint64_t{0});
  if (total != type.size) {
    in.fail("an array datatype of " + std::to_string(type.size) + " bytes holds " +
            std::to_string(total) + " bytes of elements");
    return;
  }
  type.description["dims"] = dims;
  type.description["base"] = base->description;
  type.dtype = base->hdf5_class == "array" ? Json(nullptr) : base->dtype;
}

bool parse_class(TypeReader& in, unsigned cls, unsigned version, uint32_t bits, Datatype& type,
                 unsigned depth) {
  switch (cls) {
    case 0:
      parse_fixed_point(in, bits, type);
      break;
    case 1:
      parse_float(in, bits, type);
      break;
    case 2:
      type.hdf5_class = "time";
      type.description["byte_order"] = (bits & 1) != 0 ? "big" : "little";
      in.reader.u16();  // bit precision
      break;
    case 3:
      parse_string(bits, type);
      break;
    case 4:
      parse_fixed_point(in, bits & 1, type);  // h5py reads a bitfield as unsigned integers
      type.hdf5_class = "bitfield";
      break;
    case 5:
      parse_opaque(in, bits, type);
      break;
    case 6:
      parse_compound(in, version, bits, type, depth);
      break;
    case 7:
      parse_reference(bits, type);
      break;
    case 8:
      parse_enum(in, version, bits, type, depth);
      break;
    case 9:
      parse_vlen(in, bits, type, depth);
      break;
    case 10:
      parse_array(in, version, type, depth);
      break;
    default:
      in.fail("unknown datatype class " + std::to_string(cls));
      return false;
  }
  return in.ok();
}

std::optional<Datatype> parse_type(TypeReader& in, unsigned depth) {
  if (depth > kMaxTypeDepth) {
    in.fail("datatypes nest deeper than " + std::to_string(kMaxTypeDepth) + " levels");
    return std::nullopt;
  }
  const uint64_t at = in.reader.tell();
  const uint8_t class_and_version = in.reader.u8();
  const uint32_t bits =
      in.reader.u8() | (uint32_t{in.reader.u8()} << 8) | (uint32_t{in.reader.u8()} << 16);
  Datatype type;
  type.size = in.reader.u32();
  const unsigned version = class_and_version >> 4;
  const unsigned cls = class_and_version & 0xF;
  if (!in.reader.ok()) {
    in.fail("datatype at offset " + std::to_string(at) + ": " + in.reader.error().value_or(""));
    return std::nullopt;
  }
  if (version < 1 || version > 4) {
    in.fail("datatype at offset " + std::to_string(at) + " has version " + std::to_string(version) +
            " (1 to 4 are defined)");
    return std::nullopt;
  }
  if (!parse_class(in, cls, version, bits, type, depth)) {
    if (in.error.empty()) in.fail(in.reader.error().value_or("datatype cut short"));
    return std::nullopt;
  }
  type.description = [&] {
    Json d = {{"class", type.hdf5_class}, {"size", type.size}};
    for (auto& [key, value] : type.description.items()) d[key] = value;
    return d;
  }();
  return type;
}

}  // namespace

std::optional<Datatype> parse_datatype(const ByteSource& file, ByteRange body, std::string& error) {
  BinaryReader root(file);
  BinaryReader reader = root.sub(body.offset, body.length);
  TypeReader in{reader, {}};
  auto type = parse_type(in, 0);
  if (!type || !in.ok()) {
    error =
        "datatype message: " + (in.error.empty() ? reader.error().value_or("cut short") : in.error);
    return std::nullopt;
  }
  return type;
}

// Used by the attribute parser, which reads a datatype inside its own message.
std::optional<Datatype> parse_datatype_at(BinaryReader& reader, std::string& error) {
  TypeReader in{reader, {}};
  auto type = parse_type(in, 0);
  if (!type || !in.ok()) {
    error = in.error.empty() ? reader.error().value_or("datatype cut short") : in.error;
    return std::nullopt;
  }
  return type;
}

}  // namespace payloadfs::formats::hdf5

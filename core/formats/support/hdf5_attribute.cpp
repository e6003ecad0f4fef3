// HDF5 attribute messages (File Format Specification 3.0, IV.A.2.m), versions 1 to 3, with
// their values decoded to JSON, and the fill value messages (IV.A.2.e and IV.A.2.f) as zarr v2
// fill values.

#include <string>

#include "core/formats/support/hdf5_messages.hpp"
#include "core/formats/support/hdf5_values.hpp"
#include "core/io/checked_math.hpp"
#include "core/render/json_text.hpp"

namespace payloadfs::formats::hdf5 {
namespace {

std::string base64(std::span<const std::byte> bytes) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  for (size_t i = 0; i < bytes.size(); i += 3) {
    uint32_t group = static_cast<uint32_t>(bytes[i]) << 16;
    if (i + 1 < bytes.size()) group |= static_cast<uint32_t>(bytes[i + 1]) << 8;
    if (i + 2 < bytes.size()) group |= static_cast<uint32_t>(bytes[i + 2]);
    out.push_back(kAlphabet[(group >> 18) & 63]);
    out.push_back(kAlphabet[(group >> 12) & 63]);
    out.push_back(i + 1 < bytes.size() ? kAlphabet[(group >> 6) & 63] : '=');
    out.push_back(i + 2 < bytes.size() ? kAlphabet[group & 63] : '=');
  }
  return out;
}

// A fill value's bytes as zarr v2 writes fill_value for the dataset's dtype.
Json zarr_fill(const ByteSource& file, const Datatype& type, std::span<const std::byte> bytes) {
  const std::string& cls = type.hdf5_class;
  if (type.dtype.is_null() || cls == "array") return nullptr;
  if (cls == "integer" || cls == "bitfield" || cls == "float" || cls == "enum") {
    const Sizes sizes;
    ValueDecoder decoder{file, sizes};
    Json value =
        decoder.element(cls == "enum" ? type.description["base"] : type.description, bytes);
    if (type.dtype == "|b1") return value != 0;
    return value;
  }
  return base64(bytes);  // strings, opaque data, compounds
}

std::optional<std::vector<std::byte>> read_bytes(BinaryReader& r, uint64_t count) {
  if (!r.need(count)) return std::nullopt;
  std::vector<std::byte> out(static_cast<size_t>(count));
  if (!r.read_into(out)) return std::nullopt;
  return out;
}

}  // namespace

Json parse_fill_value(const ByteSource& file, ByteRange body, bool old_style, const Datatype& type,
                      std::string& error) {
  BinaryReader root(file);
  BinaryReader r = root.sub(body.offset, body.length);
  bool has_value = true;
  bool user_defined = true;
  if (!old_style) {
    const uint8_t version = r.u8();
    if (version == 1 || version == 2) {
      r.skip(2);  // allocation time, fill write time
      const bool defined = r.u8() != 0;
      if (version == 2 && !defined) return nullptr;
      has_value = true;
    } else if (version == 3) {
      const uint8_t flags = r.u8();
      if ((flags & 0x10) != 0) return nullptr;  // undefined
      has_value = user_defined = (flags & 0x20) != 0;
    } else {
      error = "fill value message: version " + std::to_string(version) + " is not 1 to 3";
      return nullptr;
    }
  }
  std::vector<std::byte> bytes;
  if (has_value) {
    const uint32_t size = r.u32();
    if (size > kMaxAttributeValueBytes) {
      error = "fill value message: a value of " + std::to_string(size) + " bytes";
      return nullptr;
    }
    auto read = read_bytes(r, size);
    if (!read) {
      error = "fill value message: " + r.error().value_or("cut short");
      return nullptr;
    }
    bytes = std::move(*read);
    user_defined = size > 0;
  }
  if (!user_defined)
    bytes.assign(static_cast<size_t>(std::min(type.size, kMaxAttributeValueBytes)), std::byte{0});
  if (bytes.size() != type.size) {
    error = "fill value message: a value of " + std::to_string(bytes.size()) +
            " bytes for a datatype of " + std::to_string(type.size);
    return nullptr;
  }
  return zarr_fill(file, type, bytes);
}

namespace {

struct AttributeHeader {
  uint8_t version = 0;
  uint8_t flags = 0;
  uint16_t name_size = 0;
  uint16_t datatype_size = 0;
  uint16_t dataspace_size = 0;
};

// Reads `size` bytes as a sub-reader's range and moves past them (padded to 8 in version 1).
uint64_t field_end(BinaryReader& r, uint16_t size, uint8_t version) {
  const uint64_t padded = version == 1 ? (size + 7ULL) / 8 * 8 : size;
  const uint64_t start = r.tell();
  r.skip(padded);
  return start;
}

Json attribute_value(const ByteSource& file, const Sizes& sizes, const Datatype& type,
                     const Dataspace& space, BinaryReader& r, std::string& error) {
  if (space.null) return nullptr;
  uint64_t count = 1;
  for (uint64_t d : space.dims) count = checked_mul(count, d).value_or(~uint64_t{0});
  const auto total = checked_mul(count, type.size);
  if (!total || *total > kMaxAttributeValueBytes) {
    Json shape = space.dims;
    return Json{{"dtype", type.dtype}, {"shape", shape}};
  }
  auto bytes = read_bytes(r, *total);
  if (!bytes) {
    error = "the value of " + std::to_string(*total) + " bytes runs past the message";
    return nullptr;
  }
  ValueDecoder decoder{file, sizes};
  Json value = decoder.elements(type.description, *bytes, space.dims);
  if (decoder.values_left == 0 && decoder.error.empty())
    decoder.error =
        "the value decodes to more than " + std::to_string(kMaxDecodedValues) + " values";
  if (!decoder.error.empty()) error = decoder.error;
  return value;
}

}  // namespace

std::optional<Attribute> parse_attribute(const ByteSource& file, const Sizes& sizes, ByteRange body,
                                         std::string& error) {
  BinaryReader root(file);
  BinaryReader r = root.sub(body.offset, body.length);
  AttributeHeader h;
  h.version = r.u8();
  h.flags = r.u8();
  h.name_size = r.u16();
  h.datatype_size = r.u16();
  h.dataspace_size = r.u16();
  if (h.version == 3) r.u8();  // name encoding: ASCII or UTF-8, both kept as bytes
  std::string problem;
  if (r.ok() && (h.version < 1 || h.version > 3))
    problem = "version " + std::to_string(h.version) + " is not 1 to 3";
  else if (h.version > 1 && (h.flags & 3) != 0)
    problem = "a shared datatype or dataspace in an attribute is not read";
  Attribute attribute;
  if (problem.empty()) {
    const uint64_t name_at = field_end(r, h.name_size, h.version);
    const uint64_t type_at = field_end(r, h.datatype_size, h.version);
    const uint64_t space_at = field_end(r, h.dataspace_size, h.version);
    const uint64_t data_at = r.tell();
    BinaryReader name = root.sub(name_at, h.name_size);
    attribute.name = name.text(h.name_size);
    attribute.name = utf8_or_escaped(attribute.name.substr(0, attribute.name.find('\0')));
    BinaryReader type_reader = root.sub(type_at, h.datatype_size);
    BinaryReader space_reader = root.sub(space_at, h.dataspace_size);
    auto type = r.ok() && name.ok() ? parse_datatype_at(type_reader, problem) : std::nullopt;
    auto space = type ? parse_dataspace_at(space_reader, sizes, problem) : std::nullopt;
    if (type && space) {
      r.seek(data_at);
      attribute.value = attribute_value(file, sizes, *type, *space, r, problem);
    }
    if (problem.empty() && (!r.ok() || !name.ok()))
      problem = (r.ok() ? name : r).error().value_or("cut short");
  }
  if (!problem.empty()) {
    error = "attribute message" + (attribute.name.empty() ? "" : " '" + attribute.name + "'") +
            ": " + problem;
    return std::nullopt;
  }
  return attribute;
}

}  // namespace payloadfs::formats::hdf5

#include "core/formats/support/npy_header.hpp"

#include <cctype>
#include <cstring>
#include <string>
#include <variant>

#include "core/formats/support/python_literal.hpp"
#include "core/io/checked_math.hpp"
#include "core/render/json_text.hpp"

namespace payloadfs::formats {
namespace {

using ojson = nlohmann::ordered_json;

// Item size of a simple type string such as '<f4', '|S10', '<U3', '<M8[ns]'.
std::optional<uint64_t> simple_itemsize(const std::string& descr, std::string& error) {
  size_t i = 0;
  if (i < descr.size() && std::strchr("<>|=", descr[i]) != nullptr) ++i;
  if (i >= descr.size()) {
    error = "empty dtype string '" + descr + "'";
    return std::nullopt;
  }
  const char kind = descr[i++];
  if (kind == 'O') {
    error = "object arrays ('" + descr + "') are pickled and have no fixed layout";
    return std::nullopt;
  }
  uint64_t count = 0;
  bool digits = false;
  while (i < descr.size() && std::isdigit(static_cast<unsigned char>(descr[i]))) {
    const auto next = checked_mul(count, 10);
    const auto sum =
        next ? checked_add(*next, static_cast<uint64_t>(descr[i] - '0')) : std::nullopt;
    if (!sum) {
      error = "dtype size out of range in '" + descr + "'";
      return std::nullopt;
    }
    count = *sum;
    digits = true;
    ++i;
  }
  if (i < descr.size() && descr[i] == '[') {  // datetime unit, e.g. [ns]
    const size_t close = descr.find(']', i);
    if (close == std::string::npos || close + 1 != descr.size() || (kind != 'M' && kind != 'm')) {
      error = "malformed dtype '" + descr + "'";
      return std::nullopt;
    }
    i = close + 1;
  }
  if (i != descr.size() || std::strchr("biufcmMSUVa?", kind) == nullptr) {
    error = "unsupported dtype '" + descr + "'";
    return std::nullopt;
  }
  if (!digits) {
    if (kind == '?') return 1;
    error = "dtype '" + descr + "' has no size";
    return std::nullopt;
  }
  if (kind == 'U') return checked_mul(count, 4);  // UCS-4 code units
  return count;
}

std::optional<uint64_t> shape_elements(const ojson& shape, std::string& error) {
  if (!shape.is_array()) {
    error = "shape must be a tuple of integers";
    return std::nullopt;
  }
  uint64_t elements = 1;
  for (const auto& dim : shape) {
    if (!dim.is_number_unsigned()) {
      error = "shape must be a tuple of non-negative integers";
      return std::nullopt;
    }
    const auto next = checked_mul(elements, dim.get<uint64_t>());
    if (!next) {
      error = "shape element count overflows 64 bits";
      return std::nullopt;
    }
    elements = *next;
  }
  return elements;
}

// Item size of a descr: a type string, or a list of (name, descr[, shape]) fields.
std::optional<uint64_t> descr_itemsize(const ojson& descr, int depth, std::string& error) {
  if (depth > kMaxNpyDescrDepth) {
    error = "dtype nesting too deep";
    return std::nullopt;
  }
  if (descr.is_string()) return simple_itemsize(descr.get<std::string>(), error);
  if (!descr.is_array()) {
    error = "descr must be a string or a list of fields";
    return std::nullopt;
  }
  uint64_t total = 0;
  for (const auto& field : descr) {
    if (!field.is_array() || field.size() < 2 || field.size() > 3 ||
        !(field[0].is_string() || (field[0].is_array() && field[0].size() == 2))) {
      error = "each structured dtype field must be (name, dtype) or (name, dtype, shape)";
      return std::nullopt;
    }
    auto size = descr_itemsize(field[1], depth + 1, error);
    if (!size) return std::nullopt;
    if (field.size() == 3) {
      const auto count = shape_elements(field[2], error);
      if (!count) return std::nullopt;
      size = checked_mul(*size, *count);
    }
    const auto sum = size ? checked_add(total, *size) : std::nullopt;
    if (!sum) {
      error = "structured dtype size overflows 64 bits";
      return std::nullopt;
    }
    total = *sum;
  }
  return total;
}

// Format 1.0 and 2.0 headers are latin-1; 3.0 headers are UTF-8.
std::string latin1_to_utf8(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (const char c : text) {
    const auto b = static_cast<unsigned char>(c);
    if (b < 0x80) {
      out.push_back(c);
    } else {
      out.push_back(static_cast<char>(0xC0 | (b >> 6)));
      out.push_back(static_cast<char>(0x80 | (b & 0x3F)));
    }
  }
  return out;
}

// Reads the version and header length; nullopt (with the error added) on an unreadable or
// unsupported preamble. Sets header["version"] and header["header_len"].
std::optional<uint64_t> read_preamble(BinaryReader& reader, Layout& layout, uint8_t& major) {
  major = reader.u8();
  const uint8_t minor = reader.u8();
  if (!reader.ok()) {
    layout.add_error("truncated preamble: " + *reader.error());
    return std::nullopt;
  }
  auto& h = layout.header;
  h["version"] = std::to_string(major) + "." + std::to_string(minor);
  uint64_t header_len = 0;
  if (major == 1) {
    header_len = reader.u16();
  } else if (major == 2 || major == 3) {
    header_len = reader.u32();
  } else {
    layout.add_error("unsupported .npy format version " + std::to_string(major) + "." +
                     std::to_string(minor));
    return std::nullopt;
  }
  if (!reader.ok()) {
    layout.add_error("truncated preamble: " + *reader.error());
    return std::nullopt;
  }
  h["header_len"] = header_len;
  return header_len;
}

// Reads the preamble and the header's Python dict literal; nullopt (with the error added)
// when there is no dictionary to read the array's description from.
std::optional<ojson> read_header_dict(BinaryReader& reader, Layout& layout, uint64_t& data_offset) {
  uint8_t major = 0;
  const auto header_len = read_preamble(reader, layout, major);
  if (!header_len) return std::nullopt;
  data_offset = reader.tell() + *header_len;
  if (*header_len > kMaxNpyHeaderBytes) {
    layout.add_error("header length " + std::to_string(*header_len) + " exceeds the limit of " +
                     std::to_string(kMaxNpyHeaderBytes) + " bytes");
    return std::nullopt;
  }
  const std::string bytes = reader.text(*header_len);
  const std::string text = major == 3 ? bytes : latin1_to_utf8(bytes);
  if (!reader.ok()) {
    layout.add_error("header length " + std::to_string(*header_len) +
                     " runs past the end of the file");
    return std::nullopt;
  }
  auto parsed = parse_python_literal(text);
  if (auto* err = std::get_if<PythonLiteralError>(&parsed)) {
    layout.add_error("header is not a Python literal: " + err->message);
    return std::nullopt;
  }
  ojson dict = std::get<ojson>(std::move(parsed));
  if (!dict.is_object()) {
    layout.add_error("header is not a dictionary");
    return std::nullopt;
  }
  return dict;
}

// The header must hold exactly descr, fortran_order and shape.
void check_keys(const ojson& dict, Layout& layout) {
  for (const char* key : {"descr", "fortran_order", "shape"}) {
    if (!dict.contains(key)) layout.add_error(std::string("header lacks the key '") + key + "'");
  }
  for (const auto& [key, value] : dict.items()) {
    if (key != "descr" && key != "fortran_order" && key != "shape")
      layout.add_error("header has an unexpected key '" + utf8_or_escaped(key) + "'");
  }
}

// Strings in the descr come from the file; keep them valid UTF-8 for JSON output.
ojson sanitize(const ojson& value) {
  if (value.is_string()) return utf8_or_escaped(value.get<std::string>());
  if (!value.is_array()) return value;
  ojson out = ojson::array();
  for (const auto& item : value) out.push_back(sanitize(item));
  return out;
}

}  // namespace

std::optional<NpyArray> read_npy_header(BinaryReader& reader, Layout& layout) {
  uint64_t data_offset = 0;
  const auto dict = read_header_dict(reader, layout, data_offset);
  if (!dict) return std::nullopt;
  check_keys(*dict, layout);
  if (!layout.errors.empty()) return std::nullopt;

  auto& h = layout.header;
  h["descr"] = sanitize((*dict)["descr"]);
  h["fortran_order"] = (*dict)["fortran_order"];
  h["shape"] = (*dict)["shape"];
  h["data_offset"] = data_offset;
  if (!(*dict)["fortran_order"].is_boolean())
    layout.add_error("fortran_order must be True or False");

  std::string error;
  const auto itemsize = descr_itemsize((*dict)["descr"], 0, error);
  const auto elements = itemsize ? shape_elements((*dict)["shape"], error) : std::nullopt;
  const auto length = elements ? checked_mul(*itemsize, *elements) : std::nullopt;
  if (!length) {
    layout.add_error(error.empty() ? "array size overflows 64 bits" : error);
    return std::nullopt;
  }
  h["itemsize"] = *itemsize;
  return NpyArray{data_offset, *length, h["descr"], h["shape"], h["fortran_order"]};
}

}  // namespace payloadfs::formats

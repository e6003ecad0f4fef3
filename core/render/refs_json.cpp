#include "core/render/refs_json.hpp"

#include <algorithm>
#include <cctype>
#include <cstring>
#include <set>

#include "core/io/checked_math.hpp"
#include "core/render/json_text.hpp"

namespace payloadfs {
namespace {

constexpr int kMaxDtypeDepth = 16;

// '<f4', '>i8', '|u1', '|b1', '|S10', '<U3', '<M8[ns]', '|V16', '|?'.
std::optional<uint64_t> typestr_itemsize(std::string_view s) {
  if (s.size() < 2 || std::strchr("<>|=", s[0]) == nullptr) return std::nullopt;
  const char kind = s[1];
  if (std::strchr("biufcmMSUVa?", kind) == nullptr) return std::nullopt;
  size_t i = 2;
  uint64_t count = 0;
  bool digits = false;
  while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i])) != 0) {
    const auto next = checked_mul(count, 10);
    const auto sum = next ? checked_add(*next, static_cast<uint64_t>(s[i] - '0')) : std::nullopt;
    if (!sum) return std::nullopt;
    count = *sum;
    digits = true;
    ++i;
  }
  if (i < s.size() && s[i] == '[' && (kind == 'M' || kind == 'm')) {  // a datetime unit
    const size_t close = s.find(']', i);
    if (close == std::string_view::npos || close + 1 != s.size() || close == i + 1)
      return std::nullopt;
    for (size_t k = i + 1; k < close; ++k)
      if (std::isalnum(static_cast<unsigned char>(s[k])) == 0) return std::nullopt;
    i = close + 1;
  }
  if (i != s.size()) return std::nullopt;
  if (!digits) return kind == '?' ? std::optional<uint64_t>(1) : std::nullopt;
  const auto size = kind == 'U' ? checked_mul(count, 4) : std::optional<uint64_t>(count);
  if (!size || *size == 0) return std::nullopt;
  return size;
}

std::optional<std::vector<uint64_t>> dims_of(const Json& shape) {
  if (!shape.is_array()) return std::nullopt;
  std::vector<uint64_t> dims;
  for (const auto& d : shape) {
    // Parsed JSON holds non-negative numbers as unsigned, numbers built in code as signed.
    if (!d.is_number_integer() || (!d.is_number_unsigned() && d.get<int64_t>() < 0))
      return std::nullopt;
    dims.push_back(d.get<uint64_t>());
  }
  return dims;
}

std::optional<uint64_t> element_count(std::span<const uint64_t> dims) {
  uint64_t n = 1;
  for (const uint64_t d : dims) {
    const auto next = checked_mul(n, d);
    if (!next) return std::nullopt;
    n = *next;
  }
  return n;
}

std::optional<uint64_t> itemsize_at(const Json& dtype, int depth) {
  if (depth > kMaxDtypeDepth) return std::nullopt;
  if (dtype.is_string()) return typestr_itemsize(dtype.get_ref<const std::string&>());
  if (!dtype.is_array() || dtype.empty()) return std::nullopt;
  uint64_t total = 0;
  for (const auto& field : dtype) {
    // (title, name) pairs are left out: zarr v2 cannot write them back as a dtype.
    if (!field.is_array() || field.size() < 2 || field.size() > 3 || !field[0].is_string())
      return std::nullopt;
    auto size = itemsize_at(field[1], depth + 1);
    if (size && field.size() == 3) {
      const auto dims = dims_of(field[2]);
      const auto count = dims ? element_count(*dims) : std::nullopt;
      size = count ? checked_mul(*size, *count) : std::nullopt;
    }
    const auto sum = size ? checked_add(total, *size) : std::nullopt;
    if (!sum) return std::nullopt;
    total = *sum;
  }
  return total == 0 ? std::nullopt : std::optional<uint64_t>(total);
}

// The NumPy dtype a slice's attributes give, if any.
const Json* numpy_dtype_of(const Json& attributes) {
  if (!attributes.is_object()) return nullptr;
  if (const auto it = attributes.find("numpy_dtype"); it != attributes.end()) return &*it;
  if (const auto it = attributes.find("dtype"); it != attributes.end()) return &*it;
  return nullptr;
}

const Json* numpy_shape_of(const Json& attributes) {
  if (!attributes.is_object()) return nullptr;
  if (const auto it = attributes.find("numpy_shape"); it != attributes.end()) return &*it;
  if (const auto it = attributes.find("shape"); it != attributes.end()) return &*it;
  return nullptr;
}

std::string compact(const Json& json) {
  return json.dump(-1, ' ', false, Json::error_handler_t::replace);
}

// zarr v2 (as zarr-python 2 reads it) takes metadata documents as ASCII JSON.
std::string ascii(const Json& json) {
  return json.dump(-1, ' ', true, Json::error_handler_t::replace);
}

}  // namespace

std::optional<uint64_t> numpy_itemsize(const Json& dtype) {
  return itemsize_at(dtype, 0);
}

std::optional<std::string> zarr_array_name(std::string_view slice_name) {
  if (slice_name.empty()) return std::nullopt;
  static constexpr char kDigits[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(slice_name.size());
  const auto escape = [&out](uint8_t b) {
    out.push_back('%');
    out.push_back(kDigits[b >> 4]);
    out.push_back(kDigits[b & 0xF]);
  };
  for (size_t i = 0; i < slice_name.size();) {
    const auto b = static_cast<uint8_t>(slice_name[i]);
    const size_t len = utf8_sequence_length(slice_name, i);
    if (len == 0 || b < 0x20 || b == 0x7F || b == '%' || b == '/' || b == '\\' ||
        (i == 0 && b == '.')) {
      escape(b);
      ++i;
    } else {
      out.append(slice_name.substr(i, len));
      i += len;
    }
  }
  return out;
}

namespace {

// A slice's `dimensions` when they name each of its `rank` axes.
std::vector<std::string> dimension_names(const Json& attributes, size_t rank) {
  const auto it = attributes.find("dimensions");
  if (it == attributes.end() || !it->is_array() || it->size() != rank) return {};
  std::vector<std::string> names;
  for (const auto& d : *it) {
    if (!d.is_string() || d.get_ref<const std::string&>().empty()) return {};
    names.push_back(d.get<std::string>());
  }
  return names;
}

}  // namespace

std::vector<RefsArray> refs_arrays(std::span<const Slice> slices,
                                   std::span<const ChunkedArray> chunked,
                                   std::span<const RecordTable> tables) {
  std::vector<RefsArray> arrays;
  std::set<std::string> names;
  for (const auto& slice : slices) {
    const Json* dtype = numpy_dtype_of(slice.attributes);
    const Json* shape = dtype != nullptr ? numpy_shape_of(slice.attributes) : nullptr;
    if (shape == nullptr) continue;
    const auto itemsize = numpy_itemsize(*dtype);
    auto dims = itemsize ? dims_of(*shape) : std::nullopt;
    const auto elements = dims ? element_count(*dims) : std::nullopt;
    const auto bytes = elements ? checked_mul(*itemsize, *elements) : std::nullopt;
    if (!bytes || *bytes != slice.range.length) continue;
    auto name = zarr_array_name(slice.name);
    if (!name || !names.insert(*name).second) continue;
    const auto fortran = slice.attributes.find("fortran_order");
    RefsArray& a = arrays.emplace_back();
    a.name = std::move(*name);
    a.dtype = *dtype;
    a.dimensions = dimension_names(slice.attributes, dims->size());
    a.shape = std::move(*dims);
    a.fortran_order = fortran != slice.attributes.end() && *fortran == true;
    a.range = slice.range;
  }
  for (const auto& c : chunked) {
    if (c.table >= tables.size() || c.shape.empty() || c.chunks.size() != c.shape.size() ||
        tables[c.table].grid.size() != c.shape.size() || !numpy_itemsize(c.dtype))
      continue;
    if (std::find(c.chunks.begin(), c.chunks.end(), 0) != c.chunks.end()) continue;
    auto name = zarr_array_name(c.name);
    if (!name || !names.insert(*name).second) continue;
    RefsArray& a = arrays.emplace_back();
    a.name = std::move(*name);
    a.dtype = c.dtype;
    a.shape = c.shape;
    if (c.dimensions.size() == c.shape.size()) a.dimensions = c.dimensions;
    a.chunked = &c;
    a.chunk_table = &tables[c.table];
  }
  return arrays;
}

namespace {

// One reference per chunk record, keyed by the record's grid coordinates (zarr's chunk key).
template <typename Entry>
void add_chunk_refs(const RefsArray& a, const std::string& url, const Entry& entry) {
  const std::vector<uint64_t>& grid = a.chunk_table->grid;
  std::vector<uint64_t> coordinates(grid.size());
  for (const Record& r : a.chunk_table->records) {
    uint64_t rest = r.tag;
    for (size_t d = grid.size(); d-- > 0;) {
      coordinates[d] = grid[d] == 0 ? 0 : rest % grid[d];
      rest = grid[d] == 0 ? 0 : rest / grid[d];
    }
    std::string key = a.name + "/";
    for (size_t d = 0; d < coordinates.size(); ++d) {
      if (d > 0) key += '.';
      key += std::to_string(coordinates[d]);
    }
    entry(key, "[" + url + ", " + std::to_string(r.offset) + ", " + std::to_string(r.length) + "]");
  }
}

}  // namespace

std::string render_refs_json(std::span<const RefsArray> arrays, std::string_view source_url) {
  // One reference per line, so that the file reads well and diffs well.
  std::string out = "{\"version\": 1, \"refs\": {\n";
  const auto entry = [&out](const std::string& key, const std::string& value) {
    out += compact(Json(key));
    out += ": ";
    out += value;
    out += ",\n";
  };
  entry(".zgroup", compact(Json(compact(Json{{"zarr_format", 2}}))));
  const std::string url = compact(Json(std::string(source_url)));
  for (const auto& a : arrays) {
    // Keys in zarr's own (sorted) order.
    Json zarray = Json::object();
    zarray["chunks"] = Json::array();
    zarray["compressor"] = a.chunked != nullptr ? a.chunked->compressor : Json(nullptr);
    zarray["dtype"] = a.dtype;
    zarray["fill_value"] = a.chunked != nullptr ? a.chunked->fill_value : Json(nullptr);
    zarray["filters"] = a.chunked != nullptr ? a.chunked->filters : Json(nullptr);
    zarray["order"] = a.fortran_order ? "F" : "C";
    zarray["shape"] = a.shape;
    zarray["zarr_format"] = 2;
    Json dimensions = Json::array();
    bool empty = false;
    for (size_t i = 0; i < a.shape.size(); ++i) {
      // zarr v2 chunks are at least 1 long; an empty array has no chunk to refer to.
      zarray["chunks"].push_back(a.chunked != nullptr ? a.chunked->chunks[i]
                                 : a.shape[i] == 0    ? 1
                                                      : a.shape[i]);
      empty = empty || a.shape[i] == 0;
      dimensions.push_back(a.dimensions.empty() ? a.name + "_dim_" + std::to_string(i)
                                                : a.dimensions[i]);
    }
    entry(a.name + "/.zarray", compact(Json(ascii(zarray))));
    entry(a.name + "/.zattrs", compact(Json(ascii(Json{{"_ARRAY_DIMENSIONS", dimensions}}))));
    if (empty) continue;
    if (a.chunked != nullptr) {
      add_chunk_refs(a, url, entry);
      continue;
    }
    std::string chunk = a.name + "/0";  // a 0-d array's one chunk is "0" too
    for (size_t i = 1; i < a.shape.size(); ++i) chunk += ".0";
    entry(chunk, "[" + url + ", " + std::to_string(a.range.offset) + ", " +
                     std::to_string(a.range.length) + "]");
  }
  out.erase(out.size() - 2, 1);  // the last entry's comma
  out += "}}\n";
  return out;
}

}  // namespace payloadfs

#include "core/formats/support/onnx_model.hpp"

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/formats/support/protobuf_wire.hpp"
#include "core/io/binary_reader.hpp"
#include "core/io/checked_math.hpp"
#include "core/render/json_text.hpp"

namespace payloadfs::onnx {
namespace {

using protobuf::Field;
using protobuf::WireReader;
using protobuf::WireType;

// TensorProto.DataType: ONNX's name, NumPy's type string (empty when NumPy has none; BFLOAT16
// is two opaque bytes, as payloadfs's pytorch format shows it) and the element size in bytes
// (0 for strings and the sub-byte types).
struct DataType {
  uint64_t code;
  std::string_view name;
  std::string_view numpy;
  uint64_t itemsize;
};
constexpr DataType kDataTypes[] = {
    {1, "FLOAT", "<f4", 4},     {2, "UINT8", "|u1", 1},        {3, "INT8", "|i1", 1},
    {4, "UINT16", "<u2", 2},    {5, "INT16", "<i2", 2},        {6, "INT32", "<i4", 4},
    {7, "INT64", "<i8", 8},     {8, "STRING", "", 0},          {9, "BOOL", "|b1", 1},
    {10, "FLOAT16", "<f2", 2},  {11, "DOUBLE", "<f8", 8},      {12, "UINT32", "<u4", 4},
    {13, "UINT64", "<u8", 8},   {14, "COMPLEX64", "<c8", 8},   {15, "COMPLEX128", "<c16", 16},
    {16, "BFLOAT16", "|V2", 2}, {17, "FLOAT8E4M3FN", "", 1},   {18, "FLOAT8E4M3FNUZ", "", 1},
    {19, "FLOAT8E5M2", "", 1},  {20, "FLOAT8E5M2FNUZ", "", 1}, {21, "UINT4", "", 0},
    {22, "INT4", "", 0},        {23, "FLOAT4E2M1", "", 0},
};

const DataType* find_data_type(uint64_t code) {
  for (const auto& d : kDataTypes)
    if (d.code == code) return &d;
  return nullptr;
}

std::string type_name(uint64_t code) {
  if (const auto* d = find_data_type(code)) return std::string(d->name);
  return code == 0 ? "UNDEFINED" : "type " + std::to_string(code);
}

// TensorProto's typed repeated fields (float_data holds FLOAT and COMPLEX64 as packed fixed32,
// double_data DOUBLE and COMPLEX128 as packed fixed64; the others hold varints or strings).
constexpr std::pair<uint32_t, std::string_view> kTypedFields[] = {
    {4, "float_data"}, {5, "int32_data"},   {6, "string_data"},
    {7, "int64_data"}, {10, "double_data"}, {11, "uint64_data"},
};

std::string_view typed_field_name(uint32_t number) {
  for (const auto& [n, name] : kTypedFields)
    if (n == number) return name;
  return {};
}

void report(const WireReader& r, const std::string& what, Layout& layout) {
  if (!r.ok()) layout.add_error(what + ": " + *r.error());
}

// A string field, UTF-8-safe, cut (with an error) at kMaxStringBytes.
std::string read_string(WireReader& r, const Field& f, const std::string& what, Layout& layout) {
  if (f.type != WireType::len) {
    layout.add_error(what + " is not a length-delimited string");
    return {};
  }
  if (f.value > kMaxStringBytes)
    layout.add_error(what + " is " + std::to_string(f.value) + " bytes long; shown cut at " +
                     std::to_string(kMaxStringBytes));
  return utf8_or_escaped(r.text(f, kMaxStringBytes));
}

struct Tensor {
  std::string name;
  uint64_t data_type = 0;
  std::vector<uint64_t> dims;
  bool dims_ok = true;
  std::optional<Field> raw;
  std::string_view typed;  // the first typed field met
  std::optional<Field> typed_packed;
  uint64_t typed_fields = 0;
  uint64_t data_location = 0;
  Json external = Json::object();
};

// StringStringEntryProto (key 1, value 2).
std::pair<std::string, std::string> read_entry(WireReader& parent, const Field& f,
                                               const std::string& what, Layout& layout) {
  WireReader r(parent, f);
  std::pair<std::string, std::string> entry;
  Field x;
  while (r.next(x)) {
    if (x.number == 1) entry.first = read_string(r, x, what + " key", layout);
    if (x.number == 2) entry.second = read_string(r, x, what + " value", layout);
  }
  report(r, what, layout);
  return entry;
}

void read_tensor_field(WireReader& r, const Field& x, Tensor& t, const std::string& what,
                       Layout& layout) {
  switch (x.number) {
    case 1:
      if (t.dims_ok && !r.packed_varints(x, t.dims, kMaxDims)) {
        layout.add_error(what + ": dims are malformed or more than " + std::to_string(kMaxDims));
        t.dims_ok = false;
      }
      return;
    case 2:
      t.data_type = x.value;
      return;
    case 8:
      t.name = read_string(r, x, what + " name", layout);
      return;
    case 9:
      if (x.type == WireType::len) {
        t.raw = x;
      } else {
        layout.add_error(what + ": raw_data is not length-delimited");
      }
      return;
    case 13:
      if (x.type == WireType::len && t.external.size() < kMaxExternalEntries) {
        auto [key, value] = read_entry(r, x, what + " external_data", layout);
        t.external[key] = value;
      }
      return;
    case 14:
      t.data_location = x.value;
      return;
    default:
      break;
  }
  if (const auto typed = typed_field_name(x.number); !typed.empty()) {
    if (t.typed.empty()) t.typed = typed;
    ++t.typed_fields;
    if (x.type == WireType::len) t.typed_packed = x;
  }
}

Tensor read_tensor(WireReader& graph, const Field& f, const std::string& what, Layout& layout) {
  Tensor t;
  WireReader r(graph, f);
  Field x;
  while (r.next(x)) read_tensor_field(r, x, t, what, layout);
  report(r, what, layout);
  return t;
}

// The element count, when every dim is a non-negative int64 and the product fits.
std::optional<uint64_t> element_count(const Tensor& t) {
  if (!t.dims_ok) return std::nullopt;
  uint64_t n = 1;
  for (const uint64_t d : t.dims) {
    const auto next = static_cast<int64_t>(d) < 0 ? std::nullopt : checked_mul(n, d);
    if (!next) return std::nullopt;
    n = *next;
  }
  return n;
}

Json shape_json(const Tensor& t) {
  Json shape = Json::array();
  for (const uint64_t d : t.dims) shape.push_back(static_cast<int64_t>(d));
  return shape;
}

uint64_t decimal_or_zero(const std::string& text, bool& ok) {
  uint64_t v = 0;
  for (const char c : text) {
    const auto next = c >= '0' && c <= '9' ? checked_mul(v, 10) : std::nullopt;
    const auto sum = next ? checked_add(*next, static_cast<uint64_t>(c - '0')) : std::nullopt;
    if (!sum) {
      ok = false;
      return 0;
    }
    v = *sum;
  }
  return v;
}

// location, offset and length (numbers) of an initializer kept in another file.
void describe_external(const Tensor& t, const std::string& what, Json& entry, Layout& layout) {
  entry["storage"] = "external";
  if (!t.external.contains("location"))
    layout.add_error(what + ": external data without a location");
  entry["location"] = t.external.value("location", "");
  for (const char* key : {"offset", "length"}) {
    if (!t.external.contains(key)) continue;
    bool ok = true;
    const uint64_t v = decimal_or_zero(t.external[key].get<std::string>(), ok);
    if (ok) {
      entry[key] = v;
    } else {
      layout.add_error(what + ": external_data " + key + " is not a decimal number");
    }
  }
  for (const auto& [key, value] : t.external.items())
    if (key != "location" && key != "offset" && key != "length") entry[key] = value;
}

// The bytes of a tensor whose data is one range of the file, when they are its array.
std::optional<ByteRange> array_bytes(const Tensor& t, const DataType* dt, uint64_t elements,
                                     const std::string& what, Layout& layout) {
  const auto need =
      dt != nullptr && dt->itemsize != 0 ? checked_mul(elements, dt->itemsize) : std::nullopt;
  if (t.raw) {
    if (t.raw->cut) return std::nullopt;  // the file ends inside it
    if (need && *need != t.raw->value)
      layout.add_error(what + ": raw_data holds " + std::to_string(t.raw->value) +
                       " bytes but its dtype and dims need " + std::to_string(*need));
    return ByteRange{t.raw->payload_offset, t.raw->value};
  }
  // float_data and double_data, packed in one field, are the array's little-endian bytes.
  const bool fixed = (t.typed == "float_data" && (t.data_type == 1 || t.data_type == 14)) ||
                     (t.typed == "double_data" && (t.data_type == 11 || t.data_type == 15));
  if (fixed && t.typed_fields == 1 && t.typed_packed && !t.typed_packed->cut && need &&
      *need == t.typed_packed->value)
    return ByteRange{t.typed_packed->payload_offset, t.typed_packed->value};
  return std::nullopt;
}

void add_initializer(const Tensor& t, uint64_t index, Layout& layout, Json& listed) {
  const std::string what = "initializer " + std::to_string(index) + " '" + t.name + "'";
  const DataType* dt = find_data_type(t.data_type);
  Json entry = {{"onnx_dtype", type_name(t.data_type)}, {"data_type", t.data_type}};
  if (dt != nullptr && !dt->numpy.empty()) entry["dtype"] = dt->numpy;
  entry["shape"] = shape_json(t);
  const auto elements = element_count(t);
  if (!elements && t.dims_ok) layout.add_error(what + ": dims are negative or overflow");
  std::optional<ByteRange> range;
  if (t.data_location == 1 || !t.external.empty()) {
    describe_external(t, what, entry, layout);
  } else if (t.raw) {
    entry["storage"] = "raw_data";
  } else {
    entry["storage"] = t.typed.empty() ? "none" : std::string(t.typed);
  }
  if (entry["storage"] != "external" && elements)
    range = array_bytes(t, dt, *elements, what, layout);
  if (range) {
    const bool exact = dt != nullptr && dt->itemsize != 0 && !dt->numpy.empty() &&
                       checked_mul(*elements, dt->itemsize) == range->length;
    Json a = Json::object();
    if (exact) a = {{"dtype", dt->numpy}, {"shape", entry["shape"]}};
    a["onnx_dtype"] = entry["onnx_dtype"];
    a["data_type"] = t.data_type;
    a["storage"] = entry["storage"];
    entry["offset"] = range->offset;
    entry["length"] = range->length;
    const std::string name = t.name.empty() ? "initializer/" + std::to_string(index) : t.name;
    layout.slices.push_back(Slice{name, *range, std::move(a)});
  }
  listed[t.name] = std::move(entry);
}

Json read_type(WireReader& parent, const Field& f, int type_depth, Layout& layout);

// TypeProto.Tensor and SparseTensor: elem_type 1, shape 2 (TensorShapeProto: dim 1, each a
// Dimension: dim_value 1, dim_param 2). A missing shape is an unknown rank (null).
void read_tensor_type(WireReader& parent, const Field& f, Json& out, Layout& layout) {
  WireReader r(parent, f);
  out["elem_type"] = 0;
  out["onnx_dtype"] = type_name(0);
  out["shape"] = nullptr;
  Field x;
  while (r.next(x)) {
    if (x.number == 1) {
      out["elem_type"] = x.value;
      out["onnx_dtype"] = type_name(x.value);
    } else if (x.number == 2) {
      Json shape = Json::array();
      WireReader s(r, x);
      Field d;
      while (s.next(d)) {
        if (d.number != 1) continue;
        if (shape.size() == kMaxDims) {
          layout.add_error("a shape has more than " + std::to_string(kMaxDims) + " dims");
          break;
        }
        Json dim = nullptr;
        WireReader dr(s, d);
        Field v;
        while (dr.next(v)) {
          if (v.number == 1) dim = static_cast<int64_t>(v.value);
          if (v.number == 2) dim = read_string(dr, v, "dim_param", layout);
        }
        report(dr, "shape dim", layout);
        shape.push_back(std::move(dim));
      }
      report(s, "shape", layout);
      out["shape"] = std::move(shape);
    }
  }
  report(r, "tensor type", layout);
}

// TypeProto.Sequence and Optional (elem_type 1) and Map (key_type 1, value_type 2).
void read_container_type(WireReader& parent, const Field& f, bool map, int type_depth, Json& out,
                         Layout& layout) {
  WireReader r(parent, f);
  Field x;
  while (r.next(x)) {
    if (map && x.number == 1) {
      out["key_type"] = type_name(x.value);
    } else if (x.number == (map ? 2u : 1u)) {
      out[map ? "value" : "element"] = read_type(r, x, type_depth + 1, layout);
    }
  }
  report(r, "container type", layout);
}

Json read_type(WireReader& parent, const Field& f, int type_depth, Layout& layout) {
  Json out = Json::object();
  if (type_depth > kMaxTypeDepth) {
    layout.add_error("types nest deeper than " + std::to_string(kMaxTypeDepth) + " levels");
    return out;
  }
  WireReader r(parent, f);
  Field x;
  while (r.next(x)) {
    switch (x.number) {
      case 1:
      case 8:
        out["type"] = x.number == 1 ? "tensor" : "sparse_tensor";
        read_tensor_type(r, x, out, layout);
        break;
      case 4:
      case 9:
        out["type"] = x.number == 4 ? "sequence" : "optional";
        read_container_type(r, x, false, type_depth, out, layout);
        break;
      case 5:
        out["type"] = "map";
        read_container_type(r, x, true, type_depth, out, layout);
        break;
      case 6:
        out["denotation"] = read_string(r, x, "type denotation", layout);
        break;
      default:
        break;
    }
  }
  report(r, "type", layout);
  return out;
}

// ValueInfoProto: name 1, type 2.
Json read_value_info(WireReader& graph, const Field& f, Layout& layout) {
  Json out = {{"name", ""}};
  WireReader r(graph, f);
  Field x;
  while (r.next(x)) {
    if (x.number == 1) out["name"] = read_string(r, x, "value name", layout);
    if (x.number == 2) out.update(read_type(r, x, 0, layout));
  }
  report(r, "value info", layout);
  return out;
}

struct GraphCounts {
  uint64_t nodes = 0;
  uint64_t initializers = 0;
  uint64_t inputs = 0;
  uint64_t outputs = 0;
  uint64_t value_infos = 0;
};

void list_value(WireReader& g, const Field& x, uint64_t& count, Json& list, const char* what,
                Layout& layout) {
  if (++count > kMaxListedValues) {
    if (count == kMaxListedValues + 1)
      layout.add_error(std::string("more than ") + std::to_string(kMaxListedValues) + " graph " +
                       what + "; the rest are counted, not listed");
    return;
  }
  list.push_back(read_value_info(g, x, layout));
}

Json read_graph(WireReader& model, const Field& f, Layout& layout, Json& initializers,
                uint64_t& initializer_count) {
  Json graph = {{"name", ""}};
  Json inputs = Json::array();
  Json outputs = Json::array();
  GraphCounts n;
  WireReader g(model, f);
  Field x;
  while (g.next(x)) {
    if (x.number == 1) {
      ++n.nodes;
    } else if (x.number == 2) {
      graph["name"] = read_string(g, x, "graph name", layout);
    } else if (x.number == 5) {
      if (n.initializers++ == kMaxInitializers) {
        layout.add_error("more than " + std::to_string(kMaxInitializers) +
                         " initializers; the rest are counted, not shown");
      }
      if (n.initializers <= kMaxInitializers) {
        const std::string what = "initializer " + std::to_string(n.initializers - 1);
        add_initializer(read_tensor(g, x, what, layout), n.initializers - 1, layout, initializers);
      }
    } else if (x.number == 11) {
      list_value(g, x, n.inputs, inputs, "inputs", layout);
    } else if (x.number == 12) {
      list_value(g, x, n.outputs, outputs, "outputs", layout);
    } else if (x.number == 13) {
      ++n.value_infos;
    }
  }
  report(g, "graph", layout);
  graph["node_count"] = n.nodes;
  graph["input_count"] = n.inputs;
  graph["output_count"] = n.outputs;
  graph["inputs"] = std::move(inputs);
  graph["outputs"] = std::move(outputs);
  graph["value_info_count"] = n.value_infos;
  initializer_count = n.initializers;
  return graph;
}

// OperatorSetIdProto: domain 1, version 2.
Json read_opset(WireReader& model, const Field& f, Layout& layout) {
  Json out = {{"domain", ""}, {"version", 0}};
  WireReader r(model, f);
  Field x;
  while (r.next(x)) {
    if (x.number == 1) out["domain"] = read_string(r, x, "opset domain", layout);
    if (x.number == 2) out["version"] = static_cast<int64_t>(x.value);
  }
  report(r, "opset_import", layout);
  return out;
}

}  // namespace

void read_model(const ByteSource& source, Layout& layout) {
  BinaryReader file(source, Endian::little);
  WireReader m(file);
  auto& h = layout.header;
  h["ir_version"] = nullptr;
  for (const char* key : {"producer_name", "producer_version", "domain"}) h[key] = "";
  h["model_version"] = 0;
  h["opset_import"] = Json::array();
  h["metadata_props"] = Json::object();
  h["graph"] = nullptr;
  Json initializers = Json::object();
  uint64_t initializer_count = 0;
  uint64_t dropped_opsets = 0;
  uint64_t dropped_props = 0;
  Field x;
  while (m.next(x)) {
    const bool is_len = x.type == WireType::len;
    if (x.number == 1 && !is_len) {
      h["ir_version"] = static_cast<int64_t>(x.value);
    } else if (x.number >= 2 && x.number <= 4) {
      const char* key = x.number == 2   ? "producer_name"
                        : x.number == 3 ? "producer_version"
                                        : "domain";
      h[key] = read_string(m, x, key, layout);
    } else if (x.number == 5 && !is_len) {
      h["model_version"] = static_cast<int64_t>(x.value);
    } else if (x.number == 7 && is_len) {
      if (!h["graph"].is_null()) layout.add_error("a second graph field; only the first is read");
      if (h["graph"].is_null())
        h["graph"] = read_graph(m, x, layout, initializers, initializer_count);
    } else if (x.number == 8 && is_len) {
      if (h["opset_import"].size() < kMaxOpsets) {
        h["opset_import"].push_back(read_opset(m, x, layout));
      } else if (++dropped_opsets == 1) {
        layout.add_error("more than " + std::to_string(kMaxOpsets) +
                         " opset imports; the rest "
                         "are not listed");
      }
    } else if (x.number == 14 && is_len) {
      if (h["metadata_props"].size() < kMaxMetadataProps) {
        auto [key, value] = read_entry(m, x, "metadata_props", layout);
        h["metadata_props"][key] = value;
      } else if (++dropped_props == 1) {
        layout.add_error("more than " + std::to_string(kMaxMetadataProps) +
                         " metadata properties; the rest are not listed");
      }
    }
  }
  report(m, "model", layout);
  if (h["ir_version"].is_null()) layout.add_error("the model has no ir_version");
  if (h["graph"].is_null()) layout.add_error("the model has no graph");
  h["initializer_count"] = initializer_count;
  h["initializers"] = std::move(initializers);
}

}  // namespace payloadfs::onnx

// netCDF classic files (the NetCDF Classic and 64-bit Offset Format spec, and CDF-5 from
// PnetCDF): "CDF" and a version byte (1 classic, 2 64-bit offset, 5 64-bit data), then a
// big-endian header: numrecs, dim_list, gatt_list, var_list (each variable with its dimension
// ids, attributes, nc_type, vsize and begin). Non-record variables are stored whole at `begin`;
// record variables are interleaved, one record of each after the other, every record `recsize`
// bytes apart (the sum of the record variables' padded sizes; a single record variable is not
// padded). Counts and sizes are 32-bit (64-bit in CDF-5); begin is 32-bit in CDF-1, 64 otherwise.

#include <algorithm>
#include <string>
#include <vector>

#include "core/formats/builtin.hpp"
#include "core/formats/support/signature.hpp"
#include "core/io/binary_reader.hpp"
#include "core/io/checked_math.hpp"
#include "core/render/json_text.hpp"

namespace payloadfs::formats {
namespace {

constexpr uint64_t kMagicBytes = 4;
constexpr uint32_t kTagDimension = 0x0A;
constexpr uint32_t kTagVariable = 0x0B;
constexpr uint32_t kTagAttribute = 0x0C;
// Named limits (netCDF-C's own are lower: NC_MAX_DIMS 1024, NC_MAX_VAR_DIMS 1024, NC_MAX_NAME 256).
constexpr uint64_t kMaxDimensions = 4096;
constexpr uint64_t kMaxVariables = 65536;
constexpr uint64_t kMaxAttributes = 4096;  // per list
constexpr uint64_t kMaxVariableDims = 1024;
constexpr uint64_t kMaxNameBytes = 4096;
// Attribute values shown in the header; longer attributes show their type and count only.
constexpr uint64_t kMaxAttributeValues = 1024;
constexpr uint64_t kMaxAttributeTextBytes = 64 << 10;
// Record slices (variables times records) per file; the rest are reported, not listed.
constexpr uint64_t kMaxRecordSlices = 100'000;

struct Version {
  uint8_t number = 0;
  uint64_t count_bytes = 4;   // nelems, dimension lengths, dimension ids, vsize, numrecs
  uint64_t offset_bytes = 4;  // begin
};

struct NcType {
  const char* dtype;
  uint64_t size;
};

// nc_type 1..11 as NumPy typestrs (big-endian, as stored).
std::optional<NcType> nc_type_of(uint32_t type) {
  static constexpr NcType kTypes[] = {{"|i1", 1}, {"|S1", 1}, {">i2", 2}, {">i4", 4},
                                      {">f4", 4}, {">f8", 8}, {"|u1", 1}, {">u2", 2},
                                      {">u4", 4}, {">i8", 8}, {">u8", 8}};
  if (type < 1 || type > 11) return std::nullopt;
  return kTypes[type - 1];
}

struct Dimension {
  std::string name;
  uint64_t length = 0;  // 0: the record (unlimited) dimension
};

struct Variable {
  std::string name;
  std::vector<uint64_t> dimids;
  Json attributes = Json::object();
  NcType type{};
  uint64_t vsize = 0;
  uint64_t begin = 0;
  bool record = false;
  bool valid = false;           // its dimensions resolve
  std::vector<uint64_t> shape;  // without the record dimension for a record variable
  uint64_t data_bytes = 0;      // the whole variable, or one record
};

uint64_t count(BinaryReader& r, const Version& v) {
  return v.count_bytes == 8 ? r.u64() : r.u32();
}

uint64_t padded4(uint64_t n) {
  return n + (4 - n % 4) % 4;
}

std::string read_name(BinaryReader& r, const Version& v) {
  const uint64_t length = count(r, v);
  if (!r.ok()) return {};
  if (length > kMaxNameBytes) {
    r.fail("name of " + std::to_string(length) + " bytes at offset " + std::to_string(r.tell()) +
           ", above the limit of " + std::to_string(kMaxNameBytes));
    return {};
  }
  std::string name = utf8_or_escaped(r.text(length, kMaxNameBytes));
  r.skip(padded4(length) - length);
  return name;
}

// Reads a list's tag and element count; an ABSENT list (two zeros) gives 0.
uint64_t list_count(BinaryReader& r, const Version& v, uint32_t tag, uint64_t limit,
                    const char* what) {
  const uint32_t got = r.u32();
  const uint64_t n = count(r, v);
  if (!r.ok()) return 0;
  if (got == 0 && n == 0) return 0;
  if (got != tag) {
    r.fail(std::string(what) + " list: tag " + std::to_string(got) + " where " +
           std::to_string(tag) + " was expected");
    return 0;
  }
  if (n > limit) {
    r.fail(std::string(what) + " list of " + std::to_string(n) + " elements, above the limit of " +
           std::to_string(limit));
    return 0;
  }
  return n;
}

Json read_value(BinaryReader& r, uint32_t type) {
  switch (type) {
    case 1:
      return r.i8();
    case 3:
      return r.i16();
    case 4:
      return r.i32();
    case 5:
      return r.f32();
    case 6:
      return r.f64();
    case 7:
      return r.u8();
    case 8:
      return r.u16();
    case 9:
      return r.u32();
    case 10:
      return r.i64();
    default:
      return r.u64();
  }
}

// One attribute's values: text for NC_CHAR (trailing NULs dropped), a number for one value, a
// list otherwise; large ones as their type and count.
Json read_attribute_values(BinaryReader& r, uint32_t type, const NcType& nc, uint64_t n) {
  const auto bytes = checked_mul(n, nc.size);
  if (!bytes || !r.need(padded4(*bytes))) {
    if (r.ok()) r.fail("attribute of " + std::to_string(n) + " values does not fit the header");
    return nullptr;
  }
  const uint64_t end = r.tell() + padded4(*bytes);
  Json value;
  if (type == 2 && n <= kMaxAttributeTextBytes) {
    std::string text = utf8_or_escaped(r.text(n, kMaxAttributeTextBytes));
    while (!text.empty() && text.back() == '\0') text.pop_back();
    value = std::move(text);
  } else if (type != 2 && n == 1) {
    value = read_value(r, type);
  } else if (type != 2 && n <= kMaxAttributeValues) {
    value = Json::array();
    for (uint64_t i = 0; i < n; ++i) value.push_back(read_value(r, type));
  } else {
    value = Json{{"dtype", nc.dtype}, {"count", n}, {"values", "not shown (too many)"}};
  }
  r.seek(end);
  return value;
}

Json read_attributes(BinaryReader& r, const Version& v) {
  Json attributes = Json::object();
  const uint64_t n = list_count(r, v, kTagAttribute, kMaxAttributes, "attribute");
  for (uint64_t i = 0; i < n && r.ok(); ++i) {
    std::string name = read_name(r, v);
    const uint32_t type = r.u32();
    const uint64_t values = count(r, v);
    if (!r.ok()) break;
    const auto nc = nc_type_of(type);
    if (!nc) {
      r.fail("attribute " + name + ": unknown nc_type " + std::to_string(type));
      break;
    }
    Json value = read_attribute_values(r, type, *nc, values);
    if (r.ok()) attributes[name] = std::move(value);
  }
  return attributes;
}

std::vector<Dimension> read_dimensions(BinaryReader& r, const Version& v) {
  std::vector<Dimension> dims;
  const uint64_t n = list_count(r, v, kTagDimension, kMaxDimensions, "dimension");
  for (uint64_t i = 0; i < n && r.ok(); ++i) {
    Dimension d;
    d.name = read_name(r, v);
    d.length = count(r, v);
    if (r.ok()) dims.push_back(std::move(d));
  }
  return dims;
}

// Resolves a variable's dimensions into its shape and data size; false (error added) when
// they are invalid.
bool shape_variable(Variable& var, const std::vector<Dimension>& dims, Layout& layout) {
  uint64_t bytes = var.type.size;
  for (size_t i = 0; i < var.dimids.size(); ++i) {
    if (var.dimids[i] >= dims.size()) {
      layout.add_error("variable " + var.name + ": dimension id " + std::to_string(var.dimids[i]) +
                       " is not in the dimension list");
      return false;
    }
    const uint64_t length = dims[var.dimids[i]].length;
    if (length == 0 && i == 0) {
      var.record = true;
      continue;
    }
    const auto next = checked_mul(bytes, length);
    if (length == 0 || !next) {
      layout.add_error("variable " + var.name +
                       (length == 0 ? ": the record dimension is not its first"
                                    : ": its size overflows 64 bits"));
      return false;
    }
    bytes = *next;
    var.shape.push_back(length);
  }
  var.data_bytes = bytes;
  return true;
}

std::optional<Variable> read_variable(BinaryReader& r, const Version& v) {
  Variable var;
  var.name = read_name(r, v);
  const uint64_t ndims = count(r, v);
  if (r.ok() && ndims > kMaxVariableDims) {
    r.fail("variable " + var.name + " has " + std::to_string(ndims) +
           " dimensions, above the limit of " + std::to_string(kMaxVariableDims));
  }
  for (uint64_t i = 0; i < ndims && r.ok(); ++i) var.dimids.push_back(count(r, v));
  var.attributes = read_attributes(r, v);
  const uint32_t type = r.u32();
  var.vsize = count(r, v);
  var.begin = v.offset_bytes == 8 ? r.u64() : r.u32();
  if (!r.ok()) return std::nullopt;
  const auto nc = nc_type_of(type);
  if (!nc) {
    r.fail("variable " + var.name + ": unknown nc_type " + std::to_string(type));
    return std::nullopt;
  }
  var.type = *nc;
  return var;
}

struct Header {
  Version version;
  uint64_t numrecs = 0;
  bool streaming = false;
  uint64_t records = 0;  // numrecs, or for a streaming file the whole records that fit
  std::vector<Dimension> dims;
  Json attributes = Json::object();
  std::vector<Variable> vars;
};

std::optional<Header> read_header(const ByteSource& source, Layout& layout) {
  BinaryReader r(source, Endian::big);
  Header h;
  r.skip(3);
  h.version.number = r.u8();
  if (h.version.number == 5) h.version.count_bytes = 8;
  if (h.version.number != 1) h.version.offset_bytes = 8;
  h.numrecs = count(r, h.version);
  h.streaming = h.numrecs == (h.version.count_bytes == 8 ? UINT64_MAX : UINT32_MAX);
  h.dims = read_dimensions(r, h.version);
  if (r.ok()) h.attributes = read_attributes(r, h.version);
  const uint64_t nvars =
      r.ok() ? list_count(r, h.version, kTagVariable, kMaxVariables, "variable") : 0;
  for (uint64_t i = 0; i < nvars && r.ok(); ++i) {
    auto var = read_variable(r, h.version);
    if (var) h.vars.push_back(std::move(*var));
  }
  if (!r.ok()) {
    layout.add_error("header: " + *r.error());
    return std::nullopt;
  }
  return h;
}

Json dimension_names(const Variable& var, const std::vector<Dimension>& dims) {
  Json names = Json::array();
  for (const uint64_t id : var.dimids) names.push_back(id < dims.size() ? dims[id].name : "");
  return names;
}

void describe_header(const Header& h, Layout& layout) {
  auto& out = layout.header;
  out["version"] = h.version.number;
  out["format"] = h.version.number == 1   ? "classic"
                  : h.version.number == 2 ? "64-bit offset"
                                          : "64-bit data (CDF-5)";
  out["numrecs"] = h.numrecs;
  if (h.streaming) {
    out["numrecs_streaming"] = true;
    out["records_in_file"] = h.records;
  }
  Json dims = Json::object();
  for (const auto& d : h.dims) dims[d.name] = d.length == 0 ? h.records : d.length;
  out["dimensions"] = std::move(dims);
  for (const auto& d : h.dims)
    if (d.length == 0) out["unlimited_dimension"] = d.name;
  out["attributes"] = h.attributes;
  Json vars = Json::object();
  for (const auto& var : h.vars) {
    Json shape = Json::array();
    if (var.record) shape.push_back(h.records);
    for (const uint64_t n : var.shape) shape.push_back(n);
    vars[var.name] = Json{{"dtype", var.type.dtype},
                          {"shape", var.valid ? shape : Json(nullptr)},
                          {"dimensions", dimension_names(var, h.dims)},
                          {"attributes", var.attributes},
                          {"record", var.record},
                          {"vsize", var.vsize},
                          {"begin", var.begin}};
  }
  out["variables"] = std::move(vars);
}

// The record stride: the record variables' sizes padded to 4, except a lone record variable.
uint64_t record_stride(const std::vector<Variable>& vars, Layout& layout) {
  uint64_t stride = 0;
  uint64_t record_vars = 0;
  uint64_t lone = 0;
  for (const auto& var : vars) {
    if (!var.valid || !var.record) continue;
    ++record_vars;
    lone = var.data_bytes;
    const auto sum = checked_add(stride, padded4(var.data_bytes));
    if (!sum) {
      layout.add_error("the record size overflows 64 bits");
      return 0;
    }
    stride = *sum;
  }
  return record_vars == 1 ? lone : stride;
}

Json slice_attributes(const Variable& var, const Json& dimensions) {
  return Json{{"dtype", var.type.dtype}, {"shape", var.shape}, {"dimensions", dimensions}};
}

// vsize is the padded size; CDF-2 writes 2^32-1 for a variable over 4 GiB (it does not fit).
void check_vsize(const Variable& var, uint8_t version, Layout& layout) {
  if (var.vsize == padded4(var.data_bytes)) return;
  if (version != 5 && var.vsize == UINT32_MAX && padded4(var.data_bytes) > UINT32_MAX) return;
  if (var.record && var.vsize == var.data_bytes) return;
  layout.add_error("variable " + var.name + ": vsize " + std::to_string(var.vsize) +
                   " disagrees with its shape (" + std::to_string(var.data_bytes) +
                   " bytes); the shape is used");
}

void add_fixed_slice(const Variable& var, const Json& dims, uint64_t size, Layout& layout) {
  if (!range_within(var.begin, var.data_bytes, size)) {
    layout.add_error("variable " + var.name + ": " + std::to_string(var.data_bytes) +
                     " bytes at begin " + std::to_string(var.begin) +
                     " pass the end of the file (size " + std::to_string(size) + ")");
    return;
  }
  layout.slices.push_back(
      Slice{var.name, {var.begin, var.data_bytes}, slice_attributes(var, dims)});
}

// One slice per record of a record variable, while they fit the file and the slice budget.
void add_record_slices(const Variable& var, const Json& dims, uint64_t numrecs, uint64_t stride,
                       uint64_t size, uint64_t& budget, Layout& layout) {
  for (uint64_t rec = 0; rec < numrecs; ++rec) {
    const auto step = checked_mul(rec, stride);
    const auto offset = step ? checked_add(var.begin, *step) : std::nullopt;
    if (!offset || !range_within(*offset, var.data_bytes, size)) {
      layout.add_error("variable " + var.name + ": record " + std::to_string(rec) +
                       " passes the end of the file (size " + std::to_string(size) + ")");
      return;
    }
    if (budget == 0) {
      layout.add_error("more than " + std::to_string(kMaxRecordSlices) +
                       " record slices; variable " + var.name + " from record " +
                       std::to_string(rec) + " is not listed");
      return;
    }
    --budget;
    layout.slices.push_back(Slice{var.name + "/" + std::to_string(rec),
                                  {*offset, var.data_bytes},
                                  slice_attributes(var, dims)});
  }
}

// Streaming files (numrecs all ones) hold as many whole records as fit after the first.
uint64_t records_in(const Header& h, uint64_t stride, uint64_t size) {
  if (!h.streaming) return h.numrecs;
  uint64_t first = UINT64_MAX;
  for (const auto& var : h.vars)
    if (var.valid && var.record) first = std::min(first, var.begin);
  if (stride == 0 || first >= size) return 0;
  return (size - first) / stride;
}

void add_slices(Header& h, uint64_t size, Layout& layout) {
  for (auto& var : h.vars) var.valid = shape_variable(var, h.dims, layout);
  const uint64_t stride = record_stride(h.vars, layout);
  h.records = records_in(h, stride, size);
  const uint64_t numrecs = h.records;
  uint64_t budget = kMaxRecordSlices;
  for (const auto& var : h.vars) {
    if (!var.valid) continue;
    check_vsize(var, h.version.number, layout);
    const Json dims = dimension_names(var, h.dims);
    if (var.record)
      add_record_slices(var, dims, numrecs, stride, size, budget, layout);
    else
      add_fixed_slice(var, dims, size, layout);
  }
}

class NetCdf final : public Format {
 public:
  std::string_view name() const noexcept override { return "netcdf"; }
  std::string_view description() const noexcept override {
    return "netCDF classic file (CDF-1 classic, CDF-2 64-bit offset, CDF-5 64-bit data)";
  }
  std::string_view signature() const noexcept override {
    return "43 44 46 01 / 02 / 05 ('CDF' and the version) at 0";
  }

  bool detect(std::span<const std::byte> head, uint64_t) const override {
    if (head.size() < kMagicBytes || !starts_with(head, byte_string("CDF"))) return false;
    const auto version = static_cast<uint8_t>(head[3]);
    return version == 1 || version == 2 || version == 5;
  }

  Layout parse(const ByteSource& source) const override {
    Layout layout;
    layout.magic = ByteRange{0, kMagicBytes};
    auto header = read_header(source, layout);
    if (!header) return layout;
    add_slices(*header, source.size(), layout);
    describe_header(*header, layout);
    return layout;
  }
};

}  // namespace

std::unique_ptr<Format> make_netcdf() {
  return std::make_unique<NetCdf>();
}

}  // namespace payloadfs::formats

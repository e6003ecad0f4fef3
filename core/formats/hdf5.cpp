// HDF5 (File Format Specification 3.0; netCDF-4 files are HDF5 files): the superblock, the
// objects reachable from the root group (support/hdf5_objects), what their messages say
// (support/hdf5_messages) and where chunked datasets' chunks are (support/hdf5_chunks).
// A contiguous or compact dataset is one slice named by its path; a chunked dataset is a
// table of its allocated chunks named by their grid coordinates (`<path>/<i>.<j>`, zarr's
// chunk keys), and one zarr array in refs.json with the zarr codecs of its filters.

#include <algorithm>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/formats/builtin.hpp"
#include "core/formats/support/hdf5_chunks.hpp"
#include "core/formats/support/hdf5_messages.hpp"
#include "core/formats/support/hdf5_objects.hpp"
#include "core/formats/support/signature.hpp"
#include "core/io/checked_math.hpp"
#include "core/render/json_text.hpp"

namespace payloadfs::formats {
namespace {

using hdf5::Message;
using hdf5::Object;

constexpr auto kSignature = byte_string("\x89HDF\r\n\x1a\n");
// Where detection looks for the superblock: 0, then after a user block of 512, 1024, 2048
// bytes (larger user blocks put it past the head detection sees).
constexpr uint64_t kDetectOffsets[] = {0, 512, 1024, 2048};
// Attributes decoded into header.json per object.
constexpr size_t kMaxAttributesPerObject = 1024;

// The messages of one object a dataset needs, the first of each type.
struct DatasetMessages {
  const Message* datatype = nullptr;
  const Message* dataspace = nullptr;
  const Message* layout = nullptr;
  const Message* pipeline = nullptr;
  const Message* fill_value = nullptr;
  const Message* old_fill_value = nullptr;
};

DatasetMessages messages_of(const Object& object) {
  DatasetMessages m;
  const auto keep = [](const Message*& slot, const Message& message) {
    if (slot == nullptr) slot = &message;
  };
  for (const auto& message : object.messages) {
    switch (message.type) {
      case hdf5::kDatatype:
        keep(m.datatype, message);
        break;
      case hdf5::kDataspace:
        keep(m.dataspace, message);
        break;
      case hdf5::kDataLayout:
        keep(m.layout, message);
        break;
      case hdf5::kFilterPipeline:
        keep(m.pipeline, message);
        break;
      case hdf5::kFillValue:
        keep(m.fill_value, message);
        break;
      case hdf5::kFillValueOld:
        keep(m.old_fill_value, message);
        break;
      default:
        break;
    }
  }
  return m;
}

// name -> value of the object's attributes, in header order.
Json attributes_of(const ByteSource& file, const hdf5::Sizes& sizes, const Object& object,
                   Layout& layout) {
  Json out = Json::object();
  size_t count = 0;
  for (const auto& message : object.messages) {
    if (message.type != hdf5::kAttribute) continue;
    if (++count > kMaxAttributesPerObject) {
      layout.add_error(object.path + ": more than " + std::to_string(kMaxAttributesPerObject) +
                       " attributes; the rest are not shown");
      break;
    }
    std::string error;
    auto attribute = hdf5::parse_attribute(file, sizes, message.body, error);
    if (!attribute) {
      layout.add_error(object.path + ": attribute at offset " +
                       std::to_string(message.body.offset) + ": " + error);
      continue;
    }
    out[utf8_or_escaped(attribute->name)] = std::move(attribute->value);
  }
  return out;
}

// Shape as JSON, and maxshape with null for unlimited dimensions (h5py's maxshape).
Json max_shape_json(const hdf5::Dataspace& space) {
  Json out = Json::array();
  for (const uint64_t d : space.max_dims) out.push_back(d == hdf5::kUnlimited ? Json() : Json(d));
  return out;
}

uint64_t element_count(const hdf5::Dataspace& space) {
  if (space.null) return 0;
  uint64_t n = 1;
  for (const uint64_t d : space.dims) n = checked_mul(n, d).value_or(UINT64_MAX);
  return n;
}

const char* layout_name(hdf5::DataLayout::Class c) {
  switch (c) {
    case hdf5::DataLayout::Class::compact:
      return "compact";
    case hdf5::DataLayout::Class::contiguous:
      return "contiguous";
    case hdf5::DataLayout::Class::chunked:
      return "chunked";
    case hdf5::DataLayout::Class::virtual_dataset:
      return "virtual";
  }
  return "unknown";
}

// What a dataset is made of, parsed from its messages; nullopt (with an error) when its
// type, space or layout cannot be read.
struct Dataset {
  std::string name;  // the path without its leading '/'
  hdf5::Datatype type;
  hdf5::Dataspace space;
  hdf5::DataLayout data_layout;
  std::vector<hdf5::Filter> filters;
  Json fill_value = nullptr;
  // The dataspace's dims, then an array-class element's own dims (NumPy's view of it).
  std::vector<uint64_t> shape;
  std::vector<std::string> dimensions;  // its axes' dimension scales, when each has one
};

// Object header file offset -> the object's name (the last component of its path).
using ObjectNames = std::map<uint64_t, std::string>;

std::string base_name(const std::string& path) {
  return path.substr(path.rfind('/') + 1);
}

// The names of a dataset's dimensions, as netCDF-4 names them: a dimension scale (CLASS =
// DIMENSION_SCALE, rank 1) is its own dimension; another dataset's DIMENSION_LIST attribute
// refers to a scale per axis (object references: addresses). Empty unless every axis has one.
std::vector<std::string> dimension_names(const Json& attributes, const Object& object, size_t rank,
                                         const ObjectNames& names, uint64_t base) {
  const auto scale = attributes.find("CLASS");
  if (scale != attributes.end() && *scale == "DIMENSION_SCALE" && rank == 1)
    return {base_name(object.path)};
  const auto list = attributes.find("DIMENSION_LIST");
  if (list == attributes.end() || !list->is_array() || list->size() != rank) return {};
  std::vector<std::string> out;
  for (const auto& axis : *list) {
    // References decode as numbers, signed or not as the JSON library built them.
    if (!axis.is_array() || axis.empty() || !axis[0].is_number_integer()) return {};
    if (!axis[0].is_number_unsigned() && axis[0].get<int64_t>() < 0) return {};
    const auto offset = checked_add(base, axis[0].get<uint64_t>());
    const auto name = offset ? names.find(*offset) : names.end();
    if (name == names.end() || name->second.empty()) return {};
    out.push_back(name->second);
  }
  return out;
}

// An array-class element's dims (the datatype's description has them).
std::vector<uint64_t> element_dims(const hdf5::Datatype& type) {
  std::vector<uint64_t> dims;
  const auto it = type.description.find("dims");
  if (type.hdf5_class != "array" || it == type.description.end() || !it->is_array()) return dims;
  for (const auto& d : *it)
    if (d.is_number_unsigned()) dims.push_back(d.get<uint64_t>());
  return dims;
}

std::optional<Dataset> read_dataset(const ByteSource& file, const hdf5::Sizes& sizes,
                                    const Object& object, Layout& layout) {
  const DatasetMessages m = messages_of(object);
  const auto fail = [&](const std::string& what) {
    layout.add_error("dataset " + object.path + ": " + what);
    return std::nullopt;
  };
  if (m.datatype == nullptr || m.dataspace == nullptr || m.layout == nullptr)
    return fail("no datatype, dataspace or data layout message");
  Dataset d;
  d.name = object.path.substr(object.path.starts_with('/') ? 1 : 0);
  std::string error;
  auto type = hdf5::parse_datatype(file, m.datatype->body, error);
  if (!type) return fail("datatype: " + error);
  d.type = std::move(*type);
  auto space = hdf5::parse_dataspace(file, sizes, m.dataspace->body, error);
  if (!space) return fail("dataspace: " + error);
  d.space = std::move(*space);
  auto data_layout = hdf5::parse_layout(file, sizes, m.layout->body, error);
  if (!data_layout) return fail("data layout: " + error);
  d.data_layout = std::move(*data_layout);
  if (m.pipeline != nullptr) {
    auto filters = hdf5::parse_filter_pipeline(file, m.pipeline->body, error);
    if (!filters) return fail("filter pipeline: " + error);
    d.filters = std::move(*filters);
  }
  d.shape = d.space.dims;
  for (const uint64_t n : element_dims(d.type)) d.shape.push_back(n);
  const Message* fill = m.fill_value != nullptr ? m.fill_value : m.old_fill_value;
  if (fill != nullptr) {
    error.clear();
    d.fill_value =
        hdf5::parse_fill_value(file, fill->body, fill == m.old_fill_value, d.type, error);
    if (!error.empty()) layout.add_error("dataset " + object.path + ": fill value: " + error);
  }
  return d;
}

Json filter_names(const std::vector<hdf5::Filter>& filters, uint32_t skipped_mask = 0) {
  Json names = Json::array();
  for (size_t i = 0; i < filters.size(); ++i)
    if (i >= 32 || (skipped_mask & (uint32_t{1} << i)) == 0) names.push_back(filters[i].name);
  return names;
}

// The attributes every slice or chunk of the dataset carries.
Json dataset_attributes(const Dataset& d) {
  Json a = Json::object();
  if (!d.type.dtype.is_null()) a["dtype"] = d.type.dtype;
  a["shape"] = d.shape;
  if (!d.dimensions.empty() && d.dimensions.size() == d.shape.size())
    a["dimensions"] = d.dimensions;
  a["hdf5_class"] = d.type.hdf5_class;
  return a;
}

// The header.json entry of a dataset.
Json describe_dataset(const Dataset& d, Json attributes) {
  Json e = Json::object();
  e["dtype"] = d.type.dtype;
  e["type"] = d.type.description;
  e["shape"] = d.shape;
  e["maxshape"] = max_shape_json(d.space);
  if (!d.dimensions.empty()) e["dimensions"] = d.dimensions;
  e["layout"] = layout_name(d.data_layout.layout_class);
  if (d.data_layout.layout_class == hdf5::DataLayout::Class::chunked)
    e["chunks"] = d.data_layout.chunk_index.chunk_dims;
  e["filters"] = filter_names(d.filters);
  e["fill_value"] = d.fill_value;
  e["attributes"] = std::move(attributes);
  return e;
}

// A contiguous or compact dataset's slice, when its bytes lie inside the file.
void add_stored_slice(const Dataset& d, ByteRange range, uint64_t file_size, Layout& layout) {
  if (!range_within(range.offset, range.length, file_size)) {
    layout.add_error("dataset /" + d.name + ": its " + std::to_string(range.length) +
                     " bytes at offset " + std::to_string(range.offset) +
                     " run past the end of the file");
    return;
  }
  layout.slices.push_back(Slice{d.name, range, dataset_attributes(d)});
}

// The chunk grid: chunks per dimension over the current dimensions.
std::vector<uint64_t> chunk_grid(const Dataset& d) {
  std::vector<uint64_t> grid;
  const auto& chunk = d.data_layout.chunk_index.chunk_dims;
  for (size_t i = 0; i < d.space.dims.size() && i < chunk.size(); ++i)
    grid.push_back(chunk[i] == 0 ? 0
                                 : d.space.dims[i] / chunk[i] + (d.space.dims[i] % chunk[i] != 0));
  return grid;
}

// The grid coordinates of chunk `index` (row-major, the last dimension fastest).
Json grid_coordinates(uint64_t index, const std::vector<uint64_t>& grid) {
  std::vector<uint64_t> at(grid.size());
  for (size_t d = grid.size(); d-- > 0;) {
    at[d] = grid[d] == 0 ? 0 : index % grid[d];
    index = grid[d] == 0 ? 0 : index / grid[d];
  }
  return at;
}

// A chunked dataset: its allocated chunks as a table named by grid coordinates, and a zarr
// array for refs.json when zarr has codecs for its filters.
void add_chunked(const ByteSource& file, const hdf5::Sizes& sizes, const Object& object,
                 const Dataset& d, Layout& layout) {
  hdf5::ChunkIndex index = d.data_layout.chunk_index;
  if (index.chunk_dims.size() != d.space.dims.size()) {
    layout.add_error("dataset " + object.path + ": chunks of rank " +
                     std::to_string(index.chunk_dims.size()) + " for a dataspace of rank " +
                     std::to_string(d.space.dims.size()));
    return;
  }
  index.dims = d.space.dims;
  index.max_dims = d.space.max_dims;
  index.filtered = !d.filters.empty();
  std::vector<hdf5::Chunk> chunks;
  std::vector<std::string> errors;
  hdf5::list_chunks(file, sizes, index, chunks, errors);
  for (auto& e : errors) layout.add_error("dataset " + object.path + ": " + e);
  std::sort(chunks.begin(), chunks.end(),
            [](const auto& a, const auto& b) { return a.index < b.index; });
  RecordTable table;
  table.dir = d.name;
  table.grid = chunk_grid(d);
  auto masks = std::make_shared<std::map<uint32_t, uint32_t>>();
  bool too_large = false;
  for (const auto& c : chunks) {
    if (!table.records.empty() && c.index <= table.records.back().tag) continue;
    if (c.size > UINT32_MAX || c.index > UINT32_MAX) {
      too_large = true;
      continue;
    }
    const auto tag = static_cast<uint32_t>(c.index);
    table.records.push_back(Record{c.offset, static_cast<uint32_t>(c.size), tag});
    if (c.filter_mask != 0) (*masks)[tag] = c.filter_mask;
  }
  if (too_large)
    layout.add_error("dataset " + object.path +
                     ": chunks of 4 GiB or more, or past the 2^32nd, are not listed");
  Json base = dataset_attributes(d);
  base["chunks"] = index.chunk_dims;
  table.attributes = [base = std::move(base), masks, grid = table.grid, filters = d.filters](
                         const ByteSource&, const Record& record) {
    Json a = base;
    a["chunk"] = grid_coordinates(record.tag, grid);
    const auto mask = masks->find(record.tag);
    a["filters"] = filter_names(filters, mask == masks->end() ? 0 : mask->second);
    if (mask != masks->end()) a["filter_mask"] = mask->second;
    return a;
  };
  const size_t table_index = layout.tables.size();
  layout.tables.push_back(std::move(table));
  // Array-class elements would need chunk keys of a higher rank than the grid's.
  if (d.type.dtype.is_null() || !masks->empty() || d.shape.size() != d.space.dims.size()) return;
  // Edge chunks left unfiltered (layout flag bit 0) would not decode as zarr chunks.
  if (!d.filters.empty() && (index.layout_flags & 1) != 0) return;
  const auto codecs = hdf5::zarr_codecs(d.filters, d.type.size);
  if (!codecs) return;
  ChunkedArray array;
  array.name = d.name;
  array.dtype = d.type.dtype;
  array.shape = d.space.dims;
  array.chunks = index.chunk_dims;
  array.compressor = codecs->compressor;
  array.filters = codecs->filters;
  array.fill_value = d.fill_value;
  array.dimensions = d.dimensions;
  array.table = table_index;
  layout.chunked_arrays.push_back(std::move(array));
}

void add_dataset(const ByteSource& file, const hdf5::Sizes& sizes, const Object& object,
                 const ObjectNames& names, Json& datasets, Layout& layout) {
  auto d = read_dataset(file, sizes, object, layout);
  if (!d) return;
  Json attributes = attributes_of(file, sizes, object, layout);
  d->dimensions = dimension_names(attributes, object, d->shape.size(), names, sizes.base);
  const auto& dl = d->data_layout;
  switch (dl.layout_class) {
    case hdf5::DataLayout::Class::compact:
      add_stored_slice(*d, dl.compact_data, file.size(), layout);
      break;
    case hdf5::DataLayout::Class::contiguous:
      // An undefined address: never written, every element reads as the fill value.
      if (dl.contiguous_address == hdf5::kUndefinedAddress || element_count(d->space) == 0) break;
      add_stored_slice(*d, ByteRange{dl.contiguous_address, dl.contiguous_size}, file.size(),
                       layout);
      break;
    case hdf5::DataLayout::Class::chunked:
      add_chunked(file, sizes, object, *d, layout);
      break;
    case hdf5::DataLayout::Class::virtual_dataset:
      break;  // its data is in other datasets, maybe other files: listed in the header only
  }
  datasets[utf8_or_escaped(object.path)] = describe_dataset(*d, std::move(attributes));
}

// The header: the superblock, the groups with their attributes, the datasets, named
// datatypes, and soft and external links.
void describe(const ByteSource& file, const hdf5::FileStructure& s, Layout& layout) {
  Json& h = layout.header;
  h["superblock_version"] = s.superblock.version;
  h["userblock_size"] = s.superblock.file_offset;
  h["size_of_offsets"] = s.superblock.sizes.offsets;
  h["size_of_lengths"] = s.superblock.sizes.lengths;
  Json groups = Json::object();
  Json datasets = Json::object();
  Json datatypes = Json::object();
  ObjectNames names;
  for (const auto& object : s.objects) names.emplace(object.address, base_name(object.path));
  for (const auto& object : s.objects) {
    const std::string path = utf8_or_escaped(object.path);
    switch (object.kind) {
      case hdf5::ObjectKind::group:
        groups[path] =
            Json{{"attributes", attributes_of(file, s.superblock.sizes, object, layout)}};
        break;
      case hdf5::ObjectKind::dataset:
        add_dataset(file, s.superblock.sizes, object, names, datasets, layout);
        break;
      case hdf5::ObjectKind::datatype: {
        const Message* m = messages_of(object).datatype;
        std::string error;
        auto type = m != nullptr ? hdf5::parse_datatype(file, m->body, error) : std::nullopt;
        datatypes[path] = type ? Json{{"dtype", type->dtype}, {"type", type->description}}
                               : Json{{"error", utf8_or_escaped(error)}};
        break;
      }
      case hdf5::ObjectKind::other:
        break;
    }
  }
  h["group_count"] = groups.size();
  h["dataset_count"] = datasets.size();
  h["groups"] = std::move(groups);
  h["datasets"] = std::move(datasets);
  if (!datatypes.empty()) h["datatypes"] = std::move(datatypes);
  Json links = Json::object();
  for (const auto& link : s.links) {
    links[utf8_or_escaped(link.path)] =
        Json{{"kind", link.kind}, {"target", utf8_or_escaped(link.target)}};
  }
  if (!links.empty()) h["links"] = std::move(links);
}

class Hdf5 final : public Format {
 public:
  std::string_view name() const noexcept override { return "hdf5"; }
  std::string_view description() const noexcept override {
    return "HDF5 file (superblock versions 0 to 3; netCDF-4 files too)";
  }
  std::string_view signature() const noexcept override {
    return "89 48 44 46 0d 0a 1a 0a ('\\x89HDF\\r\\n\\x1a\\n') at 0, 512, 1024 or 2048";
  }

  bool detect(std::span<const std::byte> head, uint64_t) const override {
    return std::any_of(std::begin(kDetectOffsets), std::end(kDetectOffsets),
                       [&](uint64_t at) { return matches_at(head, at, kSignature); });
  }

  Layout parse(const ByteSource& source) const override {
    Layout layout;
    layout.magic = ByteRange{0, kSignature.size()};
    std::vector<std::string> errors;
    const auto structure = hdf5::read_structure(source, errors);
    for (auto& e : errors) layout.add_error(std::move(e));
    if (!structure) {
      if (layout.errors.empty()) layout.add_error("no HDF5 superblock");
      return layout;
    }
    layout.magic = ByteRange{structure->superblock.file_offset, kSignature.size()};
    describe(source, *structure, layout);
    return layout;
  }
};

}  // namespace

std::unique_ptr<Format> make_hdf5() {
  return std::make_unique<Hdf5>();
}

}  // namespace payloadfs::formats

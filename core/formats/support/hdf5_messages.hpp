#pragma once
// What HDF5 object header messages say (File Format Specification 3.0, IV.A.2): datatypes as
// NumPy dtypes, dataspaces, fill values, filter pipelines (with their numcodecs equivalents
// for zarr), data layouts, and attributes with their values (variable-length data read from
// the global heap collections). Each function reads one message body through the
// bounds-checked reader and never throws; nullopt comes with `error` set.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/formats/support/hdf5_chunks.hpp"
#include "core/io/byte_source.hpp"
#include "core/model/layout.hpp"

namespace payloadfs::formats::hdf5 {

// Limits: members of a compound, nesting of compound/array/vlen types, dimensions of a
// dataspace, filters in a pipeline, bytes of an attribute value decoded into header.json.
inline constexpr unsigned kMaxCompoundMembers = 4096;
inline constexpr unsigned kMaxTypeDepth = 16;
inline constexpr unsigned kMaxRank = 32;
inline constexpr unsigned kMaxFilters = 32;
inline constexpr uint64_t kMaxAttributeValueBytes = 64 * 1024;

struct Datatype {
  // "integer", "float", "string", "compound", "array", "enum", "vlen", "vlen-string",
  // "reference", "opaque", "bitfield", "time".
  std::string hdf5_class;
  uint64_t size = 0;  // bytes per element as stored
  // The NumPy dtype in array-interface form ("<f4", ">i2", "|S10", "|b1" for h5py's enum
  // bool, [[name, dtype, shape?], ...] for compounds), or null when NumPy has no fixed-size
  // equivalent (variable-length data, references).
  Json dtype = nullptr;
  // A short description for header.json: class, size, byte order, members, enum names.
  Json description = Json::object();
};
[[nodiscard]] std::optional<Datatype> parse_datatype(const ByteSource& file, ByteRange body,
                                                     std::string& error);

struct Dataspace {
  bool scalar = false;  // rank 0, one element
  bool null = false;    // no elements
  std::vector<uint64_t> dims;
  std::vector<uint64_t> max_dims;  // kUnlimited where unlimited; equal to dims when absent
};
[[nodiscard]] std::optional<Dataspace> parse_dataspace(const ByteSource& file, const Sizes& sizes,
                                                       ByteRange body, std::string& error);

struct Filter {
  uint16_t id = 0;
  std::string name;  // HDF5's name: "deflate", "shuffle", "fletcher32", "szip", "nbit",
                     // "scaleoffset", or the name the pipeline gives, or "filter-<id>"
  bool optional = false;
  std::vector<uint32_t> client_data;
};
[[nodiscard]] std::optional<std::vector<Filter>> parse_filter_pipeline(const ByteSource& file,
                                                                       ByteRange body,
                                                                       std::string& error);

// zarr v2's "compressor" and "filters" for chunks written through `pipeline` (HDF5 applies
// its filters in pipeline order; zarr applies its filters in order, then the compressor):
// deflate -> zlib, shuffle -> shuffle with the element size, fletcher32 -> fletcher32, lzf,
// ... nullopt when a filter has no numcodecs equivalent (then the dataset gets no refs).
struct ZarrCodecs {
  Json compressor = nullptr;
  Json filters = nullptr;
};
[[nodiscard]] std::optional<ZarrCodecs> zarr_codecs(const std::vector<Filter>& pipeline,
                                                    uint64_t element_size);

struct DataLayout {
  enum class Class : uint8_t { compact, contiguous, chunked, virtual_dataset };
  Class layout_class = Class::contiguous;
  ByteRange compact_data;                           // compact: the raw data, in the message
  uint64_t contiguous_address = kUndefinedAddress;  // contiguous: file offset (base applied),
  uint64_t contiguous_size = 0;                     // undefined when never written
  // Chunked: type, address, chunk_dims, element_size and the version 4 index parameters;
  // the caller fills in dims, max_dims and filtered from the other messages.
  ChunkIndex chunk_index;
};
[[nodiscard]] std::optional<DataLayout> parse_layout(const ByteSource& file, const Sizes& sizes,
                                                     ByteRange body, std::string& error);

// The fill value (new-style message, else the old one) as zarr v2's .zarray "fill_value" for
// `type`: a number, "NaN"/"Infinity"/"-Infinity", a base64 string for byte strings and
// compounds, or null when undefined.
[[nodiscard]] Json parse_fill_value(const ByteSource& file, ByteRange body, bool old_style,
                                    const Datatype& type, std::string& error);

struct Attribute {
  std::string name;
  Json value;  // numbers, strings (fixed or variable length), lists for arrays; compounds
               // as objects; values past kMaxAttributeValueBytes as {"dtype", "shape"} only
};
[[nodiscard]] std::optional<Attribute> parse_attribute(const ByteSource& file, const Sizes& sizes,
                                                       ByteRange body, std::string& error);

}  // namespace payloadfs::formats::hdf5

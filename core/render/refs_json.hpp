#pragma once
// refs.json: the array slices of a payload as an fsspec ReferenceFileSystem (version 1) over a
// zarr v2 group, so that zarr, xarray and dask read them without payloadfs: one zarr array per
// slice, one uncompressed chunk holding the whole array, pointing at the slice's bytes in the
// source file (kerchunk's approach).
//
// A slice is an array when its attributes give
//   - a NumPy dtype: `numpy_dtype`, or else `dtype` when it is in NumPy's array-interface
//     form (a type string with an explicit byte order such as "<f4" or "|u1", or a list of
//     [name, dtype] / [name, dtype, shape] fields),
//   - a shape: `numpy_shape`, or else `shape` (a list of non-negative integers), and optionally
//     `fortran_order` (true: the bytes are in Fortran order),
// and its length is exactly itemsize times the number of elements. A slice's `dimensions`
// (a list of names, one per axis: netCDF's vocabulary) name its axes for xarray.
//
// A chunked array (Layout::chunked_arrays: HDF5's chunked datasets) is one zarr array with
// its chunk shape, compressor, filters and fill value, and one reference per record of its
// table, keyed by the record's grid coordinates; chunks without a record read as the fill value.

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/model/layout.hpp"

namespace payloadfs {

struct RefsArray {
  std::string name;  // the zarr array name (see zarr_array_name)
  Json dtype;        // a type string or a field list, as zarr v2's .zarray takes it
  std::vector<uint64_t> shape;
  bool fortran_order = false;
  ByteRange range;                      // one chunk, the whole array (when `chunked` is null)
  std::vector<std::string> dimensions;  // axis names, or empty for <name>_dim_<i>
  // A chunked array and the table of its chunks (owned by the caller, as are the slices).
  const ChunkedArray* chunked = nullptr;
  const RecordTable* chunk_table = nullptr;
};

// The item size of a NumPy dtype in array-interface form; nullopt when it is not one (no
// explicit byte order, object or unknown kinds, zero-sized items, nesting deeper than 16).
[[nodiscard]] std::optional<uint64_t> numpy_itemsize(const Json& dtype);

// The zarr array name of a slice name: percent-encoding (upper-case hex) of '%', '/', '\',
// control bytes, bytes that are not valid UTF-8 and a leading '.', so that each slice is one
// array at the group's top level and no name is '.', '..' or a zarr metadata key. nullopt for
// the empty name.
[[nodiscard]] std::optional<std::string> zarr_array_name(std::string_view slice_name);

// The array slices, in slice order, then the chunked arrays. Slices that are not arrays,
// chunked arrays whose table has no grid of their rank, and later arrays whose name repeats
// an earlier one, are left out.
[[nodiscard]] std::vector<RefsArray> refs_arrays(std::span<const Slice> slices,
                                                 std::span<const ChunkedArray> chunked = {},
                                                 std::span<const RecordTable> tables = {});

// The whole refs.json text of `arrays` whose bytes are in the file at `source_url` (an
// absolute path or a URL, written as given).
[[nodiscard]] std::string render_refs_json(std::span<const RefsArray> arrays,
                                           std::string_view source_url);

}  // namespace payloadfs

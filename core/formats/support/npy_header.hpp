#pragma once
// The header of a NumPy .npy array (numpy/lib/format.py; NEP 1), formats 1.0, 2.0 and 3.0:
// after the magic, major and minor version, the little-endian header length (u16 in 1.0, u32
// in 2.0/3.0), then a Python-literal dict {'descr', 'fortran_order', 'shape'} padded with
// spaces and ended by '\n'; the array bytes follow immediately. Shared by npy (a file) and npz
// (a zip of .npy members).

#include <cstdint>
#include <optional>

#include "core/formats/support/signature.hpp"
#include "core/io/binary_reader.hpp"
#include "core/model/layout.hpp"

namespace payloadfs::formats {

inline constexpr auto kNpyMagic = byte_string("\x93NUMPY");
// numpy itself refuses headers above 10000 bytes unless asked; we allow more, but bound it.
inline constexpr uint64_t kMaxNpyHeaderBytes = 1 << 20;
// Structured dtypes nested deeper than this are refused.
inline constexpr int kMaxNpyDescrDepth = 16;

// Where an array's bytes are and how to read them.
struct NpyArray {
  uint64_t data_offset = 0;  // in the file
  uint64_t length = 0;       // itemsize x elements
  Json dtype;                // the descr, its strings made valid UTF-8
  Json shape;
  Json fortran_order;
};

// Reads the header that follows the magic (`reader` stands just past it). Writes `version`,
// `header_len`, `descr`, `fortran_order`, `shape`, `data_offset` and `itemsize` to
// layout.header as they are read, and what is wrong to layout.errors; nullopt when the
// array's extent cannot be known. Whether the data lies inside the file is the caller's check.
[[nodiscard]] std::optional<NpyArray> read_npy_header(BinaryReader& reader, Layout& layout);

}  // namespace payloadfs::formats

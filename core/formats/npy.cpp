// NumPy .npy, format versions 1.0, 2.0 and 3.0
// (numpy/lib/format.py; NEP 1): "\x93NUMPY", major, minor, little-endian header length
// (u16 in 1.0, u32 in 2.0/3.0), then a Python-literal dict {'descr', 'fortran_order', 'shape'}
// padded with spaces and ended by '\n'; the array bytes follow immediately.

#include <string>

#include "core/formats/builtin.hpp"
#include "core/formats/support/npy_header.hpp"
#include "core/formats/support/signature.hpp"
#include "core/io/binary_reader.hpp"
#include "core/io/checked_math.hpp"

namespace payloadfs::formats {
namespace {

using ojson = nlohmann::ordered_json;

class Npy final : public Format {
 public:
  std::string_view name() const noexcept override { return "npy"; }
  std::string_view description() const noexcept override {
    return "NumPy array file (.npy format 1.0, 2.0, 3.0)";
  }
  std::string_view signature() const noexcept override {
    return "93 4e 55 4d 50 59 ('\\x93NUMPY') at 0";
  }

  bool detect(std::span<const std::byte> head, uint64_t) const override {
    return starts_with(head, kNpyMagic);
  }

  Layout parse(const ByteSource& source) const override {
    Layout layout;
    layout.magic = magic_at_start(kNpyMagic);
    BinaryReader reader(source, Endian::little);
    reader.skip(kNpyMagic.size());
    const auto array = read_npy_header(reader, layout);
    if (!array) return layout;
    if (!range_within(array->data_offset, array->length, source.size())) {
      const uint64_t available =
          array->data_offset <= source.size() ? source.size() - array->data_offset : 0;
      layout.add_error("array data needs " + std::to_string(array->length) + " bytes at offset " +
                       std::to_string(array->data_offset) + " but the file has " +
                       std::to_string(available));
      return layout;
    }
    ojson attributes = {
        {"dtype", array->dtype}, {"shape", array->shape}, {"fortran_order", array->fortran_order}};
    layout.slices.push_back(
        Slice{"data", {array->data_offset, array->length}, std::move(attributes)});
    return layout;
  }
};

}  // namespace

std::unique_ptr<Format> make_npy() {
  return std::make_unique<Npy>();
}

}  // namespace payloadfs::formats

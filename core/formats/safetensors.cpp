// safetensors (huggingface/safetensors, docs "Format"): u64 little-endian N, then N bytes of
// UTF-8 JSON {"__metadata__": {str: str}, name: {"dtype", "shape", "data_offsets": [b, e]}},
// then the byte buffer. Offsets are relative to the buffer, which starts at 8 + N. The
// reference loader requires the tensors to tile the buffer exactly; we report the same
// problems as errors and keep every tensor whose bytes lie inside the file.

#include <algorithm>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/formats/builtin.hpp"
#include "core/io/binary_reader.hpp"
#include "core/io/checked_math.hpp"
#include "core/render/json_text.hpp"

namespace payloadfs::formats {
namespace {

// The reference implementation's MAX_HEADER_SIZE.
constexpr uint64_t kMaxHeaderBytes = 100'000'000;
constexpr size_t kMaxJsonDepth = 64;
// Larger claimed header lengths are taken as "not safetensors" rather than a broken one.
constexpr uint64_t kMaxPlausibleHeader = 1ULL << 40;

struct DtypeBits {
  std::string_view name;
  unsigned bits;
};
// Every dtype of the current specification (safetensors Dtype::bitsize).
constexpr DtypeBits kDtypes[] = {
    {"BOOL", 8}, {"F4", 4},      {"F6_E2M3", 6}, {"F6_E3M2", 6}, {"U8", 8},
    {"I8", 8},   {"F8_E5M2", 8}, {"F8_E4M3", 8}, {"F8_E8M0", 8}, {"I16", 16},
    {"U16", 16}, {"F16", 16},    {"BF16", 16},   {"I32", 32},    {"U32", 32},
    {"F32", 32}, {"C64", 64},    {"F64", 64},    {"I64", 64},    {"U64", 64},
};

std::optional<unsigned> dtype_bits(std::string_view name) {
  for (const auto& d : kDtypes)
    if (d.name == name) return d.bits;
  return std::nullopt;
}

// NumPy's type string for the dtypes NumPy has (little-endian, as safetensors stores them);
// empty for BF16, F8_*, F6_*, F4.
std::string_view numpy_typestr(std::string_view name) {
  constexpr std::pair<std::string_view, std::string_view> kNumpy[] = {
      {"BOOL", "|b1"}, {"U8", "|u1"},  {"I8", "|i1"},  {"I16", "<i2"}, {"U16", "<u2"},
      {"F16", "<f2"},  {"I32", "<i4"}, {"U32", "<u4"}, {"F32", "<f4"}, {"C64", "<c8"},
      {"F64", "<f8"},  {"I64", "<i8"}, {"U64", "<u8"},
  };
  for (const auto& [st, np] : kNumpy)
    if (st == name) return np;
  return {};
}

struct Tensor {
  std::string name;
  uint64_t begin = 0;
  uint64_t end = 0;
  size_t slice_index = 0;
};

class Safetensors final : public Format {
 public:
  std::string_view name() const noexcept override { return "safetensors"; }
  std::string_view description() const noexcept override {
    return "Hugging Face safetensors tensor file";
  }
  std::string_view signature() const noexcept override {
    return "no signature: u64le header length N (2 <= N <= 2^40), then '{'";
  }

  // The header length may be wrong (an error to report, not a reason to call the file unknown),
  // so detection asks only for a plausible length (its top three bytes zero) and a '{'.
  bool detect(std::span<const std::byte> head, uint64_t) const override {
    if (head.size() < 9) return false;
    const auto n = read_le<uint64_t>(head.data());
    return n >= 2 && n <= kMaxPlausibleHeader && head[8] == std::byte{'{'};
  }

  Layout parse(const ByteSource& source) const override {
    Layout layout;
    BinaryReader reader(source, Endian::little);
    const uint64_t n = reader.u64();
    if (!reader.ok()) {
      layout.add_error("file is shorter than the 8-byte header length");
      return layout;
    }
    auto& h = layout.header;
    h["header_size"] = n;
    if (n > kMaxHeaderBytes) {
      layout.add_error("header length " + std::to_string(n) + " exceeds the limit of " +
                       std::to_string(kMaxHeaderBytes) + " bytes");
      return layout;
    }
    if (!range_within(8, n, source.size())) {
      layout.add_error("header length " + std::to_string(n) +
                       " runs past the end of the file (size " + std::to_string(source.size()) +
                       ")");
      return layout;
    }
    const std::string text = reader.text(n, kMaxHeaderBytes);
    if (!reader.ok()) {
      layout.add_error("cannot read header: " + *reader.error());
      return layout;
    }
    if (utf8_or_escaped(text) != text) {
      layout.add_error("header is not valid UTF-8");
      return layout;
    }
    if (json_depth(text) > kMaxJsonDepth) {
      layout.add_error("header JSON nests deeper than " + std::to_string(kMaxJsonDepth) +
                       " levels");
      return layout;
    }
    // Parsed into a sorted map: ordered_json looks keys up linearly, quadratic for headers of
    // many thousands of tensors. Tensors are shown in file order anyway.
    nlohmann::json doc;
    try {
      doc = nlohmann::json::parse(text);
    } catch (const nlohmann::json::exception& e) {  // parse_error, and out_of_range for
      // numbers no double holds (406)
      layout.add_error(std::string("header is not valid JSON: ") + e.what());
      return layout;
    }
    if (!doc.is_object()) {
      layout.add_error("header JSON is not an object");
      return layout;
    }
    const uint64_t data_start = 8 + n;
    const uint64_t buffer_size = source.size() - data_start;
    h["data_offset"] = data_start;

    std::vector<Tensor> tensors;
    uint64_t declared = 0;
    h["__metadata__"] = Json::object();
    for (const auto& [key, value] : doc.items()) {
      if (key == "__metadata__") {
        read_metadata(value, layout);
        continue;
      }
      ++declared;
      read_tensor(key, value, data_start, buffer_size, layout, tensors);
    }
    h["tensor_count"] = declared;
    check_tiling(tensors, buffer_size, layout);
    return layout;
  }

 private:
  static void read_metadata(const nlohmann::json& value, Layout& layout) {
    if (!value.is_object()) {
      layout.add_error("__metadata__ is not an object of strings");
      return;
    }
    for (const auto& [k, v] : value.items()) {
      if (!v.is_string()) {
        layout.add_error("__metadata__ value for '" + k + "' is not a string");
        continue;
      }
      layout.header["__metadata__"].get_ref<Json::object_t&>().emplace_back(k, Json(v));
    }
  }

  static void read_tensor(const std::string& key, const nlohmann::json& info, uint64_t data_start,
                          uint64_t buffer_size, Layout& layout, std::vector<Tensor>& tensors) {
    const std::string where = "tensor '" + key + "': ";
    if (!info.is_object() || !info.contains("dtype") || !info.contains("shape") ||
        !info.contains("data_offsets")) {
      layout.add_error(where + "needs dtype, shape and data_offsets");
      return;
    }
    const nlohmann::json& dtype = info["dtype"];
    const nlohmann::json& shape = info["shape"];
    const nlohmann::json& offsets = info["data_offsets"];
    const auto bits = dtype.is_string() ? dtype_bits(dtype.get<std::string>()) : std::nullopt;
    if (!bits) {
      layout.add_error(where + "unknown dtype " + dtype.dump());
      return;
    }
    if (!offsets.is_array() || offsets.size() != 2 || !offsets[0].is_number_unsigned() ||
        !offsets[1].is_number_unsigned()) {
      layout.add_error(where + "data_offsets must be two non-negative integers");
      return;
    }
    const auto begin = offsets[0].get<uint64_t>();
    const auto end = offsets[1].get<uint64_t>();
    if (begin > end) {
      layout.add_error(where + "data_offsets begin " + std::to_string(begin) + " > end " +
                       std::to_string(end));
      return;
    }
    if (end > buffer_size) {
      layout.add_error(where + "data_offsets [" + std::to_string(begin) + ", " +
                       std::to_string(end) + "] run past the end of the data buffer (" +
                       std::to_string(buffer_size) + " bytes)");
      return;
    }
    std::optional<uint64_t> elements = 1;
    if (!shape.is_array()) elements.reset();
    for (size_t i = 0; elements && shape.is_array() && i < shape.size(); ++i) {
      elements = shape[i].is_number_unsigned() ? checked_mul(*elements, shape[i].get<uint64_t>())
                                               : std::nullopt;
    }
    const auto total_bits = elements ? checked_mul(*elements, *bits) : std::nullopt;
    if (!total_bits) {
      layout.add_error(where +
                       "shape must be a list of non-negative integers whose product fits 64 bits");
    } else if (*total_bits % 8 != 0) {
      layout.add_error(where + "shape " + shape.dump() + " of " + dtype.get<std::string>() +
                       " does not fill whole bytes");
    } else if (*total_bits / 8 != end - begin) {
      layout.add_error(where + "data_offsets span " + std::to_string(end - begin) +
                       " bytes but dtype and shape need " + std::to_string(*total_bits / 8));
    }
    Json attributes = {
        {"dtype", Json(dtype)}, {"shape", Json(shape)}, {"data_offsets", Json(offsets)}};
    // For refs.json and other NumPy consumers.
    if (const auto np = numpy_typestr(dtype.get<std::string>()); !np.empty())
      attributes["numpy_dtype"] = np;
    tensors.push_back(Tensor{key, begin, end, layout.slices.size()});
    layout.slices.push_back(Slice{key, {data_start + begin, end - begin}, std::move(attributes)});
  }

  static void check_tiling(std::vector<Tensor>& tensors, uint64_t buffer_size, Layout& layout) {
    std::vector<Tensor> sorted = tensors;
    std::sort(sorted.begin(), sorted.end(), [](const Tensor& a, const Tensor& b) {
      return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
    });
    uint64_t covered = 0;
    for (const auto& t : sorted) {
      if (t.begin < covered) {
        layout.add_error("tensor '" + t.name + "' overlaps the tensor before it");
      } else if (t.begin > covered) {
        layout.add_error("bytes [" + std::to_string(covered) + ", " + std::to_string(t.begin) +
                         ") of the data buffer belong to no tensor");
      }
      covered = std::max(covered, t.end);
    }
    if (covered != buffer_size) {
      layout.add_error("the data buffer has " + std::to_string(buffer_size - covered) +
                       " trailing bytes that belong to no tensor");
    }
    // Present slices in file order, which is how the bytes are laid out.
    std::vector<Slice> ordered;
    ordered.reserve(sorted.size());
    for (const auto& t : sorted) ordered.push_back(std::move(layout.slices[t.slice_index]));
    layout.slices = std::move(ordered);
  }
};

}  // namespace

std::unique_ptr<Format> make_safetensors() {
  return std::make_unique<Safetensors>();
}

}  // namespace payloadfs::formats

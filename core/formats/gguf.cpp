// GGUF, versions 2 and 3 (ggml docs/gguf.md; loader behaviour from ggml/src/gguf.cpp):
// "GGUF", u32 version, u64 tensor_count, u64 metadata_kv_count, the key/value pairs
// (string key, u32 value type, value), the tensor infos (string name, u32 n_dims, u64 ne[n_dims],
// u32 ggml type, u64 offset), padding to general.alignment (default 32), then the tensor data.
// Tensor offsets are relative to that aligned data section. Strings are a u64 length and bytes.
// Version 3 files may be big-endian; like llama.cpp we tell by the byte order of the version
// field (a little-endian read whose low 16 bits are zero is a byte-swapped small number).
// Version 1 (32-bit counts) is not supported, as in current ggml.

#include <algorithm>
#include <array>
#include <optional>
#include <set>
#include <string>
#include <unordered_set>
#include <utility>
#include <vector>

#include "core/formats/builtin.hpp"
#include "core/formats/support/signature.hpp"
#include "core/io/binary_reader.hpp"
#include "core/io/checked_math.hpp"
#include "core/render/json_text.hpp"

namespace payloadfs::formats {
namespace {

constexpr auto kMagic = byte_string("GGUF");
constexpr uint64_t kDefaultAlignment = 32;  // GGUF_DEFAULT_ALIGNMENT
// Hostile-input caps. The first two are @huggingface/gguf's own limits (it refuses more).
constexpr uint64_t kMaxKv = 100'000;
constexpr uint64_t kMaxTensors = 1'000'000;
constexpr uint64_t kMaxDims = 4;          // GGML_MAX_DIMS; gguf.cpp refuses more
constexpr uint64_t kMaxGgmlName = 63;     // GGML_MAX_NAME - 1
constexpr uint64_t kMaxNameBytes = 4096;  // longer keys / tensor names end the parse
constexpr uint64_t kShownArrayItems = 64;
constexpr uint64_t kShownStringBytes = 4096;
constexpr int kMaxArrayDepth = 8;
// Strings and nested arrays must be walked one by one; this bounds the time spent on them.
constexpr uint64_t kMaxWalkedItems = 16'000'000;

// ggml's type table (ggml/include/ggml.h enum ggml_type, ggml/src/ggml.c type_traits with the
// block structs of ggml/src/ggml-common.h). Ids 4, 5, 31-33 and 36-38 were removed.
struct GgmlType {
  uint32_t id;
  std::string_view name;
  uint64_t block_size;  // elements per block
  uint64_t type_size;   // bytes per block
};
constexpr GgmlType kGgmlTypes[] = {
    {0, "F32", 1, 4},         {1, "F16", 1, 2},         {2, "Q4_0", 32, 18},
    {3, "Q4_1", 32, 20},      {6, "Q5_0", 32, 22},      {7, "Q5_1", 32, 24},
    {8, "Q8_0", 32, 34},      {9, "Q8_1", 32, 36},      {10, "Q2_K", 256, 84},
    {11, "Q3_K", 256, 110},   {12, "Q4_K", 256, 144},   {13, "Q5_K", 256, 176},
    {14, "Q6_K", 256, 210},   {15, "Q8_K", 256, 292},   {16, "IQ2_XXS", 256, 66},
    {17, "IQ2_XS", 256, 74},  {18, "IQ3_XXS", 256, 98}, {19, "IQ1_S", 256, 50},
    {20, "IQ4_NL", 32, 18},   {21, "IQ3_S", 256, 110},  {22, "IQ2_S", 256, 82},
    {23, "IQ4_XS", 256, 136}, {24, "I8", 1, 1},         {25, "I16", 1, 2},
    {26, "I32", 1, 4},        {27, "I64", 1, 8},        {28, "F64", 1, 8},
    {29, "IQ1_M", 256, 56},   {30, "BF16", 1, 2},       {34, "TQ1_0", 256, 54},
    {35, "TQ2_0", 256, 66},   {39, "MXFP4", 32, 17},    {40, "NVFP4", 64, 36},
    {41, "Q1_0", 128, 18},    {42, "Q2_0", 64, 18},
};

const GgmlType* find_ggml_type(uint32_t id) {
  for (const auto& t : kGgmlTypes)
    if (t.id == id) return &t;
  return nullptr;
}

// NumPy's type string for the ggml types NumPy has, in the file's byte order (ggml stores tensor
// data in the byte order of the file); empty for BF16 and the quantized types.
std::string numpy_typestr(std::string_view ggml_name, bool big_endian) {
  constexpr std::pair<std::string_view, std::string_view> kNumpy[] = {
      {"F32", "f4"}, {"F16", "f2"}, {"F64", "f8"}, {"I8", "i1"},
      {"I16", "i2"}, {"I32", "i4"}, {"I64", "i8"},
  };
  for (const auto& [ggml, np] : kNumpy) {
    if (ggml == ggml_name) return (np == "i1" ? "|" : big_endian ? ">" : "<") + std::string(np);
  }
  return {};
}

// gguf_type, GGUF_TYPE_UINT8 = 0 ... GGUF_TYPE_FLOAT64 = 12.
enum ValueType : uint32_t {
  kUint8 = 0,
  kInt8,
  kUint16,
  kInt16,
  kUint32,
  kInt32,
  kFloat32,
  kBool,
  kString,
  kArray,
  kUint64,
  kInt64,
  kFloat64,
  kValueTypeCount
};
constexpr std::string_view kValueTypeNames[kValueTypeCount] = {
    "uint8", "int8",   "uint16", "int16",  "uint32", "int32",  "float32",
    "bool",  "string", "array",  "uint64", "int64",  "float64"};
// Encoded size of the fixed-size types; 0 for string and array.
constexpr uint64_t kValueTypeSizes[kValueTypeCount] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};

struct TensorInfo {
  std::string name;
  std::vector<uint64_t> dims;
  uint32_t type = 0;
  uint64_t offset = 0;
};

// Cuts `s` to at most `max` bytes without splitting a UTF-8 sequence.
void cut_utf8(std::string& s, uint64_t max) {
  if (s.size() <= max) return;
  size_t end = static_cast<size_t>(max);
  for (int back = 0; back < 3 && end > 0 && (static_cast<unsigned char>(s[end]) & 0xC0) == 0x80;
       ++back)
    --end;
  s.resize(end);
}

class Reader {
 public:
  explicit Reader(BinaryReader& r) : r_(r) {}

  // A GGUF string; shows at most `shown` bytes and skips the rest without reading it.
  std::string string(uint64_t shown, uint64_t* full_length = nullptr) {
    const uint64_t length = r_.u64();
    if (!r_.ok()) return {};
    if (full_length != nullptr) *full_length = length;
    if (length > r_.remaining()) {
      r_.fail("string of " + std::to_string(length) + " bytes at offset " +
              std::to_string(r_.tell() - 8) + " runs past the end of the file");
      return {};
    }
    std::string text = r_.text(std::min(length, shown + 3));
    r_.skip(length - text.size());
    cut_utf8(text, shown);
    return utf8_or_escaped(text);
  }

  // A string that must be shown whole (keys, tensor names).
  std::string name(std::string_view what) {
    const uint64_t at = r_.tell();
    uint64_t length = 0;
    std::string text = string(kMaxNameBytes, &length);
    if (r_.ok() && length > kMaxNameBytes)
      r_.fail(std::string(what) + " at offset " + std::to_string(at) + " is " +
              std::to_string(length) + " bytes long (limit " + std::to_string(kMaxNameBytes) + ")");
    return text;
  }

  // One metadata value as {"type": name, "value": ...} (arrays add element_type and count).
  Json typed_value(uint32_t type, int depth) {
    Json out = Json::object();
    if (type >= kValueTypeCount) {
      r_.fail("unknown metadata value type " + std::to_string(type));
      return out;
    }
    out["type"] = kValueTypeNames[type];
    if (type == kArray) {
      array(out, depth + 1);
    } else if (type == kString) {
      uint64_t length = 0;
      out["value"] = string(kShownStringBytes, &length);
      if (length > kShownStringBytes) {
        out["length"] = length;
        out["truncated"] = true;
      }
    } else {
      out["value"] = scalar(type);
    }
    return out;
  }

 private:
  Json scalar(uint32_t type) {
    switch (type) {
      case kUint8:
        return r_.u8();
      case kInt8:
        return r_.i8();
      case kUint16:
        return r_.u16();
      case kInt16:
        return r_.i16();
      case kUint32:
        return r_.u32();
      case kInt32:
        return r_.i32();
      case kFloat32:
        return static_cast<double>(r_.f32());
      case kBool:
        return r_.u8() != 0;
      case kUint64:
        return r_.u64();
      case kInt64:
        return r_.i64();
      case kFloat64:
        return r_.f64();
      default:
        return nullptr;
    }
  }

  bool walk() {
    if (++walked_ <= kMaxWalkedItems) return true;
    r_.fail("metadata holds more than " + std::to_string(kMaxWalkedItems) +
            " strings and nested arrays in arrays (limit)");
    return false;
  }

  // Fills element_type, count and the first kShownArrayItems values into `out`.
  void array(Json& out, int depth) {
    if (depth > kMaxArrayDepth) {
      r_.fail("arrays nest deeper than " + std::to_string(kMaxArrayDepth) + " levels");
      return;
    }
    const uint32_t element = r_.u32();
    const uint64_t count = r_.u64();
    if (!r_.ok()) return;
    if (element >= kValueTypeCount) {
      r_.fail("array of unknown value type " + std::to_string(element));
      return;
    }
    out["element_type"] = kValueTypeNames[element];
    out["count"] = count;
    const uint64_t fixed = kValueTypeSizes[element];
    // Every element takes at least this many bytes, which bounds count by the file size.
    const uint64_t min_bytes = fixed != 0 ? fixed : (element == kString ? 8 : 12);
    if (count > r_.remaining() / min_bytes) {
      r_.fail("array of " + std::to_string(count) + " " + std::string(kValueTypeNames[element]) +
              " values runs past the end of the file");
      return;
    }
    Json values = Json::array();
    const uint64_t shown = std::min(count, kShownArrayItems);
    uint64_t truncated_strings = 0;
    for (uint64_t i = 0; i < shown && r_.ok(); ++i) {
      if (element == kArray) {
        if (!walk()) break;
        Json nested = Json::object();
        nested["type"] = "array";
        array(nested, depth + 1);
        values.push_back(std::move(nested));
      } else if (element == kString) {
        if (!walk()) break;
        uint64_t length = 0;
        values.push_back(string(kShownStringBytes, &length));
        if (length > kShownStringBytes) ++truncated_strings;
      } else {
        values.push_back(scalar(element));
      }
    }
    if (fixed != 0) {
      r_.skip((count - shown) * fixed);  // count * fixed <= remaining, checked above
    } else {
      for (uint64_t i = shown; i < count && r_.ok(); ++i) {
        if (!walk()) break;
        if (element == kString) {
          r_.skip(r_.u64());
        } else {
          Json ignored = Json::object();
          array(ignored, depth + 1);
        }
      }
    }
    out["value"] = std::move(values);
    if (count > shown) out["truncated"] = true;
    if (truncated_strings != 0) out["truncated_strings"] = truncated_strings;
  }

  BinaryReader& r_;
  uint64_t walked_ = 0;
};

class Gguf final : public Format {
 public:
  std::string_view name() const noexcept override { return "gguf"; }
  std::string_view description() const noexcept override {
    return "GGUF model file (ggml / llama.cpp), versions 2 and 3, either byte order";
  }
  std::string_view signature() const noexcept override { return "47 47 55 46 ('GGUF') at 0"; }

  bool detect(std::span<const std::byte> head, uint64_t) const override {
    return starts_with(head, kMagic);
  }

  Layout parse(const ByteSource& source) const override {
    Layout layout;
    layout.magic = magic_at_start(kMagic);
    BinaryReader r(source, Endian::little);
    r.skip(kMagic.size());
    if (!read_version(r, layout)) return layout;
    const auto counts = read_counts(r, layout);
    if (!counts) return layout;
    const auto [tensor_count, kv_count] = *counts;

    auto& h = layout.header;
    Reader in(r);
    Json& metadata = h["metadata"];
    if (!read_metadata(in, r, kv_count, metadata, layout)) return layout;
    const auto alignment = read_alignment(metadata, layout);
    if (alignment) h["alignment"] = *alignment;

    const auto tensors = read_tensor_infos(in, r, tensor_count, layout);
    if (!tensors) return layout;
    if (!alignment) return layout;
    const uint64_t info_end = r.tell();
    // info_end <= file size and alignment <= 2^32, so this cannot overflow.
    const uint64_t data_start = (info_end + *alignment - 1) / *alignment * *alignment;
    h["tensor_data_offset"] = data_start;
    if (data_start > source.size() && !tensors->empty())
      layout.add_error("the tensor data section (offset " + std::to_string(data_start) +
                       ") starts past the end of the file");
    add_slices(*tensors, *alignment, data_start, source.size(), layout);
    return layout;
  }

 private:
  // The version after the magic, which also gives the byte order; false (with the error added)
  // when the rest cannot be read.
  static bool read_version(BinaryReader& r, Layout& layout) {
    uint32_t version = r.u32();
    if (!r.ok()) {
      layout.add_error("file ends inside the GGUF preamble");
      return false;
    }
    auto& h = layout.header;
    if ((version & 0xFFFF) == 0 && version != 0) {
      version = __builtin_bswap32(version);
      r.set_endian(Endian::big);
    }
    h["version"] = version;
    h["byte_order"] = r.endian() == Endian::little ? "little" : "big";
    if (version == 1) {
      layout.add_error("GGUF version 1 (32-bit counts) is not supported");
      return false;
    }
    if (version != 2 && version != 3) {
      layout.add_error("unsupported GGUF version " + std::to_string(version));
      return false;
    }
    if (r.endian() == Endian::big && version < 3) {
      layout.add_error("big-endian GGUF files exist only from version 3 on");
    }
    return true;
  }

  // {tensor_count, metadata_kv_count}, or nullopt (with the error added) when unreadable or
  // over the limits.
  static std::optional<std::pair<uint64_t, uint64_t>> read_counts(BinaryReader& r, Layout& layout) {
    const uint64_t tensor_count = r.u64();
    const uint64_t kv_count = r.u64();
    if (!r.ok()) {
      layout.add_error("file ends inside the GGUF header counts");
      return std::nullopt;
    }
    auto& h = layout.header;
    h["tensor_count"] = tensor_count;
    h["metadata_kv_count"] = kv_count;
    h["alignment"] = kDefaultAlignment;
    h["tensor_data_offset"] = nullptr;
    h["metadata"] = Json::object();
    if (kv_count > kMaxKv) {
      layout.add_error("metadata_kv_count " + std::to_string(kv_count) + " exceeds the limit of " +
                       std::to_string(kMaxKv));
      return std::nullopt;
    }
    if (tensor_count > kMaxTensors) {
      layout.add_error("tensor_count " + std::to_string(tensor_count) + " exceeds the limit of " +
                       std::to_string(kMaxTensors));
      return std::nullopt;
    }
    return std::pair{tensor_count, kv_count};
  }

  // The key/value pairs into `metadata`; false (with the error added) on a read error.
  static bool read_metadata(Reader& in, BinaryReader& r, uint64_t kv_count, Json& metadata,
                            Layout& layout) {
    std::unordered_set<std::string> seen_keys;
    for (uint64_t i = 0; i < kv_count; ++i) {
      const uint64_t at = r.tell();
      const std::string key = in.name("metadata key");
      const uint32_t type = r.u32();
      Json value = r.ok() ? in.typed_value(type, 0) : Json();
      if (!r.ok()) {
        layout.add_error("metadata pair " + std::to_string(i) + " at offset " + std::to_string(at) +
                         (key.empty() ? "" : " ('" + key + "')") + ": " + *r.error());
        return false;
      }
      if (!seen_keys.insert(key).second) {
        layout.add_error("duplicate metadata key '" + key + "' (the first value is shown)");
        continue;
      }
      // Appended directly: ordered_json's own insert searches linearly (quadratic for
      // 100,000 keys); seen_keys already guarantees uniqueness.
      metadata.get_ref<Json::object_t&>().emplace_back(key, std::move(value));
    }
    return true;
  }

  // The tensor infos after the metadata; nullopt (with the error added) on a read error.
  static std::optional<std::vector<TensorInfo>> read_tensor_infos(Reader& in, BinaryReader& r,
                                                                  uint64_t tensor_count,
                                                                  Layout& layout) {
    std::vector<TensorInfo> tensors;
    tensors.reserve(static_cast<size_t>(std::min<uint64_t>(tensor_count, 4096)));
    for (uint64_t i = 0; i < tensor_count; ++i) {
      const uint64_t at = r.tell();
      TensorInfo t;
      t.name = in.name("tensor name");
      const uint32_t n_dims = r.u32();
      if (r.ok() && n_dims > kMaxDims)
        r.fail("n_dims " + std::to_string(n_dims) + " exceeds GGML_MAX_DIMS (4)");
      for (uint32_t d = 0; d < n_dims && r.ok(); ++d) t.dims.push_back(r.u64());
      t.type = r.u32();
      t.offset = r.u64();
      if (!r.ok()) {
        layout.add_error("tensor info " + std::to_string(i) + " at offset " + std::to_string(at) +
                         ": " + *r.error());
        return std::nullopt;
      }
      tensors.push_back(std::move(t));
    }
    return tensors;
  }

  // general.alignment: uint32 per the specification; must be a nonzero power of two.
  static std::optional<uint64_t> read_alignment(const Json& metadata, Layout& layout) {
    if (!metadata.contains("general.alignment")) return kDefaultAlignment;
    const Json& entry = metadata["general.alignment"];
    const Json& value = entry["value"];
    if (!value.is_number_integer()) {
      layout.add_error("general.alignment is a " + entry["type"].get<std::string>() +
                       ", not an integer; tensor data cannot be located");
      return std::nullopt;
    }
    if (entry["type"] != "uint32")
      layout.add_error("general.alignment is a " + entry["type"].get<std::string>() +
                       "; the specification requires uint32");
    if (value.is_number_unsigned()) {
      const auto a = value.get<uint64_t>();
      if (a != 0 && a <= (1ULL << 32) && (a & (a - 1)) == 0) return a;
    }
    layout.add_error("general.alignment " + value.dump() +
                     " is not a nonzero power of two; tensor data cannot be located");
    return std::nullopt;
  }

  static void add_slices(const std::vector<TensorInfo>& tensors, uint64_t alignment,
                         uint64_t data_start, uint64_t file_size, Layout& layout) {
    struct Span {
      uint64_t begin, end;
      std::string name;
    };
    std::vector<Span> spans;
    std::set<std::string> names;
    for (const auto& t : tensors) {
      const std::string where = "tensor '" + t.name + "': ";
      if (!names.insert(t.name).second) layout.add_error(where + "duplicate tensor name");
      if (t.name.size() > kMaxGgmlName)
        layout.add_error(where + "name is longer than ggml's 63-byte limit");
      Json dims = Json::array();
      for (uint64_t d : t.dims) dims.push_back(d);
      const GgmlType* type = find_ggml_type(t.type);
      if (type == nullptr) {
        layout.add_error(where + "invalid ggml type " + std::to_string(t.type));
        continue;
      }
      std::optional<uint64_t> elements = 1;
      for (uint64_t d : t.dims) {
        // ggml reads the dimensions as int64 and refuses negative ones.
        if (d > static_cast<uint64_t>(INT64_MAX)) elements.reset();
        if (elements) elements = checked_mul(*elements, d);
      }
      if (!elements || *elements > static_cast<uint64_t>(INT64_MAX)) {
        layout.add_error(where + "dimensions " + dims.dump() + " overflow 63 bits");
        continue;
      }
      const uint64_t row = t.dims.empty() ? 1 : t.dims[0];
      if (row % type->block_size != 0) {
        layout.add_error(where + "row of " + std::to_string(row) +
                         " elements is not a multiple of " + std::string(type->name) +
                         "'s block size " + std::to_string(type->block_size));
        continue;
      }
      const auto bytes = checked_mul(*elements / type->block_size, type->type_size);
      const auto begin = checked_add(data_start, t.offset);
      const auto end = bytes && begin ? checked_add(*begin, *bytes) : std::nullopt;
      if (!end) {
        layout.add_error(where + "data range overflows 64 bits");
        continue;
      }
      if (t.offset % alignment != 0)
        layout.add_error(where + "data_offset " + std::to_string(t.offset) +
                         " is not a multiple of the alignment " + std::to_string(alignment));
      if (*end > file_size) {
        layout.add_error(where + std::to_string(*bytes) + " bytes at offset " +
                         std::to_string(*begin) + " run past the end of the file (size " +
                         std::to_string(file_size) + ")");
        continue;
      }
      Json attributes = {
          {"type", type->name}, {"dims", std::move(dims)}, {"data_offset", t.offset}};
      // For refs.json and other NumPy consumers: ggml's dims are fastest-varying first.
      if (auto np = numpy_typestr(type->name, layout.header.value("byte_order", "") == "big");
          !np.empty()) {
        attributes["numpy_dtype"] = std::move(np);
        Json shape = Json::array();
        for (auto d = t.dims.rbegin(); d != t.dims.rend(); ++d) shape.push_back(*d);
        attributes["numpy_shape"] = std::move(shape);
      }
      layout.slices.push_back(Slice{t.name, {*begin, *bytes}, std::move(attributes)});
      spans.push_back(Span{*begin, *end, t.name});
    }
    std::sort(spans.begin(), spans.end(),
              [](const Span& a, const Span& b) { return a.begin < b.begin; });
    for (size_t i = 1; i < spans.size(); ++i) {
      if (spans[i].begin < spans[i - 1].end && spans[i].begin != spans[i].end)
        layout.add_error("tensor '" + spans[i].name + "' overlaps tensor '" + spans[i - 1].name +
                         "'");
    }
  }
};

}  // namespace

std::unique_ptr<Format> make_gguf() {
  return std::make_unique<Gguf>();
}

}  // namespace payloadfs::formats

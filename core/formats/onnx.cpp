// ONNX models (onnx/onnx.proto3, IR versions 1 to 10): a serialized ModelProto, read with the
// bounded protobuf wire reader (support/protobuf_wire.hpp). Fields read: ModelProto
// (ir_version 1, producer_name 2, producer_version 3, domain 4, model_version 5, graph 7,
// opset_import 8, metadata_props 14), GraphProto (node 1, name 2, initializer 5, input 11,
// output 12, value_info 13), TensorProto (dims 1, data_type 2, float_data 4 and the other typed
// fields, name 8, raw_data 9, external_data 13, data_location 14) and ValueInfoProto/TypeProto
// for the graph's inputs and outputs. An initializer's raw_data is a slice; nodes are counted,
// not decoded.

#include <string>
#include <vector>

#include "core/formats/builtin.hpp"
#include "core/formats/support/onnx_model.hpp"
#include "core/formats/support/protobuf_wire.hpp"
#include "core/io/binary_reader.hpp"

namespace payloadfs::formats {
namespace {

using protobuf::Field;
using protobuf::read_varint;
using protobuf::WireType;

// ir_version values taken as plausible for detection (onnx 1.17 writes 10).
constexpr uint64_t kMaxPlausibleIrVersion = 64;

// ModelProto's fields and their wire types, for detection.
struct ModelField {
  uint32_t number;
  WireType type;
};
constexpr ModelField kModelFields[] = {
    {1, WireType::varint}, {2, WireType::len},  {3, WireType::len},  {4, WireType::len},
    {5, WireType::varint}, {6, WireType::len},  {7, WireType::len},  {8, WireType::len},
    {14, WireType::len},   {20, WireType::len}, {25, WireType::len}, {26, WireType::len},
};

bool is_model_field(uint64_t number, uint64_t type) {
  for (const auto& f : kModelFields)
    if (f.number == number && static_cast<uint64_t>(f.type) == type) return true;
  return false;
}

bool is_message(uint64_t number) {
  return number == 7 || number == 8 || number == 14 || number >= 20;
}

// What detection saw of the top-level fields within the first bytes.
struct DetectWalk {
  bool plausible_ir_version = false;
  bool graph = false;
  bool opset = false;
  int fields = 0;
};

// Walks the top-level fields that lie in `head`; false when one is not ModelProto's.
bool walk_head(std::span<const std::byte> head, uint64_t size, DetectWalk& walk) {
  MemorySource source(head);
  BinaryReader r(source, Endian::little);
  const bool head_is_file = head.size() == size;
  while (r.remaining() > 0) {
    const auto key = read_varint(r);
    if (!key) return !head_is_file && walk.fields > 0;  // cut by the end of the head
    if (!is_model_field(*key >> 3, *key & 7)) return false;
    const uint64_t number = *key >> 3;
    ++walk.fields;
    // A broken value after a plausible ir_version and a ModelProto key: a damaged model.
    const auto value = read_varint(r);
    if (!value) return walk.plausible_ir_version || !head_is_file;
    if (number == 1) {
      if (*value == 0 || *value > kMaxPlausibleIrVersion) return false;
      walk.plausible_ir_version = true;
    }
    walk.graph |= number == 7;
    walk.opset |= number == 8;
    if ((*key & 7) != static_cast<uint64_t>(WireType::len)) continue;
    // A message field (graph, opset_import, ...) whose length runs past the file's end: a cut
    // model, once ir_version and (but for the graph) a complete field before vouch for it.
    if (*value > size - r.tell())
      return walk.plausible_ir_version && (number == 7 || (is_message(number) && walk.fields >= 3));
    if (*value > r.remaining()) return true;  // runs past the head: nothing more to see
    r.skip(*value);
  }
  return true;
}

class Onnx final : public Format {
 public:
  std::string_view name() const noexcept override { return "onnx"; }
  std::string_view description() const noexcept override {
    return "ONNX model (a protobuf ModelProto)";
  }
  std::string_view signature() const noexcept override {
    return "no signature: the first bytes parse as ModelProto fields, with ir_version 1..64 "
           "(or graph and opset_import)";
  }

  bool detect(std::span<const std::byte> head, uint64_t size) const override {
    DetectWalk walk;
    if (head.empty() || !walk_head(head, size, walk)) return false;
    return walk.fields >= 2 && (walk.plausible_ir_version || (walk.graph && walk.opset));
  }

  Layout parse(const ByteSource& source) const override {
    Layout layout;
    onnx::read_model(source, layout);
    return layout;
  }
};

}  // namespace

std::unique_ptr<Format> make_onnx() {
  return std::make_unique<Onnx>();
}

}  // namespace payloadfs::formats

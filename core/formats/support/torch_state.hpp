#pragma once
// What a torch.save pickle (data.pkl) holds, read from the value the data-only pickle machine
// recorded, without importing or calling anything: the tensors, each a recorded call of
// torch._utils._rebuild_tensor_v2 (or _rebuild_tensor, or _rebuild_parameter wrapping one)
// whose first argument is the persistent id ('storage', <storage type>, key, location, numel),
// named by their keys in the saved dicts (nested dicts joined with '.', as state_dict() keys
// are; list and tuple items by their index), and the other values (an int step, strings).

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/formats/support/pickle_machine.hpp"
#include "core/model/layout.hpp"

namespace payloadfs::formats::torch_state {

// Values visited while walking the pickle's value graph (shared values count each time).
inline constexpr uint64_t kMaxVisitedValues = 1'000'000;
// Tensors listed; more are reported.
inline constexpr uint64_t kMaxTensors = 1'000'000;
// Dimensions of one tensor.
inline constexpr size_t kMaxDims = 64;
// Keys nested deeper than this are not followed.
inline constexpr size_t kMaxKeyDepth = 32;
// Non-tensor values shown in the header: items of one list or dict, and nesting.
inline constexpr size_t kMaxShownItems = 64;
inline constexpr size_t kMaxShownDepth = 4;

// An element type of torch's storages.
struct ElementType {
  std::string_view storage;      // the storage class, "FloatStorage"
  std::string_view torch_dtype;  // torch's name, "float32"
  std::string_view numpy_kind;   // NumPy's type string without byte order, "f4"; "V2" for
                                 // bfloat16, which NumPy has no type for
  uint64_t itemsize = 0;
};

// The element type of a storage class name ("FloatStorage"; also "UntypedStorage", bytes).
[[nodiscard]] const ElementType* element_type_of(std::string_view storage_class);

struct Tensor {
  std::string key;      // its name: dict keys and indexes joined with '.'
  std::string rebuild;  // the rebuild function, "torch._utils._rebuild_tensor_v2"
  const ElementType* type = nullptr;
  std::string storage_type;  // the storage global, "torch.FloatStorage"
  std::string storage_key;   // "0": the member <prefix>/data/<key>
  std::string location;      // "cpu", "cuda:0"
  uint64_t storage_numel = 0;
  uint64_t storage_offset = 0;  // in elements
  std::vector<uint64_t> shape, stride;
  bool requires_grad = false;
  bool parameter = false;  // rebuilt as an nn.Parameter

  // Elements, nullopt when the product overflows.
  [[nodiscard]] std::optional<uint64_t> numel() const;
  // torch's is_contiguous(): strides of a C-order array, ignoring dimensions of size 1.
  [[nodiscard]] bool contiguous() const;
};

struct State {
  std::vector<Tensor> tensors;
  // Other values by key, as JSON (scalars, strings, short lists and dicts).
  Json values = Json::object();
  // Tensors built by other functions (quantized, sparse, subclasses): key -> the function.
  Json other_tensors = Json::object();
  std::vector<std::string> errors;
};

// Walks the value STOP returned.
[[nodiscard]] State read_state(const pickle::Value& root);

}  // namespace payloadfs::formats::torch_state

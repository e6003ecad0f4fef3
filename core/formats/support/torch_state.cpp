// After torch/serialization.py (_save's persistent_id, _load's persistent_load) and
// torch/_utils.py (_rebuild_tensor, _rebuild_tensor_v2, _rebuild_parameter) and
// torch/_tensor.py (_rebuild_from_type_v2): what the calls recorded in data.pkl would build.

#include "core/formats/support/torch_state.hpp"

#include <cmath>

#include "core/formats/support/json_members.hpp"
#include "core/io/checked_math.hpp"
#include "core/render/json_text.hpp"

namespace payloadfs::formats::torch_state {
namespace {

using pickle::Value;
using Kind = pickle::Value::Kind;

// torch's storage classes (torch/storage.py, _TypedStorage subclasses).
constexpr ElementType kElementTypes[] = {
    {"DoubleStorage", "float64", "f8", 8},
    {"FloatStorage", "float32", "f4", 4},
    {"HalfStorage", "float16", "f2", 2},
    {"BFloat16Storage", "bfloat16", "V2", 2},
    {"LongStorage", "int64", "i8", 8},
    {"IntStorage", "int32", "i4", 4},
    {"ShortStorage", "int16", "i2", 2},
    {"CharStorage", "int8", "i1", 1},
    {"ByteStorage", "uint8", "u1", 1},
    {"BoolStorage", "bool", "b1", 1},
    {"ComplexFloatStorage", "complex64", "c8", 8},
    {"ComplexDoubleStorage", "complex128", "c16", 16},
    {"QInt8Storage", "qint8", "i1", 1},
    {"QUInt8Storage", "quint8", "u1", 1},
    {"QInt32Storage", "qint32", "i4", 4},
    {"UntypedStorage", "uint8", "u1", 1},
};

constexpr std::string_view kRebuildV2 = "torch._utils._rebuild_tensor_v2";
constexpr std::string_view kRebuildV1 = "torch._utils._rebuild_tensor";
constexpr std::string_view kRebuildParameter = "torch._utils._rebuild_parameter";
constexpr std::string_view kRebuildParameterWithState =
    "torch._utils._rebuild_parameter_with_state";
constexpr std::string_view kRebuildFromType = "torch._tensor._rebuild_from_type_v2";
constexpr std::string_view kOrderedDict = "collections.OrderedDict";

std::string global_name(const Value* v) {
  if (v == nullptr || v->kind != Kind::global) return "";
  return v->module + "." + v->name;
}

std::string callable_name(const Value& v) {
  return v.kind == Kind::call ? global_name(v.callable) : "";
}

bool is_tensor_call(const Value& v) {
  const std::string name = callable_name(v);
  return name == kRebuildV2 || name == kRebuildV1 || name == kRebuildParameter ||
         name == kRebuildParameterWithState || name == kRebuildFromType;
}

bool is_rebuild_call(const Value& v) {
  return callable_name(v).starts_with("torch._utils._rebuild_") ||
         callable_name(v).starts_with("torch._tensor._rebuild_");
}

// A dict's key, value pairs: a dict, or a recorded OrderedDict() with SETITEMS applied.
const std::vector<const Value*>* dict_pairs(const Value& v) {
  if (v.kind == Kind::dict) return &v.items;
  if (v.kind == Kind::call && global_name(v.callable) == kOrderedDict) return &v.dict_items;
  return nullptr;
}

std::optional<std::string> key_text(const Value* k) {
  if (k == nullptr) return std::nullopt;
  if (k->kind == Kind::string) return utf8_or_escaped(k->text);
  if (k->kind == Kind::integer) return std::to_string(k->integer);
  if (k->kind == Kind::big_integer) return k->text;
  return std::nullopt;
}

std::string join(const std::string& prefix, const std::string& key) {
  return prefix.empty() ? key : prefix + "." + key;
}

std::optional<uint64_t> non_negative(const Value* v) {
  if (v == nullptr || v->kind != Kind::integer || v->integer < 0) return std::nullopt;
  return static_cast<uint64_t>(v->integer);
}

std::optional<std::vector<uint64_t>> dims(const Value* v) {
  if (v == nullptr || (v->kind != Kind::tuple && v->kind != Kind::list) ||
      v->items.size() > kMaxDims)
    return std::nullopt;
  std::vector<uint64_t> out;
  for (const Value* d : v->items) {
    const auto n = non_negative(d);
    if (!n) return std::nullopt;
    out.push_back(*n);
  }
  return out;
}

// ('storage', <storage type>, key, location, numel) into `t`; the error otherwise.
std::optional<std::string> read_storage(const Value* storage, Tensor& t) {
  if (storage == nullptr || storage->kind != Kind::persistent_id || storage->pid == nullptr)
    return "its storage is not a persistent id";
  const Value& pid = *storage->pid;
  if (pid.kind != Kind::tuple || pid.items.size() < 5 || pid.items[0]->kind != Kind::string ||
      pid.items[0]->text != "storage")
    return "its persistent id is not ('storage', type, key, location, numel)";
  t.storage_type = global_name(pid.items[1]);
  if (t.storage_type.empty()) return "its storage type is not a global";
  t.type = element_type_of(pid.items[1]->name);
  if (t.type == nullptr) return "unknown storage type " + utf8_or_escaped(t.storage_type);
  const auto key = key_text(pid.items[2]);
  if (!key) return "its storage key is not a string";
  t.storage_key = *key;
  if (pid.items[3]->kind == Kind::string) t.location = utf8_or_escaped(pid.items[3]->text);
  const auto numel = non_negative(pid.items[4]);
  if (!numel) return "its storage size is not a non-negative integer";
  t.storage_numel = *numel;
  return std::nullopt;
}

// The arguments of _rebuild_tensor(_v2): (storage, storage_offset, size, stride[, ...]).
std::optional<std::string> read_rebuild_args(const Value* args, Tensor& t) {
  if (args == nullptr || args->kind != Kind::tuple || args->items.size() < 4)
    return "its rebuild arguments are not (storage, offset, size, stride, ...)";
  const auto& a = args->items;
  if (auto err = read_storage(a[0], t)) return err;
  const auto offset = non_negative(a[1]);
  auto shape = dims(a[2]);
  auto stride = dims(a[3]);
  if (!offset) return "its storage offset is not a non-negative integer";
  if (!shape) return "its size is not a tuple of at most " + std::to_string(kMaxDims) + " sizes";
  if (!stride || stride->size() != shape->size())
    return "its stride is not a tuple as long as its size";
  t.storage_offset = *offset;
  t.shape = std::move(*shape);
  t.stride = std::move(*stride);
  if (a.size() > 4 && a[4]->kind == Kind::boolean) t.requires_grad = a[4]->boolean;
  return std::nullopt;
}

// A tensor call (see is_tensor_call) into `t`; the error otherwise.
std::optional<std::string> read_tensor(const Value& call, Tensor& t, int depth = 0) {
  const std::string name = callable_name(call);
  const auto& args = call.args->items;  // a call's args is never null
  if (name == kRebuildParameter || name == kRebuildParameterWithState) {
    if (args.empty() || !is_tensor_call(*args[0]) || depth > 2)
      return "its parameter does not wrap a tensor";
    t.parameter = true;
    if (auto err = read_tensor(*args[0], t, depth + 1)) return err;
    if (args.size() > 1 && args[1]->kind == Kind::boolean) t.requires_grad = args[1]->boolean;
    return std::nullopt;
  }
  if (name == kRebuildFromType) {  // (func, type, args, state): func(*args) made a subclass
    if (args.size() < 3 || global_name(args[0]) != kRebuildV2)
      return "its _rebuild_from_type_v2 does not call _rebuild_tensor_v2";
    t.rebuild = global_name(args[0]);
    return read_rebuild_args(args[2], t);
  }
  t.rebuild = name;
  return read_rebuild_args(call.args, t);
}

class Walker {
 public:
  explicit Walker(State& state) : state_(state) {}

  void walk(const Value& v, const std::string& key, size_t depth) {
    if (!budget()) return;
    if (is_tensor_call(v)) return add_tensor(v, key);
    if (is_rebuild_call(v)) {
      if (!other_keys_.add(state_.other_tensors, name_or(key, "tensor"), callable_name(v)))
        repeated(key);
      return;
    }
    const auto* pairs = dict_pairs(v);
    const bool sequence = v.kind == Kind::list || v.kind == Kind::tuple;
    if ((pairs == nullptr && !sequence) || (sequence && !holds_tensor(v, depth))) {
      if (!value_keys_.add(state_.values, name_or(key, "value"), shown(v, 0))) repeated(key);
      return;
    }
    if (depth >= kMaxKeyDepth) {
      state_.errors.push_back("'" + key + "' nests deeper than " + std::to_string(kMaxKeyDepth) +
                              " levels; not followed");
      return;
    }
    if (sequence) {
      for (size_t i = 0; i < v.items.size(); ++i)
        walk(*v.items[i], join(key, std::to_string(i)), depth + 1);
      return;
    }
    for (size_t i = 0; i + 1 < pairs->size(); i += 2) {
      const auto k = key_text((*pairs)[i]);
      if (!k) {
        state_.errors.push_back("a key of '" + key + "' is neither a string nor an integer");
        continue;
      }
      walk(*(*pairs)[i + 1], join(key, *k), depth + 1);
    }
  }

 private:
  static std::string name_or(const std::string& key, const char* fallback) {
    return key.empty() ? fallback : key;
  }

  void repeated(const std::string& key) {
    state_.errors.push_back("key '" + key + "' repeats; the header lists the first value");
  }

  bool budget() {
    if (++visited_ <= kMaxVisitedValues) return true;
    if (visited_ == kMaxVisitedValues + 1)
      state_.errors.push_back("more than " + std::to_string(kMaxVisitedValues) +
                              " values to walk; the rest is not read");
    return false;
  }

  // Whether a list or tuple holds a tensor (directly, or in its dicts and lists).
  bool holds_tensor(const Value& v, size_t depth) {
    if (depth > kMaxKeyDepth || !budget()) return false;
    if (is_tensor_call(v) || is_rebuild_call(v)) return true;
    const auto* pairs = dict_pairs(v);
    const auto& items = pairs != nullptr ? *pairs : v.items;
    if (pairs == nullptr && v.kind != Kind::list && v.kind != Kind::tuple) return false;
    for (const Value* item : items)
      if (holds_tensor(*item, depth + 1)) return true;
    return false;
  }

  void add_tensor(const Value& v, const std::string& key) {
    const std::string name = name_or(key, "tensor");
    if (state_.tensors.size() >= kMaxTensors) {
      if (state_.tensors.size() == kMaxTensors)
        state_.errors.push_back("more than " + std::to_string(kMaxTensors) +
                                " tensors; the rest are not listed");
      return;
    }
    Tensor t;
    t.key = name;
    if (const auto err = read_tensor(v, t)) {
      state_.errors.push_back("tensor '" + name + "': " + *err);
      return;
    }
    state_.tensors.push_back(std::move(t));
  }

  // A value for the header: scalars as they are, containers cut to kMaxShownItems.
  Json shown(const Value& v, size_t depth) {
    switch (v.kind) {
      case Kind::none:
        return nullptr;
      case Kind::boolean:
        return v.boolean;
      case Kind::integer:
        return v.integer;
      case Kind::floating:
        return std::isfinite(v.floating) ? Json(v.floating) : Json(std::to_string(v.floating));
      case Kind::big_integer:
      case Kind::string:
        return utf8_or_escaped(v.text);
      case Kind::bytes:
      case Kind::bytearray:
        return Json{{"bytes", v.text.size()}};
      case Kind::global:
        return Json{{"global", global_name(&v)}};
      case Kind::persistent_id:
        return Json{{"persistent_id", v.pid != nullptr ? shown(*v.pid, depth + 1) : Json()}};
      case Kind::call:
        if (dict_pairs(v) == nullptr) return Json{{"call", global_name(v.callable)}};
        [[fallthrough]];
      default:
        return shown_container(v, depth);
    }
  }

  Json shown_container(const Value& v, size_t depth) {
    const auto* pairs = dict_pairs(v);
    if (depth >= kMaxShownDepth) return Json{{"nested", true}};
    Json out = pairs != nullptr ? Json::object() : Json::array();
    const auto& items = pairs != nullptr ? *pairs : v.items;
    const size_t step = pairs != nullptr ? 2 : 1;
    for (size_t i = 0; i + step - 1 < items.size() && i / step < kMaxShownItems; i += step) {
      if (!budget()) break;
      if (pairs == nullptr) {
        out.push_back(shown(*items[i], depth + 1));
      } else if (const auto k = key_text(items[i])) {
        out[*k] = shown(*items[i + 1], depth + 1);
      }
    }
    return out;
  }

  State& state_;
  uint64_t visited_ = 0;
  JsonMembers value_keys_, other_keys_;
};

}  // namespace

const ElementType* element_type_of(std::string_view storage_class) {
  for (const auto& t : kElementTypes)
    if (t.storage == storage_class) return &t;
  return nullptr;
}

std::optional<uint64_t> Tensor::numel() const {
  uint64_t n = 1;
  for (const uint64_t d : shape) {
    const auto next = checked_mul(n, d);
    if (!next) return std::nullopt;
    n = *next;
  }
  return n;
}

bool Tensor::contiguous() const {
  if (numel() == uint64_t{0}) return true;
  uint64_t expected = 1;
  for (size_t i = shape.size(); i-- > 0;) {
    if (shape[i] == 1) continue;
    if (stride[i] != expected) return false;
    const auto next = checked_mul(expected, shape[i]);
    if (!next) return false;
    expected = *next;
  }
  return true;
}

State read_state(const pickle::Value& root) {
  State state;
  Walker(state).walk(root, "", 0);
  return state;
}

}  // namespace payloadfs::formats::torch_state

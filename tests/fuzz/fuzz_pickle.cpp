// The data-only pickle machine (core/formats/support/pickle_machine.hpp): any input gives a
// Result without throwing or crashing, within the limits; a Result without errors has a root,
// a failed one has errors; a root's graph is acyclic and no deeper than max_depth, which a
// walk here checks independently (every value reachable once per path, bounded).
// Seeds (scripts/fuzz.sh): the fixtures of tests/fixtures/gen_pickle.py (fixtures/pickle/).

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <span>
#include <string>
#include <unordered_map>

#include "core/formats/support/pickle_machine.hpp"
#include "tests/fuzz/fuzz_checks.hpp"

namespace {

using payloadfs::formats::pickle::Value;

// The depth of `value` (0 for a leaf), memoized; fails on a cycle (a value met again on the
// path) or past `max_depth`. Recursion is bounded by max_depth, which the machine enforces.
size_t depth_of(const Value* value, size_t level, size_t max_depth,
                std::unordered_map<const Value*, size_t>& done,
                std::unordered_map<const Value*, bool>& on_path) {
  if (const auto found = done.find(value); found != done.end()) return found->second;
  if (on_path[value]) payloadfs::fuzz::fail("pickle", "a root whose graph has a cycle");
  if (level > max_depth) payloadfs::fuzz::fail("pickle", "a root deeper than max_depth");
  on_path[value] = true;
  size_t depth = 0;
  auto visit = [&](const Value* child) {
    if (child != nullptr) {
      depth = std::max(depth, 1 + depth_of(child, level + 1, max_depth, done, on_path));
    }
  };
  for (const Value* item : value->items) visit(item);
  for (const Value* item : value->dict_items) visit(item);
  for (const Value* child :
       {value->callable, value->args, value->kwargs, value->state, value->pid}) {
    visit(child);
  }
  if (value->kind == Value::Kind::call && (value->callable == nullptr || value->args == nullptr)) {
    payloadfs::fuzz::fail("pickle", "a call without its callable or arguments");
  }
  on_path[value] = false;
  done[value] = depth;
  return depth;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::span<const std::byte> bytes(reinterpret_cast<const std::byte*>(data), size);
  payloadfs::formats::pickle::Limits limits;
  limits.max_values = 100'000;  // small caps keep each input fast; the caps are exercised too
  limits.max_items = 400'000;
  limits.max_depth = 64;
  payloadfs::formats::pickle::Result result;
  try {
    result = payloadfs::formats::pickle::load(bytes, limits);
  } catch (const std::exception& e) {
    payloadfs::fuzz::fail("pickle", std::string("load threw: ") + e.what());
  } catch (...) {
    payloadfs::fuzz::fail("pickle", "load threw a non-std exception");
  }
  if (result.root == nullptr && result.errors.empty()) {
    payloadfs::fuzz::fail("pickle", "neither a root nor an error");
  }
  for (const std::string& error : result.errors) {
    if (error.empty()) payloadfs::fuzz::fail("pickle", "an empty error message");
  }
  if (result.length > size) payloadfs::fuzz::fail("pickle", "a length past the input");
  if (result.values.size() > limits.max_values) {
    payloadfs::fuzz::fail("pickle", "more values than max_values");
  }
  if (result.root != nullptr) {
    std::unordered_map<const Value*, size_t> done;
    std::unordered_map<const Value*, bool> on_path;
    if (depth_of(result.root, 0, limits.max_depth, done, on_path) > limits.max_depth) {
      payloadfs::fuzz::fail("pickle", "a root deeper than max_depth");
    }
  }
  return 0;
}

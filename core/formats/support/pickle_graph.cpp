#include "core/formats/support/pickle_graph.hpp"

#include <algorithm>
#include <unordered_map>

namespace payloadfs::formats::pickle {
namespace {

// A value's children in a fixed order: items, dict items, then the call's and persistent
// id's references (null ones skipped by the caller).
size_t child_count(const Value& value) {
  return value.items.size() + value.dict_items.size() + 5;
}

const Value* child(const Value& value, size_t index) {
  if (index < value.items.size()) return value.items[index];
  index -= value.items.size();
  if (index < value.dict_items.size()) return value.dict_items[index];
  index -= value.dict_items.size();
  const Value* const references[] = {value.callable, value.args, value.kwargs, value.state,
                                     value.pid};
  return references[index];
}

struct Frame {
  const Value* value;
  size_t next_child = 0;
  size_t depth = 0;  // the deepest child's depth + 1 so far
};

}  // namespace

bool check_graph(const Value& root, size_t max_depth, std::vector<std::string>& errors) {
  // Depth of each finished value; a value on the path (in `path`) is absent here and marked
  // in `on_path`, so reaching it again is a cycle.
  std::unordered_map<const Value*, size_t> depth_of;
  std::unordered_map<const Value*, bool> on_path;
  std::vector<Frame> path{{&root}};
  on_path[&root] = true;
  while (!path.empty()) {
    Frame& frame = path.back();
    if (frame.next_child == child_count(*frame.value)) {
      const size_t depth = frame.depth;
      depth_of[frame.value] = depth;
      on_path[frame.value] = false;
      path.pop_back();
      if (!path.empty()) path.back().depth = std::max(path.back().depth, depth + 1);
      continue;
    }
    const Value* next = child(*frame.value, frame.next_child++);
    if (next == nullptr) continue;
    if (const auto done = depth_of.find(next); done != depth_of.end()) {
      frame.depth = std::max(frame.depth, done->second + 1);
      continue;
    }
    if (on_path[next]) {
      errors.push_back("the pickle's result holds itself (a cycle through a " +
                       std::string(next->kind == Value::Kind::list   ? "list"
                                   : next->kind == Value::Kind::dict ? "dict"
                                                                     : "value") +
                       "); not supported");
      return false;
    }
    if (path.size() > max_depth) {
      errors.push_back("the pickle's result nests deeper than " + std::to_string(max_depth) +
                       " (Limits::max_depth)");
      return false;
    }
    on_path[next] = true;
    path.push_back({next});
  }
  if (depth_of[&root] > max_depth) {
    errors.push_back("the pickle's result nests deeper than " + std::to_string(max_depth) +
                     " (Limits::max_depth)");
    return false;
  }
  return true;
}

}  // namespace payloadfs::formats::pickle

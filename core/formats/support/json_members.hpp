#pragma once
// Building large JSON objects key by key. ordered_json finds a key by a linear search, so
// `object[key] = value` for each of a million members is quadratic; formats that list many
// named things (arrays of an npz, tensors of a checkpoint) check keys against a hash set and
// append.

#include <string>
#include <unordered_set>
#include <utility>
#include <vector>

#include "core/model/layout.hpp"

namespace payloadfs::formats {

class JsonMembers {
 public:
  // Appends `key: value` to `object` (a JSON object) unless the key was added before; false
  // when it repeats (the first value stays).
  bool add(Json& object, const std::string& key, Json value) {
    if (!seen_.insert(key).second) return false;
    auto& members = static_cast<std::vector<std::pair<const std::string, Json>>&>(
        object.get_ref<Json::object_t&>());
    members.emplace_back(key, std::move(value));
    return true;
  }

  [[nodiscard]] bool contains(const std::string& key) const { return seen_.contains(key); }

 private:
  std::unordered_set<std::string> seen_;
};

}  // namespace payloadfs::formats

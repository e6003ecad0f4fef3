#pragma once
// The check a pickle's result passes before load() returns it: no cycle (a list that holds
// itself, made by APPEND on a memoized list) and no deeper nesting than the limit, so that
// callers may walk it recursively. One visit per value, however often it is shared.

#include <cstddef>
#include <string>
#include <vector>

#include "core/formats/support/pickle_machine.hpp"

namespace payloadfs::formats::pickle {

// False (and an error in `errors`) when the graph under `root` has a cycle or nests deeper
// than `max_depth` (a scalar is depth 0, a container one more than its deepest element).
[[nodiscard]] bool check_graph(const Value& root, size_t max_depth,
                               std::vector<std::string>& errors);

}  // namespace payloadfs::formats::pickle

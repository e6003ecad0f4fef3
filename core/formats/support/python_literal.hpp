#pragma once
// A parser for the Python literal subset NumPy writes in .npy headers: dicts, lists, tuples,
// strings, integers, True/False/None. Not a regex: a small recursive-descent parser with a
// nesting limit, so hostile headers cannot exhaust the stack.

#include <string>
#include <string_view>
#include <variant>

#include <nlohmann/json.hpp>

namespace payloadfs {

struct PythonLiteralError {
  std::string message;
};

// Tuples and lists both become JSON arrays; dict keys must be strings.
[[nodiscard]] std::variant<nlohmann::ordered_json, PythonLiteralError> parse_python_literal(
    std::string_view text);

}  // namespace payloadfs

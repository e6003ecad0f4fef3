#pragma once
// A value or an errno: what every operation on sources and on the virtual namespace returns.
// An alias, not a class, so that SourceRoot's variants, the namespace and the FUSE driver
// speak the same type; error_of() is the one way to ask which one it holds.

#include <variant>

namespace payloadfs {

template <typename T>
using Result = std::variant<T, int>;

// The errno a result carries, or null when it holds a value.
template <typename T>
[[nodiscard]] const int* error_of(const Result<T>& result) noexcept {
  return std::get_if<int>(&result);
}

// The value of a result known to hold one (after error_of() returned null).
template <typename T>
[[nodiscard]] T& value_of(Result<T>& result) {
  return std::get<T>(result);
}
template <typename T>
[[nodiscard]] const T& value_of(const Result<T>& result) {
  return std::get<T>(result);
}

}  // namespace payloadfs

#pragma once
// The ordered list of formats. Detection asks each format in order and takes the first match;
// `unknown` is always last, so every file has a format.

#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/model/format.hpp"

namespace payloadfs {

class Registry {
 public:
  // Built-in formats in documented order: fixed signatures first, then structural checks.
  static Registry with_builtins();

  Registry() = default;
  Registry(Registry&&) = default;
  Registry& operator=(Registry&&) = default;

  // Appends before `unknown`.
  void add(std::unique_ptr<Format> format);
  // A user-defined format (a descriptor from `source`): tried before every built-in format,
  // after the descriptors added before it.
  void add_descriptor(std::unique_ptr<Format> format, std::string source);
  // Where a format comes from: a descriptor's file, or "built-in".
  [[nodiscard]] std::string_view source_of(const Format& format) const;
  [[nodiscard]] const Format& detect(std::span<const std::byte> head, uint64_t size) const;
  [[nodiscard]] const Format* find(std::string_view name) const;
  // Every format in detection order, `unknown` last.
  [[nodiscard]] std::vector<const Format*> formats() const;

 private:
  std::vector<std::unique_ptr<Format>> descriptors_;
  std::vector<std::string> descriptor_sources_;
  std::vector<std::unique_ptr<Format>> formats_;
  std::unique_ptr<Format> fallback_;
};

}  // namespace payloadfs

#pragma once
// The format interface. A format recognises files from their first bytes and turns a file into
// a Layout. Parsers read only through ByteSource/BinaryReader and only the pages they need.

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "core/io/byte_source.hpp"
#include "core/model/layout.hpp"

namespace payloadfs {

// How many leading bytes detection sees (fewer when the file is shorter).
inline constexpr size_t kDetectHeadBytes = 4096;

class Format {
 public:
  virtual ~Format() = default;
  [[nodiscard]] virtual std::string_view name() const noexcept = 0;
  [[nodiscard]] virtual std::string_view description() const noexcept = 0;
  // How the format is recognised, for formats.json and the docs.
  [[nodiscard]] virtual std::string_view signature() const noexcept = 0;
  [[nodiscard]] virtual bool detect(std::span<const std::byte> head, uint64_t size) const = 0;
  // Never throws for bad input: problems become Layout::errors.
  [[nodiscard]] virtual Layout parse(const ByteSource& source) const = 0;
};

}  // namespace payloadfs

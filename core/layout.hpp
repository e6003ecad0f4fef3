#pragma once
// What a format parser says about one file: its header, its named byte slices and its errors.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace payloadfs {

// Ordered, so JSON keys appear in the order formats and files give them.
using Json = nlohmann::ordered_json;

struct ByteRange {
  uint64_t offset = 0;
  uint64_t length = 0;
  friend bool operator==(const ByteRange&, const ByteRange&) = default;
};

struct Slice {
  std::string name;  // as the format names it; '/' separates nested directories under raw/
  ByteRange range;
  Json attributes = Json::object();
};

struct Layout {
  Json header = Json::object();
  std::vector<Slice> slices;
  std::vector<std::string> errors;
  // The format's signature bytes; unset for formats without a fixed signature.
  std::optional<ByteRange> magic;

  void add_error(std::string message) { errors.push_back(std::move(message)); }
};

}  // namespace payloadfs

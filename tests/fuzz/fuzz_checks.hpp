#pragma once
// Checks shared by the fuzz targets. A failed check aborts, so libFuzzer keeps the input.

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>
#include <string_view>

#include "core/io/checked_math.hpp"
#include "core/model/format.hpp"

namespace payloadfs::fuzz {

[[noreturn]] inline void fail(std::string_view format, std::string_view what) {
  std::fprintf(stderr, "\n*** payloadfs fuzz check failed [%.*s]: %.*s\n",
               static_cast<int>(format.size()), format.data(), static_cast<int>(what.size()),
               what.data());
  std::abort();
}

// Record attributes rendered per table and input (tables can hold millions of records).
inline constexpr size_t kMaxRecordsChecked = 4096;

// The bytes detection sees, as Payload::build passes them.
inline std::span<const std::byte> head_of(std::span<const std::byte> bytes) {
  return bytes.first(std::min(bytes.size(), kDetectHeadBytes));
}

// Parses `bytes` with `format` and checks the Format contract: parse never throws, every slice
// and record lies inside the file, and the header and attributes are valid UTF-8 JSON.
inline Layout parse_checked(const Format& format, std::span<const std::byte> bytes) {
  const MemorySource source(bytes);
  Layout layout;
  try {
    layout = format.parse(source);
  } catch (const std::exception& e) {
    fail(format.name(), std::string("parse threw: ") + e.what());
  } catch (...) {
    fail(format.name(), "parse threw a non-std exception");
  }
  for (const Slice& slice : layout.slices) {
    if (!range_within(slice.range.offset, slice.range.length, bytes.size()))
      fail(format.name(), "slice '" + slice.name + "' [" + std::to_string(slice.range.offset) +
                              "+" + std::to_string(slice.range.length) + "] outside the " +
                              std::to_string(bytes.size()) + "-byte input");
  }
  for (const RecordTable& table : layout.tables) {
    for (const Record& record : table.records) {
      if (!range_within(record.offset, record.length, bytes.size()))
        fail(format.name(), "a record of '" + table.dir + "' [" + std::to_string(record.offset) +
                                "+" + std::to_string(record.length) + "] outside the " +
                                std::to_string(bytes.size()) + "-byte input");
    }
  }
  try {
    (void)layout.header.dump(-1, ' ', false, Json::error_handler_t::strict);
    for (const Slice& slice : layout.slices)
      (void)slice.attributes.dump(-1, ' ', false, Json::error_handler_t::strict);
    // Record attributes are read back from the file when slices.json is rendered.
    for (const RecordTable& table : layout.tables) {
      if (!table.attributes) continue;
      size_t checked = 0;
      for (const Record& record : table.records) {
        if (++checked > kMaxRecordsChecked) break;
        (void)table.attributes(source, record).dump(-1, ' ', false, Json::error_handler_t::strict);
      }
    }
  } catch (const std::exception& e) {
    fail(format.name(), std::string("header or attributes not valid JSON text: ") + e.what());
  }
  return layout;
}

}  // namespace payloadfs::fuzz

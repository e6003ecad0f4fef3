#pragma once
// User-defined formats described in JSON (docs/descriptors.md). A descriptor is loaded and
// checked once (every problem names the file, the JSON path and what is wrong) and then behaves
// like a built-in Format: detection by magic bytes, typed header fields, validation
// expressions, and slices (single, fixed-stride tables, walked sequences of records). Tables and
// walks named "<dir>/{i}" become compact RecordTables (16 bytes a record, fields read back from
// the file on demand); other names give one Slice per record.

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "core/descriptor/expression.hpp"
#include "core/model/format.hpp"

namespace payloadfs::descriptor {

// Hard caps; hostile files and descriptors cannot exceed them. All are configurable.
struct Limits {
  uint64_t max_records = 1'000'000;         // slices made by one table or walked sequence
  uint64_t max_reads = 16'000'000;          // reads per parsed file (fields and u8()..i64() calls),
                                            // and per record table record read back
  uint64_t max_field_bytes = 4096;          // length of one `str` or `bytes` field
  uint64_t max_errors_per_slice = 100;      // errors listed per slices entry; the rest are counted
  uint64_t max_descriptor_bytes = 1 << 20;  // size of a descriptor file
  unsigned max_json_depth = 32;             // nesting of a descriptor's JSON
  size_t max_files_per_dir = 1024;          // *.json files loaded from one directory
  ExpressionLimits expression;              // depth 64, length 4096 characters
};

struct Compiled;  // the checked descriptor; defined in spec.hpp

class DescriptorFormat final : public Format {
 public:
  explicit DescriptorFormat(std::unique_ptr<const Compiled> compiled);
  ~DescriptorFormat() override;

  std::string_view name() const noexcept override;
  std::string_view description() const noexcept override;
  std::string_view signature() const noexcept override;
  bool detect(std::span<const std::byte> head, uint64_t size) const override;
  Layout parse(const ByteSource& source) const override;

  // The file the descriptor was loaded from (as given to the loader).
  [[nodiscard]] const std::string& source_path() const noexcept;

 private:
  std::unique_ptr<const Compiled> compiled_;
};

// "FILE: /json/path: problem", or "FILE: problem" for file-level problems.
struct LoadError {
  std::string message;
};

// Checks and compiles a descriptor given as JSON text; `source_path` is used in messages.
[[nodiscard]] std::variant<std::unique_ptr<DescriptorFormat>, LoadError> parse_descriptor(
    std::string_view json_text, const std::string& source_path, const Limits& limits = {});

// Reads and compiles one descriptor file.
[[nodiscard]] std::variant<std::unique_ptr<DescriptorFormat>, LoadError> load_descriptor_file(
    const std::string& path, const Limits& limits = {});

struct LoadedDescriptors {
  // In load order: directories in the given order, files in each by byte-wise sorted name.
  std::vector<std::unique_ptr<DescriptorFormat>> formats;
  // One line per descriptor skipped because an earlier directory defines the same name.
  std::vector<std::string> shadowed;
};

// Loads every `*.json` file of each directory. A directory that does not exist is skipped; one
// that cannot be read, or any bad descriptor, stops loading with that error. The same name twice
// in one directory is an error; in a later directory it is shadowed (the first one wins).
[[nodiscard]] std::variant<LoadedDescriptors, LoadError> load_descriptors(
    const std::vector<std::string>& dirs, const Limits& limits = {});

}  // namespace payloadfs::descriptor

#pragma once
// Shared pieces of the microbenchmarks: in-memory files with a real descriptor (memfd), the
// registries, and failure reporting that makes the program exit non-zero (a benchmark whose
// input no longer parses cleanly is a broken benchmark, not a skipped one).

#include <benchmark/benchmark.h>
#include <sys/stat.h>

#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "core/io/unique_fd.hpp"
#include "core/model/registry.hpp"
#include "core/payload.hpp"
#include "microbench/builders.hpp"

namespace payloadfs::microbench {

// A file that lives in memory (memfd_create): Payload::build can map and pread it like a file
// of SRC, without touching a disk.
class MemFile {
 public:
  // Aborts the program when the memfd cannot be created or written: nothing can be measured.
  MemFile(const std::string& name, const FileBytes& bytes);
  [[nodiscard]] int fd() const noexcept { return fd_.get(); }
  [[nodiscard]] const struct stat& stat() const noexcept { return stat_; }

 private:
  UniqueFd fd_;
  struct stat stat_ {};
};

// Marks the benchmark failed (the program then exits 1) and stops it.
void fail(benchmark::State& state, const std::string& message);
// Stops the benchmark without failing (an optional input is missing).
void skip(benchmark::State& state, const std::string& message);
[[nodiscard]] bool any_failed() noexcept;

// The built-in formats, in their documented order.
[[nodiscard]] const Registry& builtin_registry();
// The built-ins plus examples/formats/telemetry.json; nullptr (and `error` set) when the
// descriptor cannot be loaded.
[[nodiscard]] const Registry* telemetry_registry(std::string& error);

// The registry that detects `format`: telemetry_registry() for "telemetry", else the built-ins;
// nullptr (and `error` set) when it cannot be loaded.
[[nodiscard]] const Registry* registry_for(std::string_view format, std::string& error);

// sample_file(format, count) as an in-memory file and its payload, built once per process and
// checked: detected as `format` and without errors.
struct Sample {
  std::unique_ptr<MemFile> file;
  std::shared_ptr<const Payload> payload;
  std::string error;  // why there is no payload
};
[[nodiscard]] const Sample& sample(std::string_view format, size_t count = 0);
// The sample's payload, or nullptr after failing the benchmark with the sample's error.
[[nodiscard]] const Payload* sample_payload(benchmark::State& state, std::string_view format,
                                            size_t count = 0);

}  // namespace payloadfs::microbench

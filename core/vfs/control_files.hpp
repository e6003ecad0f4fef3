#pragma once
// /.payloadfs: the mount's own files. Each is rendered whole when read (a snapshot: stats and
// errors change between reads). stats.json counts requests, which only the driver sees, so
// the driver renders it.

#include <ctime>
#include <functional>
#include <string>
#include <string_view>

#include "core/io/source_root.hpp"
#include "core/model/registry.hpp"
#include "core/payload_errors.hpp"

namespace payloadfs {

class ControlFiles {
 public:
  static constexpr std::string_view kDir = ".payloadfs";  // at the top of the mount
  static constexpr std::string_view kNames[] = {"version", "formats.json", "stats.json",
                                                "errors.json"};

  ControlFiles(const SourceRoot& root, const Registry& registry, PayloadErrors& payload_errors,
               std::function<std::string()> stats_json);

  [[nodiscard]] static bool exists(std::string_view name);
  // Whether the file's size may differ from one read to the next (the kernel must not cache
  // its attributes).
  [[nodiscard]] static bool changes_between_reads(std::string_view name);
  // The file's text now; "" for a name that is not a control file.
  [[nodiscard]] std::string render(std::string_view name) const;
  // When the mount started: the times of the directory and its files.
  [[nodiscard]] const struct timespec& started() const noexcept { return started_; }

 private:
  [[nodiscard]] std::string formats_json() const;
  [[nodiscard]] std::string errors_json() const;

  const SourceRoot& root_;
  const Registry& registry_;
  PayloadErrors& payload_errors_;  // errors.json drops stale entries as it renders
  std::function<std::string()> stats_json_;
  struct timespec started_ {};
};

}  // namespace payloadfs

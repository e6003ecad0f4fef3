#include "core/vfs/control_files.hpp"

#include <sys/stat.h>

#include <utility>

#include "core/render/json_text.hpp"
#include "payloadfs/version.hpp"

namespace payloadfs {

ControlFiles::ControlFiles(const SourceRoot& root, const Registry& registry,
                           PayloadErrors& payload_errors, std::function<std::string()> stats_json)
    : root_(root),
      registry_(registry),
      payload_errors_(payload_errors),
      stats_json_(std::move(stats_json)) {
  ::clock_gettime(CLOCK_REALTIME, &started_);
}

bool ControlFiles::exists(std::string_view name) {
  for (const auto file : kNames)
    if (name == file) return true;
  return false;
}

bool ControlFiles::changes_between_reads(std::string_view name) {
  return name == "stats.json" || name == "errors.json";
}

std::string ControlFiles::render(std::string_view name) const {
  if (name == "version") return std::string("payloadfs ") + kVersion + "\n";
  if (name == "formats.json") return formats_json();
  if (name == "stats.json") return stats_json_ ? stats_json_() : std::string("{}\n");
  if (name == "errors.json") return errors_json();
  return {};
}

std::string ControlFiles::formats_json() const {
  Json out = Json::array();
  for (const Format* format : registry_.formats()) {
    out.push_back({{"name", format->name()},
                   {"description", format->description()},
                   {"signature", format->signature()},
                   {"source", registry_.source_of(*format)}});
  }
  return out.dump(2) + "\n";
}

// Payload versions that reported errors and are still current: entries whose source is gone
// or changed since are dropped here (a changed source is listed again once it is parsed).
std::string ControlFiles::errors_json() const {
  Json payloads = Json::array();
  for (const auto& entry : payload_errors_.entries()) {
    auto st = root_.stat(entry.path);
    const auto* s = std::get_if<struct stat>(&st);
    if (s == nullptr || !S_ISREG(s->st_mode) || !(SourceIdentity::of(*s) == entry.identity)) {
      payload_errors_.forget(entry.path, entry.identity);
      continue;
    }
    payloads.push_back({{"path", utf8_or_escaped(entry.path)},
                        {"format", entry.format},
                        {"first_error", utf8_or_escaped(entry.first_error)},
                        {"error_count", entry.error_count}});
  }
  Json out = Json::object();
  out["count"] = payloads.size();
  out["truncated"] = payload_errors_.truncated();
  out["payloads"] = std::move(payloads);
  return out.dump(2, ' ', false, Json::error_handler_t::replace) + "\n";
}

}  // namespace payloadfs

#pragma once
// The daemon's log: one level filter in front of stderr (foreground) or syslog (daemon), for
// payloadfs's messages and libfuse's alike. printf-style, checked by the compiler; each
// message is written with a single call, so lines from different threads never interleave.

#include <optional>
#include <string_view>

namespace payloadfs {

// Ordered from the most to the least important; a level shows itself and everything above.
enum class LogLevel { error, warn, info, debug };

[[nodiscard]] std::optional<LogLevel> parse_log_level(std::string_view name);
[[nodiscard]] std::string_view log_level_name(LogLevel level);

// Messages up to `level` are written; the rest are dropped before formatting. Also routes
// libfuse's own messages through the same filter. Safe to call again (to change the level).
void log_to_stderr(LogLevel level);
// From now on write to syslog (LOG_DAEMON, ident "payloadfs"); the level is kept.
void log_to_syslog();

[[nodiscard]] bool log_enabled(LogLevel level);

// One line (no trailing newline needed).
void log(LogLevel level, const char* format, ...) __attribute__((format(printf, 2, 3)));

}  // namespace payloadfs

#include "fs/log.hpp"

#include <fuse_log.h>
#include <syslog.h>

#include <atomic>
#include <cstdarg>
#include <cstdio>
#include <string>

namespace payloadfs {
namespace {

std::atomic<LogLevel> g_level{LogLevel::info};
std::atomic<bool> g_syslog{false};

constexpr int priority_of(LogLevel level) {
  switch (level) {
    case LogLevel::error:
      return LOG_ERR;
    case LogLevel::warn:
      return LOG_WARNING;
    case LogLevel::info:
      return LOG_INFO;
    case LogLevel::debug:
      break;
  }
  return LOG_DEBUG;
}

// syslog priorities and fuse_log levels share their numbers; NOTICE counts as info.
bool priority_enabled(int priority) {
  return priority <= priority_of(g_level.load(std::memory_order_relaxed));
}

// libfuse's messages: filtered, then written as they are (with -d, its request trace).
__attribute__((format(printf, 2, 0))) void from_libfuse(enum fuse_log_level level,
                                                        const char* format, va_list ap) {
  const int priority = static_cast<int>(level);
  if (!priority_enabled(priority)) return;
  if (g_syslog.load(std::memory_order_relaxed)) {
    vsyslog(priority, format, ap);
  } else {
    std::vfprintf(stderr, format, ap);
  }
}

}  // namespace

std::optional<LogLevel> parse_log_level(std::string_view name) {
  for (const LogLevel level : {LogLevel::error, LogLevel::warn, LogLevel::info, LogLevel::debug}) {
    if (name == log_level_name(level)) return level;
  }
  return std::nullopt;
}

std::string_view log_level_name(LogLevel level) {
  switch (level) {
    case LogLevel::error:
      return "error";
    case LogLevel::warn:
      return "warn";
    case LogLevel::info:
      return "info";
    case LogLevel::debug:
      break;
  }
  return "debug";
}

void log_to_stderr(LogLevel level) {
  g_level.store(level, std::memory_order_relaxed);
  g_syslog.store(false, std::memory_order_relaxed);
  fuse_set_log_func(from_libfuse);
}

void log_to_syslog() {
  openlog("payloadfs", LOG_PID, LOG_DAEMON);
  g_syslog.store(true, std::memory_order_relaxed);
  fuse_set_log_func(from_libfuse);
}

bool log_enabled(LogLevel level) {
  return priority_enabled(priority_of(level));
}

void log(LogLevel level, const char* format, ...) {
  if (!log_enabled(level)) return;
  va_list ap;
  va_start(ap, format);
  char stack[512];
  va_list again;
  va_copy(again, ap);
  const int needed = std::vsnprintf(stack, sizeof stack, format, ap);
  va_end(ap);
  std::string text;
  if (needed < 0) {
    text = format;  // a broken conversion: the format is better than nothing
  } else if (static_cast<size_t>(needed) < sizeof stack) {
    text.assign(stack, static_cast<size_t>(needed));
  } else {
    text.resize(static_cast<size_t>(needed));
    std::vsnprintf(text.data(), text.size() + 1, format, again);
  }
  va_end(again);
  // One message, one line: control bytes (a newline in a file name) are escaped.
  std::string clean;
  clean.reserve(text.size());
  for (const char c : text) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7F) {
      char escaped[5];
      std::snprintf(escaped, sizeof escaped, "\\x%02X",
                    static_cast<unsigned>(static_cast<unsigned char>(c)));
      clean += escaped;
    } else {
      clean += c;
    }
  }
  text = std::move(clean);
  if (g_syslog.load(std::memory_order_relaxed)) {
    const std::string_view name = log_level_name(level);
    syslog(priority_of(level), "%.*s: %s", static_cast<int>(name.size()), name.data(),
           text.c_str());
  } else {
    // One write per line: stdio locks the stream for the call.
    const std::string line =
        "payloadfs: " + std::string(log_level_name(level)) + ": " + text + "\n";
    std::fwrite(line.data(), 1, line.size(), stderr);
  }
}

}  // namespace payloadfs

#include "microbench/bench_support.hpp"

#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <utility>
#include <variant>

#include "core/descriptor/descriptor.hpp"

namespace payloadfs::microbench {
namespace {

std::atomic<bool> g_failed{false};

[[noreturn]] void die(const std::string& what) {
  std::fprintf(stderr, "microbench: %s: %s\n", what.c_str(), std::strerror(errno));
  std::exit(2);
}

}  // namespace

MemFile::MemFile(const std::string& name, const FileBytes& bytes)
    : fd_(::memfd_create(name.c_str(), MFD_CLOEXEC)) {
  if (!fd_.valid()) die("memfd_create " + name);
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd_.get(), bytes.data() + done, bytes.size() - done);
    if (n <= 0) die("write " + name);
    done += static_cast<size_t>(n);
  }
  if (::fstat(fd_.get(), &stat_) != 0) die("fstat " + name);
}

void fail(benchmark::State& state, const std::string& message) {
  g_failed = true;
  std::fprintf(stderr, "microbench: FAILED: %s\n", message.c_str());
  state.SkipWithError(message.c_str());
}

void skip(benchmark::State& state, const std::string& message) {
  state.SkipWithError(("skipped: " + message).c_str());
}

bool any_failed() noexcept {
  return g_failed;
}

const Registry& builtin_registry() {
  static const Registry registry = Registry::with_builtins();
  return registry;
}

const Registry* telemetry_registry(std::string& error) {
  // Loaded once; the outcome (registry or message) is kept for every caller.
  struct Loaded {
    std::optional<Registry> registry;
    std::string error;
  };
  static const Loaded loaded = [] {
    Loaded out;
    const std::string path = std::string(PAYLOADFS_EXAMPLES_DIR) + "/formats/telemetry.json";
    auto format = descriptor::load_descriptor_file(path);
    if (const auto* err = std::get_if<descriptor::LoadError>(&format)) {
      out.error = err->message;
      return out;
    }
    out.registry = Registry::with_builtins();
    out.registry->add_descriptor(
        std::move(std::get<std::unique_ptr<descriptor::DescriptorFormat>>(format)), path);
    return out;
  }();
  error = loaded.error;
  return loaded.registry ? &*loaded.registry : nullptr;
}

const Registry* registry_for(std::string_view format, std::string& error) {
  if (format == "telemetry") return telemetry_registry(error);
  return &builtin_registry();
}

const Sample& sample(std::string_view format, size_t count) {
  static std::mutex mutex;
  static std::map<std::pair<std::string, size_t>, Sample> samples;
  const std::lock_guard lock(mutex);
  auto [it, added] = samples.try_emplace({std::string(format), count});
  Sample& s = it->second;
  if (!added) return s;
  const FileBytes bytes = sample_file(format, count);
  if (bytes.empty()) {
    s.error = "no sample builder for '" + std::string(format) + "'";
    return s;
  }
  const Registry* registry = registry_for(format, s.error);
  if (registry == nullptr) return s;
  s.file = std::make_unique<MemFile>(std::string(format), bytes);
  auto payload = Payload::build("bench", s.file->fd(), s.file->stat(), *registry);
  if (payload->format() != format) {
    s.error =
        "detected as '" + std::string(payload->format()) + "', not '" + std::string(format) + "'";
  } else if (!payload->errors().empty()) {
    s.error = std::string(format) + " sample has errors: " + payload->errors().front();
  } else {
    s.payload = std::move(payload);
  }
  return s;
}

const Payload* sample_payload(benchmark::State& state, std::string_view format, size_t count) {
  const Sample& s = sample(format, count);
  if (!s.payload) fail(state, s.error);
  return s.payload.get();
}

}  // namespace payloadfs::microbench

// The payload cache (core/payload_cache): every fs operation on MNT/<file>/... asks it for the
// file's current payload.
//   CacheHit/<n>       a cached payload, with the source's identity revalidated (open beneath
//                      SRC, fstat, compare): n payloads cached, looked up in a scattered order.
//   CacheMiss          capacity 1 and two files in turn: every lookup rebuilds (evict + build).
//   OpenStat           only the open + fstat + close the hit path does: its syscall floor.
// The files live in a temporary directory (tmpfs /tmp or disk; the page cache holds them).

#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <variant>
#include <vector>

#include "core/io/source_root.hpp"
#include "core/payload_cache.hpp"
#include "microbench/bench_support.hpp"

namespace payloadfs::microbench {
namespace {

constexpr size_t kMaxFiles = 1000;

// SRC for these benchmarks: kMaxFiles small PNG files, removed at exit.
class SourceDir {
 public:
  static const SourceDir& get() {
    static const SourceDir dir;
    return dir;
  }
  [[nodiscard]] const SourceRoot* root() const { return root_.get(); }
  [[nodiscard]] const std::string& error() const { return error_; }
  [[nodiscard]] static std::string name(size_t i) {
    return "d" + std::to_string(i % 10) + "/f" + std::to_string(i) + ".png";
  }

  SourceDir(const SourceDir&) = delete;
  SourceDir& operator=(const SourceDir&) = delete;
  ~SourceDir() {
    std::error_code ec;
    if (!path_.empty()) std::filesystem::remove_all(path_, ec);
  }

 private:
  SourceDir() {
    const char* tmp = std::getenv("TMPDIR");
    std::string templ =
        std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") + "/payloadfs-microbench-XXXXXX";
    if (::mkdtemp(templ.data()) == nullptr) {
      error_ = "mkdtemp " + templ + " failed";
      return;
    }
    path_ = templ;
    const FileBytes png = sample_file("png");
    for (size_t i = 0; i < kMaxFiles; ++i) {
      const std::filesystem::path file = path_ / name(i);
      std::error_code ec;
      std::filesystem::create_directories(file.parent_path(), ec);
      const UniqueFd fd(::open(file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
      if (!fd.valid() ||
          ::write(fd.get(), png.data(), png.size()) != static_cast<ssize_t>(png.size())) {
        error_ = "cannot write " + file.string();
        return;
      }
    }
    auto opened = SourceRoot::open(path_.string());
    if (auto* err = std::get_if<SourceRoot::OpenError>(&opened)) {
      error_ = err->message;
      return;
    }
    root_ = std::make_unique<SourceRoot>(std::move(std::get<SourceRoot>(opened)));
  }

  std::filesystem::path path_;
  std::unique_ptr<SourceRoot> root_;
  std::string error_;
};

const SourceRoot* source_root(benchmark::State& state) {
  const SourceDir& dir = SourceDir::get();
  if (dir.root() == nullptr) fail(state, dir.error());
  return dir.root();
}

// A payload from the cache, or nullptr after failing the benchmark.
std::shared_ptr<const Payload> get(benchmark::State& state, PayloadCache& cache,
                                   const std::string& rel) {
  auto got = cache.get(rel);
  if (const int* err = std::get_if<int>(&got)) {
    fail(state, rel + ": errno " + std::to_string(*err));
    return nullptr;
  }
  return std::get<std::shared_ptr<const Payload>>(got);
}

// A cache holding the first `files` files, built once per size and shared by the threads of a
// run (Threads(2): lookups contend for its mutex); nullptr after failing the benchmark. Every
// thread gets the same answer, so all of them either skip or enter the timed loop together.
PayloadCache* hit_cache(benchmark::State& state, size_t files) {
  static std::mutex mutex;
  static std::map<size_t, std::unique_ptr<PayloadCache>> caches;
  const SourceRoot* root = source_root(state);
  if (root == nullptr) return nullptr;
  const std::lock_guard lock(mutex);
  auto& cache = caches[files];
  if (!cache) {
    auto fresh = std::make_unique<PayloadCache>(*root, builtin_registry(), files, size_t{1} << 30);
    for (size_t i = 0; i < files; ++i) {
      const auto payload = get(state, *fresh, SourceDir::name(i));
      if (!payload) return nullptr;
      if (payload->format() != "png" || !payload->errors().empty()) {
        fail(state, "the cached file is not a clean png");
        return nullptr;
      }
    }
    cache = std::move(fresh);
  }
  return cache.get();
}

void CacheHit(benchmark::State& state) {
  const auto files = static_cast<size_t>(state.range(0));
  PayloadCache* cache = hit_cache(state, files);
  if (cache == nullptr) return;
  std::vector<std::string> names;
  for (size_t i = 0; i < 1024; ++i) names.push_back(SourceDir::name((i * 2654435761U) % files));
  size_t i = static_cast<size_t>(state.thread_index()) * 7;
  for (auto _ : state) {
    auto got = cache->get(names[i++ % names.size()]);
    benchmark::DoNotOptimize(got);
  }
  if (state.thread_index() == 0) {
    const auto counters = cache->counters();
    if (counters.builds != files || counters.evictions != 0)
      fail(state, "lookups rebuilt payloads: " + std::to_string(counters.builds) + " builds");
  }
}

void CacheMiss(benchmark::State& state) {
  const SourceRoot* root = source_root(state);
  if (root == nullptr) return;
  PayloadCache cache(*root, builtin_registry(), 1);
  const std::string names[2] = {SourceDir::name(0), SourceDir::name(1)};
  size_t i = 0;
  for (auto _ : state) {
    auto got = cache.get(names[i++ % 2]);
    benchmark::DoNotOptimize(got);
  }
  const auto counters = cache.counters();
  if (counters.hits != 0) fail(state, "expected no hits, got " + std::to_string(counters.hits));
}

void OpenStat(benchmark::State& state) {
  const SourceRoot* root = source_root(state);
  if (root == nullptr) return;
  const std::string name = SourceDir::name(0);
  for (auto _ : state) {
    auto opened = root->open_file(name);
    struct stat st {};
    if (const auto* fd = std::get_if<UniqueFd>(&opened); fd == nullptr || ::fstat(fd->get(), &st)) {
      fail(state, "cannot open " + name);
      break;
    }
    benchmark::DoNotOptimize(st);
  }
}

BENCHMARK(CacheHit)->Arg(1)->Arg(1000);
BENCHMARK(CacheHit)->Arg(1000)->Threads(2);
BENCHMARK(CacheMiss);
BENCHMARK(OpenStat);

}  // namespace
}  // namespace payloadfs::microbench

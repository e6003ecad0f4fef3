// Header parse per format: what a first lookup of MNT/<file>/ costs in core.
//   PayloadBuild/<format>  Payload::build over an in-memory file: map, detect, parse, header.json,
//                          slices.json head and raw/ tree (the whole per-version work).
//   DetectParse/<format>   registry detection and the parser over bytes in memory, plus the
//                          header rendered as JSON: the CPU part without syscalls.

#include <benchmark/benchmark.h>

#include <algorithm>
#include <string>

#include "core/io/byte_source.hpp"
#include "core/model/format.hpp"
#include "microbench/bench_support.hpp"

namespace payloadfs::microbench {
namespace {

void PayloadBuild(benchmark::State& state, std::string_view format, size_t count) {
  if (sample_payload(state, format, count) == nullptr) return;  // checks the input once
  std::string error;
  const Registry& registry = *registry_for(format, error);
  const MemFile& file = *sample(format, count).file;
  for (auto _ : state) {
    auto payload = Payload::build("bench", file.fd(), file.stat(), registry);
    benchmark::DoNotOptimize(payload->header_json().data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * file.stat().st_size);
  state.counters["header_json_bytes"] =
      static_cast<double>(sample(format, count).payload->header_json().size());
}

void DetectParse(benchmark::State& state, std::string_view format, size_t count) {
  if (sample_payload(state, format, count) == nullptr) return;
  std::string error;
  const Registry& registry = *registry_for(format, error);
  const FileBytes bytes = sample_file(format, count);
  const MemorySource source(bytes);
  const std::span<const std::byte> head(bytes.data(), std::min(bytes.size(), kDetectHeadBytes));
  for (auto _ : state) {
    const Format& detected = registry.detect(head, bytes.size());
    const Layout layout = detected.parse(source);
    std::string json = layout.header.dump(2);
    benchmark::DoNotOptimize(json.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * bytes.size()));
}

void register_all() {
  for (const std::string_view format : kSampleFormats) {
    benchmark::RegisterBenchmark(("PayloadBuild/" + std::string(format)).c_str(), PayloadBuild,
                                 format, size_t{0});
  }
  for (const std::string_view format : kSampleFormats) {
    benchmark::RegisterBenchmark(("DetectParse/" + std::string(format)).c_str(), DetectParse,
                                 format, size_t{0});
  }
  // The large payloads the lookup benchmarks use: building them is the first-lookup latency.
  benchmark::RegisterBenchmark("PayloadBuild/safetensors_10000", PayloadBuild, "safetensors",
                               size_t{10'000})
      ->Unit(benchmark::kMillisecond);
  benchmark::RegisterBenchmark("PayloadBuild/pcap_100000", PayloadBuild, "pcap", size_t{100'000})
      ->Unit(benchmark::kMillisecond);
}

const bool registered = (register_all(), true);

}  // namespace
}  // namespace payloadfs::microbench

// Google Benchmark's main, plus an exit status: 1 when a benchmark failed (its input no longer
// parses cleanly, a lookup no longer resolves), so the ctest smoke run catches rot.

#include <benchmark/benchmark.h>

#include <cstdio>

#include "microbench/bench_support.hpp"

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  if (payloadfs::microbench::any_failed()) {
    std::fprintf(stderr, "microbench: some benchmarks FAILED (see above)\n");
    return 1;
  }
  return 0;
}

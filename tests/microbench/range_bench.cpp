// Names under range/ (core/range_name): every lookup of MNT/<file>/range/<a>-<b> parses one.

#include <benchmark/benchmark.h>

#include <optional>
#include <string>

#include "core/vfs/range_name.hpp"
#include "microbench/bench_support.hpp"

namespace payloadfs::microbench {
namespace {

constexpr uint64_t kFileSize = uint64_t{1} << 40;

void RangeName(benchmark::State& state, std::string_view name, bool valid) {
  if (parse_range_name(name, kFileSize).has_value() != valid) {
    fail(state, "'" + std::string(name) + "' should " + (valid ? "" : "not ") + "parse");
    return;
  }
  for (auto _ : state) {
    std::string_view text = name;
    benchmark::DoNotOptimize(text);  // keeps the parse from being folded at compile time
    auto range = parse_range_name(text, kFileSize);
    benchmark::DoNotOptimize(range);
  }
}

BENCHMARK_CAPTURE(RangeName, short_decimal, "0-4096", true);
BENCHMARK_CAPTURE(RangeName, long_decimal, "1099511000000-1099511627776", true);
BENCHMARK_CAPTURE(RangeName, hex_length, "0x1f400000+0x100000", true);
BENCHMARK_CAPTURE(RangeName, past_end, "0-1099511627777", false);
BENCHMARK_CAPTURE(RangeName, not_a_range, "header.json", false);

}  // namespace
}  // namespace payloadfs::microbench

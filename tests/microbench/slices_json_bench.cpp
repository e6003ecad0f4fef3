// slices.json of a large record table, as a reader of MNT/<file>/slices.json gets it:
//   SlicesJsonPiece/*  one piece (a chunk of SlicesJson::kChunkRecords records) rendered at an
//                      offset, reading each record's attributes back from the file.
//   SlicesJsonWhole/*  the whole text, piece after piece (cat slices.json).

#include <benchmark/benchmark.h>

#include <string>
#include <vector>

#include "core/io/byte_source.hpp"
#include "microbench/bench_support.hpp"

namespace payloadfs::microbench {
namespace {

constexpr size_t kRecords = 100'000;

void SlicesJsonPiece(benchmark::State& state, std::string_view format) {
  const Payload* payload = sample_payload(state, format, kRecords);
  if (payload == nullptr) return;
  if (payload->slices_json_whole()) {
    fail(state, std::string(format) + " sample has no record table");
    return;
  }
  const FdSource source(sample(format, kRecords).file->fd(), payload->size());
  // The middles of 64 equal parts of the text (each in a different chunk), visited in turn.
  std::vector<uint64_t> offsets;
  const uint64_t size = payload->slices_json_size(source);
  for (uint64_t k = 0; k < 64; ++k) offsets.push_back((2 * k + 1) * size / 128);
  SlicesJson::Piece piece;
  for (const uint64_t offset : offsets) {
    if (!payload->slices_json_piece(offset, source, piece)) {
      fail(state, "no piece at offset " + std::to_string(offset));
      return;
    }
  }
  size_t i = 0;
  int64_t bytes = 0;
  for (auto _ : state) {
    if (!payload->slices_json_piece(offsets[i++ % offsets.size()], source, piece)) {
      fail(state, "piece rendering failed");
      break;
    }
    bytes += static_cast<int64_t>(piece.text.size());
  }
  state.SetBytesProcessed(bytes);
}

void SlicesJsonWhole(benchmark::State& state, std::string_view format) {
  const Payload* payload = sample_payload(state, format, kRecords);
  if (payload == nullptr) return;
  const FdSource source(sample(format, kRecords).file->fd(), payload->size());
  if (payload->slices_json_text(source).size() != payload->slices_json_size()) {
    fail(state, "slices.json text is shorter than its size");
    return;
  }
  for (auto _ : state) {
    std::string text = payload->slices_json_text(source);
    benchmark::DoNotOptimize(text.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) *
                          static_cast<int64_t>(payload->slices_json_size()));
  state.counters["records_per_s"] = benchmark::Counter(
      static_cast<double>(state.iterations()) * kRecords, benchmark::Counter::kIsRate);
}

BENCHMARK_CAPTURE(SlicesJsonPiece, pcap_100000, "pcap");
BENCHMARK_CAPTURE(SlicesJsonPiece, pcapng_100000, "pcapng");
BENCHMARK_CAPTURE(SlicesJsonPiece, telemetry_100000, "telemetry");
BENCHMARK_CAPTURE(SlicesJsonWhole, pcap_100000, "pcap")->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(SlicesJsonWhole, telemetry_100000, "telemetry")->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace payloadfs::microbench

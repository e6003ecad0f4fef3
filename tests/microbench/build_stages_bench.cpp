// Where the time of building a large payload goes (Payload::build does these in turn):
//   BuildStage/<sample>/parse        detection and the format's parser, reading through pread
//   BuildStage/<sample>/tree         the raw/ tree (SliceTree) of the parsed slices and tables
//   BuildStage/<sample>/slices_json  SlicesJson: the slices rendered and every record chunk
//                                    measured (rendered once, through pread, to learn its size)

#include <benchmark/benchmark.h>

#include <algorithm>
#include <string>
#include <vector>

#include "core/io/byte_source.hpp"
#include "core/render/slices_json.hpp"
#include "core/vfs/slice_tree.hpp"
#include "microbench/bench_support.hpp"

namespace payloadfs::microbench {
namespace {

enum class Stage { parse, tree, slices_json };

// The sample's layout as Payload::build parses it.
Layout parse(const Registry& registry, const ByteSource& source) {
  std::vector<std::byte> head(
      static_cast<size_t>(std::min<uint64_t>(kDetectHeadBytes, source.size())));
  if (!source.read_exact(0, head)) return {};
  return registry.detect(head, source.size()).parse(source);
}

void BuildStage(benchmark::State& state, std::string_view format, size_t count, Stage stage) {
  if (sample_payload(state, format, count) == nullptr) return;  // checks the input once
  std::string error;
  const Registry& registry = *registry_for(format, error);
  const MemFile& file = *sample(format, count).file;
  const FdSource source(file.fd(), static_cast<uint64_t>(file.stat().st_size));
  const Layout layout = parse(registry, source);
  const SliceTree tree(layout.slices, layout.tables);
  for (auto _ : state) {
    switch (stage) {
      case Stage::parse: {
        Layout parsed = parse(registry, source);
        benchmark::DoNotOptimize(parsed.slices.data());
        break;
      }
      case Stage::tree: {
        SliceTree built(layout.slices, layout.tables);
        benchmark::DoNotOptimize(&built);
        break;
      }
      case Stage::slices_json: {
        SlicesJson json(layout.slices, layout.tables, tree);
        json.measure(source, layout.tables, tree);
        benchmark::DoNotOptimize(json.size());
        break;
      }
    }
  }
}

void register_all() {
  struct Large {
    std::string_view format;
    size_t count;
  };
  for (const Large large :
       {Large{"safetensors", 10'000}, Large{"pcap", 100'000}, Large{"telemetry", 100'000}}) {
    const std::string prefix =
        "BuildStage/" + std::string(large.format) + "_" + std::to_string(large.count) + "/";
    for (const auto& [stage, name] :
         {std::pair{Stage::parse, "parse"}, std::pair{Stage::tree, "tree"},
          std::pair{Stage::slices_json, "slices_json"}}) {
      benchmark::RegisterBenchmark((prefix + name).c_str(), BuildStage, large.format, large.count,
                                   stage)
          ->Unit(benchmark::kMillisecond);
    }
  }
}

const bool registered = (register_all(), true);

}  // namespace
}  // namespace payloadfs::microbench

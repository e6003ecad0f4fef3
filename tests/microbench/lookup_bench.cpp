// raw/ lookups in payloads with many slices, as the filesystem does them:
//   RawLookup/*   lookup of a name in its directory: tree.find(dir) then tree.child(dir, name),
//                 then the entry's byte range (fs lookup of raw/<name>).
//   RawResolve/*  the full raw/ path to an entry and its range (fs read/getattr of an inode).
// Each runs at several sizes: the time per lookup should not grow with the slice count.

#include <benchmark/benchmark.h>

#include <string>
#include <vector>

#include "core/vfs/slice_tree.hpp"
#include "microbench/bench_support.hpp"

namespace payloadfs::microbench {
namespace {

// Every name looked up is visited in a scattered order, so successive lookups do not share
// cache lines the way neighbouring names would.
constexpr size_t kProbes = 4096;
size_t probe(size_t i, size_t count) {
  return (i * 2654435761U) % count;
}

struct Query {
  std::string dir;   // raw/ path of the directory ("" for raw/ itself)
  std::string name;  // name within it
  std::string path;  // dir/name
};

// Queries for `count` entries named by `name_of(index)` in raw/<dir>.
template <typename NameOf>
std::vector<Query> queries(const std::string& dir, size_t count, NameOf name_of) {
  std::vector<Query> out;
  for (size_t i = 0; i < kProbes; ++i) {
    std::string name = name_of(probe(i, count));
    out.push_back({dir, name, dir.empty() ? name : dir + "/" + name});
  }
  return out;
}

std::vector<Query> tensor_queries(size_t tensors) {
  return queries("", tensors,
                 [](size_t i) { return "model.layers." + std::to_string(i) + ".weight"; });
}

std::vector<Query> packet_queries(size_t packets) {
  return queries("packet", packets,
                 [packets](size_t i) { return SliceTree::record_name(i, packets); });
}

// Fails the benchmark unless every query resolves to a range.
bool all_resolve(benchmark::State& state, const Payload& payload, const std::vector<Query>& list) {
  for (const Query& q : list) {
    const auto entry = payload.tree().find(q.path);
    if (!entry || !payload.range_of(*entry)) {
      fail(state, "raw/" + q.path + " does not resolve");
      return false;
    }
  }
  return true;
}

void Lookup(benchmark::State& state, const Payload& payload, const std::vector<Query>& list) {
  if (!all_resolve(state, payload, list)) return;
  const SliceTree& tree = payload.tree();
  size_t i = 0;
  for (auto _ : state) {
    const Query& q = list[i++ % list.size()];
    const auto dir = tree.find(q.dir);
    const auto entry = dir ? tree.child(*dir, q.name) : std::nullopt;
    auto range = entry ? payload.range_of(*entry) : std::nullopt;
    benchmark::DoNotOptimize(range);
  }
}

void Resolve(benchmark::State& state, const Payload& payload, const std::vector<Query>& list) {
  if (!all_resolve(state, payload, list)) return;
  const SliceTree& tree = payload.tree();
  size_t i = 0;
  for (auto _ : state) {
    const auto entry = tree.find(list[i++ % list.size()].path);
    auto range = entry ? payload.range_of(*entry) : std::nullopt;
    benchmark::DoNotOptimize(range);
  }
}

void RawLookupTensor(benchmark::State& state) {
  const auto count = static_cast<size_t>(state.range(0));
  if (const Payload* p = sample_payload(state, "safetensors", count))
    Lookup(state, *p, tensor_queries(count));
}
void RawResolveTensor(benchmark::State& state) {
  const auto count = static_cast<size_t>(state.range(0));
  if (const Payload* p = sample_payload(state, "safetensors", count))
    Resolve(state, *p, tensor_queries(count));
}
void RawLookupPacket(benchmark::State& state) {
  const auto count = static_cast<size_t>(state.range(0));
  if (const Payload* p = sample_payload(state, "pcap", count))
    Lookup(state, *p, packet_queries(count));
}
void RawResolvePacket(benchmark::State& state) {
  const auto count = static_cast<size_t>(state.range(0));
  if (const Payload* p = sample_payload(state, "pcap", count))
    Resolve(state, *p, packet_queries(count));
}

BENCHMARK(RawLookupTensor)
    ->Name("RawLookup/safetensors_tensor")
    ->Arg(100)
    ->Arg(10'000)
    ->Arg(100'000);
BENCHMARK(RawResolveTensor)
    ->Name("RawResolve/safetensors_tensor")
    ->Arg(100)
    ->Arg(10'000)
    ->Arg(100'000);
BENCHMARK(RawLookupPacket)->Name("RawLookup/pcap_packet")->Arg(1'000)->Arg(100'000);
BENCHMARK(RawResolvePacket)->Name("RawResolve/pcap_packet")->Arg(1'000)->Arg(100'000);

}  // namespace
}  // namespace payloadfs::microbench

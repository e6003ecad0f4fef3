// Randomised robustness: real files mutated many ways must parse without crashing, and every
// slice must lie inside the file. Runs under ASan/UBSan in the test script.

#include <gtest/gtest.h>

#include <filesystem>
#include <random>

#include "core/formats/builtin.hpp"
#include "core/io/checked_math.hpp"
#include "core/model/registry.hpp"
#include "unit/test_support.hpp"

namespace payloadfs {
namespace {

std::vector<std::vector<std::byte>> seeds(const std::string& subdir, const std::string& ext) {
  std::vector<std::vector<std::byte>> out;
  const auto dir = std::filesystem::path(testing::fixtures_dir()) / subdir;
  if (!std::filesystem::exists(dir)) return out;
  for (const auto& entry : std::filesystem::directory_iterator(dir))
    if (entry.path().extension() == ext) out.push_back(testing::read_file(entry.path().string()));
  return out;
}

void mutate(std::vector<std::byte>& bytes, std::mt19937_64& rng) {
  if (bytes.empty()) return;
  std::uniform_int_distribution<size_t> pos(0, bytes.size() - 1);
  switch (rng() % 5) {
    case 0:
      bytes[pos(rng)] = static_cast<std::byte>(rng());
      break;
    case 1:
      bytes.resize(pos(rng));
      break;
    case 2: {  // a length-looking field set to an extreme
      const size_t at = pos(rng);
      const uint64_t values[] = {0, 0xFFFFFFFFULL, ~0ULL, 0x7FFFFFFFULL, bytes.size()};
      const uint64_t v = values[rng() % 5];
      for (size_t i = 0; i < 8 && at + i < bytes.size(); ++i)
        bytes[at + i] = static_cast<std::byte>(v >> (8 * i));
      break;
    }
    case 3:
      bytes.insert(bytes.begin() + static_cast<long>(pos(rng)), static_cast<std::byte>(rng()));
      break;
    default:
      std::swap(bytes[pos(rng)], bytes[pos(rng)]);
      break;
  }
}

void check_all(const std::vector<std::vector<std::byte>>& corpus, const Registry& registry) {
  ASSERT_FALSE(corpus.empty()) << "fixtures missing: run tests/fixtures/generate.py";
  std::mt19937_64 rng(20261126);
  for (int iteration = 0; iteration < 3000; ++iteration) {
    auto bytes = corpus[static_cast<size_t>(iteration) % corpus.size()];
    const int rounds = 1 + static_cast<int>(rng() % 4);
    for (int r = 0; r < rounds; ++r) mutate(bytes, rng);
    MemorySource source(bytes);
    const auto head = std::span(bytes).first(std::min(bytes.size(), kDetectHeadBytes));
    const Format& format = registry.detect(head, bytes.size());
    Layout layout;
    try {
      layout = format.parse(source);
    } catch (const std::exception& e) {
      FAIL() << format.name() << " threw: " << e.what();
    }
    for (const Slice& s : layout.slices)
      ASSERT_TRUE(range_within(s.range.offset, s.range.length, bytes.size())) << format.name();
    (void)layout.header.dump(-1, ' ', false, Json::error_handler_t::strict);  // valid UTF-8
  }
}

TEST(Robustness, MutatedNpy) {
  check_all(seeds("numpy", ".npy"), Registry::with_builtins());
}

TEST(Robustness, MutatedSafetensors) {
  check_all(seeds("safetensors", ".safetensors"), Registry::with_builtins());
}

TEST(Robustness, MutatedNpz) {
  check_all(seeds("npz", ".npz"), Registry::with_builtins());
}

TEST(Robustness, MutatedPytorch) {
  check_all(seeds("pytorch", ".pt"), Registry::with_builtins());
}

}  // namespace
}  // namespace payloadfs

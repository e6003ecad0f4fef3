// Prints "<format>\t<path>" for each file argument, as the registry detects it; scripts/fuzz.sh
// uses it to sort fixture files into each format's seed corpus.

#include <cstdio>
#include <fstream>
#include <iterator>
#include <vector>

#include "core/model/registry.hpp"

int main(int argc, char** argv) {
  const auto registry = payloadfs::Registry::with_builtins();
  for (int i = 1; i < argc; ++i) {
    std::ifstream in(argv[i], std::ios::binary);
    std::vector<char> chars((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const std::span<const std::byte> bytes(reinterpret_cast<const std::byte*>(chars.data()),
                                           chars.size());
    const auto head = bytes.first(std::min(bytes.size(), payloadfs::kDetectHeadBytes));
    const auto& format = registry.detect(head, bytes.size());
    std::printf("%.*s\t%s\n", static_cast<int>(format.name().size()), format.name().data(),
                argv[i]);
  }
  return 0;
}

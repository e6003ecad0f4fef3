// One libFuzzer target per format: compiled once per core/formats/<name>.cpp with
// -DPAYLOADFS_FUZZ_FORMAT=<name>. The parser runs on every input, whether or not detection
// accepts it (Format::parse must never fail on bad input), and detection runs too.

#include <cstddef>
#include <cstdint>
#include <memory>

#include "core/format.hpp"
#include "tests/fuzz/fuzz_checks.hpp"

#ifndef PAYLOADFS_FUZZ_FORMAT
#error "compile with -DPAYLOADFS_FUZZ_FORMAT=<format>"
#endif
#define PAYLOADFS_CAT_(a, b) a##b
#define PAYLOADFS_CAT(a, b) PAYLOADFS_CAT_(a, b)

namespace payloadfs::formats {
// Every format file defines make_<name>(), registered or not yet.
std::unique_ptr<Format> PAYLOADFS_CAT(make_, PAYLOADFS_FUZZ_FORMAT)();
}  // namespace payloadfs::formats

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::unique_ptr<payloadfs::Format> format =
      payloadfs::formats::PAYLOADFS_CAT(make_, PAYLOADFS_FUZZ_FORMAT)();
  const std::span<const std::byte> bytes(reinterpret_cast<const std::byte*>(data), size);
  (void)format->detect(payloadfs::fuzz::head_of(bytes), size);
  (void)payloadfs::fuzz::parse_checked(*format, bytes);
  return 0;
}

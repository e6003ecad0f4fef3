// One libFuzzer target per format. This driver is compiled once; each target links it with a
// generated file (tests/fuzz/CMakeLists.txt) that names the format's factory in
// kMakeFuzzedFormat. The parser runs on every input, whether or not detection accepts it
// (Format::parse must never fail on bad input), and detection runs too.

#include <cstddef>
#include <cstdint>
#include <memory>

#include "core/model/format.hpp"
#include "tests/fuzz/fuzz_checks.hpp"

namespace payloadfs::fuzz {
// make_<format>() of the format this target fuzzes (every format file defines one, registered
// or not yet).
extern std::unique_ptr<Format> (*const kMakeFuzzedFormat)();
}  // namespace payloadfs::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::unique_ptr<payloadfs::Format> format = payloadfs::fuzz::kMakeFuzzedFormat();
  const std::span<const std::byte> bytes(reinterpret_cast<const std::byte*>(data), size);
  (void)format->detect(payloadfs::fuzz::head_of(bytes), size);
  (void)payloadfs::fuzz::parse_checked(*format, bytes);
  return 0;
}

// The descriptor language: an input is a descriptor and a payload, split by a little-endian
// u16 giving the descriptor's length (clamped to the input). The descriptor is checked and
// compiled (parse_descriptor must reject anything bad with a LoadError, never throw), and a
// descriptor that compiles parses the payload under the same contract as the built-in formats.
// Seeds (scripts/fuzz.sh): the shipped examples/formats/*.json with matching sample files.

#include <cstddef>
#include <cstdint>
#include <exception>
#include <string>
#include <string_view>

#include "core/descriptor/descriptor.hpp"
#include "tests/fuzz/fuzz_checks.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  const size_t declared = static_cast<size_t>(data[0]) | (static_cast<size_t>(data[1]) << 8);
  const size_t text_size = std::min(declared, size - 2);
  const std::string_view text(reinterpret_cast<const char*>(data + 2), text_size);
  const std::span<const std::byte> payload(reinterpret_cast<const std::byte*>(data + 2 + text_size),
                                           size - 2 - text_size);
  // Small caps keep each input fast; the caps themselves are what is being exercised.
  payloadfs::descriptor::Limits limits;
  limits.max_records = 4096;
  limits.max_reads = 200'000;
  std::variant<std::unique_ptr<payloadfs::descriptor::DescriptorFormat>,
               payloadfs::descriptor::LoadError>
      compiled;
  try {
    compiled = payloadfs::descriptor::parse_descriptor(text, "fuzz.json", limits);
  } catch (const std::exception& e) {
    payloadfs::fuzz::fail("descriptor", std::string("parse_descriptor threw: ") + e.what());
  } catch (...) {
    payloadfs::fuzz::fail("descriptor", "parse_descriptor threw a non-std exception");
  }
  if (const auto* error = std::get_if<payloadfs::descriptor::LoadError>(&compiled)) {
    if (error->message.empty()) payloadfs::fuzz::fail("descriptor", "an empty error message");
    return 0;
  }
  const auto& format = *std::get<0>(compiled);
  (void)format.detect(payloadfs::fuzz::head_of(payload), payload.size());
  (void)payloadfs::fuzz::parse_checked(format, payload);
  return 0;
}

// `unknown`: any file. No structure, so no slices; magic is the first bytes (set by Payload).

#include "core/formats/builtin.hpp"

namespace payloadfs::formats {
namespace {

class Unknown final : public Format {
 public:
  std::string_view name() const noexcept override { return "unknown"; }
  std::string_view description() const noexcept override {
    return "Any file no other format recognised; bytes are reachable through range/";
  }
  std::string_view signature() const noexcept override { return "matches every file (last)"; }
  bool detect(std::span<const std::byte>, uint64_t) const override { return true; }
  Layout parse(const ByteSource&) const override { return {}; }
};

}  // namespace

std::unique_ptr<Format> make_unknown() {
  return std::make_unique<Unknown>();
}

}  // namespace payloadfs::formats

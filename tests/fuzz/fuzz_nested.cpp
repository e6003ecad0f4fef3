// nested/: a file's payload, the payloads nested in its stored slices, and theirs (two levels,
// the default -o nest_depth). Checks that every nested payload lies inside its member, that its
// slices, records and magic lie inside its extent (offsets in the outer file), that its
// header.json parses and names its container, and that each level is smaller than the last
// (so nesting cannot loop).

#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "core/io/byte_source.hpp"
#include "core/io/unique_fd.hpp"
#include "core/model/registry.hpp"
#include "core/nesting.hpp"
#include "core/payload.hpp"
#include "tests/fuzz/fuzz_checks.hpp"

namespace {

using payloadfs::ByteRange;
using payloadfs::fuzz::fail;

constexpr unsigned kDepth = 2;          // -o nest_depth's default
constexpr size_t kMembersPerLevel = 8;  // enough to reach every kind of member, fast

bool inside(ByteRange inner, ByteRange outer) {
  return inner.offset >= outer.offset && inner.length <= outer.length &&
         inner.offset - outer.offset <= outer.length - inner.length;
}

void check_nested(const payloadfs::Payload& nested, ByteRange member, std::string_view format) {
  if (nested.extent() != member) fail(format, "nested payload's extent is not its member");
  for (const auto& slice : nested.slices())
    if (!inside(slice.range, member)) fail(format, "nested slice outside its member");
  for (const auto& table : nested.tables())
    for (uint64_t r = 0; r < table.records.size(); r += 1 + table.records.size() / 4)
      if (!inside({table.records[r].offset, table.records[r].length}, member))
        fail(format, "nested record outside its member");
  if (nested.magic().length > 0 && !inside(nested.magic(), member))
    fail(format, "nested magic outside its member");
  try {
    const auto header = payloadfs::Json::parse(nested.header_json());
    if (!header.contains("container") || !header.contains("container_offset") ||
        header.at("container_offset") != member.offset)
      fail(format, "nested header.json does not name its container");
  } catch (const std::exception& e) {
    fail(format, std::string("nested header.json does not parse: ") + e.what());
  }
}

void nest(const payloadfs::Payload& payload, const payloadfs::Registry& registry,
          const payloadfs::ByteSource& file, int fd, unsigned level) {
  if (level >= kDepth) return;
  const auto& members = payload.nested_members(registry, file);
  size_t done = 0;
  for (const size_t index : members.slices) {
    if (done++ == kMembersPerLevel) break;
    if (index >= payload.slices().size()) fail(payload.format(), "a member index past the slices");
    const auto& slice = payload.slices()[index];
    if (!slice.stored || slice.range.length >= payload.extent().length)
      fail(payload.format(), "a member that cannot nest was offered");
    const std::string& path = payload.tree().slice_path(index);
    const auto nested = payloadfs::Payload::build_nested(payload, path, slice.range, fd, registry);
    check_nested(*nested, slice.range, payload.format());
    nest(*nested, registry, file, fd, level + 1);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const payloadfs::Registry registry = payloadfs::Registry::with_builtins();
  payloadfs::UniqueFd fd(::memfd_create("payloadfs-fuzz", MFD_CLOEXEC));
  if (!fd.valid()) return 0;
  for (size_t done = 0; done < size;) {
    const ssize_t n = ::write(fd.get(), data + done, size - done);
    if (n <= 0) return 0;
    done += static_cast<size_t>(n);
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return 0;
  const auto payload = payloadfs::Payload::build("fuzz/input", fd.get(), st, registry);
  const payloadfs::MemorySource file(
      std::span<const std::byte>(reinterpret_cast<const std::byte*>(data), size));
  nest(*payload, registry, file, fd.get(), 0);
  return 0;
}

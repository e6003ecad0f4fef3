// The whole path a source file takes in the daemon: detection by the registry, parsing, and
// Payload::build on a real descriptor (a memfd) with its mapping, raw/ tree and rendered JSON.
// Checks that header.json and slices.json parse as JSON, that every slice is inside the file
// and reachable in raw/ at the path slices.json gives (records too), and that names are safe.

#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "core/io/unique_fd.hpp"
#include "core/model/registry.hpp"
#include "core/payload.hpp"
#include "tests/fuzz/fuzz_checks.hpp"

namespace {

using payloadfs::fuzz::fail;

void check_component_safe(std::string_view path, std::string_view format) {
  size_t start = 0;
  while (start <= path.size()) {
    const size_t end = std::min(path.find('/', start), path.size());
    const std::string_view component(path.data() + start, end - start);
    if (component.empty() || component == "." || component == ".." ||
        component.size() > payloadfs::SliceTree::kMaxNameBytes ||
        component.find('\0') != std::string_view::npos)
      fail(format, "unsafe raw/ component in " + std::string(path));
    start = end + 1;
  }
}

void check_tree(const payloadfs::Payload& payload, std::string_view format) {
  using Kind = payloadfs::SliceTree::Entry::Kind;
  const auto& tree = payload.tree();
  for (size_t i = 0; i < payload.slices().size(); ++i) {
    const std::string& path = tree.slice_path(i);
    check_component_safe(path, format);
    const auto entry = tree.find(path);
    if (!entry) fail(format, "slice path not found in its tree: " + path);
    if (entry->kind != Kind::slice || tree.node(entry->node).slice != i)
      fail(format, "slice path leads elsewhere: " + path);
    const auto range = payload.range_of(*entry);
    if (!range || *range != payload.slices()[i].range) fail(format, "slice range differs: " + path);
  }
  for (size_t t = 0; t < payload.tables().size(); ++t) {
    const auto& table = payload.tables()[t];
    const std::string& dir = tree.table_path(t);
    check_component_safe(dir, format);
    const auto entry = tree.find(dir);
    if (!entry || !entry->is_dir()) fail(format, "table directory not found: " + dir);
    const uint64_t count = table.records.size();
    for (uint64_t r : {uint64_t{0}, count / 2, count - 1}) {
      if (r >= count) continue;
      const std::string name = tree.name_of_record(t, r);
      const auto rec = tree.child(*entry, name);
      if (!rec || rec->kind != Kind::record || rec->record != r)
        fail(format, "record not found: " + dir + "/" + name);
      const auto range = payload.range_of(*rec);
      if (!range || range->offset != table.records[r].offset ||
          range->length != table.records[r].length)
        fail(format, "record range differs: " + dir + "/" + name);
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const payloadfs::Registry registry = payloadfs::Registry::with_builtins();
  const std::span<const std::byte> bytes(reinterpret_cast<const std::byte*>(data), size);

  // What the parser hands over, checked before Payload's last-line-of-defence clean-ups.
  const payloadfs::Format& format = registry.detect(payloadfs::fuzz::head_of(bytes), size);
  (void)payloadfs::fuzz::parse_checked(format, bytes);

  // The daemon's own path, on a descriptor like a source file's.
  payloadfs::UniqueFd fd(::memfd_create("payloadfs-fuzz", MFD_CLOEXEC));
  if (!fd.valid()) return 0;
  size_t done = 0;
  while (done < size) {
    const ssize_t n = ::write(fd.get(), data + done, size - done);
    if (n <= 0) return 0;
    done += static_cast<size_t>(n);
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return 0;
  const auto payload = payloadfs::Payload::build("fuzz/input", fd.get(), st, registry);
  if (payload->format() != format.name()) fail(format.name(), "Payload detected another format");
  payloadfs::Json header, slices;
  const payloadfs::MemorySource source(bytes);
  try {
    header = payloadfs::Json::parse(payload->header_json());
    const std::string slices_text = payload->slices_json_text(source);
    if (slices_text.size() != payload->slices_json_size())
      fail(format.name(), "slices.json size differs from its text");
    slices = payloadfs::Json::parse(slices_text);
  } catch (const std::exception& e) {
    fail(format.name(), std::string("rendered JSON does not parse: ") + e.what());
  }
  size_t count = payload->slices().size();
  for (const auto& table : payload->tables()) count += table.records.size();
  if (header.at("slice_count") != count || slices.size() != count)
    fail(format.name(), "slice counts disagree");
  if (header.contains("errors") != !payload->errors().empty())
    fail(format.name(), "errors key present iff errors");
  // slices.json's offset and length are the slice's exact bytes (attributes must not override
  // them).
  for (size_t i = 0; i < payload->slices().size(); ++i) {
    const auto& entry = slices.at(i);
    const auto& range = payload->slices()[i].range;
    if (!entry.at("offset").is_number_unsigned() || !entry.at("length").is_number_unsigned() ||
        entry.at("offset").get<uint64_t>() != range.offset ||
        entry.at("length").get<uint64_t>() != range.length)
      fail(format.name(), "slices.json entry " + std::to_string(i) + " says " +
                              entry.at("offset").dump() + "+" + entry.at("length").dump() +
                              ", the slice is " + std::to_string(range.offset) + "+" +
                              std::to_string(range.length));
  }
  for (const auto& slice : payload->slices()) {
    if (!payloadfs::range_within(slice.range.offset, slice.range.length, size))
      fail(format.name(), "Payload kept a slice outside the file");
    if (payload->map(fd.get()) == 0 && payload->bytes(slice.range).size() != slice.range.length)
      fail(format.name(), "mapped slice bytes of the wrong length");
  }
  const auto magic = payload->magic();
  if (!payloadfs::range_within(magic.offset, magic.length, size) || magic.length > 64)
    fail(format.name(), "magic outside the file");
  check_tree(*payload, format.name());
  return 0;
}

// Reading a compact record table's fields back, possibly on several threads at once.

#include "core/descriptor/record_table.hpp"

#include <span>
#include <string>

#include "core/descriptor/field_reader.hpp"

namespace payloadfs::descriptor::detail {
namespace {

// A ByteSource that reads through another one, which can change between uses.
class ForwardingSource final : public ByteSource {
 public:
  const ByteSource* to = nullptr;
  [[nodiscard]] uint64_t size() const noexcept override { return to->size(); }
  [[nodiscard]] bool read_exact(uint64_t offset, std::span<std::byte> out) const noexcept override {
    return to->read_exact(offset, out);
  }
};

// The reader used to read a table's attributes back, one per thread, kept from call to call
// while the same table is read so that its 16 KiB window serves the neighbouring records of a
// slices.json chunk (a fresh reader per record would read 16 KiB per record). The window is
// only reused for the table (`id`) it was filled for, i.e. for the same file.
BinaryReader& thread_reader(uint64_t id, const ByteSource& source, Endian endian) {
  struct Cache {
    uint64_t id = 0;
    uint64_t size = 0;
    ForwardingSource forward;
    std::optional<BinaryReader> reader;
  };
  thread_local Cache cache;
  cache.forward.to = &source;
  if (!cache.reader || cache.id != id || cache.size != source.size() || !cache.reader->ok()) {
    cache.reader.emplace(cache.forward, endian);
    cache.id = id;
    cache.size = source.size();
  }
  return *cache.reader;
}

}  // namespace

Json TableFields::read(const ByteSource& source, uint64_t at, std::optional<uint64_t> index) const {
  FieldReader r(source, thread_reader(id, source, endian), slots, endian, max_reads,
                max_field_bytes);
  r.set_index(index);
  r.set_at(at);
  NullSink sink;
  auto where = [] { return std::string(); };
  Json out = Json::object();
  for (const auto& f : fields) out[f.name] = r.read_field(f, at, where, sink).value_or(nullptr);
  return out;
}

Json TableFields::operator()(const ByteSource& source, const Record& record) const {
  if (mode == TagMode::delta) return read(source, record.offset - record.tag, std::nullopt);
  const int64_t at = static_cast<int64_t>(record.offset) - delta;
  if (at < 0) return Json::object();  // not made by this table
  return read(source, static_cast<uint64_t>(at), record.tag);
}

}  // namespace payloadfs::descriptor::detail

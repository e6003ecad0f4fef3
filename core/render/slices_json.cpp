#include "core/render/slices_json.hpp"

#include <algorithm>
#include <array>
#include <cstring>
#include <memory>

#include "core/render/json_text.hpp"

namespace payloadfs {
namespace {

// Record headers are read in file order while a chunk renders: serve them from a 64 KiB window
// instead of one pread each. One per render call (not shared between threads).
class WindowedSource final : public ByteSource {
 public:
  explicit WindowedSource(const ByteSource& inner) : inner_(inner) {}
  uint64_t size() const noexcept override { return inner_.size(); }
  bool read_exact(uint64_t offset, std::span<std::byte> out) const noexcept override {
    if (out.empty()) return true;
    if (out.size() > kWindow / 2) return inner_.read_exact(offset, out);
    const bool inside = offset >= start_ && offset - start_ + out.size() <= length_;
    if (!inside) {
      if (offset >= inner_.size()) return false;
      const auto want = static_cast<size_t>(std::min<uint64_t>(kWindow, inner_.size() - offset));
      if (!inner_.read_exact(offset, std::span(window_.data(), want))) {
        length_ = 0;
        return inner_.read_exact(offset, out);  // near a changed end: let the source decide
      }
      start_ = offset;
      length_ = want;
      if (out.size() > length_) return false;
    }
    std::memcpy(out.data(), window_.data() + (offset - start_), out.size());
    return true;
  }

 private:
  static constexpr size_t kWindow = 64 * 1024;
  const ByteSource& inner_;
  mutable std::array<std::byte, kWindow> window_{};
  mutable uint64_t start_ = 0;
  mutable size_t length_ = 0;
};

std::string dump_line(const Json& object) {
  return object.dump(-1, ' ', false, Json::error_handler_t::replace);
}

Json element(std::string_view name, const std::string& path, uint64_t offset, uint64_t length,
             const Json& attributes) {
  Json entry = {{"name", utf8_or_escaped(name)},
                {"path", "raw/" + utf8_or_escaped(path)},
                {"offset", offset},
                {"length", length}};
  // A format's attributes never replace what the layout contract defines.
  for (const auto& [key, value] : attributes.items()) {
    if (key != "name" && key != "path" && key != "offset" && key != "length") entry[key] = value;
  }
  return entry;
}

}  // namespace

SlicesJson::SlicesJson(std::span<const Slice> slices, std::span<const RecordTable> tables,
                       const SliceTree& tree) {
  uint64_t records = 0;
  for (const auto& t : tables) records += t.records.size();
  if (slices.empty() && records == 0) {
    head_ = "[]\n";
    size_ = head_.size();
    return;
  }
  head_ = "[\n";
  for (size_t i = 0; i < slices.size(); ++i) {
    if (i != 0) head_ += ",\n";
    head_ += dump_line(element(slices[i].name, tree.slice_path(i), slices[i].range.offset,
                               slices[i].range.length, slices[i].attributes));
  }
  any_element_before_records_ = !slices.empty();
  tail_ = "\n]\n";
  if (records == 0) {
    head_ += tail_;
    tail_.clear();
    size_ = head_.size();
    return;
  }
  for (size_t t = 0; t < tables.size(); ++t) {
    for (uint64_t first = 0; first < tables[t].records.size(); first += kChunkRecords) {
      chunks_.push_back(Chunk{
          t, first, std::min<uint64_t>(kChunkRecords, tables[t].records.size() - first), 0, 0});
    }
  }
  measured_ = false;
}

void SlicesJson::measure(const ByteSource& source, std::span<const RecordTable> tables,
                         const SliceTree& tree) {
  if (measured_) return;
  uint64_t offset = head_.size();
  for (Chunk& chunk : chunks_) {
    chunk.start = offset;
    chunk.size = render_chunk(chunk, source, tables, tree).size();
    offset += chunk.size;
  }
  size_ = offset + tail_.size();
  measured_ = true;
}

std::string SlicesJson::render_chunk(const Chunk& chunk, const ByteSource& source,
                                     std::span<const RecordTable> tables,
                                     const SliceTree& tree) const {
  const RecordTable& table = tables[chunk.table];
  const auto windowed = std::make_unique<WindowedSource>(source);
  const uint32_t dir = tree.find(tree.table_path(chunk.table))->node;
  std::string out;
  for (uint64_t i = chunk.first; i < chunk.first + chunk.count; ++i) {
    const bool first_element =
        !any_element_before_records_ && chunk.start == head_.size() && i == chunk.first;
    if (!first_element) out += ",\n";
    const Record& r = table.records[i];
    const Json attributes = table.attributes ? table.attributes(*windowed, r) : Json::object();
    const std::string name = table.dir + "/" + tree.name_of_record(chunk.table, i);
    out += dump_line(element(name, tree.path_of({SliceTree::Entry::Kind::record, dir, i}), r.offset,
                             r.length, attributes.is_object() ? attributes : Json::object()));
  }
  return out;
}

bool SlicesJson::piece_at(uint64_t offset, const ByteSource& source,
                          std::span<const RecordTable> tables, const SliceTree& tree,
                          Piece& out) const {
  if (offset < head_.size()) {
    out = Piece{0, head_, SIZE_MAX};
    return true;
  }
  const auto it = std::upper_bound(chunks_.begin(), chunks_.end(), offset,
                                   [](uint64_t o, const Chunk& c) { return o < c.start; });
  if (it != chunks_.begin()) {
    const Chunk& c = *(it - 1);
    if (offset < c.start + c.size) {
      std::string text = render_chunk(c, source, tables, tree);
      if (text.size() != c.size) return false;
      out = Piece{c.start, std::move(text), static_cast<size_t>(&c - chunks_.data())};
      return true;
    }
  }
  out = Piece{size_ - tail_.size(), tail_, SIZE_MAX};
  return true;
}

}  // namespace payloadfs

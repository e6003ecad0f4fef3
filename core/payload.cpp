#include "core/payload.hpp"

#include <malloc.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <exception>
#include <string>
#include <variant>
#include <vector>

#include "core/heap_size.hpp"
#include "core/io/byte_source.hpp"
#include "core/io/checked_math.hpp"
#include "core/render/hex.hpp"
#include "core/render/json_text.hpp"
#include "core/render/time_text.hpp"

namespace payloadfs {
namespace {

constexpr uint64_t kDefaultMagicBytes = 4;
constexpr uint64_t kMaxMagicBytes = 64;

// The heap a JSON value holds: nlohmann allocates every object, array and string separately.
size_t json_heap(const Json& json) {
  switch (json.type()) {
    case Json::value_t::object: {
      const auto& members = json.get_ref<const Json::object_t&>();
      size_t n = chunk_bytes(sizeof(Json::object_t)) +
                 chunk_bytes(members.capacity() * sizeof(Json::object_t::value_type));
      for (const auto& [key, value] : members) n += string_heap(key) + json_heap(value);
      return n;
    }
    case Json::value_t::array: {
      const auto& items = json.get_ref<const Json::array_t&>();
      size_t n = chunk_bytes(sizeof(Json::array_t)) + chunk_bytes(items.capacity() * sizeof(Json));
      for (const auto& item : items) n += json_heap(item);
      return n;
    }
    case Json::value_t::string:
      return chunk_bytes(sizeof(std::string)) + string_heap(json.get_ref<const std::string&>());
    case Json::value_t::binary:
      return chunk_bytes(sizeof(Json::binary_t)) +
             chunk_bytes(json.get_ref<const Json::binary_t&>().capacity());
    default:
      return 0;
  }
}

// A rendered header.json larger than this is not kept: the format header's lists, objects and
// long strings are left out (with an error) and only its plain values stay. Parsers bound their own
// lists far below it; this is the last line of defence for a payload's memory.
constexpr uint64_t kMaxHeaderJsonBytes = 4 << 20;
// Strings kept in such a cut header are at most this long.
constexpr uint64_t kMaxCutHeaderString = 4096;

// About how many bytes json.dump(2) writes for `json` at nesting `depth`, added to `total`;
// gives up (returning early) once `total` passes `limit`.
void add_rendered_bytes(const Json& json, uint64_t depth, uint64_t limit, uint64_t& total) {
  if (total > limit) return;
  switch (json.type()) {
    case Json::value_t::object:
    case Json::value_t::array: {
      const bool object = json.is_object();
      total += 2 + 2 * depth + 1;  // brackets, the closing one indented on its own line
      for (auto it = json.begin(); it != json.end() && total <= limit; ++it) {
        total += 2 * (depth + 1) + 2;              // indent, and ",\n"
        if (object) total += it.key().size() + 4;  // "key":
        add_rendered_bytes(it.value(), depth + 1, limit, total);
      }
      return;
    }
    case Json::value_t::string: {
      const auto& text = json.get_ref<const std::string&>();
      total += text.size() + 2;
      for (const char c : text)  // escapes: \n, \", \\, \u00XX
        if (static_cast<unsigned char>(c) < 0x20 || c == '"' || c == '\\') total += 5;
      return;
    }
    case Json::value_t::binary:
      total += 16 + 4 * json.get_ref<const Json::binary_t&>().size();
      return;
    default:
      total += 24;  // numbers, true, false, null
  }
}

// When the format's header would render past kMaxHeaderJsonBytes, keeps only its plain values
// and reports what was left out.
void bound_header(Layout& layout) {
  uint64_t total = 0;
  add_rendered_bytes(layout.header, 1, kMaxHeaderJsonBytes, total);
  if (total <= kMaxHeaderJsonBytes) return;
  Json kept = Json::object();
  std::string omitted;
  size_t omitted_count = 0;
  for (auto& [key, value] : layout.header.items()) {
    const bool plain =
        value.is_primitive() &&
        (!value.is_string() || value.get_ref<const std::string&>().size() <= kMaxCutHeaderString);
    if (plain) {
      kept[key] = std::move(value);
    } else if (++omitted_count <= 16) {
      omitted += (omitted.empty() ? "" : ", ") + utf8_or_escaped(key);
    }
  }
  if (omitted_count > 16) omitted += ", ...";
  layout.header = std::move(kept);
  layout.add_error("header.json would be over " + std::to_string(kMaxHeaderJsonBytes) +
                   " bytes: the header's lists, objects and long strings (" + omitted +
                   ") are left out");
}

int64_t to_ns(const struct timespec& ts) {
  return static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

std::string dump(const Json& json) {
  // `replace` is a last line of defence: formats are expected to hand over valid UTF-8.
  return json.dump(2, ' ', false, Json::error_handler_t::replace) + "\n";
}

// Keeps only slices and records inside the file; each slice outside becomes an error, and
// each table with records outside, one error.
void drop_out_of_range(Layout& layout, uint64_t size) {
  for (auto& table : layout.tables) {
    const auto outside =
        std::remove_if(table.records.begin(), table.records.end(),
                       [size](const Record& r) { return !range_within(r.offset, r.length, size); });
    if (const auto dropped = static_cast<uint64_t>(table.records.end() - outside); dropped != 0) {
      layout.add_error(std::to_string(dropped) + " records of '" + utf8_or_escaped(table.dir) +
                       "' lie outside the file");
      table.records.erase(outside, table.records.end());
    }
  }
  std::vector<Slice> kept;
  kept.reserve(layout.slices.size());
  for (auto& slice : layout.slices) {
    if (range_within(slice.range.offset, slice.range.length, size)) {
      kept.push_back(std::move(slice));
    } else {
      layout.add_error("slice '" + utf8_or_escaped(slice.name) + "' [" +
                       std::to_string(slice.range.offset) + "+" +
                       std::to_string(slice.range.length) + "] lies outside the file");
    }
  }
  layout.slices = std::move(kept);
}

// Moves every slice, record and the magic of a layout parsed from a window at `base` of the
// file into file offsets. Record attributes are still read through the window, as parsed.
void shift_into_file(Layout& layout, ByteRange window) {
  if (window.offset == 0) return;
  for (auto& slice : layout.slices) slice.range.offset += window.offset;
  if (layout.magic) layout.magic->offset += window.offset;
  for (auto& table : layout.tables) {
    for (auto& record : table.records) record.offset += window.offset;
    if (!table.attributes) continue;
    table.attributes = [read = std::move(table.attributes), window](const ByteSource& file,
                                                                    const Record& record) {
      Record inside = record;
      inside.offset -= window.offset;
      return read(WindowSource(file, window.offset, window.length), inside);
    };
  }
}

}  // namespace

SourceIdentity SourceIdentity::of(const struct stat& st) noexcept {
  return {st.st_dev, st.st_ino, static_cast<uint64_t>(st.st_size), to_ns(st.st_mtim),
          to_ns(st.st_ctim)};
}

std::shared_ptr<const Payload> Payload::build(std::string rel_path, int fd, const struct stat& st,
                                              const Registry& registry) {
  Nesting whole;
  whole.extent = ByteRange{0, static_cast<uint64_t>(st.st_size)};
  whole.shown_path = rel_path;
  return build_in(std::move(rel_path), fd, st, registry, std::move(whole));
}

std::shared_ptr<const Payload> Payload::build_nested(const Payload& container,
                                                     const std::string& slice_path,
                                                     ByteRange extent, int fd,
                                                     const Registry& registry) {
  const Nesting& outer = container.nesting();
  Nesting nested;
  nested.extent = extent;
  nested.level = outer.level + 1;
  nested.chain = outer.chain.empty() ? slice_path : outer.chain + '\0' + slice_path;
  nested.shown_path = outer.shown_path + "/nested/" + slice_path;
  nested.container = outer.shown_path;
  return build_in(container.path(), fd, container.source_stat(), registry, std::move(nested));
}

std::shared_ptr<const Payload> Payload::build_in(std::string rel_path, int fd,
                                                 const struct stat& st, const Registry& registry,
                                                 Nesting nesting) {
  const FdSource file(fd, static_cast<uint64_t>(st.st_size));
  const ByteRange window = nesting.extent;
  // A file is parsed from 0; a nested payload through a window that shows its bytes from 0.
  const WindowSource source(file, window.offset, window.length);
  const uint64_t size = window.length;
  Layout layout;

  std::vector<std::byte> head(static_cast<size_t>(std::min<uint64_t>(kDetectHeadBytes, size)));
  const bool head_ok = source.read_exact(0, head);
  if (!head_ok) {
    layout.add_error("cannot read the first bytes of the file");
    head.clear();
  }
  const Format& format = registry.detect(head, size);
  if (head_ok) {
    try {
      Layout parsed = format.parse(source);
      parsed.errors.insert(parsed.errors.begin(), layout.errors.begin(), layout.errors.end());
      layout = std::move(parsed);
    } catch (const std::exception& e) {
      layout.add_error(std::string("parser failure: ") + e.what());
    }
  }
  drop_out_of_range(layout, size);
  bound_header(layout);
  const bool large_build = json_heap(layout.header) >= kTrimBytes;

  if (!layout.magic || !range_within(layout.magic->offset, layout.magic->length, size) ||
      layout.magic->length > kMaxMagicBytes) {
    layout.magic = ByteRange{0, std::min(kDefaultMagicBytes, size)};
  }
  std::vector<std::byte> magic(static_cast<size_t>(layout.magic->length));
  if (!source.read_exact(layout.magic->offset, magic)) magic.clear();
  shift_into_file(layout, window);

  auto* built = new Payload(std::move(rel_path), st, std::move(nesting), std::move(layout),
                            format.name(), magic);
  built->source_failed_ = file.failed();
  std::shared_ptr<const Payload> payload(built);
  // The parse's scratch (the header's JSON tree, section tables, ...) is freed by now, but glibc
  // keeps freed memory in its arenas: after a large build, hand it back to the kernel.
  if (large_build || payload->memory_estimate() >= kTrimBytes) trim_heap();
  return payload;
}

void Payload::trim_heap() noexcept {
#if defined(__GLIBC__)
  ::malloc_trim(0);
#endif
}

Payload::TrimOnDestroy::~TrimOnDestroy() {
  if (bytes >= kTrimBytes) trim_heap();
}

Payload::Payload(std::string path, const struct stat& st, Nesting nesting, Layout layout,
                 std::string_view format, std::span<const std::byte> magic_bytes)
    : path_(std::move(path)),
      stat_(st),
      nesting_(std::move(nesting)),
      format_(format),
      magic_(*layout.magic),
      slices_(std::move(layout.slices)),
      tables_(std::move(layout.tables)),
      chunked_arrays_(std::move(layout.chunked_arrays)),
      errors_(std::move(layout.errors)),
      tree_(slices_, tables_),
      slices_json_(slices_, tables_, tree_),
      slices_json_measured_(slices_json_.measured()) {
  uint64_t slice_count = slices_.size();
  for (const auto& table : tables_) slice_count += table.records.size();
  Json header = Json::object();
  header["path"] = utf8_or_escaped(nesting_.shown_path);
  if (nesting_.level != 0) {
    header["container"] = utf8_or_escaped(nesting_.container);
    header["container_offset"] = nesting_.extent.offset;
  }
  header["size"] = nesting_.extent.length;
  header["mtime"] =
      utc_timestamp(stat_.st_mtim.tv_sec, static_cast<uint64_t>(stat_.st_mtim.tv_nsec), 9);
  header["mtime_ns"] = to_ns(stat_.st_mtim);
  header["format"] = format_;
  header["magic"] = to_hex(magic_bytes);
  header["magic_offset"] = magic_.offset - nesting_.extent.offset;  // as the bytes' own file
  header["header"] = std::move(layout.header);
  header["slice_count"] = slice_count;
  if (!errors_.empty()) {
    Json errors = Json::array();
    for (const auto& e : errors_) errors.push_back(utf8_or_escaped(e));
    header["errors"] = std::move(errors);
  }
  header_json_ = dump(header);
  const auto arrays = refs_arrays(slices_, chunked_arrays_, tables_);
  has_refs_json_ = !arrays.empty() && utf8_or_escaped(path_) == path_;

  // What this payload holds, counted from its parts as malloc hands them out: the rendered
  // text, every slice's name and attribute JSON, the raw/ tree, the record tables (16 bytes a
  // record) and the index of slices.json's record chunks. Checked against mallinfo2 in the
  // unit tests.
  size_t held = chunk_bytes(sizeof(Payload)) + chunk_bytes(kSharedControlBlock) +
                string_heap(path_) + string_heap(nesting_.chain) +
                string_heap(nesting_.shown_path) + string_heap(nesting_.container) +
                string_heap(format_) + string_heap(header_json_) +
                string_heap(slices_json_.head()) + tree_.memory_estimate() +
                chunk_bytes(slices_.capacity() * sizeof(Slice)) +
                chunk_bytes(tables_.capacity() * sizeof(RecordTable)) +
                chunk_bytes(errors_.capacity() * sizeof(std::string));
  for (const auto& slice : slices_) held += string_heap(slice.name) + json_heap(slice.attributes);
  for (const auto& table : tables_) {
    held += string_heap(table.dir) + chunk_bytes(table.records.capacity() * sizeof(Record)) +
            chunk_bytes(kSlicesJsonChunkBytes *
                        ((table.records.size() + SlicesJson::kChunkRecords - 1) /
                         SlicesJson::kChunkRecords));
  }
  for (const auto& e : errors_) held += string_heap(e);
  held += chunk_bytes(chunked_arrays_.capacity() * sizeof(ChunkedArray));
  for (const auto& c : chunked_arrays_) {
    held += string_heap(c.name) + json_heap(c.dtype) + json_heap(c.compressor) +
            json_heap(c.filters) + json_heap(c.fill_value) +
            chunk_bytes(c.shape.capacity() * sizeof(uint64_t)) +
            chunk_bytes(c.chunks.capacity() * sizeof(uint64_t));
  }
  // refs.json, once read: about 300 bytes, the name three times and the URL per array.
  if (has_refs_json_) {
    for (const auto& a : arrays) {
      held += 300 + 3 * a.name.size() + 2 * path_.size();
      // A chunked array: a key and the URL again for every chunk.
      if (a.chunk_table != nullptr)
        held += a.chunk_table->records.size() * (a.name.size() + path_.size() + 48);
    }
  }
  memory_estimate_ = held;
  trim_on_destroy_.bytes = held;
}

const std::string& Payload::refs_json(std::string_view source_url) const {
  std::call_once(refs_json_once_, [&] {
    if (has_refs_json_) {
      refs_json_ = render_refs_json(refs_arrays(slices_, chunked_arrays_, tables_), source_url);
    }
  });
  return refs_json_;
}

const NestedMembers& Payload::nested_members(const Registry& registry,
                                             const ByteSource& file) const {
  std::call_once(nested_once_, [&] {
    nested_ = find_nested_members(*this, registry, file);
    nested_found_.store(true, std::memory_order_release);
  });
  return nested_;
}

std::optional<ByteRange> Payload::range_of(const SliceTree::Entry& entry) const {
  switch (entry.kind) {
    case SliceTree::Entry::Kind::slice:
      return slices_.at(tree_.node(entry.node).slice).range;
    case SliceTree::Entry::Kind::record: {
      const auto table = tree_.node(entry.node).table;
      if (!table) return std::nullopt;
      const Record& r = tables_.at(*table).records.at(entry.record);
      return ByteRange{r.offset, r.length};
    }
    default:
      return std::nullopt;
  }
}

bool Payload::slices_json_measured() const noexcept {
  return slices_json_measured_.load(std::memory_order_acquire);
}

uint64_t Payload::slices_json_size(const ByteSource& source) const {
  if (!slices_json_measured()) {
    std::call_once(slices_json_once_, [&] {
      slices_json_.measure(source, tables_, tree_);
      slices_json_measured_.store(true, std::memory_order_release);
    });
  }
  return slices_json_.size();
}

std::string Payload::slices_json_text(const ByteSource& source) const {
  std::string out;
  SlicesJson::Piece piece;
  const uint64_t size = slices_json_size(source);
  while (out.size() < size && slices_json_piece(out.size(), source, piece))
    out.append(piece.text, out.size() - piece.start);
  return out;
}

int Payload::map(int fd) const {
  if (mapped()) return 0;
  const std::lock_guard lock(map_mutex_);
  if (mapped()) return 0;
  struct stat st {};
  if (::fstat(fd, &st) != 0) return errno;
  if (st.st_dev != stat_.st_dev || st.st_ino != stat_.st_ino) return ESTALE;
  auto mapping = MappedFile::map(fd, size());
  if (const int* err = error_of(mapping)) return *err;
  map_ = std::move(value_of(mapping));
  mapped_.store(true, std::memory_order_release);
  return 0;
}

std::span<const std::byte> Payload::bytes(ByteRange range) const noexcept {
  if (!mapped()) return {};
  const auto all = map_.bytes();
  if (!range_within(range.offset, range.length, all.size())) return {};
  return all.subspan(static_cast<size_t>(range.offset), static_cast<size_t>(range.length));
}

}  // namespace payloadfs

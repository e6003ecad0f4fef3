#include "core/payload.hpp"

#include <cstdio>
#include <cstring>
#include <ctime>
#include <exception>
#include <variant>
#include <vector>

#include "core/byte_source.hpp"
#include "core/checked_math.hpp"
#include "core/hex.hpp"
#include "core/json_text.hpp"

namespace payloadfs {
namespace {

constexpr uint64_t kDefaultMagicBytes = 4;
constexpr uint64_t kMaxMagicBytes = 64;

int64_t to_ns(const struct timespec& ts) {
  return static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

std::string iso8601(const struct timespec& ts) {
  struct tm tm {};
  const time_t seconds = ts.tv_sec;
  gmtime_r(&seconds, &tm);
  char date[32];
  std::strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%S", &tm);
  char frac[16];
  std::snprintf(frac, sizeof frac, ".%09ldZ", static_cast<long>(ts.tv_nsec));
  return std::string(date) + frac;
}

std::string dump(const Json& json) {
  // `replace` is a last line of defence: formats are expected to hand over valid UTF-8.
  return json.dump(2, ' ', false, Json::error_handler_t::replace) + "\n";
}

// Keeps only slices inside the file; each one outside becomes an error.
void drop_out_of_range(Layout& layout, uint64_t size) {
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

}  // namespace

SourceIdentity SourceIdentity::of(const struct stat& st) noexcept {
  return {st.st_dev, st.st_ino, static_cast<uint64_t>(st.st_size), to_ns(st.st_mtim),
          to_ns(st.st_ctim)};
}

std::shared_ptr<const Payload> Payload::build(std::string rel_path, int fd, const struct stat& st,
                                              const Registry& registry) {
  const auto size = static_cast<uint64_t>(st.st_size);
  const FdSource source(fd, size);
  Layout layout;
  bool mapped = true;
  MappedFile map;
  auto mapping = MappedFile::map(fd, size);
  if (const int* err = std::get_if<int>(&mapping)) {
    mapped = false;
    layout.add_error(std::string("cannot map the file: ") + std::strerror(*err));
  } else {
    map = std::move(std::get<MappedFile>(mapping));
  }

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

  if (!layout.magic || !range_within(layout.magic->offset, layout.magic->length, size) ||
      layout.magic->length > kMaxMagicBytes) {
    layout.magic = ByteRange{0, std::min(kDefaultMagicBytes, size)};
  }
  std::vector<std::byte> magic(static_cast<size_t>(layout.magic->length));
  if (!source.read_exact(layout.magic->offset, magic)) magic.clear();

  return std::shared_ptr<const Payload>(new Payload(std::move(rel_path), st, std::move(map), mapped,
                                                    std::move(layout), format.name(), magic));
}

Payload::Payload(std::string path, const struct stat& st, MappedFile map, bool mapped,
                 Layout layout, std::string_view format, std::span<const std::byte> magic_bytes)
    : path_(std::move(path)),
      stat_(st),
      map_(std::move(map)),
      mapped_(mapped),
      format_(format),
      magic_(*layout.magic),
      slices_(std::move(layout.slices)),
      errors_(std::move(layout.errors)),
      tree_(slices_) {
  Json header = Json::object();
  header["path"] = utf8_or_escaped(path_);
  header["size"] = size();
  header["mtime"] = iso8601(stat_.st_mtim);
  header["mtime_ns"] = to_ns(stat_.st_mtim);
  header["format"] = format_;
  header["magic"] = to_hex(magic_bytes);
  header["magic_offset"] = magic_.offset;
  header["header"] = std::move(layout.header);
  header["slice_count"] = slices_.size();
  if (!errors_.empty()) {
    Json errors = Json::array();
    for (const auto& e : errors_) errors.push_back(utf8_or_escaped(e));
    header["errors"] = std::move(errors);
  }
  header_json_ = dump(header);

  Json slices = Json::array();
  for (size_t i = 0; i < slices_.size(); ++i) {
    const Slice& slice = slices_[i];
    Json entry = {{"name", utf8_or_escaped(slice.name)},
                  {"path", "raw/" + utf8_or_escaped(tree_.slice_path(i))},
                  {"offset", slice.range.offset},
                  {"length", slice.range.length}};
    for (const auto& [key, value] : slice.attributes.items()) entry[key] = value;
    slices.push_back(std::move(entry));
  }
  slices_json_ = dump(slices);
}

std::span<const std::byte> Payload::bytes(ByteRange range) const noexcept {
  const auto all = map_.bytes();
  if (!range_within(range.offset, range.length, all.size())) return {};
  return all.subspan(static_cast<size_t>(range.offset), static_cast<size_t>(range.length));
}

}  // namespace payloadfs

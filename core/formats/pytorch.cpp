// torch.save archives (the zip format, PyTorch 1.6 and later; torch/serialization.py and
// caffe2/serialize/inline_container.cc): a zip whose members share one top directory, the
// prefix: <prefix>/data.pkl (the pickle), <prefix>/data/<key> (one member per storage, stored
// and 64-byte aligned by padding in the local header's extra field), <prefix>/version,
// <prefix>/byteorder (since 2.1), <prefix>/.data/serialization_id. data.pkl is read by the
// data-only pickle machine; each contiguous tensor is a slice of its storage member.

#include <algorithm>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/formats/builtin.hpp"
#include "core/formats/support/json_members.hpp"
#include "core/formats/support/pickle_machine.hpp"
#include "core/formats/support/torch_state.hpp"
#include "core/formats/support/zip_archive.hpp"
#include "core/io/binary_reader.hpp"
#include "core/io/checked_math.hpp"
#include "core/render/json_text.hpp"

namespace payloadfs::formats {
namespace {

using zip_archive::CentralEntry;

// Local headers looked at for detection, within the first bytes the registry gives.
constexpr size_t kMaxDetectMembers = 64;
// Small text members (version, byteorder, serialization_id) are read up to this size.
constexpr uint64_t kMaxTextMemberBytes = 256;
constexpr uint8_t kPickleProto = 0x80;

// The archive's prefix: the first member's top directory, as torch's reader takes it.
std::optional<std::string> prefix_of(std::string_view first_member) {
  const size_t slash = first_member.find('/');
  if (slash == std::string_view::npos || slash == 0) return std::nullopt;
  return std::string(first_member.substr(0, slash));
}

std::string trimmed(std::string text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r' || text.back() == ' '))
    text.pop_back();
  return text;
}

struct Archive {
  const ByteSource& source;
  const zip_archive::Directory& dir;
  std::string prefix;
  std::unordered_map<std::string, const CentralEntry*> members;

  const CentralEntry* find(const std::string& name) const {
    const auto it = members.find(prefix + "/" + name);
    return it == members.end() ? nullptr : it->second;
  }

  // Where a stored member's bytes are; the error otherwise.
  std::optional<ByteRange> stored(const CentralEntry& e, std::string& error) const {
    if (!zip_archive::stored_plain(e)) {
      error = "member '" + utf8_or_escaped(e.name) + "' is " +
              ((e.flags & 1) != 0 ? "encrypted" : zip_archive::method_name(e.method)) +
              ", not stored";
      return std::nullopt;
    }
    const auto data = zip_archive::member_data_offset(source, e, dir.end.disk, error);
    if (!data) return std::nullopt;
    return ByteRange{*data, e.csize};
  }

  // A small stored text member, trimmed; nullopt when absent (or unreadable: reported).
  std::optional<std::string> text(const std::string& name, Layout& layout) const {
    const CentralEntry* e = find(name);
    if (e == nullptr) return std::nullopt;
    std::string error;
    const auto range = stored(*e, error);
    if (range && range->length > kMaxTextMemberBytes)
      error = "member '" + utf8_or_escaped(e->name) + "' is longer than " +
              std::to_string(kMaxTextMemberBytes) + " bytes";
    if (!error.empty()) {
      layout.add_error(error);
      return std::nullopt;
    }
    std::string out(static_cast<size_t>(range->length), '\0');
    if (!source.read_exact(range->offset, std::as_writable_bytes(std::span(out)))) {
      layout.add_error("cannot read member '" + utf8_or_escaped(e->name) + "'");
      return std::nullopt;
    }
    return utf8_or_escaped(trimmed(std::move(out)));
  }
};

class Pytorch final : public Format {
 public:
  std::string_view name() const noexcept override { return "pytorch"; }
  std::string_view description() const noexcept override {
    return "PyTorch torch.save archive (zip format, torch 1.6 and later)";
  }
  std::string_view signature() const noexcept override {
    return "a zip ('PK\\x03\\x04' at 0) whose first member is <prefix>/... and one of whose "
           "local headers in the first 4096 bytes is <prefix>/data.pkl";
  }

  bool detect(std::span<const std::byte> head, uint64_t) const override {
    const auto members = zip_archive::local_headers_in(head, kMaxDetectMembers);
    if (members.empty()) return false;
    const auto prefix = prefix_of(members.front().name);
    if (!prefix) return false;
    const std::string pickle = *prefix + "/data.pkl";
    for (const auto& m : members) {
      if (m.name != pickle) continue;
      const bool stored = m.method == 0 && (m.flags & 0x0001) == 0;
      return !stored || m.data_offset >= head.size() ||
             head[m.data_offset] == std::byte{kPickleProto};
    }
    return false;
  }

  Layout parse(const ByteSource& source) const override {
    Layout layout;
    const auto dir = zip_archive::read_directory(source, layout);
    if (!dir) return layout;
    auto& h = layout.header;
    if (dir->entries.empty()) {
      layout.add_error("the archive has no members");
      return layout;
    }
    Archive archive{source, *dir, "", {}};
    const auto prefix = prefix_of(dir->entries.front().name);
    if (!prefix) {
      layout.add_error("first member '" + utf8_or_escaped(dir->entries.front().name) +
                       "' is not inside the archive's top directory");
      return layout;
    }
    archive.prefix = *prefix;
    for (const auto& e : dir->entries) archive.members.emplace(e.name, &e);
    h["prefix"] = utf8_or_escaped(archive.prefix);
    describe_records(archive, layout);
    const CentralEntry* pkl = archive.find("data.pkl");
    if (pkl == nullptr) {
      layout.add_error("no member '" + utf8_or_escaped(archive.prefix) + "/data.pkl'");
      return layout;
    }
    std::string error;
    const auto range = archive.stored(*pkl, error);
    if (!range) {
      layout.add_error(error);
      return layout;
    }
    BinaryReader file(source, Endian::little);
    BinaryReader reader = file.sub(range->offset, range->length);
    const pickle::Result result = pickle::load(reader);
    h["pickle_protocol"] = result.protocol;
    for (const auto& e : result.errors) layout.add_error("data.pkl: " + e);
    Json globals = Json::array();
    for (const auto& g : result.globals) globals.push_back(utf8_or_escaped(g));
    if (result.root != nullptr) add_state(archive, torch_state::read_state(*result.root), layout);
    h["globals"] = std::move(globals);
    return layout;
  }

 private:
  // version, byteorder and serialization_id, as the archive states them.
  static void describe_records(const Archive& archive, Layout& layout) {
    auto& h = layout.header;
    const auto version = archive.text("version", layout);
    h["version"] = version ? Json(*version) : Json();
    const auto byteorder = archive.text("byteorder", layout);
    h["byteorder"] = byteorder ? Json(*byteorder) : Json();
    if (byteorder && *byteorder != "little" && *byteorder != "big")
      layout.add_error("byteorder is '" + *byteorder + "', neither 'little' nor 'big'");
    const auto id = archive.text(".data/serialization_id", layout);
    h["serialization_id"] = id ? Json(*id) : Json();
  }

  static void add_state(const Archive& archive, const torch_state::State& state, Layout& layout) {
    auto& h = layout.header;
    for (const auto& e : state.errors) layout.add_error("data.pkl: " + e);
    const bool big = h["byteorder"] == "big";
    Json tensors = Json::object();
    JsonMembers keys;
    for (const auto& t : state.tensors) {
      const std::string dtype = dtype_of(t, big);
      Json entry = {{"dtype", dtype},
                    {"torch_dtype", t.type->torch_dtype},
                    {"shape", t.shape},
                    {"stride", t.stride},
                    {"storage", utf8_or_escaped(t.storage_key)},
                    {"storage_offset", t.storage_offset},
                    {"contiguous", t.contiguous()},
                    {"requires_grad", t.requires_grad}};
      if (t.parameter) entry["parameter"] = true;
      if (!t.location.empty()) entry["device"] = t.location;
      if (!keys.add(tensors, t.key, std::move(entry)))
        layout.add_error("tensor key '" + t.key + "' repeats; the header lists the first");
      if (t.contiguous()) add_slice(archive, t, dtype, layout);
    }
    h["tensor_count"] = state.tensors.size();
    h["tensors"] = std::move(tensors);
    if (!state.other_tensors.empty()) h["other_tensors"] = state.other_tensors;
    h["values"] = state.values;
  }

  // NumPy's type string in the archive's byte order ('|' for single bytes and bfloat16's V2).
  static std::string dtype_of(const torch_state::Tensor& t, bool big) {
    const std::string kind(t.type->numpy_kind);
    if (t.type->itemsize == 1 || kind.front() == 'V') return "|" + kind;
    return (big ? ">" : "<") + kind;
  }

  // The tensor's own bytes inside <prefix>/data/<storage key>.
  static void add_slice(const Archive& archive, const torch_state::Tensor& t,
                        const std::string& dtype, Layout& layout) {
    const std::string where = "tensor '" + t.key + "': ";
    const CentralEntry* member = archive.find("data/" + t.storage_key);
    if (member == nullptr) {
      layout.add_error(where + "no storage member '" + utf8_or_escaped(archive.prefix) + "/data/" +
                       utf8_or_escaped(t.storage_key) + "'");
      return;
    }
    std::string error;
    const auto range = archive.stored(*member, error);
    if (!range) {
      layout.add_error(where + error);
      return;
    }
    const uint64_t itemsize = t.type->itemsize;
    const auto numel = t.numel();
    const auto begin = checked_mul(t.storage_offset, itemsize);
    const auto length = numel ? checked_mul(*numel, itemsize) : std::nullopt;
    if (!begin || !length || !range_within(*begin, *length, range->length)) {
      layout.add_error(where + "needs " + (length ? std::to_string(*length) : "too many") +
                       " bytes at element " + std::to_string(t.storage_offset) + " of storage '" +
                       utf8_or_escaped(t.storage_key) + "', which holds " +
                       std::to_string(range->length) + " bytes");
      return;
    }
    Json attributes = {{"dtype", dtype},
                       {"shape", t.shape},
                       {"stride", t.stride},
                       {"storage", utf8_or_escaped(t.storage_key)},
                       {"storage_offset", t.storage_offset},
                       {"torch_dtype", t.type->torch_dtype}};
    layout.slices.push_back(Slice{t.key, {range->offset + *begin, *length}, std::move(attributes)});
  }
};

}  // namespace

std::unique_ptr<Format> make_pytorch() {
  return std::make_unique<Pytorch>();
}

}  // namespace payloadfs::formats

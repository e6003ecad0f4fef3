// NumPy .npz archives (numpy.savez, numpy.savez_compressed; numpy/lib/npyio.py): a zip whose
// members are .npy files, one per array, named `<array name>.npy`. savez stores the members,
// savez_compressed deflates them. A stored array's data is a range of the file, served as it
// is; a deflated one is only described (its npy header is inflated to read dtype and shape).

#include <zlib.h>

#include <algorithm>
#include <array>
#include <string>
#include <vector>

#include "core/formats/builtin.hpp"
#include "core/formats/support/json_members.hpp"
#include "core/formats/support/npy_header.hpp"
#include "core/formats/support/signature.hpp"
#include "core/formats/support/zip_archive.hpp"
#include "core/io/binary_reader.hpp"
#include "core/io/checked_math.hpp"
#include "core/render/json_text.hpp"

namespace payloadfs::formats {
namespace {

using zip_archive::CentralEntry;

// Local headers looked at for detection, within the first bytes the registry gives.
constexpr size_t kMaxDetectMembers = 64;
// A deflated member's npy header is read from at most this much inflated output ...
constexpr uint64_t kMaxInflatedHeaderBytes = 64 * 1024;
// ... decoded from at most this many compressed bytes.
constexpr uint64_t kMaxDeflatedInputBytes = 1 << 20;
constexpr size_t kInputChunk = 16 * 1024;
constexpr std::string_view kSuffix = ".npy";

bool is_npy_name(std::string_view name) {
  return name.size() > kSuffix.size() && name.ends_with(kSuffix) && !name.ends_with("/.npy");
}

// The first bytes of the raw deflate stream at `offset` (at most kMaxInflatedHeaderBytes);
// empty with `error` set when nothing can be decoded.
std::vector<std::byte> inflate_prefix(const ByteSource& source, uint64_t offset, uint64_t csize,
                                      std::string& error) {
  std::vector<std::byte> out(kMaxInflatedHeaderBytes);
  z_stream zs{};
  if (inflateInit2(&zs, -MAX_WBITS) != Z_OK) {
    error = "zlib could not be initialised";
    return {};
  }
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  std::vector<std::byte> in(kInputChunk);
  const uint64_t budget = std::min(csize, kMaxDeflatedInputBytes);
  uint64_t fed = 0;
  while (zs.avail_out > 0) {
    if (zs.avail_in == 0) {
      if (fed == budget) break;
      const auto n = static_cast<size_t>(std::min<uint64_t>(in.size(), budget - fed));
      if (!source.read_exact(offset + fed, std::span(in).first(n))) {
        error = "cannot read the compressed member";
        break;
      }
      zs.next_in = reinterpret_cast<Bytef*>(in.data());
      zs.avail_in = static_cast<uInt>(n);
      fed += n;
    }
    const int ret = inflate(&zs, Z_NO_FLUSH);
    if (ret == Z_STREAM_END) break;
    if (ret != Z_OK && ret != Z_BUF_ERROR) {
      error = std::string("deflate stream is corrupt: ") + (zs.msg != nullptr ? zs.msg : "?");
      break;
    }
  }
  out.resize(out.size() - zs.avail_out);
  inflateEnd(&zs);
  if (!out.empty()) error.clear();  // a header may still be read from what was decoded
  return out;
}

class Npz final : public Format {
 public:
  std::string_view name() const noexcept override { return "npz"; }
  std::string_view description() const noexcept override {
    return "NumPy .npz archive (numpy.savez, savez_compressed)";
  }
  std::string_view signature() const noexcept override {
    return "a zip ('PK\\x03\\x04' at 0) whose local headers in the first 4096 bytes all name "
           "'*.npy' members, the stored ones starting with '\\x93NUMPY'";
  }

  bool detect(std::span<const std::byte> head, uint64_t) const override {
    const auto members = zip_archive::local_headers_in(head, kMaxDetectMembers);
    if (members.empty()) return false;
    for (const auto& m : members) {
      if (!is_npy_name(m.name)) return false;
      const bool stored = m.method == 0 && (m.flags & 0x0001) == 0;
      if (stored && range_within(m.data_offset, kNpyMagic.size(), head.size()) &&
          !matches_at(head, m.data_offset, kNpyMagic))
        return false;
    }
    return true;
  }

  Layout parse(const ByteSource& source) const override {
    Layout layout;
    const auto dir = zip_archive::read_directory(source, layout);
    if (!dir) return layout;
    Json arrays = Json::object();
    JsonMembers names;
    for (const auto& e : dir->entries) {
      if (!is_npy_name(e.name)) {
        layout.add_error("member '" + utf8_or_escaped(e.name) + "' is not a .npy array");
        continue;
      }
      const std::string key = e.name.substr(0, e.name.size() - kSuffix.size());
      const std::string shown = utf8_or_escaped(key);  // names need not be UTF-8
      if (names.contains(shown)) {
        layout.add_error("member '" + utf8_or_escaped(e.name) + "' repeats an earlier name");
        continue;
      }
      names.add(arrays, shown, describe_member(source, dir->end.disk, e, key, layout));
    }
    auto& h = layout.header;
    h["array_count"] = arrays.size();
    h["zip64"] = dir->end.zip64;
    h["arrays"] = std::move(arrays);
    return layout;
  }

 private:
  // The member's entry in header.arrays, and its slice when it is stored.
  static Json describe_member(const ByteSource& source, uint64_t disk, const CentralEntry& e,
                              const std::string& key, Layout& layout) {
    Json entry = Json::object();
    entry["member"] = utf8_or_escaped(e.name);
    entry["compressed"] = e.method != 0;
    if (e.method != 0) entry["method"] = zip_archive::method_name(e.method);
    if ((e.flags & 0x0001) != 0) {
      entry["encrypted"] = true;
      return entry;
    }
    std::string error;
    const auto data = zip_archive::member_data_offset(source, e, disk, error);
    if (!data) {
      layout.add_error(std::move(error));
      return entry;
    }
    if (e.method == 0) {
      BinaryReader file(source, Endian::little);
      BinaryReader member = file.sub(*data, e.csize);
      if (const auto array = read_array(member, e, entry, layout)) {
        const auto member_end = *data + e.csize;  // inside the file: checked above
        if (!range_within(array->data_offset, array->length, member_end)) {
          layout.add_error("member '" + utf8_or_escaped(e.name) + "': array data needs " +
                           std::to_string(array->length) + " bytes at offset " +
                           std::to_string(array->data_offset) + " but the member ends at " +
                           std::to_string(member_end));
        } else {
          add_slice(key, e, *array, layout);
        }
      }
    } else if (e.method == 8) {
      const auto prefix = inflate_prefix(source, *data, e.csize, error);
      if (!error.empty()) {
        layout.add_error("member '" + utf8_or_escaped(e.name) + "': " + error);
        return entry;
      }
      const MemorySource inflated(prefix);
      BinaryReader member(inflated, Endian::little);
      (void)read_array(member, e, entry, layout);
    }
    return entry;
  }

  // Reads the npy magic and header at the reader's position into `entry`; problems become
  // errors naming the member.
  static std::optional<NpyArray> read_array(BinaryReader& member, const CentralEntry& e,
                                            Json& entry, Layout& layout) {
    const std::string where = "member '" + utf8_or_escaped(e.name) + "': ";
    std::array<std::byte, kNpyMagic.size()> magic{};
    if (!member.read_into(magic) || magic != kNpyMagic) {
      layout.add_error(where + "does not start with the npy magic '\\x93NUMPY'");
      return std::nullopt;
    }
    Layout npy;
    auto array = read_npy_header(member, npy);
    for (auto& error : npy.errors) layout.add_error(where + error);
    if (!array) return std::nullopt;
    entry["dtype"] = array->dtype;
    entry["shape"] = array->shape;
    entry["fortran_order"] = array->fortran_order;
    entry["version"] = npy.header["version"];
    return array;
  }

  static void add_slice(const std::string& key, const CentralEntry& e, const NpyArray& array,
                        Layout& layout) {
    Json attributes = {{"dtype", array.dtype},
                       {"shape", array.shape},
                       {"fortran_order", array.fortran_order},
                       {"member", utf8_or_escaped(e.name)}};
    layout.slices.push_back(Slice{key, {array.data_offset, array.length}, std::move(attributes)});
  }
};

}  // namespace

std::unique_ptr<Format> make_npz() {
  return std::make_unique<Npz>();
}

}  // namespace payloadfs::formats

// HDF5 dataspace, filter pipeline and data layout messages (File Format Specification 3.0,
// IV.A.2.b, IV.A.2.l, IV.A.2.i), and the numcodecs equivalents of a filter pipeline.

#include "core/formats/support/hdf5_messages.hpp"

#include <string>

#include "core/formats/support/hdf5_addresses.hpp"
#include "core/formats/support/hdf5_values.hpp"
#include "core/io/binary_reader.hpp"
#include "core/io/checked_math.hpp"
#include "core/render/json_text.hpp"

namespace payloadfs::formats::hdf5 {
namespace {

// Client data values per filter (szip uses 4, blosc 7, scaleoffset about 20).
constexpr uint16_t kMaxClientValues = 256;
constexpr uint64_t kMaxFilterNameBytes = 256;

std::string filter_name(uint16_t id) {
  switch (id) {
    case 1:
      return "deflate";
    case 2:
      return "shuffle";
    case 3:
      return "fletcher32";
    case 4:
      return "szip";
    case 5:
      return "nbit";
    case 6:
      return "scaleoffset";
    case 307:
      return "bzip2";
    case 32000:
      return "lzf";
    case 32001:
      return "blosc";
    case 32004:
      return "lz4";
    case 32008:
      return "bitshuffle";
    case 32015:
      return "zstd";
    case 32026:
      return "blosc2";
    default:
      return "filter-" + std::to_string(id);
  }
}

std::optional<Filter> read_filter(BinaryReader& r, unsigned version, std::string& error) {
  Filter f;
  f.id = r.u16();
  const uint16_t name_length = version == 1 || f.id >= 256 ? r.u16() : 0;
  f.optional = (r.u16() & 1) != 0;
  const uint16_t values = r.u16();
  if (values > kMaxClientValues || name_length > kMaxFilterNameBytes) {
    error = "filter " + std::to_string(f.id) + " has " + std::to_string(values) +
            " client values and a name of " + std::to_string(name_length) + " bytes (limits " +
            std::to_string(kMaxClientValues) + ", " + std::to_string(kMaxFilterNameBytes) + ")";
    return std::nullopt;
  }
  std::string name = r.text(name_length);
  if (version == 1) r.skip((8 - name_length % 8) % 8);
  name = name.substr(0, name.find('\0'));
  f.name = filter_name(f.id);  // a known id's name, else the message's, else "filter-<id>"
  if (f.name.rfind("filter-", 0) == 0 && !name.empty()) f.name = utf8_or_escaped(name);
  for (unsigned i = 0; i < values; ++i) f.client_data.push_back(r.u32());
  if (version == 1 && values % 2 == 1) r.skip(4);
  return f;
}

}  // namespace

std::optional<Dataspace> parse_dataspace_at(BinaryReader& r, const Sizes& sizes,
                                            std::string& error) {
  const uint8_t version = r.u8();
  const uint8_t rank = r.u8();
  const uint8_t flags = r.u8();
  Dataspace space;
  if (version == 1) {
    r.skip(5);
    space.scalar = rank == 0;
  } else if (version == 2) {
    const uint8_t type = r.u8();
    space.scalar = type == 0;
    space.null = type == 2;
    if (type > 2) error = "dataspace type " + std::to_string(type) + " is not defined";
  } else {
    error = "dataspace version " + std::to_string(version) + " is not 1 or 2";
  }
  if (error.empty() && rank > kMaxRank)
    error = "dataspace rank " + std::to_string(rank) + " exceeds " + std::to_string(kMaxRank);
  if (!error.empty()) return std::nullopt;
  for (unsigned i = 0; i < rank; ++i) space.dims.push_back(read_sized(r, sizes.lengths));
  for (unsigned i = 0; i < rank; ++i) {
    if ((flags & 1) == 0) break;
    const uint64_t max = read_sized(r, sizes.lengths);
    space.max_dims.push_back(all_ones(max, sizes.lengths) ? kUnlimited : max);
  }
  if ((flags & 1) == 0) space.max_dims = space.dims;
  if (version == 1 && (flags & 2) != 0) r.skip(uint64_t{rank} * sizes.lengths);  // permutation
  if (!r.ok()) {
    error = "dataspace: " + r.error().value_or("cut short");
    return std::nullopt;
  }
  if (space.scalar && !space.dims.empty()) space.scalar = false;
  return space;
}

std::optional<Dataspace> parse_dataspace(const ByteSource& file, const Sizes& sizes, ByteRange body,
                                         std::string& error) {
  BinaryReader root(file);
  BinaryReader r = root.sub(body.offset, body.length);
  auto space = parse_dataspace_at(r, sizes, error);
  if (!space) error = "dataspace message: " + error;
  return space;
}

std::optional<std::vector<Filter>> parse_filter_pipeline(const ByteSource& file, ByteRange body,
                                                         std::string& error) {
  BinaryReader root(file);
  BinaryReader r = root.sub(body.offset, body.length);
  const uint8_t version = r.u8();
  const uint8_t count = r.u8();
  if (version == 1) r.skip(6);
  if (r.ok() && version != 1 && version != 2) {
    error = "filter pipeline message: version " + std::to_string(version) + " is not 1 or 2";
    return std::nullopt;
  }
  if (count > kMaxFilters) {
    error = "filter pipeline message: " + std::to_string(count) + " filters (limit " +
            std::to_string(kMaxFilters) + ")";
    return std::nullopt;
  }
  std::vector<Filter> filters;
  for (unsigned i = 0; i < count && r.ok(); ++i) {
    auto f = read_filter(r, version, error);
    if (!f) {
      error = "filter pipeline message: " + error;
      return std::nullopt;
    }
    filters.push_back(std::move(*f));
  }
  if (!r.ok()) {
    error = "filter pipeline message: " + r.error().value_or("cut short");
    return std::nullopt;
  }
  return filters;
}

namespace {

// Blosc's compressor codes in its HDF5 filter's client data (value 6).
const char* blosc_cname(uint32_t code) {
  static constexpr const char* kNames[] = {"blosclz", "lz4", "lz4hc", "snappy", "zlib", "zstd"};
  return code < 6 ? kNames[code] : nullptr;
}

// A numcodecs config for one filter, and whether it compresses (so may be zarr's compressor).
// Ids numcodecs 0.11 lacks give nullopt: fletcher32 (numcodecs 0.12+), lzf, szip, nbit,
// scaleoffset, bitshuffle. lz4 too: HDF5's lz4 filter frames its blocks differently from
// numcodecs' LZ4 (kerchunk refuses it as well).
std::optional<std::pair<Json, bool>> codec_of(const Filter& f, uint64_t element_size) {
  const auto& cd = f.client_data;
  switch (f.id) {
    case 1:
      return std::pair{Json{{"id", "zlib"}, {"level", cd.empty() ? 6 : cd[0]}}, true};
    case 2:
      return std::pair{Json{{"id", "shuffle"}, {"elementsize", element_size}}, false};
    case 307:
      return std::pair{Json{{"id", "bz2"}, {"level", cd.empty() ? 9 : cd[0]}}, true};
    case 32015:
      return std::pair{Json{{"id", "zstd"}, {"level", cd.empty() ? 0 : cd[0]}}, true};
    case 32001: {
      if (cd.size() < 7 || blosc_cname(cd[6]) == nullptr) return std::nullopt;
      Json c = {{"id", "blosc"},
                {"cname", blosc_cname(cd[6])},
                {"clevel", cd[4]},
                {"shuffle", cd[5]},
                {"blocksize", 0}};
      return std::pair{std::move(c), true};
    }
    default:
      return std::nullopt;
  }
}

}  // namespace

std::optional<ZarrCodecs> zarr_codecs(const std::vector<Filter>& pipeline, uint64_t element_size) {
  ZarrCodecs codecs;
  Json filters = Json::array();
  for (size_t i = 0; i < pipeline.size(); ++i) {
    auto codec = codec_of(pipeline[i], element_size);
    if (!codec) return std::nullopt;
    // The last filter, when it compresses, is zarr's compressor (zarr decompresses first).
    if (i + 1 == pipeline.size() && codec->second)
      codecs.compressor = std::move(codec->first);
    else
      filters.push_back(std::move(codec->first));
  }
  if (!filters.empty()) codecs.filters = std::move(filters);
  return codecs;
}

}  // namespace payloadfs::formats::hdf5

// ISO base media files (ISO/IEC 14496-12: mp4, m4a, 3gp) and QuickTime movies (.mov): a tree of
// boxes, each a u32 size (1: a u64 largesize follows; 0: to the end of its parent), a
// four-character type and, for `uuid`, a 16-byte user type. Container boxes (moov, trak, mdia,
// ...) hold boxes; every other box is a leaf and shows as a slice by its path. Each track's
// samples are computed from its sample tables (core/formats/support/mp4_samples.cpp) into a
// record table, track/<track_id>/<i>.

#include <array>
#include <deque>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "core/formats/builtin.hpp"
#include "core/formats/support/mp4_header.hpp"
#include "core/io/binary_reader.hpp"
#include "core/io/checked_math.hpp"

namespace payloadfs::formats {
namespace {

constexpr uint64_t kBoxHeaderBytes = 8;
constexpr uint64_t kLargeSizeBytes = 8;
constexpr uint64_t kUuidBytes = 16;
constexpr uint64_t kFullBoxBytes = 4;
// Limits: boxes shown, container nesting, brands and tracks listed, samples indexed per file.
constexpr uint64_t kMaxBoxes = 65'536;
constexpr unsigned kMaxDepth = 16;
constexpr uint64_t kMaxTracks = 1024;
constexpr uint64_t kMaxSamples = 10'000'000;

constexpr std::array<std::string_view, 14> kContainers = {"moov", "trak", "mdia", "minf", "stbl",
                                                          "dinf", "edts", "udta", "mvex", "moof",
                                                          "traf", "mfra", "meta", "ilst"};
// Types a detector accepts at offset 4: ftyp, or the top-level boxes old QuickTime files open
// with.
constexpr std::array<std::string_view, 6> kLeadingTypes = {"ftyp", "moov", "mdat",
                                                           "free", "wide", "skip"};

using mp4::fourcc_code;
using mp4::fourcc_text;

bool is_type(uint32_t type, std::string_view name) {
  return type == fourcc_code(name);
}

template <size_t N>
bool is_one_of(uint32_t type, const std::array<std::string_view, N>& names) {
  for (const auto name : names)
    if (is_type(type, name)) return true;
  return false;
}

struct Box {
  uint64_t offset = 0;
  uint64_t header_size = kBoxHeaderBytes;
  uint64_t size = 0;  // header included, clamped to its parent
  uint32_t type = 0;
  [[nodiscard]] ByteRange payload() const { return {offset + header_size, size - header_size}; }
};

using Track = mp4::TrackBoxes;

struct Walk {
  Walk(BinaryReader& f, Layout& l) : file(f), layout(l) {}
  BinaryReader& file;
  Layout& layout;
  std::optional<ByteRange> ftyp, mvhd;
  std::deque<Track> tracks;  // a deque: a trak nested in a trak must not move the outer one
  Track* track = nullptr;    // the trak being walked
  uint64_t boxes = 0;
  bool fragmented = false;
  bool cut_by_count = false;
};

// Reads the box header at `at` inside [at, end); nullopt (with the error) when there is none.
std::optional<Box> read_box(Walk& w, uint64_t at, uint64_t end) {
  BinaryReader r = w.file.sub(at, end - at);
  Box box;
  box.offset = at;
  const uint32_t size32 = r.u32();
  box.type = r.u32();
  uint64_t size = size32;
  if (size32 == 1) {
    size = r.u64();
    box.header_size += kLargeSizeBytes;
  } else if (size32 == 0) {
    size = end - at;  // to the end of the file, or of its parent
  }
  if (is_type(box.type, "uuid")) box.header_size += kUuidBytes;
  const std::string where = "box '" + fourcc_text(box.type) + "' at offset " + std::to_string(at);
  if (!r.ok() || end - at < box.header_size) {
    w.layout.add_error("cut box header at offset " + std::to_string(at) + " (" +
                       std::to_string(end - at) + " bytes remain)");
    return std::nullopt;
  }
  if (size < box.header_size) {
    w.layout.add_error(where + ": size " + std::to_string(size) + " is smaller than its " +
                       std::to_string(box.header_size) + "-byte header");
    return std::nullopt;
  }
  if (size > end - at) {
    w.layout.add_error(where + ": size " + std::to_string(size) + " runs past the end of " +
                       "its parent (" + std::to_string(end - at) + " bytes remain); cut there");
    size = end - at;
  }
  box.size = size;
  return box;
}

// Where a container's children start: after `meta`'s version and flags, except in QuickTime,
// whose `meta` is a plain container (its first child, `hdlr`, follows at once).
uint64_t children_start(Walk& w, const Box& box) {
  const ByteRange payload = box.payload();
  if (!is_type(box.type, "meta") || payload.length < kBoxHeaderBytes) return payload.offset;
  BinaryReader r = w.file.sub(payload.offset, payload.length);
  r.skip(4);
  const bool quicktime = is_type(r.u32(), "hdlr");
  return quicktime ? payload.offset : payload.offset + kFullBoxBytes;
}

// Notes a leaf box the header or the sample tables need.
void note_leaf(Walk& w, const Box& box) {
  const ByteRange p = box.payload();
  if (is_type(box.type, "ftyp") && !w.ftyp) w.ftyp = p;
  if (is_type(box.type, "mvhd") && !w.mvhd) w.mvhd = p;
  if (is_type(box.type, "trun")) w.fragmented = true;
  if (w.track == nullptr) return;
  Track& t = *w.track;
  auto& s = t.tables;
  const std::array<std::pair<std::string_view, std::optional<ByteRange>*>, 10> wanted = {{
      {"tkhd", &t.tkhd},
      {"mdhd", &t.mdhd},
      {"hdlr", &t.hdlr},
      {"stsd", &t.stsd},
      {"stsz", &s.stsz},
      {"stz2", &s.stz2},
      {"stsc", &s.stsc},
      {"stco", &s.stco},
      {"co64", &s.co64},
      {"stss", &s.stss},
  }};
  for (const auto& [name, slot] : wanted)
    if (is_type(box.type, name) && !*slot) *slot = p;
}

void walk_boxes(Walk& w, uint64_t begin, uint64_t end, const std::string& prefix, unsigned depth,
                bool in_ilst);

// One box: a slice for a leaf, the walk of its children for a container.
void visit_box(Walk& w, const Box& box, const std::string& path, unsigned depth, bool in_ilst) {
  // An ilst item (`©nam`, `trkn`, ...) holds its `data` boxes.
  const bool container = is_one_of(box.type, kContainers) || in_ilst;
  if (container && depth + 1 < kMaxDepth) {
    Track* outer = w.track;
    if (is_type(box.type, "trak")) {
      if (w.tracks.size() < kMaxTracks) {
        w.tracks.emplace_back();
        w.track = &w.tracks.back();
      } else {
        w.layout.add_error("more than " + std::to_string(kMaxTracks) +
                           " tracks; the rest have no samples");
        w.track = nullptr;
      }
    }
    if (is_type(box.type, "moof") || is_type(box.type, "mvex")) w.fragmented = true;
    walk_boxes(w, children_start(w, box), box.offset + box.size, path + "/", depth + 1,
               is_type(box.type, "ilst"));
    w.track = outer;
    return;
  }
  if (container)
    w.layout.add_error("box '" + path + "' at offset " + std::to_string(box.offset) +
                       " is nested deeper than " + std::to_string(kMaxDepth) +
                       " boxes; shown as a leaf");
  note_leaf(w, box);
  Json a = {{"type", fourcc_text(box.type)},
            {"box_offset", box.offset},
            {"box_size", box.size},
            {"header_size", box.header_size}};
  Slice slice{path, box.payload(), std::move(a)};
  // Media data is the samples' bytes, listed by track: not a payload of its own.
  if (is_type(box.type, "mdat")) slice.stored = false;
  w.layout.slices.push_back(std::move(slice));
}

void walk_boxes(Walk& w, uint64_t begin, uint64_t end, const std::string& prefix, unsigned depth,
                bool in_ilst) {
  std::map<std::string, uint64_t> seen;  // repeats of a type get ~N
  uint64_t at = begin;
  while (at < end) {
    if (w.boxes >= kMaxBoxes) {
      if (!w.cut_by_count)
        w.layout.add_error("more than " + std::to_string(kMaxBoxes) + " boxes; from offset " +
                           std::to_string(at) + " on they are not shown");
      w.cut_by_count = true;
      return;
    }
    const auto box = read_box(w, at, end);
    if (!box) return;
    ++w.boxes;
    std::string name = fourcc_text(box->type);
    const uint64_t repeat = seen[name]++;
    if (repeat > 0) name += "~" + std::to_string(repeat);
    visit_box(w, *box, prefix + name, depth, in_ilst);
    at += box->size;
  }
}

class Mp4 final : public Format {
 public:
  std::string_view name() const noexcept override { return "mp4"; }
  std::string_view description() const noexcept override {
    return "ISO base media file (mp4, m4a, 3gp) or QuickTime movie (mov)";
  }
  std::string_view signature() const noexcept override {
    return "`ftyp` at 4, or `moov`, `mdat`, `free`, `wide` or `skip` at 4 with a box size that "
           "fits the file";
  }

  bool detect(std::span<const std::byte> head, uint64_t size) const override {
    if (head.size() < kBoxHeaderBytes) return false;
    const uint32_t size32 = read_be<uint32_t>(head.data());
    const uint32_t type = read_be<uint32_t>(head.data() + 4);
    if (!is_one_of(type, kLeadingTypes)) return false;
    if (is_type(type, "ftyp")) return size32 >= kBoxHeaderBytes + 8 && size32 <= size;
    if (size32 == 0) return is_type(type, "mdat");
    if (size32 == 1) {
      if (head.size() < kBoxHeaderBytes + kLargeSizeBytes) return false;
      const uint64_t large = read_be<uint64_t>(head.data() + kBoxHeaderBytes);
      return large >= kBoxHeaderBytes + kLargeSizeBytes && large <= size;
    }
    return size32 >= kBoxHeaderBytes && size32 <= size;
  }

  Layout parse(const ByteSource& source) const override;
};

// The header: brands, the movie's timescale and duration, the tracks.
void describe(Walk& w) {
  Layout& layout = w.layout;
  Json& h = layout.header;
  if (w.ftyp) {
    h["brands"] = mp4::describe_brands(w.file, *w.ftyp, layout.errors);
  } else {
    h["brands"] = nullptr;  // an old QuickTime file without ftyp
  }
  if (w.mvhd) {
    mp4::describe_movie(w.file, *w.mvhd, h, layout.errors);
  } else {
    layout.add_error("no movie header (moov/mvhd)");
  }
  Json tracks = Json::array();
  for (const Track& t : w.tracks) tracks.push_back(mp4::describe_track(w.file, t, layout.errors));
  h["track_count"] = tracks.size();
  h["tracks"] = std::move(tracks);
  h["fragmented"] = w.fragmented;
}

// One record table per track, track/<track_id>, its samples from the sample tables.
void index_tracks(Walk& w) {
  Layout& layout = w.layout;
  Json& tracks = layout.header["tracks"];
  uint64_t budget = kMaxSamples;
  std::map<uint64_t, bool> ids;
  for (size_t i = 0; i < w.tracks.size(); ++i) {
    Json& info = tracks[i];
    const uint64_t id = info.value("id", uint64_t{0});
    const std::string where = "track " + std::to_string(id) + ": ";
    if (std::exchange(ids[id], true)) {
      layout.add_error(where + "a second track with this id; its samples are not indexed");
      continue;
    }
    const Track& t = w.tracks[i];
    // Samples of fragmented files live in moof/traf/trun: not indexed.
    if (!t.tables.stsz && !t.tables.stz2 && w.fragmented) continue;
    RecordTable table;
    table.dir = "track/" + std::to_string(id);
    table.records = mp4::index_samples(w.file, t.tables, budget, where, layout.errors);
    const uint64_t declared = info.value("sample_count", uint64_t{0});
    if (table.records.size() == budget && declared > budget)
      layout.add_error("more than " + std::to_string(kMaxSamples) +
                       " samples in the file; the rest are not indexed");
    budget -= table.records.size();
    info["indexed_samples"] = table.records.size();
    table.attributes = [](const ByteSource&, const Record& record) {
      return Json{{"keyframe", (record.tag & mp4::kSyncSampleTag) != 0}};
    };
    if (!table.records.empty()) layout.tables.push_back(std::move(table));
  }
}

Layout Mp4::parse(const ByteSource& source) const {
  Layout layout;
  BinaryReader file(source, Endian::big);
  Walk w(file, layout);
  walk_boxes(w, 0, source.size(), "", 0, false);
  if (w.ftyp) layout.magic = ByteRange{4, 4};
  if (w.boxes == 0) layout.add_error("no box could be read");
  describe(w);
  index_tracks(w);
  return layout;
}

}  // namespace

std::unique_ptr<Format> make_mp4() {
  return std::make_unique<Mp4>();
}

}  // namespace payloadfs::formats

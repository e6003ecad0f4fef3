// WAVE audio in RIFF (little-endian), RIFX (big-endian throughout) and RF64/BW64 containers:
// Microsoft/IBM "Multimedia Programming Interface and Data Specifications 1.0" (RIFF, WAVE,
// LIST/INFO), Microsoft "WAVEFORMATEXTENSIBLE" (mmreg.h, ksmedia.h), EBU Tech 3306 (RF64)
// and ITU-R BS.2088 (BW64). A file is "RIFF" size "WAVE" followed by chunks of
//   4-byte id, u32 size, data, one pad byte when size is odd.
// In RF64/BW64 the first chunk is "ds64" with 64-bit RIFF/data sizes and a table of sizes for
// other chunks; a 32-bit size of 0xFFFFFFFF means "look it up in ds64".

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "core/formats/builtin.hpp"
#include "core/formats/support/signature.hpp"
#include "core/io/binary_reader.hpp"
#include "core/io/checked_math.hpp"
#include "core/render/json_text.hpp"

namespace payloadfs::formats {
namespace {

// A RIFF-like container id at 0 (little-endian RIFF, big-endian RIFX, 64-bit RF64/BW64), then
// the form type WAVE.
constexpr std::array kContainers = {byte_string("RIFF"), byte_string("RIFX"), byte_string("RF64"),
                                    byte_string("BW64")};
constexpr auto kWave = byte_string("WAVE");
constexpr uint64_t kWaveOffset = 8;

// Bounds on hostile input: chunks walked, chunks listed in header.json, LIST/INFO items and
// their text, ds64 table entries.
constexpr size_t kMaxChunks = 65536;
constexpr size_t kMaxListedChunks = 256;
constexpr size_t kMaxInfoItems = 256;
constexpr uint64_t kMaxInfoText = 4096;
constexpr uint64_t kMaxDs64Entries = 1024;
constexpr uint32_t kSizeFromDs64 = 0xFFFFFFFF;

const char* format_name(uint32_t tag) {
  switch (tag) {  // mmreg.h WAVE_FORMAT_* without the prefix
    case 0x0001:
      return "PCM";
    case 0x0002:
      return "ADPCM";
    case 0x0003:
      return "IEEE_FLOAT";
    case 0x0006:
      return "ALAW";
    case 0x0007:
      return "MULAW";
    case 0x0011:
      return "IMA_ADPCM";
    case 0x0014:
      return "G723_ADPCM";
    case 0x0031:
      return "GSM610";
    case 0x0040:
      return "G721_ADPCM";
    case 0x0050:
      return "MPEG";
    case 0x0055:
      return "MPEGLAYER3";
    case 0x0092:
      return "DOLBY_AC3_SPDIF";
    case 0xFFFE:
      return "EXTENSIBLE";
    default:
      return "unknown";
  }
}

// ksmedia.h SPEAKER_* bits, in bit order.
constexpr std::array<const char*, 18> kSpeakers = {"FL",  "FR",  "FC",  "LFE", "BL",  "BR",
                                                   "FLC", "FRC", "BC",  "SL",  "SR",  "TC",
                                                   "TFL", "TFC", "TFR", "TBL", "TBC", "TBR"};

bool printable(unsigned char c) {
  return c >= 0x20 && c < 0x7F;
}

// A chunk id as a file name: printable ASCII kept ('/' and '\' escaped), trailing spaces
// trimmed ("fmt " -> "fmt"); every other byte becomes \xHH.
std::string id_name(const std::array<unsigned char, 4>& id) {
  std::string out;
  for (const unsigned char c : id) {
    if (printable(c) && c != '/' && c != '\\') {
      out += static_cast<char>(c);
    } else {
      char buf[5];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    }
  }
  const auto end = out.find_last_not_of(' ');
  if (end == std::string::npos) return "\\x20\\x20\\x20\\x20";  // all spaces: keep it visible
  out.resize(end + 1);
  return out;
}

std::string id_text(const std::array<unsigned char, 4>& id) {
  return utf8_or_escaped(std::string(id.begin(), id.end()));
}

class Wav final : public Format {
 public:
  std::string_view name() const noexcept override { return "wav"; }
  std::string_view description() const noexcept override {
    return "WAVE audio (RIFF, RIFX big-endian, RF64/BW64; PCM, float, extensible, ...)";
  }
  std::string_view signature() const noexcept override {
    return "'RIFF', 'RIFX', 'RF64' or 'BW64' at 0 and 'WAVE' at 8";
  }

  bool detect(std::span<const std::byte> head, uint64_t) const override {
    const bool container = std::any_of(kContainers.begin(), kContainers.end(),
                                       [&](const auto& id) { return starts_with(head, id); });
    return container && matches_at(head, kWaveOffset, kWave);
  }

  Layout parse(const ByteSource& source) const override {
    Layout layout;
    layout.magic = magic_at_start(kContainers[0]);  // every container id is 4 bytes
    const uint64_t size = source.size();
    BinaryReader reader(source, Endian::little);
    if (size < 12) {
      layout.add_error("file is shorter than the 12-byte RIFF/WAVE header");
      return layout;
    }
    bool rf64 = false;
    uint64_t riff_size = 0;
    if (!read_riff_header(reader, layout, rf64, riff_size)) return layout;

    // RF64/BW64: ds64 must be the first chunk.
    std::optional<uint64_t> ds64_data;
    Ds64Table ds64_table;
    if (rf64) read_ds64(reader, layout, riff_size, ds64_data, ds64_table);

    layout.header["riff_size"] = riff_size;
    const uint64_t end = walk_end(riff_size, rf64, size, layout);
    ChunkWalk(reader, layout, size, end, rf64, ds64_data, ds64_table).run();
    return layout;
  }

 private:
  using Ds64Table = std::vector<std::pair<std::array<unsigned char, 4>, uint64_t>>;

  // The container id, RIFF size and form type; false (with the error added) when unreadable.
  static bool read_riff_header(BinaryReader& reader, Layout& layout, bool& rf64,
                               uint64_t& riff_size) {
    auto& h = layout.header;
    const std::string container = reader.text(4);
    const bool big = container == "RIFX";
    rf64 = container == "RF64" || container == "BW64";
    if (big) reader.set_endian(Endian::big);
    riff_size = reader.u32();
    const std::string form = reader.text(4);
    if (!reader.ok()) {
      layout.add_error("cannot read the RIFF header: " + *reader.error());
      return false;
    }
    h["container"] = utf8_or_escaped(container);
    h["byte_order"] = big ? "big" : "little";
    h["form"] = utf8_or_escaped(form);
    if (form != "WAVE")
      layout.add_error("RIFF form type is '" + utf8_or_escaped(form) + "', not 'WAVE'");
    return true;
  }

  // Where the chunk walk ends: the RIFF chunk's end, or the file's when the size is a
  // placeholder (streaming writers leave 0 or 0xFFFFFFFF there) or runs past the file.
  static uint64_t walk_end(uint64_t riff_size, bool rf64, uint64_t size, Layout& layout) {
    uint64_t end = size;
    const auto riff_end = checked_add(riff_size, 8);
    const bool riff_placeholder = (riff_size == 0 || (riff_size == kSizeFromDs64 && !rf64));
    if (riff_placeholder) {
      layout.add_error("RIFF size " + std::to_string(riff_size) +
                       " is a streaming placeholder; chunks were walked to the end of the file");
    } else if (!riff_end || *riff_end > size) {
      layout.add_error("RIFF size " + std::to_string(riff_size) +
                       " runs past the end of the file (" + std::to_string(size) + " bytes)");
    } else if (*riff_end < size) {
      end = *riff_end;
      layout.header["trailing_bytes"] = size - end;
      layout.add_error(std::to_string(size - end) + " bytes after the RIFF chunk at offset " +
                       std::to_string(end));
    }
    return end;
  }

  // The walk over the chunks in [12, end), and what it collects for the header.
  class ChunkWalk {
   public:
    ChunkWalk(BinaryReader& reader, Layout& layout, uint64_t size, uint64_t end, bool rf64,
              const std::optional<uint64_t>& ds64_data, const Ds64Table& ds64_table)
        : reader_(reader),
          layout_(layout),
          size_(size),
          end_(end),
          rf64_(rf64),
          ds64_data_(ds64_data),
          ds64_table_(ds64_table) {}

    void run() {
      reader_.seek(12);
      while (reader_.ok() && reader_.tell() < end_ && step()) {
      }
      if (!reader_.ok()) layout_.add_error("read error while walking chunks: " + *reader_.error());
      summarize();
    }

   private:
    using Id = std::array<unsigned char, 4>;

    // Walks one chunk; false when the walk stops.
    bool step() {
      const uint64_t at = reader_.tell();
      if (count_ == kMaxChunks) {
        layout_.add_error("more than " + std::to_string(kMaxChunks) +
                          " chunks; stopped walking at offset " + std::to_string(at));
        return false;
      }
      if (end_ - at < 8) {
        layout_.add_error(std::to_string(end_ - at) + " stray bytes at offset " +
                          std::to_string(at) + ", too few for a chunk header");
        return false;
      }
      Id id{};
      reader_.read_into(std::as_writable_bytes(std::span(id)));
      uint64_t chunk_size = reader_.u32();
      if (!reader_.ok()) return false;
      const std::string name = id_name(id);
      ++count_;
      Json attributes = {{"id", id_text(id)}, {"chunk_offset", at}, {"size", chunk_size}};
      if (rf64_ && chunk_size == kSizeFromDs64)
        size_from_ds64(id, name, at, chunk_size, attributes);
      const uint64_t data_at = at + 8;
      const uint64_t length = slice_length(id, name, at, chunk_size, attributes);
      if (chunks_.size() < kMaxListedChunks)
        chunks_.push_back({{"id", id_text(id)}, {"offset", at}, {"size", chunk_size}});
      note_chunk(id, data_at, length, attributes);
      if (!reader_.ok()) return false;
      layout_.slices.push_back(Slice{name, {data_at, length}, std::move(attributes)});

      uint64_t next = data_at + length;       // length <= available, so no overflow
      if (length < chunk_size) return false;  // truncated: nothing follows
      if ((chunk_size & 1U) != 0 && next < end_) {
        // The pad byte. Some writers omit it; if the next id only reads right without the
        // pad, follow the file rather than the specification and say so.
        if (!plausible_id(reader_, next + 1, end_) && plausible_id(reader_, next, end_)) {
          layout_.add_error("odd-sized chunk '" + name + "' at offset " + std::to_string(at) +
                            " is not followed by a pad byte");
        } else {
          ++next;
        }
      }
      if (!reader_.ok()) return false;
      reader_.seek(next);
      return true;
    }

    // EBU Tech 3306: the data size lives in ds64, other sizes in its table.
    void size_from_ds64(const Id& id, const std::string& name, uint64_t at, uint64_t& chunk_size,
                        Json& attributes) {
      std::optional<uint64_t> big_size;
      if (std::memcmp(id.data(), "data", 4) == 0) big_size = ds64_data_;
      for (const auto& [tid, tsize] : ds64_table_)
        if (!big_size && tid == id) big_size = tsize;
      if (big_size) {
        chunk_size = *big_size;
        attributes["size"] = chunk_size;
        attributes["size_from_ds64"] = true;
      } else {
        layout_.add_error("chunk '" + name + "' at offset " + std::to_string(at) +
                          " has size 0xFFFFFFFF but ds64 gives none");
      }
    }

    // The chunk's data length as sliced: its size, cut at the end of the file.
    uint64_t slice_length(const Id& id, const std::string& name, uint64_t at, uint64_t chunk_size,
                          Json& attributes) {
      const uint64_t data_at = at + 8;
      const uint64_t available = size_ - data_at;
      uint64_t length = chunk_size;
      const bool is_data = std::memcmp(id.data(), "data", 4) == 0;
      if (chunk_size > available) {
        length = available;
        attributes["truncated"] = true;
        if (is_data && !rf64_ && chunk_size == kSizeFromDs64) {
          layout_.add_error(
              "data chunk size is the streaming placeholder 0xFFFFFFFF; the data slice "
              "runs to the end of the file (" +
              std::to_string(available) + " bytes)");
        } else {
          layout_.add_error("chunk '" + name + "' at offset " + std::to_string(at) + " declares " +
                            std::to_string(chunk_size) + " bytes but only " +
                            std::to_string(available) +
                            " remain; slice cut at the end of the file");
        }
      } else if (data_at + chunk_size > end_) {
        layout_.add_error("chunk '" + name + "' at offset " + std::to_string(at) +
                          " extends past the end of the RIFF chunk");
      }
      return length;
    }

    // What the chunks the header describes hold: fmt, data, fact and LIST/INFO.
    void note_chunk(const Id& id, uint64_t data_at, uint64_t length, Json& attributes) {
      auto& h = layout_.header;
      if (std::memcmp(id.data(), "fmt ", 4) == 0) {
        if (have_fmt_) {
          layout_.add_error("more than one fmt chunk; the first one is used");
        } else {
          have_fmt_ = true;
          block_align_ = read_fmt(reader_, data_at, length, layout_);
        }
      } else if (std::memcmp(id.data(), "data", 4) == 0) {
        if (!data_) data_ = ByteRange{data_at, length};
      } else if (std::memcmp(id.data(), "fact", 4) == 0 && length >= 4) {
        reader_.seek(data_at);
        const uint32_t samples = reader_.u32();
        if (reader_.ok() && !h.contains("fact_sample_length")) h["fact_sample_length"] = samples;
      } else if (std::memcmp(id.data(), "LIST", 4) == 0 && length >= 4) {
        reader_.seek(data_at);
        const std::string list_type = reader_.text(4);
        if (reader_.ok()) {
          attributes["list_type"] = utf8_or_escaped(list_type);
          if (list_type == "INFO")
            read_info(reader_, data_at + 4, length - 4, info_, info_items_, layout_);
        }
      }
    }

    void summarize() {
      auto& h = layout_.header;
      h["chunk_count"] = count_;
      h["chunks"] = std::move(chunks_);
      if (count_ > kMaxListedChunks) h["chunks_truncated"] = true;
      if (info_items_ > 0) h["info"] = std::move(info_);
      if (!have_fmt_) layout_.add_error("missing fmt chunk");
      if (!data_) {
        layout_.add_error("missing data chunk");
        return;
      }
      h["data_offset"] = data_->offset;
      h["data_size"] = data_->length;
      if (block_align_ == 0) return;
      const uint64_t frames = data_->length / block_align_;
      h["frames"] = frames;
      if (h.contains("sample_rate") && h["sample_rate"].get<uint32_t>() > 0)
        h["duration_seconds"] =
            static_cast<double>(frames) / static_cast<double>(h["sample_rate"].get<uint32_t>());
      if (data_->length % block_align_ != 0)
        layout_.add_error("data size " + std::to_string(data_->length) +
                          " is not a multiple of block_align " + std::to_string(block_align_));
    }

    BinaryReader& reader_;
    Layout& layout_;
    const uint64_t size_;
    const uint64_t end_;
    const bool rf64_;
    const std::optional<uint64_t>& ds64_data_;
    const Ds64Table& ds64_table_;
    Json chunks_ = Json::array();
    size_t count_ = 0;
    std::optional<ByteRange> data_;
    bool have_fmt_ = false;
    uint32_t block_align_ = 0;
    Json info_ = Json::object();
    size_t info_items_ = 0;
  };

  static void read_ds64(BinaryReader& reader, Layout& layout, uint64_t& riff_size,
                        std::optional<uint64_t>& data_size, Ds64Table& table) {
    std::array<unsigned char, 4> id{};
    reader.read_into(std::as_writable_bytes(std::span(id)));
    const uint32_t ds64_size = reader.u32();
    if (!reader.ok() || std::memcmp(id.data(), "ds64", 4) != 0 || ds64_size < 24) {
      layout.add_error("RF64/BW64 file without a valid ds64 chunk at offset 12");
      return;
    }
    const uint64_t ds64_riff = reader.u64();
    const uint64_t ds64_data = reader.u64();
    const uint64_t sample_count = reader.u64();
    if (!reader.ok()) {
      layout.add_error("truncated ds64 chunk");
      return;
    }
    auto& ds = layout.header["ds64"];
    ds = {{"riff_size", ds64_riff}, {"data_size", ds64_data}, {"sample_count", sample_count}};
    if (riff_size == kSizeFromDs64) riff_size = ds64_riff;
    data_size = ds64_data;
    if (ds64_size < 28) return;
    const uint32_t entries = reader.u32();
    ds["table_length"] = entries;
    // Each entry is a 4-byte id and a u64 size; only what fits inside ds64 is read.
    const uint64_t fit = (ds64_size - 28) / 12;
    const uint64_t n = std::min<uint64_t>({entries, fit, kMaxDs64Entries});
    if (entries > n)
      layout.add_error("ds64 table has " + std::to_string(entries) + " entries; read " +
                       std::to_string(n));
    for (uint64_t i = 0; i < n && reader.ok(); ++i) {
      std::array<unsigned char, 4> tid{};
      reader.read_into(std::as_writable_bytes(std::span(tid)));
      const uint64_t tsize = reader.u64();
      if (reader.ok()) table.emplace_back(tid, tsize);
    }
    if (!reader.ok()) layout.add_error("truncated ds64 table");
  }

  // SubFormat GUID. Fields 1-3 are integers, read in the file's byte order; the last 8 are
  // bytes. sox writes RIFX GUIDs differently: the 16-bit format tag in big-endian order followed
  // by the remaining bytes of the little-endian layout. Both spellings of a
  // KSDATAFORMAT_SUBTYPE_* GUID are recognised and shown in the canonical form.
  static void describe_subformat(const std::array<unsigned char, 16>& g, bool big, Json& h) {
    const Endian order = big ? Endian::big : Endian::little;
    const uint32_t d1 = read_endian<uint32_t>(g.data(), order);
    const uint32_t d2 = read_endian<uint16_t>(g.data() + 4, order);
    const uint32_t d3 = read_endian<uint16_t>(g.data() + 6, order);
    static constexpr std::array<unsigned char, 8> kKsTail = {0x80, 0x00, 0x00, 0xaa,
                                                             0x00, 0x38, 0x9b, 0x71};
    static constexpr std::array<unsigned char, 8> kAmbiTail = {0x86, 0x44, 0xc8, 0xc1,
                                                               0xca, 0x00, 0x00, 0x00};
    const bool ks_tail = std::equal(kKsTail.begin(), kKsTail.end(), g.begin() + 8);
    std::optional<uint32_t> code;
    if (ks_tail && d1 <= 0xFFFF && d2 == 0x0000 && d3 == 0x0010) {
      code = d1;
    } else if (ks_tail && big && g[2] == 0 && g[3] == 0 && g[4] == 0 && g[5] == 0 && g[6] == 0x10 &&
               g[7] == 0) {
      code = read_endian<uint16_t>(g.data(), order);  // sox's RIFX layout
    }
    char guid[40];
    if (code) {
      std::snprintf(guid, sizeof guid, "%08x-0000-0010-8000-00aa00389b71", *code);
    } else {
      std::snprintf(guid, sizeof guid, "%08x-%04x-%04x-%02x%02x-%02x%02x%02x%02x%02x%02x", d1, d2,
                    d3, g[8], g[9], g[10], g[11], g[12], g[13], g[14], g[15]);
    }
    h["subformat"] = guid;
    const bool ambi_tail = std::equal(kAmbiTail.begin(), kAmbiTail.end(), g.begin() + 8);
    if (code) {
      h["subformat_code"] = *code;  // KSDATAFORMAT_SUBTYPE_* carry the format tag
      h["subformat_name"] = format_name(*code);
    } else if ((d1 == 1 || d1 == 3) && d2 == 0x0721 && d3 == 0x11d3 && ambi_tail) {
      h["subformat_name"] = d1 == 1 ? "AMBISONIC_B_FORMAT_PCM" : "AMBISONIC_B_FORMAT_IEEE_FLOAT";
    } else {
      h["subformat_name"] = "unknown";
    }
  }

  // Returns block_align (0 when unknown).
  static uint32_t read_fmt(BinaryReader& reader, uint64_t at, uint64_t length, Layout& layout) {
    auto& h = layout.header;
    if (length < 14) {
      layout.add_error("fmt chunk of " + std::to_string(length) + " bytes is shorter than 14");
      return 0;
    }
    reader.seek(at);
    const uint32_t tag = reader.u16();
    const uint32_t channels = reader.u16();
    const uint32_t rate = reader.u32();
    const uint32_t byte_rate = reader.u32();
    const uint32_t block_align = reader.u16();
    if (!reader.ok()) return 0;
    h["audio_format"] = tag;
    h["audio_format_name"] = format_name(tag);
    h["channels"] = channels;
    h["sample_rate"] = rate;
    h["byte_rate"] = byte_rate;
    h["block_align"] = block_align;
    if (length < 16) return block_align;  // WAVEFORMAT: no bits-per-sample field
    h["bits_per_sample"] = reader.u16();
    if (length >= 18) {
      const uint32_t cb_size = reader.u16();
      h["cb_size"] = cb_size;
      if ((tag == 0x0002 || tag == 0x0011) && cb_size >= 2 && length >= 20) {
        h["samples_per_block"] = reader.u16();  // MS/IMA ADPCM: block = this many frames
      }
      if (tag == 0xFFFE) {
        if (cb_size < 22 || length < 40) {
          layout.add_error("WAVE_FORMAT_EXTENSIBLE fmt chunk is too short for its extension");
        } else {
          h["valid_bits_per_sample"] = reader.u16();
          const uint32_t mask = reader.u32();
          h["channel_mask"] = mask;
          Json speakers = Json::array();
          for (size_t bit = 0; bit < kSpeakers.size(); ++bit)
            if ((mask >> bit) & 1U) speakers.push_back(kSpeakers[bit]);
          h["speakers"] = std::move(speakers);
          std::array<unsigned char, 16> g{};
          reader.read_into(std::as_writable_bytes(std::span(g)));
          describe_subformat(g, reader.endian() == Endian::big, h);
        }
      }
    }
    if (!reader.ok()) {
      layout.add_error("truncated fmt chunk");
      return 0;
    }
    if (block_align == 0) layout.add_error("block_align is 0");
    return block_align;
  }

  // LIST/INFO: sub-chunks of id, size, zero-terminated text, padded to even sizes.
  static void read_info(BinaryReader& reader, uint64_t at, uint64_t length, Json& info,
                        size_t& items, Layout& layout) {
    uint64_t pos = at;
    const uint64_t stop = at + length;
    while (stop - pos >= 8 && reader.ok()) {
      if (items == kMaxInfoItems) {
        layout.add_error("more than " + std::to_string(kMaxInfoItems) + " LIST/INFO items");
        return;
      }
      reader.seek(pos);
      std::array<unsigned char, 4> id{};
      reader.read_into(std::as_writable_bytes(std::span(id)));
      const uint64_t item_size = reader.u32();
      if (!reader.ok()) return;
      if (item_size > stop - pos - 8) {
        layout.add_error("LIST/INFO item '" + id_name(id) + "' runs past the end of its LIST");
        return;
      }
      std::string text = reader.text(std::min(item_size, kMaxInfoText));
      if (!reader.ok()) return;
      const auto nul = text.find('\0');
      if (nul != std::string::npos) text.resize(nul);
      ++items;
      const std::string key = id_name(id);
      if (!info.contains(key)) info[key] = utf8_or_escaped(text);
      pos += 8 + item_size + (item_size & 1U);
      if (pos > stop) return;
    }
  }

  static bool plausible_id(BinaryReader& reader, uint64_t at, uint64_t end) {
    if (end < 8 || at > end - 8) return false;
    reader.seek(at);
    std::array<unsigned char, 4> id{};
    if (!reader.read_into(std::as_writable_bytes(std::span(id)))) return false;
    for (const unsigned char c : id)
      if (!printable(c)) return false;
    return true;
  }
};

}  // namespace

std::unique_ptr<Format> make_wav() {
  return std::make_unique<Wav>();
}

}  // namespace payloadfs::formats

#include "core/formats/support/mp4_samples.hpp"

#include <algorithm>
#include <limits>

#include "core/io/checked_math.hpp"

namespace payloadfs::formats::mp4 {
namespace {

constexpr uint64_t kFullBoxBytes = 4;  // version and flags
constexpr uint64_t kStscEntryBytes = 12;

std::string text(uint64_t value) {
  return std::to_string(value);
}

// The sample sizes, read one after another from stsz (a constant size, or a u32 each) or stz2
// (4-, 8- or 16-bit fields).
class SampleSizes {
 public:
  SampleSizes(BinaryReader& file, const SampleTableBoxes& boxes)
      : r_(file.sub(boxes.stsz ? boxes.stsz->offset : boxes.stz2->offset,
                    boxes.stsz ? boxes.stsz->length : boxes.stz2->length)) {
    r_.skip(kFullBoxBytes);
    if (boxes.stsz) {
      constant_ = r_.u32();
      field_bits_ = 32;
    } else {
      r_.skip(3);
      field_bits_ = r_.u8();
    }
    count_ = r_.u32();
    entries_ = r_.tell();
  }

  // An empty string when the header is sound, else what is wrong with it.
  [[nodiscard]] std::string problem() {
    if (!r_.ok()) return "cut sample size box: " + *r_.error();
    if (constant_ != 0) return "";
    if (field_bits_ != 4 && field_bits_ != 8 && field_bits_ != 16 && field_bits_ != 32)
      return "stz2 field size " + text(field_bits_) + " is not 4, 8 or 16";
    const uint64_t needed = (count_ * field_bits_ + 7) / 8;  // count_ < 2^32: no overflow
    if (needed > r_.remaining())
      return "the sample size table holds " + text(r_.remaining() * 8 / field_bits_) +
             " entries, not the " + text(count_) + " it declares";
    return "";
  }
  [[nodiscard]] uint64_t count() const noexcept { return count_; }
  // How many samples of the declared sizes could fit in `bytes` (a constant size bounds them).
  [[nodiscard]] uint64_t fitting(uint64_t bytes) const noexcept {
    return constant_ != 0 ? std::min<uint64_t>(count_, bytes / constant_) : count_;
  }

  // The size of sample `index`, read in order (index counts up from 0).
  uint32_t next(uint64_t index) {
    if (constant_ != 0) return constant_;
    switch (field_bits_) {
      case 4: {
        r_.seek(entries_ + index / 2);
        const uint8_t both = r_.u8();
        return index % 2 == 0 ? both >> 4 : both & 0x0F;
      }
      case 8:
        return r_.u8();
      case 16:
        return r_.u16();
      default:
        return r_.u32();
    }
  }

 private:
  BinaryReader r_;
  uint32_t constant_ = 0;
  uint32_t field_bits_ = 32;
  uint64_t count_ = 0;
  uint64_t entries_ = 0;
};

// The chunk offsets of stco (u32) or co64 (u64), in order.
class ChunkOffsets {
 public:
  ChunkOffsets(BinaryReader& file, const ByteRange& box, bool wide)
      : r_(file.sub(box.offset, box.length)), wide_(wide) {
    r_.skip(kFullBoxBytes);
    declared_ = r_.u32();
    const uint64_t held = r_.remaining() / (wide ? 8 : 4);
    count_ = std::min<uint64_t>(declared_, held);
  }
  [[nodiscard]] bool cut() const noexcept { return !r_.ok() || count_ < declared_; }
  [[nodiscard]] uint64_t declared() const noexcept { return declared_; }
  [[nodiscard]] uint64_t count() const noexcept { return count_; }
  uint64_t next() { return wide_ ? r_.u64() : r_.u32(); }

 private:
  BinaryReader r_;
  bool wide_;
  uint64_t declared_ = 0;
  uint64_t count_ = 0;
};

struct StscEntry {
  uint64_t first_chunk = 0;
  uint64_t samples_per_chunk = 0;
};

// The sample-to-chunk runs, read in order; a run lasts until the next entry's first chunk.
class ChunkRuns {
 public:
  ChunkRuns(BinaryReader& file, const ByteRange& box) : r_(file.sub(box.offset, box.length)) {
    r_.skip(kFullBoxBytes);
    const uint32_t declared = r_.u32();
    count_ = std::min<uint64_t>(declared, r_.remaining() / kStscEntryBytes);
    cut_ = !r_.ok() || count_ < declared;
    if (count_ > 0) current_ = read();
    next_ = count_ > 1 ? read() : StscEntry{kNever, 0};
    read_ = std::min<uint64_t>(count_, 2);
  }
  [[nodiscard]] bool cut() const noexcept { return cut_; }
  [[nodiscard]] bool empty() const noexcept { return count_ == 0; }
  [[nodiscard]] const StscEntry& current() const noexcept { return current_; }

  // Moves to the run holding `chunk` (1-based, counting up); false when the runs go backwards.
  bool advance_to(uint64_t chunk) {
    while (chunk >= next_.first_chunk) {
      if (next_.first_chunk <= current_.first_chunk) return false;
      current_ = next_;
      next_ = read_ < count_ ? read() : StscEntry{kNever, 0};
      ++read_;
    }
    return true;
  }
  // The first chunk of a run not yet reached (one past the last chunk), or kNever.
  [[nodiscard]] uint64_t pending_first_chunk() const noexcept { return next_.first_chunk; }
  static constexpr uint64_t kNever = std::numeric_limits<uint64_t>::max();

 private:
  StscEntry read() {
    StscEntry e;
    e.first_chunk = r_.u32();
    e.samples_per_chunk = r_.u32();
    r_.skip(4);  // sample description index
    return e;
  }
  BinaryReader r_;
  uint64_t count_ = 0;
  uint64_t read_ = 0;
  bool cut_ = false;
  StscEntry current_;
  StscEntry next_;
};

// Marks sync samples from stss (1-based sample numbers); every sample is one without stss.
void mark_sync_samples(BinaryReader& file, const std::optional<ByteRange>& stss,
                       std::vector<Record>& records, const std::string& where,
                       std::vector<std::string>& errors) {
  if (!stss) {
    for (auto& record : records) record.tag |= kSyncSampleTag;
    return;
  }
  BinaryReader r = file.sub(stss->offset, stss->length);
  r.skip(kFullBoxBytes);
  const uint32_t declared = r.u32();
  const uint64_t count = std::min<uint64_t>(declared, r.remaining() / 4);
  if (!r.ok() || count < declared) errors.push_back(where + "cut stss box");
  uint64_t outside = 0;
  for (uint64_t i = 0; i < count; ++i) {
    const uint32_t number = r.u32();
    if (number >= 1 && number <= records.size()) {
      records[number - 1].tag |= kSyncSampleTag;
    } else {
      ++outside;
    }
  }
  if (outside > 0)
    errors.push_back(where + text(outside) + " stss entries name samples the track lacks");
}

}  // namespace

std::optional<uint64_t> declared_sample_count(BinaryReader& file, const SampleTableBoxes& boxes) {
  if (!boxes.stsz && !boxes.stz2) return std::nullopt;
  SampleSizes sizes(file, boxes);
  if (!sizes.problem().empty()) return std::nullopt;
  return sizes.count();
}

std::vector<Record> index_samples(BinaryReader& file, const SampleTableBoxes& boxes,
                                  uint64_t budget, const std::string& where,
                                  std::vector<std::string>& errors) {
  std::vector<Record> records;
  const bool has_offsets = boxes.stco || boxes.co64;
  if ((!boxes.stsz && !boxes.stz2) || !boxes.stsc || !has_offsets) {
    errors.push_back(where + "sample table without stsz/stz2, stsc and stco/co64");
    return records;
  }
  SampleSizes sizes(file, boxes);
  if (const std::string problem = sizes.problem(); !problem.empty()) {
    errors.push_back(where + problem);
    return records;
  }
  ChunkOffsets chunks(file, boxes.stco ? *boxes.stco : *boxes.co64, !boxes.stco);
  if (chunks.cut())
    errors.push_back(where + "the chunk offset box holds " + text(chunks.count()) +
                     " entries, not the " + text(chunks.declared()) + " it declares");
  ChunkRuns runs(file, *boxes.stsc);
  if (runs.cut()) errors.push_back(where + "cut stsc box");
  if (runs.empty()) {
    if (sizes.count() > 0) errors.push_back(where + "stsc has no entries");
    return records;
  }
  if (runs.current().first_chunk != 1)
    errors.push_back(where + "the first stsc entry starts at chunk " +
                     text(runs.current().first_chunk) + ", not 1");
  const uint64_t wanted = std::min(sizes.count(), budget);
  const uint64_t file_size = file.size();
  records.reserve(static_cast<size_t>(std::min(wanted, sizes.fitting(file_size))));
  for (uint64_t chunk = 1; chunk <= chunks.count() && records.size() < wanted; ++chunk) {
    if (!runs.advance_to(chunk)) {
      errors.push_back(where + "stsc entries are not in increasing chunk order");
      return records;
    }
    uint64_t offset = chunks.next();
    const uint64_t in_chunk =
        chunk < runs.current().first_chunk ? 0 : runs.current().samples_per_chunk;
    for (uint64_t s = 0; s < in_chunk && records.size() < wanted; ++s) {
      const uint64_t index = records.size();
      const uint32_t size = sizes.next(index);
      if (!range_within(offset, size, file_size)) {
        errors.push_back(where + "sample " + text(index) + " (chunk " + text(chunk) +
                         ") at offset " + text(offset) + " with size " + text(size) +
                         " runs past the end of the file; the rest of the track is not indexed");
        return records;
      }
      records.push_back(Record{offset, size, 0});
      offset += size;
    }
  }
  if (runs.pending_first_chunk() != ChunkRuns::kNever &&
      runs.pending_first_chunk() > chunks.count())
    errors.push_back(where + "stsc references chunk " + text(runs.pending_first_chunk()) +
                     " but the track has " + text(chunks.count()) + " chunks");
  if (records.size() < wanted)
    errors.push_back(where + "the chunks hold " + text(records.size()) +
                     " samples, stsz declares " + text(sizes.count()));
  mark_sync_samples(file, boxes.stss, records, where, errors);
  return records;
}

}  // namespace payloadfs::formats::mp4

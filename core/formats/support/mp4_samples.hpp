#pragma once
// The samples of one ISO base media track (ISO/IEC 14496-12, 8.7), computed from its sample
// tables: sizes (stsz or stz2), the sample-to-chunk runs (stsc), the chunk offsets (stco or
// co64) and the sync samples (stss). Each sample becomes a 16-byte Record {offset, size,
// tag}; the tables are streamed, never held.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/io/binary_reader.hpp"
#include "core/model/layout.hpp"

namespace payloadfs::formats::mp4 {

// Record::tag bit: the sample is a sync sample (stss lists it, or the track has no stss).
inline constexpr uint32_t kSyncSampleTag = 1;

// Payload ranges (after the box header) of a track's sample table boxes, when present.
struct SampleTableBoxes {
  std::optional<ByteRange> stsz;
  std::optional<ByteRange> stz2;
  std::optional<ByteRange> stsc;
  std::optional<ByteRange> stco;
  std::optional<ByteRange> co64;
  std::optional<ByteRange> stss;
};

// The sample count the size box declares (stsz or stz2), or nullopt without one.
[[nodiscard]] std::optional<uint64_t> declared_sample_count(BinaryReader& file,
                                                            const SampleTableBoxes& boxes);

// The track's samples, at most `budget` of them, each checked to lie inside the file. What is
// malformed or cut goes to `errors`, each message starting with `where`.
[[nodiscard]] std::vector<Record> index_samples(BinaryReader& file, const SampleTableBoxes& boxes,
                                                uint64_t budget, const std::string& where,
                                                std::vector<std::string>& errors);

}  // namespace payloadfs::formats::mp4

#pragma once
// The header.json of an ISO base media file (ISO/IEC 14496-12) or QuickTime movie: its brands
// (ftyp), the movie's timescale and duration (mvhd) and, per track, what tkhd, mdhd, hdlr and
// the first sample entry of stsd say.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/formats/support/mp4_samples.hpp"
#include "core/io/binary_reader.hpp"
#include "core/model/layout.hpp"

namespace payloadfs::formats::mp4 {

// Payload ranges of the boxes of one trak that describe it.
struct TrackBoxes {
  std::optional<ByteRange> tkhd, mdhd, hdlr, stsd;
  SampleTableBoxes tables;
};

// {major, minor_version, compatible} from ftyp's payload.
[[nodiscard]] Json describe_brands(BinaryReader& file, const ByteRange& ftyp,
                                   std::vector<std::string>& errors);

// The movie header's timescale and duration into `header`.
void describe_movie(BinaryReader& file, const ByteRange& mvhd, Json& header,
                    std::vector<std::string>& errors);

// id, handler, codec, width, height, sample_rate, channels, sample_count, duration, timescale.
[[nodiscard]] Json describe_track(BinaryReader& file, const TrackBoxes& track,
                                  std::vector<std::string>& errors);

// A four-character code as text: printable ASCII as is, Latin-1 (the `©` of `©nam`) as UTF-8,
// `%XX` for the rest and for `/`, `%` and `~`, so that it is a safe path component.
[[nodiscard]] std::string fourcc_text(uint32_t code);

// The code of a four-character name ("moov" -> 0x6d6f6f76).
[[nodiscard]] uint32_t fourcc_code(std::string_view name);

}  // namespace payloadfs::formats::mp4

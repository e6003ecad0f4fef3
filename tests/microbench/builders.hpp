#pragma once
// Hand-built files of every built-in format (and of the telemetry descriptor's layout), so the
// microbenchmarks need no fixtures. Each is a well-formed file that its parser reads without
// errors; main.cpp's self-check holds them to that.

#include <cstddef>
#include <string_view>
#include <vector>

namespace payloadfs::microbench {

using FileBytes = std::vector<std::byte>;

// A 1-D float32 array of `elements` elements, numpy's v1.0 header.
[[nodiscard]] FileBytes npy_file(size_t elements);
// `tensors` F32 tensors of 16 elements named "model.layers.<i>.weight", tiling the buffer.
[[nodiscard]] FileBytes safetensors_file(size_t tensors);
// GGUF v3: `kvs` u32 metadata pairs and `tensors` F32 [8, 4] tensors.
[[nodiscard]] FileBytes gguf_file(size_t kvs, size_t tensors);
// An empty SQLite database of `pages` 4096-byte pages.
[[nodiscard]] FileBytes sqlite_file(size_t pages);
// A 64x64 RGB PNG: IHDR, tEXt, `idat_chunks` IDAT chunks, IEND, with correct CRCs.
[[nodiscard]] FileBytes png_file(size_t idat_chunks);
// PCM WAVE, 2 channels, 16 bits, 44.1 kHz, `frames` frames, with a LIST/INFO chunk.
[[nodiscard]] FileBytes wav_file(size_t frames);
// ELF64 little-endian executable: one PT_LOAD and `sections` PROGBITS sections + .shstrtab.
[[nodiscard]] FileBytes elf_file(size_t sections);
// One gzip member (FNAME set) of `text_bytes` bytes of text, deflated by zlib.
[[nodiscard]] FileBytes gzip_file(size_t text_bytes);
// Classic pcap (microseconds, little-endian, Ethernet) of `packets` 60..123-byte packets.
[[nodiscard]] FileBytes pcap_file(size_t packets);
// pcapng: SHB, one IDB (Ethernet) and `packets` EPBs.
[[nodiscard]] FileBytes pcapng_file(size_t packets);
// MCAP with a summary: one schema, two channels, `messages` messages alternating between them.
[[nodiscard]] FileBytes mcap_file(size_t messages);
// A stored (method 0) zip archive of `entries` 64-byte files.
[[nodiscard]] FileBytes zip_file(size_t entries);
// A ustar archive of `members` 100-byte files.
[[nodiscard]] FileBytes tar_file(size_t members);
// A TLM1 recording as scripts/gen-telemetry.py writes it: 64-byte header, `records` records.
[[nodiscard]] FileBytes telemetry_file(size_t records);

// The formats above by name (the name the registry gives them; "telemetry" for the descriptor).
inline constexpr std::string_view kSampleFormats[] = {
    "npy",  "safetensors", "gguf",   "sqlite", "png", "wav", "elf",
    "gzip", "pcap",        "pcapng", "mcap",   "zip", "tar", "telemetry"};
// A file of `format` scaled by `count` (tensors, packets, records, entries...); count 0 gives
// the small typical file the header benchmarks use. Empty for an unknown name.
[[nodiscard]] FileBytes sample_file(std::string_view format, size_t count = 0);

}  // namespace payloadfs::microbench

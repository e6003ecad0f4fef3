#include "microbench/builders.hpp"

#include <zlib.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>

#include "unit/bytes.hpp"

namespace payloadfs::microbench {
namespace {

using testing::Bytes;

std::string le_text(uint64_t v, int width) {
  return Bytes().le(v, width).text();
}

uint32_t crc_of(std::string_view data) {
  return static_cast<uint32_t>(
      crc32(0, reinterpret_cast<const Bytef*>(data.data()), static_cast<uInt>(data.size())));
}

// zlib's deflate of `data`: raw (windowBits -15) for gzip, zlib-wrapped (15) for PNG.
std::string deflate_text(std::string_view data, int window_bits) {
  z_stream zs{};
  if (deflateInit2(&zs, 6, Z_DEFLATED, window_bits, 8, Z_DEFAULT_STRATEGY) != Z_OK) return {};
  std::string out(deflateBound(&zs, static_cast<uLong>(data.size())) + 64, '\0');
  std::string in(data);
  zs.next_in = reinterpret_cast<Bytef*>(in.data());
  zs.avail_in = static_cast<uInt>(in.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  const int ret = deflate(&zs, Z_FINISH);
  out.resize(ret == Z_STREAM_END ? zs.total_out : 0);
  deflateEnd(&zs);
  return out;
}

// Deterministic filler bytes.
std::string pattern(size_t n, unsigned seed) {
  std::string out(n, '\0');
  for (size_t i = 0; i < n; ++i) out[i] = static_cast<char>((i * 31 + seed * 7) & 0xFF);
  return out;
}

}  // namespace

FileBytes npy_file(size_t elements) {
  std::string dict =
      "{'descr': '<f4', 'fortran_order': False, 'shape': (" + std::to_string(elements) + ",), }";
  constexpr size_t kPreamble = 10;  // magic, version, u16 header length
  dict += std::string((64 - (kPreamble + dict.size() + 1) % 64) % 64, ' ') + "\n";
  Bytes b;
  b.raw("\x93NUMPY").u8(1).u8(0).le(dict.size(), 2).raw(dict);
  b.raw(pattern(elements * 4, 1));
  return b.take();
}

FileBytes safetensors_file(size_t tensors) {
  constexpr size_t kTensorBytes = 16 * 4;
  std::string header = R"({"__metadata__":{"format":"pt"})";
  for (size_t i = 0; i < tensors; ++i) {
    header += ",\"model.layers." + std::to_string(i) +
              ".weight\":{\"dtype\":\"F32\",\"shape\":[4,4],\"data_offsets\":[" +
              std::to_string(i * kTensorBytes) + "," + std::to_string((i + 1) * kTensorBytes) +
              "]}";
  }
  header += "}";
  header += std::string((8 - header.size() % 8) % 8, ' ');  // the reference writer pads to 8
  Bytes b;
  b.le(header.size(), 8).raw(header).raw(pattern(tensors * kTensorBytes, 2));
  return b.take();
}

FileBytes gguf_file(size_t kvs, size_t tensors) {
  constexpr size_t kTensorBytes = 8 * 4 * 4;  // F32 [8, 4]; a multiple of the 32-byte alignment
  Bytes b;
  const auto str = [&b](std::string_view s) { b.le(s.size(), 8).raw(s); };
  b.raw("GGUF").le(3, 4).le(tensors, 8).le(kvs, 8);
  for (size_t i = 0; i < kvs; ++i) {
    str("bench.key." + std::to_string(i));
    b.le(4, 4).le(i, 4);  // GGUF_TYPE_UINT32
  }
  for (size_t i = 0; i < tensors; ++i) {
    str("blk." + std::to_string(i) + ".weight");
    b.le(2, 4).le(8, 8).le(4, 8).le(0, 4).le(i * kTensorBytes, 8);  // 2 dims, F32, offset
  }
  b.pad_to(32);
  b.raw(pattern(tensors * kTensorBytes, 3));
  return b.take();
}

FileBytes sqlite_file(size_t pages) {
  constexpr uint32_t kChangeCounter = 7;
  Bytes b;
  b.raw(std::string_view("SQLite format 3\0", 16));
  b.be(4096, 2).u8(1).u8(1).u8(0).u8(64).u8(32).u8(32);
  // change counter, page count, freelist trunk and count, schema cookie, schema format, cache
  // size, largest root page, text encoding, user version, incremental vacuum, application id.
  for (const uint64_t v :
       {uint64_t{kChangeCounter}, uint64_t{pages}, uint64_t{0}, uint64_t{0}, uint64_t{1},
        uint64_t{4}, uint64_t{0}, uint64_t{0}, uint64_t{1}, uint64_t{0}, uint64_t{0}, uint64_t{0}})
    b.be(v, 4);
  b.zeros(20);
  b.be(kChangeCounter, 4).be(3040001, 4);  // version-valid-for, SQLITE_VERSION_NUMBER
  b.zeros(4096 * pages - 100);
  return b.take();
}

FileBytes png_file(size_t idat_chunks) {
  constexpr uint32_t kSide = 64;
  Bytes b;
  b.raw("\x89PNG\r\n\x1a\n");
  const auto chunk = [&b](std::string_view type, std::string_view data) {
    const std::string typed = std::string(type) + std::string(data);
    b.be(data.size(), 4).raw(typed).be(crc_of(typed), 4);
  };
  chunk("IHDR", Bytes().be(kSide, 4).be(kSide, 4).u8(8).u8(2).u8(0).u8(0).u8(0).text());
  chunk("tEXt", std::string_view("Software\0payloadfs microbench", 29));
  std::string scanlines;
  for (uint32_t row = 0; row < kSide; ++row) scanlines += '\0' + pattern(kSide * 3, row);
  const std::string stream = deflate_text(scanlines, 15);
  const size_t parts = idat_chunks == 0 ? 1 : idat_chunks;
  const size_t step = (stream.size() + parts - 1) / parts;
  for (size_t at = 0; at < stream.size(); at += step)
    chunk("IDAT", std::string_view(stream).substr(at, step));
  chunk("IEND", "");
  return b.take();
}

FileBytes wav_file(size_t frames) {
  constexpr uint32_t kRate = 44100;
  constexpr uint16_t kChannels = 2, kBits = 16, kAlign = kChannels * kBits / 8;
  Bytes body;
  body.raw("WAVE");
  body.raw("fmt ").le(16, 4).le(1, 2).le(kChannels, 2).le(kRate, 4).le(kRate * kAlign, 4);
  body.le(kAlign, 2).le(kBits, 2);
  const std::string software("payloadfs microbench\0", 22);  // even length: no pad byte
  body.raw("LIST").le(4 + 8 + software.size(), 4).raw("INFO");
  body.raw("ISFT").le(software.size(), 4).raw(software);
  body.raw("data").le(frames * kAlign, 4).raw(pattern(frames * kAlign, 4));
  Bytes b;
  b.raw("RIFF").le(body.size(), 4).raw(body.text());
  return b.take();
}

FileBytes elf_file(size_t sections) {
  constexpr uint64_t kEhsize = 64, kPhsize = 56, kShsize = 64, kSectionBytes = 16;
  std::string shstrtab(1, '\0');
  std::vector<uint32_t> names;
  for (size_t i = 0; i < sections; ++i) {
    names.push_back(static_cast<uint32_t>(shstrtab.size()));
    shstrtab += ".sec" + std::to_string(i) + '\0';
  }
  const auto shstrtab_name = static_cast<uint32_t>(shstrtab.size());
  shstrtab += std::string(".shstrtab") + '\0';
  const uint64_t data_start = kEhsize + kPhsize;
  const uint64_t shstrtab_off = data_start + sections * kSectionBytes;
  const uint64_t shoff = shstrtab_off + shstrtab.size();
  const uint64_t shnum = sections + 2;
  const uint64_t file_size = shoff + shnum * kShsize;

  Bytes b;
  b.u8(0x7f).raw("ELF").u8(2).u8(1).u8(1).u8(3).u8(0).zeros(7);  // ELF64, LSB, GNU/Linux
  b.le(2, 2).le(62, 2).le(1, 4).le(0x401000, 8);                 // ET_EXEC, x86-64, entry
  b.le(kEhsize, 8).le(shoff, 8).le(0, 4);                        // phoff, shoff, flags
  b.le(kEhsize, 2).le(kPhsize, 2).le(1, 2).le(kShsize, 2).le(shnum, 2).le(shnum - 1, 2);
  // PT_LOAD R+X over the whole file.
  b.le(1, 4).le(5, 4).le(0, 8).le(0x400000, 8).le(0x400000, 8).le(file_size, 8).le(file_size, 8);
  b.le(0x1000, 8);
  for (size_t i = 0; i < sections; ++i) b.raw(pattern(kSectionBytes, static_cast<unsigned>(i)));
  b.raw(shstrtab);
  const auto shdr = [&b](uint32_t name, uint32_t type, uint64_t flags, uint64_t addr,
                         uint64_t offset, uint64_t size) {
    b.le(name, 4).le(type, 4).le(flags, 8).le(addr, 8).le(offset, 8).le(size, 8);
    b.le(0, 4).le(0, 4).le(1, 8).le(0, 8);  // link, info, addralign, entsize
  };
  shdr(0, 0, 0, 0, 0, 0);
  for (size_t i = 0; i < sections; ++i)
    shdr(names[i], 1, 0x6, 0x401000 + i * kSectionBytes, data_start + i * kSectionBytes,
         kSectionBytes);
  shdr(shstrtab_name, 3, 0, 0, shstrtab_off, shstrtab.size());
  return b.take();
}

FileBytes gzip_file(size_t text_bytes) {
  std::string text;
  for (size_t line = 0; text.size() < text_bytes; ++line)
    text += "line " + std::to_string(line) + ": the quick brown fox jumps over the lazy dog\n";
  text.resize(text_bytes);
  Bytes b;
  b.u8(0x1f).u8(0x8b).u8(8).u8(0x08).le(1700000000, 4).u8(0).u8(3);  // FNAME, Unix
  b.raw("sample.txt").u8(0);
  b.raw(deflate_text(text, -15));
  b.le(crc_of(text), 4).le(text.size() & 0xFFFFFFFF, 4);
  return b.take();
}

FileBytes pcap_file(size_t packets) {
  Bytes b;
  b.le(0xa1b2c3d4, 4).le(2, 2).le(4, 2).le(0, 4).le(0, 4).le(65535, 4).le(1, 4);
  for (size_t i = 0; i < packets; ++i) {
    const size_t length = 60 + i % 64;
    b.le(1700000000 + i / 1000, 4).le((i % 1000) * 1000, 4).le(length, 4).le(length, 4);
    b.raw(pattern(length, static_cast<unsigned>(i)));
  }
  return b.take();
}

FileBytes pcapng_file(size_t packets) {
  Bytes b;
  const auto block = [&b](uint32_t type, const std::string& body) {
    const size_t padded = body.size() + (4 - body.size() % 4) % 4;
    b.le(type, 4).le(12 + padded, 4).raw(body).zeros(padded - body.size()).le(12 + padded, 4);
  };
  block(0x0A0D0D0A, le_text(0x1A2B3C4D, 4) + le_text(1, 2) + le_text(0, 2) +
                        le_text(UINT64_MAX, 8));                // SHB, unknown length
  block(1, le_text(1, 2) + le_text(0, 2) + le_text(65535, 4));  // IDB: Ethernet
  for (size_t i = 0; i < packets; ++i) {
    const size_t length = 60 + i % 64;
    const uint64_t ts = 1700000000000000ULL + i * 1000;
    block(6, le_text(0, 4) + le_text(ts >> 32, 4) + le_text(ts & 0xFFFFFFFF, 4) +
                 le_text(length, 4) + le_text(length, 4) +
                 pattern(length, static_cast<unsigned>(i)));  // EPB
  }
  return b.take();
}

FileBytes mcap_file(size_t messages) {
  const auto str = [](std::string_view s) { return le_text(s.size(), 4) + std::string(s); };
  const auto rec = [](uint8_t op, const std::string& content) {
    return std::string(1, static_cast<char>(op)) + le_text(content.size(), 8) + content;
  };
  const std::string magic("\x89MCAP0\r\n", 8);
  const std::string schema = rec(
      0x03, le_text(1, 2) + str("bench.Sample") + str("jsonschema") + str(R"({"type":"object"})"));
  const auto channel = [&](uint16_t id, std::string_view topic) {
    const std::string map = str("origin") + str("microbench");
    return rec(0x04, le_text(id, 2) + le_text(1, 2) + str(topic) + str("json") +
                         le_text(map.size(), 4) + map);
  };
  const std::string channels = channel(1, "/sensors/imu") + channel(2, "/sensors/gps");
  std::string out = magic + rec(0x01, str("microbench") + str("payloadfs")) + schema + channels;
  uint64_t counts[2] = {0, 0};
  const uint64_t t0 = 1700000000000000000ULL;
  for (size_t i = 0; i < messages; ++i) {
    const uint64_t t = t0 + i * 1000000;
    ++counts[i % 2];
    out += rec(0x05, le_text(1 + i % 2, 2) + le_text(i, 4) + le_text(t, 8) + le_text(t, 8) +
                         R"({"seq":)" + std::to_string(i) + "}");
  }
  out += rec(0x0F, le_text(0, 4));  // DataEnd
  const uint64_t summary_start = out.size();
  const std::string per_channel =
      le_text(1, 2) + le_text(counts[0], 8) + le_text(2, 2) + le_text(counts[1], 8);
  const uint64_t last = messages == 0 ? t0 : t0 + (messages - 1) * 1000000;
  out += schema + channels;
  out += rec(0x0B, le_text(messages, 8) + le_text(1, 2) + le_text(2, 4) + le_text(0, 4) +
                       le_text(0, 4) + le_text(0, 4) + le_text(messages == 0 ? 0 : t0, 8) +
                       le_text(messages == 0 ? 0 : last, 8) + le_text(per_channel.size(), 4) +
                       per_channel);                                            // Statistics
  out += rec(0x02, le_text(summary_start, 8) + le_text(0, 8) + le_text(0, 4));  // Footer
  out += magic;
  return Bytes().raw(out).take();
}

FileBytes zip_file(size_t entries) {
  constexpr uint16_t kTime = (12 << 11) | (34 << 5) | 28, kDate = (44 << 9) | (6 << 5) | 15;
  Bytes b;
  std::vector<uint64_t> offsets;
  std::vector<std::string> names, contents;
  for (size_t i = 0; i < entries; ++i) {
    names.push_back("docs/file" + std::to_string(i) + ".txt");
    contents.push_back(pattern(64, static_cast<unsigned>(i)));
    offsets.push_back(b.size());
    b.le(0x04034b50, 4).le(20, 2).le(0, 2).le(0, 2).le(kTime, 2).le(kDate, 2);
    b.le(crc_of(contents[i]), 4).le(64, 4).le(64, 4).le(names[i].size(), 2).le(0, 2);
    b.raw(names[i]).raw(contents[i]);
  }
  const uint64_t cd_start = b.size();
  for (size_t i = 0; i < entries; ++i) {
    b.le(0x02014b50, 4).le(0x031e, 2).le(20, 2).le(0, 2).le(0, 2).le(kTime, 2).le(kDate, 2);
    b.le(crc_of(contents[i]), 4).le(64, 4).le(64, 4).le(names[i].size(), 2).le(0, 2).le(0, 2);
    b.le(0, 2).le(0, 2).le(0100644ULL << 16, 4).le(offsets[i], 4).raw(names[i]);
  }
  const uint64_t cd_size = b.size() - cd_start;
  b.le(0x06054b50, 4).le(0, 2).le(0, 2).le(entries, 2).le(entries, 2).le(cd_size, 4);
  b.le(cd_start, 4).le(0, 2);
  return b.take();
}

FileBytes tar_file(size_t members) {
  Bytes b;
  const auto octal = [](uint64_t v, int width) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%0*llo", width, static_cast<unsigned long long>(v));
    return std::string(buf);
  };
  for (size_t i = 0; i < members; ++i) {
    const std::string data = pattern(100, static_cast<unsigned>(i));
    std::string h(512, '\0');
    const auto put = [&h](size_t offset, const std::string& v) { h.replace(offset, v.size(), v); };
    put(0, "data/file" + std::to_string(i) + ".bin");
    put(100, "0000644");
    put(108, "0001750");
    put(116, "0001750");
    put(124, octal(data.size(), 11));
    put(136, octal(1700000000, 11));
    h[156] = '0';
    put(257, std::string("ustar\0"
                         "00",
                         8));
    put(265, "user");
    put(297, "group");
    put(148, "        ");
    unsigned sum = 0;
    for (const char c : h) sum += static_cast<unsigned char>(c);
    put(148, octal(sum, 6) + '\0');
    b.raw(h).raw(data).pad_to(512);
  }
  b.zeros(1024);
  return b.take();
}

FileBytes telemetry_file(size_t records) {
  // Header "<4sHHIIQBBHI16sf12s" and records "<QHBBId" of scripts/gen-telemetry.py.
  constexpr uint32_t kRate = 100;
  Bytes b;
  b.raw("TLM1").le(1, 2).le(64, 2).le(0x1000, 4).le(kRate, 4).le(1700000000000000000ULL, 8);
  b.u8(2).u8(0x07).le(24, 2).le(records, 4);
  std::string name = "probe-00";
  name.resize(16, '\0');
  b.raw(name);
  float calibration = 1.125F;
  uint32_t calibration_bits = 0;
  std::memcpy(&calibration_bits, &calibration, sizeof calibration_bits);
  b.le(calibration_bits, 4).zeros(12);
  for (size_t i = 0; i < records; ++i) {
    const double value = 20.0 + static_cast<double>(i % 97) / 8.0;
    uint64_t value_bits = 0;
    std::memcpy(&value_bits, &value, sizeof value_bits);
    b.le(i * 1000000 / kRate, 8).le(i % 8, 2).u8(i % 3).u8(i % 8).le(i, 4).le(value_bits, 8);
  }
  return b.take();
}

FileBytes sample_file(std::string_view format, size_t count) {
  const auto n = [count](size_t typical) { return count == 0 ? typical : count; };
  if (format == "npy") return npy_file(n(1024));
  if (format == "safetensors") return safetensors_file(n(8));
  if (format == "gguf") return gguf_file(8, n(8));
  if (format == "sqlite") return sqlite_file(n(3));
  if (format == "png") return png_file(n(2));
  if (format == "wav") return wav_file(n(4096));
  if (format == "elf") return elf_file(n(8));
  if (format == "gzip") return gzip_file(n(16384));
  if (format == "pcap") return pcap_file(n(100));
  if (format == "pcapng") return pcapng_file(n(100));
  if (format == "mcap") return mcap_file(n(100));
  if (format == "zip") return zip_file(n(8));
  if (format == "tar") return tar_file(n(8));
  if (format == "telemetry") return telemetry_file(n(100));
  return {};
}

}  // namespace payloadfs::microbench

#pragma once
// Hand-built zip archives for the tests of formats that are zip archives (npz, pytorch):
// stored or raw-deflated members, a local extra field the central directory does not repeat
// (as torch's alignment padding), and a plain end record.

#include <zlib.h>

#include <cstdint>
#include <string>
#include <vector>

#include "unit/bytes.hpp"

namespace payloadfs::testing {

struct ZipMember {
  std::string name;
  std::string data;  // as stored: raw deflate data for method 8
  uint16_t method = 0;
  uint32_t usize = 0;        // method 8: the inflated size
  std::string local_extra;   // only in the local header
  bool local_zip64 = false;  // local sizes 0xFFFFFFFF, the real ones in a zip64 extra field
};

// `text` as a raw deflate stream (zipfile's ZIP_DEFLATED).
inline std::string deflate_raw(const std::string& text) {
  z_stream zs{};
  deflateInit2(&zs, 6, Z_DEFLATED, -MAX_WBITS, 8, Z_DEFAULT_STRATEGY);
  std::string out(deflateBound(&zs, text.size()), '\0');
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(text.data()));
  zs.avail_in = static_cast<uInt>(text.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  deflate(&zs, Z_FINISH);
  out.resize(zs.total_out);
  deflateEnd(&zs);
  return out;
}

inline ZipMember stored_member(std::string name, std::string data, std::string local_extra = "") {
  return ZipMember{std::move(name), std::move(data), 0, 0, std::move(local_extra), false};
}

inline ZipMember deflated_member(std::string name, const std::string& text) {
  const auto size = static_cast<uint32_t>(text.size());
  return ZipMember{std::move(name), deflate_raw(text), 8, size, "", false};
}

inline std::vector<std::byte> build_zip(const std::vector<ZipMember>& members) {
  Bytes b;
  std::vector<uint64_t> offsets;
  for (const auto& m : members) {
    offsets.push_back(b.size());
    const uint64_t usize = m.method == 0 ? m.data.size() : m.usize;
    Bytes extra;
    if (m.local_zip64) extra.le(0x0001, 2).le(16, 2).le(usize, 8).le(m.data.size(), 8);
    extra.raw(m.local_extra);
    const uint64_t local_csize = m.local_zip64 ? 0xFFFFFFFF : m.data.size();
    const uint64_t local_usize = m.local_zip64 ? 0xFFFFFFFF : usize;
    b.le(0x04034b50, 4).le(20, 2).le(0, 2).le(m.method, 2).le(0, 2).le(0x5821, 2);
    b.le(0, 4).le(local_csize, 4).le(local_usize, 4);
    b.le(m.name.size(), 2).le(extra.size(), 2).raw(m.name).raw(extra.text());
    b.raw(m.data);
  }
  const uint64_t cd_start = b.size();
  for (size_t i = 0; i < members.size(); ++i) {
    const auto& m = members[i];
    const uint64_t usize = m.method == 0 ? m.data.size() : m.usize;
    b.le(0x02014b50, 4).le(0x031e, 2).le(20, 2).le(0, 2).le(m.method, 2).le(0, 2).le(0x5821, 2);
    b.le(0, 4).le(m.data.size(), 4).le(usize, 4);
    b.le(m.name.size(), 2).le(0, 2).le(0, 2).le(0, 2).le(0, 2).le(0, 4).le(offsets[i], 4);
    b.raw(m.name);
  }
  const uint64_t cd_size = b.size() - cd_start;
  b.le(0x06054b50, 4).le(0, 2).le(0, 2).le(members.size(), 2).le(members.size(), 2);
  b.le(cd_size, 4).le(cd_start, 4).le(0, 2);
  return b.take();
}

}  // namespace payloadfs::testing

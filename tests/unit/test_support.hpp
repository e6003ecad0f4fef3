#pragma once
// Helpers shared by the unit tests: byte builders, fixture paths, parsing files from disk.

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "core/io/byte_source.hpp"
#include "core/io/checked_math.hpp"
#include "core/io/unique_fd.hpp"
#include "core/model/format.hpp"
#include "core/model/registry.hpp"
#include "core/payload.hpp"
#include "core/vfs/slice_tree.hpp"
#include "unit/bytes.hpp"

namespace payloadfs::testing {

inline std::string fixtures_dir() {
  const char* dir = std::getenv("PAYLOADFS_FIXTURES");
  return dir != nullptr ? dir : "";
}

inline std::vector<std::byte> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::vector<char> chars((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<std::byte> out(chars.size());
  if (!chars.empty()) std::memcpy(out.data(), chars.data(), chars.size());
  return out;
}

// A fixture's JSON (a generator's manifest.json or expected.json): null, with the failure
// recorded, when the file cannot be read. The one way tests load what the generators wrote.
inline Json read_fixture_json(const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    ADD_FAILURE() << "cannot read " << path;
    return Json();
  }
  return Json::parse(in);
}

// The bytes of a string, for hand-built files.
inline std::vector<std::byte> to_bytes(std::string_view s) {
  std::vector<std::byte> out(s.size());
  if (!s.empty()) std::memcpy(out.data(), s.data(), s.size());
  return out;
}

// Every slice lies inside a file of `size` bytes.
inline void expect_in_bounds(const Layout& layout, uint64_t size) {
  for (const auto& s : layout.slices)
    EXPECT_TRUE(range_within(s.range.offset, s.range.length, size)) << s.name;
}

// Whether some error of `layout` contains `text`.
inline bool has_error(const Layout& layout, std::string_view text) {
  for (const auto& e : layout.errors)
    if (e.find(text) != std::string::npos) return true;
  return false;
}

// Every error, one per line (for failure messages).
inline std::string errors_of(const Layout& layout) {
  std::string out;
  for (const auto& e : layout.errors) out += e + "\n";
  return out;
}

// The first error, or "" when there is none (for failure messages).
inline std::string first_error(const Layout& layout) {
  return layout.errors.empty() ? std::string() : layout.errors.front();
}

// Appends every record of every table to the slices, as slices.json lists them: named
// "<dir>/<zero-padded index>", with the attributes read back through `source`.
inline void flatten_tables(Layout& layout, const ByteSource& source) {
  for (const RecordTable& table : layout.tables) {
    const uint64_t count = table.records.size();
    for (uint64_t i = 0; i < count; ++i) {
      const Record& r = table.records[i];
      Json attributes = table.attributes ? table.attributes(source, r) : Json::object();
      layout.slices.push_back(
          Slice{table.dir + "/" + SliceTree::record_name(i, count),
                {r.offset, r.length},
                attributes.is_object() ? std::move(attributes) : Json::object()});
    }
  }
  layout.tables.clear();
}

// Parses `bytes`; record tables come back flattened into the slices (see flatten_tables).
// Whether `format` takes `bytes` for a file of its own, from their head and size, as the
// registry asks it.
inline bool detects(const Format& format, const std::vector<std::byte>& bytes) {
  const size_t n = std::min<size_t>(bytes.size(), kDetectHeadBytes);
  return format.detect(std::span(bytes.data(), n), bytes.size());
}

inline Layout parse_bytes(const Format& format, const std::vector<std::byte>& bytes) {
  MemorySource source(bytes);
  Layout layout = format.parse(source);
  flatten_tables(layout, source);
  return layout;
}

// Builds a Payload from a file on disk exactly as the filesystem does.
inline std::shared_ptr<const Payload> payload_of(const std::string& path,
                                                 const Registry& registry) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  EXPECT_TRUE(fd.valid()) << path;
  struct stat st {};
  EXPECT_EQ(::fstat(fd.get(), &st), 0);
  return Payload::build(path, fd.get(), st, registry);
}

// slices.json of a payload built from the file at `path`, as the filesystem serves it.
inline std::string slices_json_of(const Payload& payload, const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  EXPECT_TRUE(fd.valid()) << path;
  return payload.slices_json_text(FdSource(fd.get(), payload.size()));
}

// The bytes of a slice as the filesystem would serve them.
inline std::vector<std::byte> slice_bytes(const std::vector<std::byte>& file, const Slice& slice) {
  return {file.begin() + static_cast<std::ptrdiff_t>(slice.range.offset),
          file.begin() + static_cast<std::ptrdiff_t>(slice.range.offset + slice.range.length)};
}

// Bounded robustness check: `iterations` copies of the seeds (in turn) with 1-8 random bytes
// overwritten and, one time in four, cut at a random length, each parsed by `format`, whose
// slices must stay inside the mutated input. Fixed `seed`, so a failure reproduces.
inline void mutate_and_parse(const Format& format, const std::vector<std::vector<std::byte>>& seeds,
                             unsigned seed, int iterations) {
  std::mt19937 rng(seed);
  for (int iter = 0; iter < iterations; ++iter) {
    auto data = seeds[static_cast<size_t>(iter) % seeds.size()];
    const int edits = 1 + static_cast<int>(rng() % 8);
    for (int e = 0; e < edits && !data.empty(); ++e) {
      const size_t pos = rng() % data.size();
      data[pos] = static_cast<std::byte>(rng() & 0xFF);
    }
    if (rng() % 4 == 0) data.resize(rng() % (data.size() + 1));
    const Layout l = parse_bytes(format, data);
    expect_in_bounds(l, data.size());
  }
}

}  // namespace payloadfs::testing

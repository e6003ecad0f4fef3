// arrow parser tests: an IPC file from apache-arrow's tableToIPC (tests/fixtures/gen_arrow.py)
// against what apache-arrow reads back, the flatbuffers reader on hand-laid buffers (offsets
// and vtables out of bounds, a table that is its own vtable), the malformed fixtures (footer
// length past the start, a root offset out of bounds, a field DAG bomb), and a mutation run.

#include <map>
#include <string>
#include <vector>

#include "core/formats/builtin.hpp"
#include "core/formats/support/flatbuffers_reader.hpp"
#include "unit/test_support.hpp"

namespace payloadfs {
namespace {

using testing::Bytes;
using testing::has_error;

const Format& arrow() {
  static const auto format = formats::make_arrow();
  return *format;
}

std::vector<std::byte> hex_bytes(const std::string& hex) {
  std::vector<std::byte> out;
  for (size_t i = 0; i + 1 < hex.size(); i += 2)
    out.push_back(static_cast<std::byte>(std::stoi(hex.substr(i, 2), nullptr, 16)));
  return out;
}

bool starts_with(const std::vector<std::byte>& whole, const std::vector<std::byte>& prefix) {
  return prefix.size() <= whole.size() && std::equal(prefix.begin(), prefix.end(), whole.begin());
}

// A flatbuffer with one table: vtable at 4 (size 8: table 12 bytes, field 0 at 4, field 1 at 8),
// table at 12 (soffset 8), field 0 = 7 (u32), field 1 = uoffset `child`.
std::vector<std::byte> one_table(uint32_t child) {
  Bytes b;
  b.le(12, 4);                             // root -> 12
  b.le(8, 2).le(12, 2).le(4, 2).le(8, 2);  // vtable
  b.le(8, 4).le(7, 4).le(child, 4);        // table
  return b.take();
}

TEST(FlatbuffersReader, ReadsFieldsAndRefusesOutOfBoundsOffsets) {
  const auto good = one_table(4);
  formats::flatbuf::Reader fb(good);
  const auto root = fb.root();
  ASSERT_TRUE(root);
  EXPECT_EQ(fb.scalar<uint32_t>(*root, 0, 0), 7u);
  EXPECT_EQ(fb.scalar<uint32_t>(*root, 5, 99), 99u);  // past the vtable: the default
  // A child offset past the end, a string and a vector past the end: nullopt.
  const auto bad = one_table(1000);
  formats::flatbuf::Reader fb2(bad);
  ASSERT_TRUE(fb2.root());
  EXPECT_FALSE(fb2.table(*fb2.root(), 1));
  EXPECT_FALSE(fb2.string(*fb2.root(), 1, 100));
  EXPECT_FALSE(fb2.vector(*fb2.root(), 1, 4));
  // A root offset past the end.
  auto oob = good;
  oob[0] = std::byte{0xF0};
  EXPECT_FALSE(formats::flatbuf::Reader(oob).root());
}

TEST(FlatbuffersReader, VtableOutOfBoundsOrSelfReferenceIsRefused) {
  auto b = one_table(4);
  b[12] = std::byte{0xF0};  // soffset: vtable far past the start... negative position
  b[13] = std::byte{0xFF};
  b[14] = std::byte{0xFF};
  b[15] = std::byte{0x7F};
  EXPECT_FALSE(formats::flatbuf::Reader(b).root());
  // soffset 0: the table is its own vtable (vtable size 0): refused.
  auto self = one_table(4);
  for (int i = 12; i < 16; ++i) self[static_cast<size_t>(i)] = std::byte{0};
  EXPECT_FALSE(formats::flatbuf::Reader(self).root());
  // A vector whose count runs past the buffer.
  Bytes v;
  v.le(12, 4).le(8, 2).le(12, 2).le(4, 2).le(8, 2).le(8, 4).le(7, 4).le(4, 4).le(0x40000000, 4);
  const auto vb = v.take();
  formats::flatbuf::Reader fv(vb);
  ASSERT_TRUE(fv.root());
  EXPECT_FALSE(fv.vector(*fv.root(), 1, 4));
}

TEST(Arrow, Detects) {
  EXPECT_TRUE(testing::detects(
      arrow(), testing::to_bytes(std::string("ARROW1\0\0", 8) + std::string(10, 'x'))));
  EXPECT_FALSE(testing::detects(arrow(), testing::to_bytes("ARROW1")));
}

TEST(Arrow, FixtureMatchesApacheArrow) {
  const std::string dir = testing::fixtures_dir() + "/arrow/";
  const Json want = testing::read_fixture_json(dir + "expected.json");
  ASSERT_TRUE(want.is_object());
  const auto bytes = testing::read_file(dir + "table.arrow");
  ASSERT_TRUE(testing::detects(arrow(), bytes));
  const Layout l = testing::parse_bytes(arrow(), bytes);
  ASSERT_TRUE(l.errors.empty()) << testing::errors_of(l);
  EXPECT_EQ(l.header["metadata"], want["metadata"]);
  ASSERT_EQ(l.header["dictionaries"].size(), 1u);
  EXPECT_EQ(l.header["dictionaries"][0]["is_delta"], false);  // the first, not a delta
  ASSERT_EQ(l.header["batches"].size(), want["batches"].size());
  std::map<std::string, const Slice*> by_name;
  for (const auto& s : l.slices) by_name[s.name] = &s;
  int checked = 0;
  for (size_t i = 0; i < want["batches"].size(); ++i) {
    EXPECT_EQ(l.header["batches"][i]["rows"], want["batches"][i]["rows"]);
    for (const auto& [column, buffers] : want["batches"][i]["columns"].items()) {
      int k = 0;
      for (const char* role : {"validity", "offsets", "data"}) {
        if (std::string(role) == "offsets" && buffers["offsets"].is_null()) continue;
        const std::string name =
            "batch/" + std::to_string(i) + "/" + column + "/" + std::to_string(k++);
        ASSERT_TRUE(by_name.count(name)) << name;
        const Slice& s = *by_name[name];
        EXPECT_EQ(s.attributes["role"], role) << name;
        EXPECT_EQ(s.attributes["rows"], buffers["rows"]) << name;
        EXPECT_EQ(s.attributes["null_count"], buffers["null_count"]) << name;
        if (buffers[role].is_null()) continue;
        EXPECT_TRUE(starts_with(testing::slice_bytes(bytes, s), hex_bytes(buffers[role]))) << name;
        ++checked;
      }
    }
  }
  EXPECT_EQ(checked, 12);  // the buffers the reader holds (no validity without nulls)
  testing::expect_in_bounds(l, bytes.size());
}

TEST(Arrow, MalformedFixturesGiveErrors) {
  const std::string dir = testing::fixtures_dir() + "/arrow/malformed/";
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"footer_past_start.arrow", "runs past the start"},
      {"no_end_magic.arrow", "no \"ARROW1\" at the end"},
      {"footer_offset_oob.arrow", "root table out of bounds"},
      {"field_dag_bomb.arrow", "more than 10000 fields"}};
  for (const auto& [name, error] : cases) {
    const auto bytes = testing::read_file(dir + name);
    ASSERT_FALSE(bytes.empty()) << name;
    const Layout l = testing::parse_bytes(arrow(), bytes);
    EXPECT_TRUE(has_error(l, error)) << name << ": " << testing::errors_of(l);
    testing::expect_in_bounds(l, bytes.size());
  }
}

TEST(Arrow, MutatedFilesStayInBounds) {
  const auto fixture = testing::read_file(testing::fixtures_dir() + "/arrow/table.arrow");
  ASSERT_FALSE(fixture.empty());
  testing::mutate_and_parse(arrow(), {fixture}, 20261207, 3000);
}

}  // namespace
}  // namespace payloadfs

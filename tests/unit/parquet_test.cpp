// parquet parser tests: files from hyparquet-writer and @dsnp/parquetjs
// (tests/fixtures/gen_parquet.py) against hyparquet's parquetMetadata, hand-built footers in
// the Thrift compact protocol (unknown fields of every type skipped, a dictionary page), and
// malformed ones: a footer length past the start, a cut footer, a list count bomb, nesting past
// the depth limit, a chunk past the footer; then a bounded mutation run.

#include <string>
#include <vector>

#include "core/formats/builtin.hpp"
#include "unit/test_support.hpp"

namespace payloadfs {
namespace {

using testing::Bytes;
using testing::has_error;

const Format& parquet() {
  static const auto format = formats::make_parquet();
  return *format;
}

// Thrift compact encoding helpers.
Bytes& zigzag(Bytes& b, int64_t v) {
  return b.uleb((static_cast<uint64_t>(v) << 1) ^ static_cast<uint64_t>(v >> 63));
}
// A field header with a delta (1..15) from the previous id.
Bytes& field(Bytes& b, int delta, int type) {
  return b.u8(static_cast<uint8_t>(delta << 4 | type));
}
Bytes& int_field(Bytes& b, int delta, int64_t v) {
  return zigzag(field(b, delta, 6), v);
}
Bytes& string_field(Bytes& b, int delta, std::string_view s) {
  return field(b, delta, 8).uleb(s.size()).raw(s);
}
Bytes& list_header(Bytes& b, uint64_t count, int type) {
  if (count < 15) return b.u8(static_cast<uint8_t>(count << 4 | type));
  return b.u8(static_cast<uint8_t>(0xF0 | type)).uleb(count);
}

// ColumnMetaData for one INT32 column `name`, with unknown fields of several types mixed in.
Bytes column_meta(std::string_view name, int64_t data_offset, int64_t dict_offset, int64_t size) {
  Bytes m;
  int_field(m, 1, 1);                              // type INT32
  list_header(field(m, 1, 9), 2, 5).u8(0).u8(16);  // encodings [PLAIN, RLE_DICTIONARY]
  list_header(field(m, 1, 9), 1, 8);               // path_in_schema
  m.uleb(name.size()).raw(name);
  int_field(m, 1, 1);            // codec SNAPPY
  int_field(m, 1, 7);            // num_values
  int_field(m, 1, size);         // total_uncompressed_size
  int_field(m, 1, size);         // total_compressed_size
  int_field(m, 2, data_offset);  // data_page_offset (9)
  int_field(m, 2, dict_offset);  // dictionary_page_offset (11)
  // Unknown: a double (12), a map<i32,binary> (13), a set<i32> (14), a nested struct (15).
  field(m, 1, 7).le(0, 8);
  field(m, 1, 11).uleb(1).u8(0x58);
  zigzag(m, 3);
  m.uleb(1).raw("x");
  list_header(field(m, 1, 10), 2, 5).u8(2).u8(4);
  int_field(field(m, 1, 12), 1, 5).u8(0);
  return m.u8(0);
}

// FileMetaData with one row group of one column chunk.
Bytes footer(const Bytes& meta) {
  Bytes f;
  int_field(f, 1, 1);                   // version
  list_header(field(f, 1, 9), 2, 12);   // schema
  string_field(f.raw(""), 4, "root");   // SchemaElement{name=4}
  int_field(f, 1, 1).u8(0);             // num_children=5
  int_field(f, 1, 1);                   // type=1 INT32
  int_field(f, 2, 0);                   // repetition_type=3 REQUIRED
  string_field(f, 1, "x").u8(0);        // name=4
  int_field(f, 1, 7);                   // num_rows
  list_header(field(f, 1, 9), 1, 12);   // row_groups
  list_header(field(f, 1, 9), 1, 12);   // RowGroup.columns
  int_field(f, 2, 4);                   // ColumnChunk.file_offset=2
  field(f, 1, 12).append(meta.data());  // meta_data=3
  f.u8(0);                              // end of ColumnChunk
  int_field(f, 1, 28);                  // total_byte_size
  int_field(f, 1, 7).u8(0);             // num_rows, end of RowGroup
  list_header(field(f, 1, 9), 1, 12);   // key_value_metadata
  string_field(f, 1, "k");
  string_field(f, 1, "v").u8(0);
  string_field(f, 1, "hand").u8(0);  // created_by, end of FileMetaData
  return f;
}

std::vector<std::byte> file_with(const Bytes& footer_bytes, size_t body = 40) {
  Bytes b;
  b.raw("PAR1").zeros(body).append(footer_bytes.data());
  b.le(footer_bytes.data().size(), 4).raw("PAR1");
  return b.take();
}

TEST(Parquet, Detects) {
  EXPECT_TRUE(testing::detects(parquet(), file_with(footer(column_meta("x", 20, 10, 30)))));
  EXPECT_FALSE(testing::detects(parquet(), testing::to_bytes("PAR1PAR1")));
  EXPECT_FALSE(testing::detects(parquet(), testing::to_bytes("PAR2xxxxxxxxxxxxxxxx")));
}

TEST(Parquet, HandBuiltFooterWithDictionaryPageAndUnknownFields) {
  const auto bytes = file_with(footer(column_meta("x", 20, 10, 30)));
  const Layout l = testing::parse_bytes(parquet(), bytes);
  ASSERT_TRUE(l.errors.empty()) << testing::errors_of(l);
  ASSERT_EQ(l.slices.size(), 1u);
  const Slice& s = l.slices[0];
  EXPECT_EQ(s.name, "row_group/0/x");
  EXPECT_EQ(s.range, (ByteRange{10, 30}));
  EXPECT_FALSE(s.stored);
  EXPECT_EQ(s.attributes["codec"], "SNAPPY");
  EXPECT_EQ(s.attributes["type"], "INT32");
  EXPECT_EQ(s.attributes["num_values"], 7);
  EXPECT_EQ(s.attributes["encodings"], (Json{"PLAIN", "RLE_DICTIONARY"}));
  EXPECT_EQ(l.header["num_rows"], 7);
  EXPECT_EQ(l.header["created_by"], "hand");
  EXPECT_EQ(l.header["key_value_metadata"], (Json{{"k", "v"}}));
  EXPECT_EQ(l.header["schema"][1]["name"], "x");
  EXPECT_EQ(l.header["schema"][1]["repetition_type"], "REQUIRED");
  EXPECT_EQ(l.header["row_groups"][0]["total_byte_size"], 28);
}

TEST(Parquet, FooterLengthPastTheStart) {
  auto bytes = file_with(footer(column_meta("x", 20, 10, 30)));
  const size_t n = bytes.size();
  bytes[n - 8] = std::byte{0xFF};
  bytes[n - 7] = std::byte{0xFF};
  const Layout l = testing::parse_bytes(parquet(), bytes);
  EXPECT_TRUE(has_error(l, "runs past the start")) << testing::errors_of(l);
  EXPECT_TRUE(l.slices.empty());
}

TEST(Parquet, TruncatedThrift) {
  const Bytes full = footer(column_meta("x", 20, 10, 30));
  for (size_t cut = 1; cut < full.data().size(); cut += 3) {
    Bytes part;
    part.raw(std::string_view(reinterpret_cast<const char*>(full.data().data()), cut));
    const Layout l = testing::parse_bytes(parquet(), file_with(part));
    EXPECT_TRUE(has_error(l, "footer (FileMetaData)")) << cut;
  }
}

TEST(Parquet, ListCountBombIsRefusedAtOnce) {
  Bytes f;
  int_field(f, 1, 1);
  list_header(field(f, 1, 9), uint64_t{1} << 40, 12).zeros(8);
  const Layout l = testing::parse_bytes(parquet(), file_with(f));
  EXPECT_TRUE(has_error(l, "thrift list of 1099511627776 elements")) << testing::errors_of(l);
}

TEST(Parquet, NestingPastTheDepthLimit) {
  Bytes f;
  for (int i = 0; i < 200; ++i) field(f, 15, 12);  // struct in struct in ...
  const Layout l = testing::parse_bytes(parquet(), file_with(f));
  EXPECT_TRUE(has_error(l, "nested deeper than")) << testing::errors_of(l);
}

TEST(Parquet, ChunkPastTheFooterHasNoSlice) {
  const Layout l = testing::parse_bytes(parquet(), file_with(footer(column_meta("x", 20, 0, 90))));
  EXPECT_TRUE(has_error(l, "row_group/0/x: its pages")) << testing::errors_of(l);
  EXPECT_TRUE(l.slices.empty());
}

TEST(Parquet, FixturesMatchHyparquetMetadata) {
  const std::string dir = testing::fixtures_dir() + "/parquet/";
  const Json expected = testing::read_fixture_json(dir + "expected.json");
  ASSERT_TRUE(expected.is_object());
  for (const auto& [file, want] : expected.items()) {
    SCOPED_TRACE(file);
    const auto bytes = testing::read_file(dir + file);
    ASSERT_TRUE(testing::detects(parquet(), bytes));
    const Layout l = testing::parse_bytes(parquet(), bytes);
    EXPECT_TRUE(l.errors.empty()) << testing::errors_of(l);
    EXPECT_EQ(l.header["num_rows"], want["num_rows"]);
    size_t k = 0;
    for (size_t g = 0; g < want["row_groups"].size(); ++g) {
      for (const auto& column : want["row_groups"][g]["columns"]) {
        ASSERT_LT(k, l.slices.size());
        const Slice& s = l.slices[k++];
        const std::string path = column["path"];
        EXPECT_EQ(s.name, "row_group/" + std::to_string(g) + "/" + path);
        const int64_t data = column["data_page_offset"];
        const int64_t dict = column["dictionary_page_offset"].is_null()
                                 ? 0
                                 : column["dictionary_page_offset"].get<int64_t>();
        const int64_t start = dict > 0 && dict < data ? dict : data;
        EXPECT_EQ(s.range.offset, static_cast<uint64_t>(start)) << s.name;
        EXPECT_EQ(s.range.length, column["total_compressed_size"].get<uint64_t>()) << s.name;
        EXPECT_EQ(s.attributes["codec"], column["codec"]);
        EXPECT_EQ(s.attributes["type"], column["type"]);
        EXPECT_EQ(s.attributes["num_values"], column["num_values"]);
        EXPECT_EQ(s.attributes["total_uncompressed_size"], column["total_uncompressed_size"]);
      }
    }
    EXPECT_EQ(k, l.slices.size());
  }
}

TEST(Parquet, MalformedFixturesGiveErrors) {
  const std::string dir = testing::fixtures_dir() + "/parquet/malformed/";
  for (const char* name : {"footer_past_start.parquet", "truncated_footer.parquet",
                           "list_bomb.parquet", "no_end_magic.parquet", "chunk_past_end.parquet"}) {
    const auto bytes = testing::read_file(dir + name);
    ASSERT_FALSE(bytes.empty()) << name;
    const Layout l = testing::parse_bytes(parquet(), bytes);
    EXPECT_FALSE(l.errors.empty()) << name;
    testing::expect_in_bounds(l, bytes.size());
  }
}

TEST(Parquet, MutatedFilesStayInBounds) {
  std::vector<std::vector<std::byte>> seeds = {file_with(footer(column_meta("x", 20, 10, 30)))};
  const auto fixture = testing::read_file(testing::fixtures_dir() + "/parquet/hyparquet.parquet");
  if (!fixture.empty()) seeds.push_back(fixture);
  testing::mutate_and_parse(parquet(), seeds, 20261207, 3000);
}

}  // namespace
}  // namespace payloadfs

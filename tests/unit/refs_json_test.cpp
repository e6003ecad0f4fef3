// refs.json: which slices are arrays, how they are named for zarr, and the text rendered, by
// hand and from the fixture files real tools wrote.

#include "core/render/refs_json.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "core/model/registry.hpp"
#include "test_support.hpp"

namespace payloadfs {
namespace {

Slice array_slice(std::string name, Json attributes, uint64_t offset, uint64_t length) {
  return Slice{std::move(name), {offset, length}, std::move(attributes)};
}

// The refs object of a rendered refs.json, checked to be version 1.
Json refs_of(const std::string& text) {
  const Json doc = Json::parse(text);
  EXPECT_EQ(doc.at("version"), 1);
  EXPECT_EQ(doc.size(), 2U);
  return doc.at("refs");
}

TEST(RefsJson, ItemsizeOfTypeStrings) {
  EXPECT_EQ(numpy_itemsize("<f4"), 4U);
  EXPECT_EQ(numpy_itemsize(">i8"), 8U);
  EXPECT_EQ(numpy_itemsize("|u1"), 1U);
  EXPECT_EQ(numpy_itemsize("|b1"), 1U);
  EXPECT_EQ(numpy_itemsize("|?"), 1U);
  EXPECT_EQ(numpy_itemsize("<c16"), 16U);
  EXPECT_EQ(numpy_itemsize("|S5"), 5U);
  EXPECT_EQ(numpy_itemsize("<U3"), 12U);  // UCS-4
  EXPECT_EQ(numpy_itemsize("|V16"), 16U);
  EXPECT_EQ(numpy_itemsize("<M8[ns]"), 8U);
  EXPECT_EQ(numpy_itemsize("<m8[s]"), 8U);
  EXPECT_EQ(numpy_itemsize("=f8"), 8U);
}

TEST(RefsJson, RejectsWhatIsNotANumpyTypeString) {
  // Without a byte order these are other conventions' names (safetensors' U8 is uint8, not
  // NumPy's 8-character string).
  for (const char* bad : {"f4", "U8", "F32", "BF16", "I64", "BOOL"})
    EXPECT_FALSE(numpy_itemsize(bad)) << bad;
  for (const char* bad : {"", "<", "|O", "|O8", "<x4", "|S0", "|S", "<f", "<f4x", "<f4[ns]", "<M8[",
                          "<M8[]", "<M8[n s]", "<M8[ns]x", "<f99999999999999999999"})
    EXPECT_FALSE(numpy_itemsize(bad)) << bad;
  EXPECT_FALSE(numpy_itemsize(Json(4)));
  EXPECT_FALSE(numpy_itemsize(Json(nullptr)));
  EXPECT_FALSE(numpy_itemsize(Json::array()));
}

TEST(RefsJson, ItemsizeOfStructuredDtypes) {
  EXPECT_EQ(numpy_itemsize(Json::parse(R"([["x", "<i4"], ["y", "<f8"]])")), 12U);
  EXPECT_EQ(numpy_itemsize(Json::parse(R"([["p", "<f4", [2, 3]], ["q", "|u1"]])")), 25U);
  EXPECT_EQ(numpy_itemsize(Json::parse(R"([["a", [["b", "<i2"], ["c", "|S3"]]], ["", "|V3"]])")),
            8U);
  // (title, name) pairs, bad shapes, bad field types and empty lists are not zarr v2 dtypes.
  EXPECT_FALSE(numpy_itemsize(Json::parse(R"([[["title", "x"], "<i4"]])")));
  EXPECT_FALSE(numpy_itemsize(Json::parse(R"([["x", "<i4", 3]])")));
  EXPECT_FALSE(numpy_itemsize(Json::parse(R"([["x", "<i4", [-1]]])")));
  EXPECT_FALSE(numpy_itemsize(Json::parse(R"([["x", "f4"]])")));
  EXPECT_FALSE(numpy_itemsize(Json::parse(R"([["x"]])")));
  EXPECT_FALSE(numpy_itemsize(Json::parse(R"([["x", "<i4", [1], 5]])")));
  EXPECT_FALSE(numpy_itemsize(Json::parse(R"([["x", []]])")));
  EXPECT_FALSE(
      numpy_itemsize(Json::parse(R"([["x", "<f8", [4294967296, 4294967296, 4294967296]]])")));
  Json deep = "<f4";
  for (int i = 0; i < 40; ++i) deep = Json::array({Json::array({"f", deep})});
  EXPECT_FALSE(numpy_itemsize(deep));
}

TEST(RefsJson, ArrayNamesAreEscapedOnce) {
  EXPECT_EQ(zarr_array_name("data"), "data");
  EXPECT_EQ(zarr_array_name("model.layers.0.weight"), "model.layers.0.weight");
  EXPECT_EQ(zarr_array_name("model/layers.0/weight"), "model%2Flayers.0%2Fweight");
  EXPECT_EQ(zarr_array_name("50%"), "50%25");
  EXPECT_EQ(zarr_array_name("a\\b"), "a%5Cb");
  EXPECT_EQ(zarr_array_name("."), "%2E");
  EXPECT_EQ(zarr_array_name(".."), "%2E.");
  EXPECT_EQ(zarr_array_name(".zarray"), "%2Ezarray");
  EXPECT_EQ(zarr_array_name("a."), "a.");
  EXPECT_EQ(zarr_array_name(std::string("a\0b", 3)), "a%00b");
  EXPECT_EQ(zarr_array_name("tab\there\x7F"), "tab%09here%7F");
  EXPECT_EQ(zarr_array_name("caf\xC3\xA9"), "caf\xC3\xA9");  // valid UTF-8 stays
  EXPECT_EQ(zarr_array_name("caf\xE9"), "caf%E9");
  EXPECT_EQ(zarr_array_name("\xC0\xAF"), "%C0%AF");  // overlong '/'
  EXPECT_FALSE(zarr_array_name(""));
}

TEST(RefsJson, WhichSlicesAreArrays) {
  const std::vector<Slice> slices = {
      array_slice("npy", {{"dtype", "<f4"}, {"shape", {2, 3}}, {"fortran_order", false}}, 128, 24),
      // safetensors' own dtype names are not NumPy's: only numpy_dtype makes an array.
      array_slice("st_plain", {{"dtype", "F32"}, {"shape", {2}}}, 0, 8),
      array_slice("st", {{"dtype", "F32"}, {"shape", {2}}, {"numpy_dtype", "<f4"}}, 8, 8),
      array_slice("u8", {{"dtype", "U8"}, {"shape", {8}}}, 0, 8),
      array_slice("bf16", {{"dtype", "BF16"}, {"shape", {4}}}, 0, 8),
      array_slice("short", {{"dtype", "<f4"}, {"shape", {4}}}, 0, 12),
      array_slice("noshape", {{"dtype", "<f4"}}, 0, 4),
      array_slice("badshape", {{"dtype", "<f4"}, {"shape", {-1}}}, 0, 4),
      array_slice("shapeobj", {{"dtype", "<f4"}, {"shape", {{"n", 1}}}}, 0, 4),
      array_slice("ggml", {{"dims", {3, 2}}, {"numpy_dtype", ">f4"}, {"numpy_shape", {2, 3}}}, 0,
                  24),
      array_slice("fortran", {{"dtype", "<i2"}, {"shape", {2, 2}}, {"fortran_order", true}}, 0, 8),
      array_slice("npy", {{"dtype", "|u1"}, {"shape", {1}}}, 0, 1),  // a repeat: left out
      array_slice("", {{"dtype", "|u1"}, {"shape", {1}}}, 0, 1),
      array_slice("a/b", {{"dtype", "|u1"}, {"shape", Json::array()}}, 5, 1),
      array_slice("empty", {{"dtype", "<f8"}, {"shape", {0, 7}}}, 99, 0),
      array_slice("overflow", {{"dtype", "<f8"}, {"shape", {1ULL << 62, 4}}}, 0, 0),
      array_slice("png", {{"crc", "0x1234"}}, 0, 4),
  };
  const auto arrays = refs_arrays(slices);
  std::vector<std::string> names;
  for (const auto& a : arrays) names.push_back(a.name);
  EXPECT_EQ(names, (std::vector<std::string>{"npy", "st", "ggml", "fortran", "a%2Fb", "empty"}));
  ASSERT_EQ(arrays.size(), 6U);
  EXPECT_EQ(arrays[0].dtype, "<f4");
  EXPECT_EQ(arrays[0].shape, (std::vector<uint64_t>{2, 3}));
  EXPECT_FALSE(arrays[0].fortran_order);
  EXPECT_EQ(arrays[0].range, (ByteRange{128, 24}));
  EXPECT_EQ(arrays[1].dtype, "<f4");
  EXPECT_EQ(arrays[2].dtype, ">f4");
  EXPECT_EQ(arrays[2].shape, (std::vector<uint64_t>{2, 3}));
  EXPECT_TRUE(arrays[3].fortran_order);
  EXPECT_TRUE(arrays[4].shape.empty());
}

TEST(RefsJson, RendersZarrV2Metadata) {
  const std::vector<Slice> slices = {
      array_slice("w", {{"dtype", "<f4"}, {"shape", {2, 3}}}, 128, 24),
      array_slice("s", {{"dtype", ">f8"}, {"shape", Json::array()}}, 7, 8),
      array_slice("f", {{"dtype", "<i2"}, {"shape", {2, 2}}, {"fortran_order", true}}, 200, 8),
      array_slice("e", {{"dtype", "<f4"}, {"shape", {0, 3}}}, 300, 0),
      array_slice("r",
                  {{"dtype", Json::parse(R"([["x", "<i4"], ["y", "|S2", [2]]])")}, {"shape", {3}}},
                  400, 24),
  };
  const std::string url = "/data/src/\"odd\" name.npy";
  const std::string text = render_refs_json(refs_arrays(slices), url);
  ASSERT_TRUE(text.ends_with("}}\n"));
  const Json refs = refs_of(text);
  EXPECT_EQ(Json::parse(refs.at(".zgroup").get<std::string>()),
            Json::parse(R"({"zarr_format":2})"));

  const Json w = Json::parse(refs.at("w/.zarray").get<std::string>());
  EXPECT_EQ(w, Json::parse(R"({"chunks":[2,3],"compressor":null,"dtype":"<f4","fill_value":null,
                              "filters":null,"order":"C","shape":[2,3],"zarr_format":2})"));
  EXPECT_EQ(Json::parse(refs.at("w/.zattrs").get<std::string>()),
            Json::parse(R"({"_ARRAY_DIMENSIONS":["w_dim_0","w_dim_1"]})"));
  EXPECT_EQ(refs.at("w/0.0"), Json::array({url, 128, 24}));

  // A 0-d array has no chunk dimensions and its one chunk is "0".
  const Json s = Json::parse(refs.at("s/.zarray").get<std::string>());
  EXPECT_EQ(s.at("shape"), Json::array());
  EXPECT_EQ(s.at("chunks"), Json::array());
  EXPECT_EQ(Json::parse(refs.at("s/.zattrs").get<std::string>()).at("_ARRAY_DIMENSIONS"),
            Json::array());
  EXPECT_EQ(refs.at("s/0"), Json::array({url, 7, 8}));

  EXPECT_EQ(Json::parse(refs.at("f/.zarray").get<std::string>()).at("order"), "F");
  EXPECT_EQ(refs.at("f/0.0"), Json::array({url, 200, 8}));

  // An empty array: chunks at least 1 long, and no chunk at all.
  const Json e = Json::parse(refs.at("e/.zarray").get<std::string>());
  EXPECT_EQ(e.at("shape"), Json::array({0, 3}));
  EXPECT_EQ(e.at("chunks"), Json::array({1, 3}));
  EXPECT_FALSE(refs.contains("e/0.0"));
  EXPECT_FALSE(refs.contains("e/0"));

  EXPECT_EQ(Json::parse(refs.at("r/.zarray").get<std::string>()).at("dtype"),
            Json::parse(R"([["x", "<i4"], ["y", "|S2", [2]]])"));
  EXPECT_EQ(refs.at("r/0"), Json::array({url, 400, 24}));

  // .zgroup, then .zarray, .zattrs and a chunk per array but the empty one.
  EXPECT_EQ(refs.size(), 1U + 5 * 3 - 1);
  // One reference per line.
  EXPECT_EQ(static_cast<size_t>(std::count(text.begin(), text.end(), '\n')), refs.size() + 2);
}

TEST(RefsJson, ChunkedArraysAndDimensionNames) {
  // A 5 x 7 int16 array in 2 x 4 chunks (a 3 x 2 grid) of which chunks 0.1 and 2.0 are stored.
  std::vector<RecordTable> tables(1);
  tables[0].dir = "g/t";
  tables[0].grid = {3, 2};
  tables[0].records = {{100, 11, 1}, {300, 13, 4}};
  std::vector<ChunkedArray> chunked(2);
  chunked[0].name = "g/t";
  chunked[0].dtype = "<i2";
  chunked[0].shape = {5, 7};
  chunked[0].chunks = {2, 4};
  chunked[0].compressor = Json{{"id", "zlib"}, {"level", 4}};
  chunked[0].filters = Json::array({Json{{"id", "shuffle"}, {"elementsize", 2}}});
  chunked[0].fill_value = -1;
  chunked[0].table = 0;
  chunked[1] = chunked[0];
  chunked[1].name = "no_table";
  chunked[1].table = 7;  // no such table: left out
  const std::vector<Slice> slices = {
      array_slice("v", {{"dtype", ">f4"}, {"shape", {2, 3}}, {"dimensions", {"time", "x"}}}, 0, 24),
      array_slice("w", {{"dtype", ">f4"}, {"shape", {2}}, {"dimensions", {"time", "x"}}}, 0, 8),
  };
  const auto arrays = refs_arrays(slices, chunked, tables);
  ASSERT_EQ(arrays.size(), 3U);
  const Json refs = refs_of(render_refs_json(arrays, "/s.h5"));
  EXPECT_EQ(Json::parse(refs.at("g%2Ft/.zarray").get<std::string>()),
            Json::parse(R"({"chunks":[2,4],"compressor":{"id":"zlib","level":4},"dtype":"<i2",
                            "fill_value":-1,"filters":[{"id":"shuffle","elementsize":2}],
                            "order":"C","shape":[5,7],"zarr_format":2})"));
  EXPECT_EQ(refs.at("g%2Ft/0.1"), Json::array({"/s.h5", 100, 11}));
  EXPECT_EQ(refs.at("g%2Ft/2.0"), Json::array({"/s.h5", 300, 13}));
  EXPECT_FALSE(refs.contains("g%2Ft/0.0"));  // not stored: zarr reads the fill value
  EXPECT_FALSE(refs.contains("no_table/.zarray"));
  // Axis names from `dimensions` when there is one per axis.
  EXPECT_EQ(Json::parse(refs.at("v/.zattrs").get<std::string>()).at("_ARRAY_DIMENSIONS"),
            Json::parse(R"(["time", "x"])"));
  EXPECT_EQ(Json::parse(refs.at("w/.zattrs").get<std::string>()).at("_ARRAY_DIMENSIONS"),
            Json::parse(R"(["w_dim_0"])"));
}

TEST(RefsJson, MetadataDocumentsAreAscii) {
  // zarr-python 2 decodes .zarray and .zattrs as ASCII: non-ASCII names must be \u escapes.
  const std::vector<Slice> slices = {
      Slice{"caf\xC3\xA9", {0, 4}, Json::parse(R"({"dtype": [["\u00e9t\u00e9", "<f4"]],
                                                  "shape": [1]})")}};
  const Json refs = refs_of(render_refs_json(refs_arrays(slices), "/x"));
  for (const char* key : {"caf\xC3\xA9/.zarray", "caf\xC3\xA9/.zattrs"}) {
    const std::string text = refs.at(key).get<std::string>();
    EXPECT_TRUE(std::all_of(text.begin(), text.end(), [](char c) {
      return static_cast<unsigned char>(c) < 0x80;
    })) << text;
  }
  EXPECT_EQ(Json::parse(refs.at("caf\xC3\xA9/.zarray").get<std::string>()).at("dtype"),
            Json::parse(R"([["\u00e9t\u00e9", "<f4"]])"));
  EXPECT_EQ(Json::parse(refs.at("caf\xC3\xA9/.zattrs").get<std::string>()),
            Json::parse(R"({"_ARRAY_DIMENSIONS": ["caf\u00e9_dim_0"]})"));
}

TEST(RefsJson, RendersAGroupWithoutArrays) {
  const Json refs = refs_of(render_refs_json({}, "/x"));
  EXPECT_EQ(refs.size(), 1U);
  EXPECT_TRUE(refs.contains(".zgroup"));
}

// ctest always sets PAYLOADFS_FIXTURES (tests/CMakeLists.txt); a run without it is a
// misconfigured run, not a reason to pass.
class RefsJsonFixtures : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(testing::fixtures_dir().empty())
        << "PAYLOADFS_FIXTURES is not set: point it at the build's tests/fixtures";
  }
  std::shared_ptr<const Payload> payload(const std::string& rel) {
    return testing::payload_of(testing::fixtures_dir() + "/" + rel, registry_);
  }
  Registry registry_ = Registry::with_builtins();
};

// The reference is numpy: expected.json holds numpy's own reading of each file it wrote
// (tests/fixtures/gen_numpy.py), compared with the .zarray and chunk reference we render.
TEST_F(RefsJsonFixtures, EveryNpyFixtureIsOneArrayAsNumpyReadsIt) {
  const Json expected =
      Json::parse(testing::read_file(testing::fixtures_dir() + "/numpy/expected.json"));
  ASSERT_GE(expected.size(), 10U);
  size_t simple_dtypes = 0;
  for (const auto& [name, want] : expected.items()) {
    const auto p = payload("numpy/" + name + ".npy");
    ASSERT_TRUE(p->has_refs_json()) << name;
    const Json refs = refs_of(p->refs_json("/src/" + name));
    const Json zarray = Json::parse(refs.at("data/.zarray").get<std::string>());
    EXPECT_EQ(zarray.at("shape"), want.at("shape")) << name;
    EXPECT_EQ(zarray.at("order"), want.at("fortran_order").get<bool>() ? "F" : "C") << name;
    if (want.at("descr").is_string()) {
      ++simple_dtypes;
      EXPECT_EQ(zarray.at("dtype"), want.at("descr")) << name;
    }
    const uint64_t length = want.at("length");
    if (length == 0) continue;
    std::string chunk = "data/0";
    for (size_t i = 1; i < want.at("shape").size(); ++i) chunk += ".0";
    EXPECT_EQ(refs.at(chunk),
              Json::array({"/src/" + name, want.at("data_offset").get<uint64_t>(), length}))
        << name;
  }
  EXPECT_GE(simple_dtypes, 8U);
}

TEST_F(RefsJsonFixtures, SafetensorsTensorsWithANumpyDtype) {
  const auto p = payload("safetensors/all_dtypes.safetensors");
  ASSERT_TRUE(p->has_refs_json());
  const Json refs = refs_of(p->refs_json("s3://bucket/all_dtypes.safetensors"));
  size_t arrays = 0;
  for (const auto& slice : p->slices()) {
    const std::string dtype = slice.attributes.at("dtype");
    const bool numpy = dtype != "BF16" && dtype != "F8_E4M3" && dtype != "F8_E5M2";
    EXPECT_EQ(slice.attributes.contains("numpy_dtype"), numpy) << slice.name;
    const std::string key = *zarr_array_name(slice.name) + "/.zarray";
    EXPECT_EQ(refs.contains(key), numpy) << slice.name;
    if (!numpy) continue;
    ++arrays;
    EXPECT_EQ(Json::parse(refs.at(key).get<std::string>()).at("dtype"),
              slice.attributes.at("numpy_dtype"));
  }
  EXPECT_GE(arrays, 10U);
  EXPECT_TRUE(refs.contains("model%2Flayers.0%2Fweight/0.0"));
  EXPECT_EQ(Json::parse(refs.at("t.f32/.zarray").get<std::string>()).at("dtype"), "<f4");
  EXPECT_EQ(Json::parse(refs.at("t.bool/.zarray").get<std::string>()).at("dtype"), "|b1");
}

TEST_F(RefsJsonFixtures, GgufPlainTypesInTheFilesByteOrder) {
  for (const auto& [file, order] : {std::pair{"v3_le.gguf", "<"}, std::pair{"v3_be.gguf", ">"}}) {
    const auto p = payload(std::string("gguf/") + file);
    ASSERT_TRUE(p->has_refs_json()) << file;
    const Json refs = refs_of(p->refs_json("/m.gguf"));
    for (const auto& slice : p->slices()) {
      const std::string type = slice.attributes.at("type");
      const bool plain = type == "F32" || type == "F16" || type == "F64" || type == "I8" ||
                         type == "I16" || type == "I32" || type == "I64";
      EXPECT_EQ(refs.contains(slice.name + "/.zarray"), plain) << file << " " << slice.name;
      if (!plain) continue;
      const Json zarray = Json::parse(refs.at(slice.name + "/.zarray").get<std::string>());
      Json reversed = Json::array();
      for (auto it = slice.attributes.at("dims").rbegin(); it != slice.attributes.at("dims").rend();
           ++it)
        reversed.push_back(*it);
      EXPECT_EQ(zarray.at("shape"), reversed) << slice.name;
      const std::string dtype = zarray.at("dtype");
      EXPECT_EQ(dtype.substr(0, 1), type == "I8" ? "|" : order) << slice.name;
    }
  }
  const auto le = refs_of(payload("gguf/v3_le.gguf")->refs_json("/m.gguf"));
  EXPECT_EQ(Json::parse(le.at("f16/.zarray").get<std::string>()).at("shape"),
            Json::array({2, 2, 8}));
  EXPECT_EQ(Json::parse(le.at("scalar/.zarray").get<std::string>()).at("shape"), Json::array());
  EXPECT_TRUE(le.contains("scalar/0"));
  EXPECT_FALSE(le.contains("bf16/.zarray"));
}

TEST_F(RefsJsonFixtures, NoRefsWithoutArrays) {
  EXPECT_FALSE(payload("gguf/empty.gguf")->has_refs_json());
  EXPECT_FALSE(payload("elf/be64")->has_refs_json());
  EXPECT_FALSE(payload("numpy/expected.json")->has_refs_json());
  EXPECT_EQ(payload("elf/be64")->refs_json("/x"), "");
}

}  // namespace
}  // namespace payloadfs

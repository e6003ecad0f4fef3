// fits: files astropy wrote (tests/fixtures/gen_fits.py) compared with astropy's fileinfo()
// and header values; hand-built files for the malformed cases; a mutation sweep.

#include <string>
#include <vector>

#include "core/formats/builtin.hpp"
#include "core/model/layout.hpp"
#include "unit/test_support.hpp"

namespace payloadfs {
namespace {

using testing::has_error;
using testing::parse_bytes;
using testing::read_file;
using testing::to_bytes;

const std::unique_ptr<Format> kFits = formats::make_fits();

std::string fixture_dir() {
  return testing::fixtures_dir() + "/fits";
}

std::string card(const std::string& text) {
  std::string c = text;
  c.resize(80, ' ');
  return c;
}

// A header of `cards` plus END, padded to whole blocks.
std::string header(const std::vector<std::string>& cards) {
  std::string h;
  for (const auto& c : cards) h += card(c);
  h += card("END");
  h.resize((h.size() + 2879) / 2880 * 2880, ' ');
  return h;
}

const Slice* find(const Layout& l, const std::string& name) {
  for (const Slice& s : l.slices)
    if (s.name == name) return &s;
  return nullptr;
}

TEST(FitsReal, MatchesAstropy) {
  const Json expected = testing::read_fixture_json(fixture_dir() + "/expected.json");
  ASSERT_TRUE(expected.is_object()) << "run tests/fixtures/gen_fits.py " << fixture_dir();
  ASSERT_GE(expected["files"].size(), 4u);
  for (const auto& file : expected["files"]) {
    SCOPED_TRACE(file["file"].get<std::string>());
    const auto bytes = read_file(fixture_dir() + "/" + file["file"].get<std::string>());
    ASSERT_TRUE(testing::detects(*kFits, bytes));
    const Layout l = parse_bytes(*kFits, bytes);
    EXPECT_TRUE(l.errors.empty()) << testing::errors_of(l);
    ASSERT_EQ(l.header["hdus"].size(), file["hdus"].size());
    for (size_t i = 0; i < file["hdus"].size(); ++i) {
      const auto& want = file["hdus"][i];
      const auto& got = l.header["hdus"][i];
      const std::string n = std::to_string(i);
      EXPECT_EQ(got["header_offset"], want["hdrLoc"]);
      EXPECT_EQ(got["data_offset"], want["datLoc"]);
      EXPECT_EQ(got["xtension"], want["xtension"]);
      EXPECT_EQ(got["extname"], want["extname"]);
      for (const auto& [key, value] : want["cards"].items()) {
        SCOPED_TRACE(key);
        if (value.is_number_float())
          EXPECT_DOUBLE_EQ(got["cards"][key].get<double>(), value.get<double>());
        else
          EXPECT_EQ(got["cards"][key], value);
      }
      const Slice* h = find(l, "header/" + n);
      ASSERT_NE(h, nullptr);
      EXPECT_EQ(h->range.offset, want["hdrLoc"].get<uint64_t>());
      EXPECT_EQ(h->range.length, want["datLoc"].get<uint64_t>() - want["hdrLoc"].get<uint64_t>());
      const Slice* d = find(l, "data/" + n);
      if (!want.contains("raw_hex")) {
        EXPECT_EQ(d, nullptr);
        continue;
      }
      ASSERT_NE(d, nullptr);
      EXPECT_EQ(d->range.offset, want["datLoc"].get<uint64_t>());
      EXPECT_EQ(d->range.length * 2, want["raw_hex"].get<std::string>().size());
      if (!want["dtype"].is_null() && want["xtension"] != "TABLE") {
        EXPECT_EQ(d->attributes["shape"], want["shape"]);
      }
    }
  }
}

TEST(FitsReal, MalformedCopiesGiveTheirErrors) {
  const Json expected = testing::read_fixture_json(fixture_dir() + "/expected.json");
  ASSERT_TRUE(expected.is_object());
  ASSERT_GE(expected["malformed"].size(), 3u);
  for (const auto& m : expected["malformed"]) {
    SCOPED_TRACE(m["file"].get<std::string>());
    const auto bytes = read_file(fixture_dir() + "/" + m["file"].get<std::string>());
    ASSERT_TRUE(testing::detects(*kFits, bytes));
    const Layout l = parse_bytes(*kFits, bytes);
    EXPECT_TRUE(has_error(l, m["error"].get<std::string>())) << testing::errors_of(l);
    testing::expect_in_bounds(l, bytes.size());
  }
}

TEST(Fits, DetectsOnlySimpleTrue) {
  EXPECT_TRUE(testing::detects(*kFits, to_bytes(header({"SIMPLE  =                    T"}))));
  EXPECT_FALSE(testing::detects(*kFits, to_bytes(header({"SIMPLE  =                    F"}))));
  EXPECT_FALSE(testing::detects(*kFits, to_bytes("SIMPLE  =")));
}

TEST(Fits, TypedCardsAndDtype) {
  std::string file = header({"SIMPLE  =                    T", "BITPIX  =                  -64",
                             "NAXIS   =                    2", "NAXIS1  =                    3",
                             "NAXIS2  =                    2", "OBJECT  = 'M31 ''core'''",
                             "EXPTIME =               1.5D2 / seconds", "COMMENT one",
                             "COMMENT two", "HISTORY h"});
  file += std::string(48, '\1') + std::string(2880 - 48, '\0');
  const Layout l = parse_bytes(*kFits, to_bytes(file));
  EXPECT_TRUE(l.errors.empty()) << testing::errors_of(l);
  const Json& cards = l.header["hdus"][0]["cards"];
  EXPECT_EQ(cards["SIMPLE"], true);
  EXPECT_EQ(cards["NAXIS1"], 3);
  EXPECT_EQ(cards["OBJECT"], "M31 'core'");
  EXPECT_DOUBLE_EQ(cards["EXPTIME"].get<double>(), 150.0);
  EXPECT_EQ(cards["COMMENT"], Json::array({"one", "two"}));
  EXPECT_EQ(cards["HISTORY"], Json::array({"h"}));
  const Slice* d = find(l, "data/0");
  ASSERT_NE(d, nullptr);
  EXPECT_EQ(d->range.offset, 2880u);
  EXPECT_EQ(d->range.length, 48u);
  EXPECT_EQ(d->attributes["dtype"], ">f8");
  EXPECT_EQ(d->attributes["shape"], Json::array({2, 3}));
}

TEST(Fits, Malformed) {
  const std::string simple = "SIMPLE  =                    T";
  const std::string base =
      header({simple, "BITPIX  =                   16", "NAXIS   =                    1",
              "NAXIS1  =                 2000"});
  EXPECT_TRUE(
      has_error(parse_bytes(*kFits, to_bytes(base + std::string(100, '\0'))), "runs past the end"));
  std::string no_end = card(simple);
  no_end.resize(2880 * 2, ' ');
  EXPECT_TRUE(has_error(parse_bytes(*kFits, to_bytes(no_end)), "no END card"));
  const std::string overflow =
      header({simple, "BITPIX  =                  -64", "NAXIS   =                    3",
              "NAXIS1  =           4294967296", "NAXIS2  =           4294967296",
              "NAXIS3  =                 1000"});
  EXPECT_TRUE(has_error(parse_bytes(*kFits, to_bytes(overflow)), "overflows"));
  const std::string bad_bitpix =
      header({simple, "BITPIX  =                   12", "NAXIS   =    0"});
  EXPECT_TRUE(has_error(parse_bytes(*kFits, to_bytes(bad_bitpix)), "BITPIX"));
}

TEST(Fits, MutationsStayInBounds) {
  const Json expected = testing::read_fixture_json(fixture_dir() + "/expected.json");
  ASSERT_TRUE(expected.is_object());
  std::vector<std::vector<std::byte>> seeds;
  for (const auto& file : expected["files"])
    seeds.push_back(read_file(fixture_dir() + "/" + file["file"].get<std::string>()));
  testing::mutate_and_parse(*kFits, seeds, 17, 2000);
}

}  // namespace
}  // namespace payloadfs

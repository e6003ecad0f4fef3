// netcdf: files written by netCDF4-python (tests/fixtures/gen_netcdf.py) in the three classic
// versions, the malformed copies it makes, hand-built headers and a mutation sweep.

#include <string>
#include <vector>

#include "core/formats/builtin.hpp"
#include "core/model/layout.hpp"
#include "unit/test_support.hpp"

namespace payloadfs {
namespace {

using testing::has_error;
using testing::parse_bytes;
using testing::to_bytes;

const std::unique_ptr<Format> kNetCdf = formats::make_netcdf();

std::string fixture(const std::string& rel) {
  return testing::fixtures_dir() + "/netcdf/" + rel;
}

void put_be(std::string& out, uint64_t value, int bytes) {
  for (int i = bytes - 1; i >= 0; --i) out.push_back(static_cast<char>((value >> (8 * i)) & 0xFF));
}

void put_name(std::string& out, const std::string& name) {
  put_be(out, name.size(), 4);
  out += name;
  out.append((4 - name.size() % 4) % 4, '\0');
}

// A CDF-1 file: one dimension `x` of `n`, one short variable `v(x)` at `begin`, data after.
std::string one_variable(uint32_t n, uint32_t begin_delta = 0, uint32_t vsize = 0) {
  std::string h = "CDF\x01";
  put_be(h, 0, 4);  // numrecs
  put_be(h, 0x0A, 4);
  put_be(h, 1, 4);
  put_name(h, "x");
  put_be(h, n, 4);
  put_be(h, 0, 4);  // no global attributes
  put_be(h, 0, 4);
  put_be(h, 0x0B, 4);
  put_be(h, 1, 4);
  put_name(h, "v");
  put_be(h, 1, 4);
  put_be(h, 0, 4);  // dimid 0
  put_be(h, 0, 4);  // no attributes
  put_be(h, 0, 4);
  put_be(h, 3, 4);  // NC_SHORT
  put_be(h, vsize != 0 ? vsize : (2 * n + 3) / 4 * 4, 4);
  put_be(h, h.size() + 4 + begin_delta, 4);
  for (uint32_t i = 0; i < n; ++i) put_be(h, i, 2);
  h.append((4 - (2 * n) % 4) % 4, '\0');
  return h;
}

TEST(NetCdfDetect, VersionsOneTwoFive) {
  EXPECT_TRUE(testing::detects(*kNetCdf, to_bytes(std::string("CDF\x01", 4) + "xxxx")));
  EXPECT_TRUE(testing::detects(*kNetCdf, to_bytes(std::string("CDF\x02", 4))));
  EXPECT_TRUE(testing::detects(*kNetCdf, to_bytes(std::string("CDF\x05", 4))));
  EXPECT_FALSE(testing::detects(*kNetCdf, to_bytes(std::string("CDF\x03", 4))));
  EXPECT_FALSE(testing::detects(*kNetCdf, to_bytes("\x89HDF")));
}

TEST(NetCdfParse, HandBuiltVariable) {
  const Layout layout = parse_bytes(*kNetCdf, to_bytes(one_variable(5)));
  EXPECT_TRUE(layout.errors.empty()) << testing::errors_of(layout);
  ASSERT_EQ(layout.slices.size(), 1u);
  EXPECT_EQ(layout.slices[0].name, "v");
  EXPECT_EQ(layout.slices[0].range.length, 10u);  // the data, not its 2 bytes of padding
  EXPECT_EQ(layout.slices[0].attributes["dtype"], ">i2");
  EXPECT_EQ(layout.slices[0].attributes["shape"], Json::array({5}));
  EXPECT_EQ(layout.header["dimensions"]["x"], 5);
}

TEST(NetCdfMalformed, BeginPastTheEndAndVsizeMismatch) {
  const Layout past = parse_bytes(*kNetCdf, to_bytes(one_variable(5, 1000)));
  EXPECT_TRUE(past.slices.empty());
  EXPECT_TRUE(has_error(past, "pass the end of the file"));
  const Layout vsize = parse_bytes(*kNetCdf, to_bytes(one_variable(5, 0, 400)));
  EXPECT_TRUE(has_error(vsize, "vsize 400 disagrees"));
}

TEST(NetCdfMalformed, EveryCutGivesErrorsInBounds) {
  const std::string file = one_variable(7);
  // Up to the end of the data: a file cut in the variable's final padding still holds it.
  for (size_t cut = 4; cut < file.size() - 2; ++cut) {
    const Layout layout = parse_bytes(*kNetCdf, to_bytes(file.substr(0, cut)));
    EXPECT_FALSE(layout.errors.empty()) << cut;
    testing::expect_in_bounds(layout, cut);
  }
}

TEST(NetCdfFixtures, RealFilesParseCleanly) {
  const std::vector<std::pair<std::string, int>> files = {
      {"classic.nc", 1}, {"offset64.nc", 2}, {"cdf5.nc", 5}, {"single_record.nc", 1}};
  for (const auto& [rel, version] : files) {
    const auto bytes = testing::read_file(fixture(rel));
    ASSERT_FALSE(bytes.empty()) << "run tests/fixtures/gen_netcdf.py " << fixture("");
    EXPECT_TRUE(testing::detects(*kNetCdf, bytes)) << rel;
    const Layout layout = parse_bytes(*kNetCdf, bytes);
    EXPECT_TRUE(layout.errors.empty()) << rel << ": " << testing::errors_of(layout);
    EXPECT_EQ(layout.header["version"], version) << rel;
    EXPECT_EQ(layout.header["numrecs"], 4) << rel;
    testing::expect_in_bounds(layout, bytes.size());
    const auto& grid = layout.header["variables"]["grid"];
    EXPECT_EQ(grid["dtype"], ">f4");
    EXPECT_EQ(grid["attributes"]["units"], "K");
    EXPECT_EQ(layout.header["attributes"]["title"], "payloadfs fixture");
  }
}

TEST(NetCdfFixtures, MalformedCopiesGiveErrors) {
  for (const char* rel : {"cut_header.nc", "cut_data.nc", "huge_dim_count.nc", "begin_past_end.nc",
                          "vsize_overflow.nc"}) {
    const auto bytes = testing::read_file(fixture(std::string("malformed/") + rel));
    ASSERT_FALSE(bytes.empty()) << rel;
    const Layout layout = parse_bytes(*kNetCdf, bytes);
    EXPECT_FALSE(layout.errors.empty()) << rel;
    testing::expect_in_bounds(layout, bytes.size());
  }
  const auto huge =
      parse_bytes(*kNetCdf, testing::read_file(fixture("malformed/huge_dim_count.nc")));
  EXPECT_TRUE(has_error(huge, "above the limit"));
  const auto overflow =
      parse_bytes(*kNetCdf, testing::read_file(fixture("malformed/vsize_overflow.nc")));
  EXPECT_TRUE(has_error(overflow, "overflows 64 bits"));
}

TEST(NetCdfFixtures, ByteMutationsNeverEscapeTheFile) {
  const auto bytes = testing::read_file(fixture("cdf5.nc"));
  ASSERT_FALSE(bytes.empty());
  for (size_t at = 4; at < std::min<size_t>(bytes.size(), 600); ++at) {
    auto mutated = bytes;
    mutated[at] = static_cast<std::byte>(static_cast<uint8_t>(mutated[at]) ^ 0xFF);
    testing::expect_in_bounds(parse_bytes(*kNetCdf, mutated), mutated.size());
  }
}

}  // namespace
}  // namespace payloadfs

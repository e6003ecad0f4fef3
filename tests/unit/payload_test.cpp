#include "core/payload.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "core/payload_cache.hpp"
#include "core/source_root.hpp"
#include "unit/test_support.hpp"

namespace payloadfs {
namespace {

namespace fsys = std::filesystem;

class PayloadTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir = fsys::temp_directory_path() / ("payload_test." + std::to_string(::getpid()));
    fsys::remove_all(dir);
    fsys::create_directories(dir);
  }
  void TearDown() override { fsys::remove_all(dir); }

  std::string write(const std::string& name, const std::string& content) {
    const auto path = dir / name;
    fsys::create_directories(path.parent_path());
    std::ofstream(path, std::ios::binary) << content;
    return path.string();
  }

  Json header_of(const Payload& p) { return Json::parse(p.header_json()); }

  fsys::path dir;
  Registry registry = Registry::with_builtins();
};

TEST_F(PayloadTest, UnknownFileHasEveryHeaderKey) {
  const auto p = testing::payload_of(write("x.bin", "ABCDEFG"), registry);
  const Json h = header_of(*p);
  for (const char* key :
       {"path", "size", "mtime", "format", "magic", "magic_offset", "header", "slice_count"})
    EXPECT_TRUE(h.contains(key)) << key;
  EXPECT_FALSE(h.contains("errors"));
  EXPECT_EQ(h["format"], "unknown");
  EXPECT_EQ(h["magic"], "41424344");
  EXPECT_EQ(h["size"], 7);
  EXPECT_EQ(p->magic(), (ByteRange{0, 4}));
  EXPECT_EQ(Json::parse(p->slices_json()), Json::array());
}

TEST_F(PayloadTest, ShortAndEmptyFiles) {
  const auto empty = testing::payload_of(write("empty", ""), registry);
  EXPECT_EQ(header_of(*empty)["magic"], "");
  EXPECT_EQ(empty->magic().length, 0u);
  EXPECT_TRUE(empty->mapped());
  const auto two = testing::payload_of(write("two", "hi"), registry);
  EXPECT_EQ(header_of(*two)["magic"], "6869");
}

TEST_F(PayloadTest, ErrorsAppearExactlyWhenMalformed) {
  std::string npy = std::string("\x93NUMPY\x01\x00", 8);
  npy += std::string("\x76\x00", 2);
  std::string dict = "{'descr': '<u1', 'fortran_order': False, 'shape': (4,), }";
  dict += std::string(118 - dict.size() - 1, ' ') + "\n";
  const auto good = testing::payload_of(write("good.npy", npy + dict + "abcd"), registry);
  EXPECT_FALSE(header_of(*good).contains("errors"));
  EXPECT_EQ(header_of(*good)["format"], "npy");
  const auto bad = testing::payload_of(write("bad.npy", npy + dict + "ab"), registry);
  const Json h = header_of(*bad);
  ASSERT_TRUE(h.contains("errors"));
  EXPECT_EQ(h["format"], "npy");
  EXPECT_EQ(h["slice_count"], 0);
  EXPECT_EQ(h["magic"], "934e554d5059");
}

TEST_F(PayloadTest, SlicesJsonNamesTheRawPath) {
  const std::string header = R"({"a/b":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},)"
                             R"("a/c":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}})";
  std::string file(8, '\0');
  file[0] = static_cast<char>(header.size());
  const auto p = testing::payload_of(write("m.safetensors", file + header + "xy"), registry);
  const Json s = Json::parse(p->slices_json());
  ASSERT_EQ(s.size(), 2u);
  EXPECT_EQ(s[0]["path"], "raw/a/b");
  EXPECT_EQ(s[1]["name"], "a/c");
  EXPECT_EQ(s[1]["offset"], 8 + header.size() + 1);
  EXPECT_EQ(s[1]["dtype"], "U8");
  const auto node = p->tree().find("a/c");
  ASSERT_TRUE(node);
  const auto bytes = p->bytes(p->slices()[p->tree().node(*node).slice].range);
  ASSERT_EQ(bytes.size(), 1u);
  EXPECT_EQ(static_cast<char>(bytes[0]), 'y');
}

TEST_F(PayloadTest, NonUtf8PathIsEscapedInJson) {
  const auto p = testing::payload_of(write("caf\xE9.bin", "data"), registry);
  const Json h = header_of(*p);
  const std::string path = h["path"];
  EXPECT_NE(path.find("caf\\xE9.bin"), std::string::npos) << path;
}

TEST_F(PayloadTest, RegistryOrderPutsUnknownLast) {
  const auto formats = registry.formats();
  ASSERT_GE(formats.size(), 3u);
  EXPECT_EQ(formats.back()->name(), "unknown");
  EXPECT_NE(registry.find("npy"), nullptr);
  EXPECT_NE(registry.find("safetensors"), nullptr);
  EXPECT_EQ(registry.find("nope"), nullptr);
}

TEST_F(PayloadTest, CacheRevalidatesChangedSources) {
  write("sub/f.bin", "1234");
  auto root = SourceRoot::open(dir.string());
  ASSERT_TRUE(std::holds_alternative<SourceRoot>(root));
  PayloadCache cache(std::get<SourceRoot>(root), registry, 2);
  auto first = std::get<std::shared_ptr<const Payload>>(cache.get("sub/f.bin"));
  auto again = std::get<std::shared_ptr<const Payload>>(cache.get("sub/f.bin"));
  EXPECT_EQ(first, again);
  write("sub/f.bin", "123456");
  auto changed = std::get<std::shared_ptr<const Payload>>(cache.get("sub/f.bin"));
  EXPECT_NE(first, changed);
  EXPECT_EQ(changed->size(), 6u);
  EXPECT_EQ(first->size(), 4u);  // the old version stays intact for whoever holds it
  EXPECT_EQ(std::get<int>(cache.get("missing")), ENOENT);
  EXPECT_EQ(std::get<int>(cache.get("sub")), ENOENT);  // a directory is not a payload
  write("a", "a");
  write("b", "b");
  (void)cache.get("a");
  (void)cache.get("b");
  EXPECT_LE(cache.counters().cached, 2u);
  EXPECT_GE(cache.counters().evictions, 1u);
}

TEST_F(PayloadTest, SourceRootRefusesEscapes) {
  write("inside/f", "x");
  fsys::create_directory_symlink("/etc", dir / "link_to_etc");
  fsys::create_symlink("/etc/passwd", dir / "file_link");
  auto root = std::get<SourceRoot>(SourceRoot::open(dir.string()));
  EXPECT_TRUE(std::holds_alternative<struct stat>(root.stat("inside/f")));
  EXPECT_EQ(std::get<int>(root.open_file("link_to_etc/passwd")), ENOENT);
  EXPECT_EQ(std::get<int>(root.open_file("../etc/passwd")), ENOENT);
  EXPECT_EQ(std::get<int>(root.open_file("file_link")), ENOENT);
  const auto st = std::get<struct stat>(root.stat("file_link"));  // seen as a link, not followed
  EXPECT_TRUE(S_ISLNK(st.st_mode));
}

}  // namespace
}  // namespace payloadfs

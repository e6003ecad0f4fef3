// nested/: payloads in a container's stored slices, through the namespace without a mount.
// Containers are the real ones tests/fixtures/gen_nested.py writes with GNU tar and zip; where
// their members lie comes from its manifest.json (Python's tarfile and zipfile).
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "core/io/source_root.hpp"
#include "core/model/registry.hpp"
#include "core/payload_cache.hpp"
#include "core/payload_errors.hpp"
#include "core/vfs/control_files.hpp"
#include "core/vfs/namespace.hpp"
#include "unit/test_support.hpp"

namespace payloadfs {
namespace {

namespace fsys = std::filesystem;

class NestedTest : public ::testing::Test {
 protected:
  void SetUp() override {
    fixtures_ = fsys::path(testing::fixtures_dir()) / "nested";
    manifest_ = testing::read_fixture_json((fixtures_ / "manifest.json").string());
    dir_ = fsys::temp_directory_path() / ("nested_test." + std::to_string(::getpid()));
    fsys::remove_all(dir_);
    fsys::create_directories(dir_);
    for (const char* name : {"shards.tar", "outer.tar", "stored.zip", "deflated.zip"})
      fsys::copy_file(fixtures_ / name, dir_ / name);
    root_ = std::make_unique<SourceRoot>(std::get<SourceRoot>(SourceRoot::open(dir_.string())));
    control_ = std::make_unique<ControlFiles>(*root_, registry_, errors_,
                                              [] { return std::string("{}\n"); });
    mount(NestLimits::kDefaultDepth);
  }
  void TearDown() override { fsys::remove_all(dir_); }

  void mount(unsigned nest_depth) {
    names_.reset();
    cache_ = std::make_unique<PayloadCache>(*root_, registry_, 64, 64 << 20, nest_depth);
    names_ = std::make_unique<Namespace>(*root_, *cache_, errors_, *control_, "");
  }

  // The node `path` leads to from the top, each step resolved, as lookups do.
  Result<ResolvedNode> walk(const std::string& path) {
    auto top = names_->resolve(names_->root_key());
    if (const int* err = error_of(top)) return *err;
    ResolvedNode at = value_of(top);
    size_t start = 0;
    while (start <= path.size()) {
      const size_t slash = std::min(path.find('/', start), path.size());
      auto next = names_->child(at, std::string_view(path).substr(start, slash - start));
      if (const int* err = error_of(next)) return *err;
      auto r = names_->resolve(value_of(next));
      if (const int* err = error_of(r)) return *err;
      at = value_of(r);
      start = slash + 1;
    }
    return at;
  }
  int error_at(const std::string& path) {
    auto node = walk(path);
    return error_of(node) != nullptr ? *error_of(node) : 0;
  }
  std::vector<std::string> names_in(const std::string& path) {
    auto node = walk(path);
    EXPECT_EQ(error_of(node), nullptr) << path;
    if (error_of(node) != nullptr) return {};
    auto listed = names_->list(value_of(node));
    EXPECT_EQ(error_of(listed), nullptr) << path;
    std::vector<std::string> out;
    if (error_of(listed) == nullptr)
      for (const auto& e : value_of(listed).entries) out.push_back(e.name);
    std::sort(out.begin(), out.end());
    return out;
  }
  Json header_of(const std::string& payload_dir) {
    auto node = walk(payload_dir + "/header.json");
    EXPECT_EQ(error_of(node), nullptr) << payload_dir;
    if (error_of(node) != nullptr) return Json();
    return Json::parse(value_of(node).payload->header_json());
  }
  std::shared_ptr<const Payload> payload_of(const std::string& payload_dir) {
    auto node = walk(payload_dir + "/header.json");
    return error_of(node) != nullptr ? nullptr : value_of(node).payload;
  }
  // The member's bytes written as a file of their own, and that file's payload.
  std::shared_ptr<const Payload> as_file(const std::string& container, const Json& member) {
    std::ifstream in(dir_ / container, std::ios::binary);
    std::string bytes(member["size"].get<size_t>(), '\0');
    in.seekg(member["offset"].get<std::streamoff>());
    in.read(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    const std::string name = "extracted." + std::to_string(++extracted_);
    std::ofstream(dir_ / name, std::ios::binary) << bytes;
    auto got = cache_->get(name);
    EXPECT_EQ(error_of(got), nullptr);
    return error_of(got) != nullptr ? nullptr : value_of(got);
  }
  // A nested payload is its member's own parse with every offset moved by `base`.
  void expect_shifted(const Payload& nested, const Payload& own, uint64_t base) {
    EXPECT_EQ(nested.format(), own.format());
    const Json nested_header = Json::parse(nested.header_json());
    const Json own_header = Json::parse(own.header_json());
    EXPECT_EQ(nested_header["header"], own_header["header"]);
    EXPECT_EQ(nested_header["magic"], own_header["magic"]);
    EXPECT_EQ(nested_header["magic_offset"], own_header["magic_offset"]);
    EXPECT_EQ(nested_header["slice_count"], own_header["slice_count"]);
    EXPECT_EQ(nested.magic().offset, own.magic().offset + base);
    ASSERT_EQ(nested.slices().size(), own.slices().size());
    for (size_t i = 0; i < own.slices().size(); ++i) {
      EXPECT_EQ(nested.slices()[i].name, own.slices()[i].name);
      EXPECT_EQ(nested.slices()[i].range.offset, own.slices()[i].range.offset + base);
      EXPECT_EQ(nested.slices()[i].range.length, own.slices()[i].range.length);
      EXPECT_EQ(nested.slices()[i].attributes, own.slices()[i].attributes);
    }
  }

  fsys::path fixtures_;
  fsys::path dir_;
  Json manifest_;
  Registry registry_ = Registry::with_builtins();
  PayloadErrors errors_;
  std::unique_ptr<SourceRoot> root_;
  std::unique_ptr<PayloadCache> cache_;
  std::unique_ptr<ControlFiles> control_;
  std::unique_ptr<Namespace> names_;
  int extracted_ = 0;
};

TEST_F(NestedTest, StoredMembersOfATarAndAZipNestAtTheirOffsets) {
  for (const char* container : {"shards.tar", "stored.zip"}) {
    SCOPED_TRACE(container);
    const Json& members = manifest_["containers"][container]["nested"];
    ASSERT_GE(members.size(), 5U);
    const auto listed = names_in(container);
    EXPECT_TRUE(std::find(listed.begin(), listed.end(), "nested") != listed.end());
    EXPECT_EQ(names_in(std::string(container) + "/nested"),
              (std::vector<std::string>{"code.o", "sound.wav", "train"}));
    EXPECT_EQ(names_in(std::string(container) + "/nested/train"),
              (std::vector<std::string>{"000001.npy", "000002.npy", "image.png"}));
    for (const auto& [name, member] : members.items()) {
      SCOPED_TRACE(name);
      const std::string at = std::string(container) + "/nested/" + name;
      const Json header = header_of(at);
      EXPECT_EQ(header["path"], at);
      EXPECT_EQ(header["container"], container);
      EXPECT_EQ(header["container_offset"], member["offset"]);
      EXPECT_EQ(header["size"], member["size"]);
      EXPECT_EQ(header["format"], member["format"]);
      EXPECT_FALSE(header.contains("errors")) << header.dump();
      const auto nested = payload_of(at);
      const auto own = as_file(container, member);
      ASSERT_TRUE(nested && own);
      expect_shifted(*nested, *own, member["offset"].get<uint64_t>());
      EXPECT_EQ(nested->path(), container);  // its bytes are the container file's
    }
  }
}

TEST_F(NestedTest, RawBytesXattrsAndRangesAreInTheContainerFile) {
  const Json& member = manifest_["containers"]["shards.tar"]["nested"]["train/000001.npy"];
  const uint64_t base = member["offset"].get<uint64_t>();
  const uint64_t size = member["size"].get<uint64_t>();
  auto data = walk("shards.tar/nested/train/000001.npy/raw/data");
  ASSERT_EQ(error_of(data), nullptr);
  auto content = names_->content(value_of(data));
  ASSERT_EQ(error_of(content), nullptr);
  EXPECT_EQ(value_of(content).kind, NodeContent::Kind::bytes);
  EXPECT_EQ(value_of(content).range.length, 48U);               // 12 float32
  EXPECT_EQ(value_of(content).range.offset + 48, base + size);  // the array ends the member
  auto xattrs = names_->xattrs(value_of(data));
  ASSERT_EQ(error_of(xattrs), nullptr);
  const auto& list = value_of(xattrs);
  const auto offset = std::find_if(
      list.begin(), list.end(), [](const auto& x) { return x.first == "user.payloadfs.offset"; });
  ASSERT_NE(offset, list.end());
  EXPECT_EQ(offset->second, std::to_string(value_of(content).range.offset));
  const auto source = std::find_if(
      list.begin(), list.end(), [](const auto& x) { return x.first == "user.payloadfs.source"; });
  ASSERT_NE(source, list.end());
  EXPECT_EQ(source->second, "shards.tar");
  // range/ names offsets of the container file, within the member's bytes only.
  const std::string range = "shards.tar/nested/train/000001.npy/range/";
  EXPECT_EQ(error_at(range + std::to_string(base) + "+" + std::to_string(size)), 0);
  EXPECT_EQ(error_at(range + "0+16"), ENOENT);
  EXPECT_EQ(error_at(range + std::to_string(base) + "+" + std::to_string(size + 1)), ENOENT);
  // refs.json points at the container file.
  auto refs = walk("shards.tar/nested/train/000001.npy/refs.json");
  ASSERT_EQ(error_of(refs), nullptr);
  const std::string refs_text =
      value_of(refs).payload->refs_json(names_->refs_url(*value_of(refs).payload));
  EXPECT_NE(refs_text.find(std::to_string(value_of(content).range.offset)), std::string::npos);
  EXPECT_NE(refs_text.find("shards.tar"), std::string::npos);
}

TEST_F(NestedTest, CompressedAndPlainMembersDoNotNest) {
  EXPECT_EQ(error_at("shards.tar/nested/readme.txt"), ENOENT);
  EXPECT_EQ(error_at("stored.zip/nested/readme.txt"), ENOENT);
  EXPECT_EQ(error_at("shards.tar/nested/nothing"), ENOENT);
  // Every member of deflated.zip is deflated: no nested/ at all, though they are npy and wav.
  ASSERT_EQ(manifest_["containers"]["deflated.zip"]["nested"].size(), 0U);
  EXPECT_EQ(names_in("deflated.zip"),
            (std::vector<std::string>{"header.json", "magic", "raw", "slices.json"}));
  EXPECT_EQ(error_at("deflated.zip/nested"), ENOENT);
  // A payload without container slices has no nested/ either.
  EXPECT_EQ(error_at("shards.tar/nested/train/000001.npy/nested"), ENOENT);
}

TEST_F(NestedTest, ATarInATarNestsTwoLevelsDeep) {
  const uint64_t inner_at =
      manifest_["containers"]["outer.tar"]["nested"]["inner.tar"]["offset"].get<uint64_t>();
  EXPECT_EQ(names_in("outer.tar/nested"), (std::vector<std::string>{"c.npy", "inner.tar"}));
  EXPECT_EQ(names_in("outer.tar/nested/inner.tar/nested"),
            (std::vector<std::string>{"a.npy", "b.wav"}));
  for (const auto& [name, member] : manifest_["inner"]["nested"].items()) {
    SCOPED_TRACE(name);
    const std::string at = "outer.tar/nested/inner.tar/nested/" + name;
    const Json header = header_of(at);
    EXPECT_EQ(header["container"], "outer.tar/nested/inner.tar");
    EXPECT_EQ(header["container_offset"], inner_at + member["offset"].get<uint64_t>());
    EXPECT_EQ(header["format"], member["format"]);
    const auto nested = payload_of(at);
    ASSERT_TRUE(nested);
    for (const auto& slice : nested->slices()) {
      EXPECT_GE(slice.range.offset, inner_at + member["offset"].get<uint64_t>());
      EXPECT_LE(slice.range.offset + slice.range.length,
                inner_at + member["offset"].get<uint64_t>() + member["size"].get<uint64_t>());
    }
  }
  // Past the default depth of 2: no third level (a.npy has no slices that nest anyway, so
  // check with a depth of 1 that the second level goes).
  mount(1);
  EXPECT_EQ(error_at("outer.tar/nested/inner.tar/header.json"), 0);
  EXPECT_EQ(error_at("outer.tar/nested/inner.tar/nested"), ENOENT);
  const auto inner_entries = names_in("outer.tar/nested/inner.tar");
  EXPECT_TRUE(std::find(inner_entries.begin(), inner_entries.end(), "nested") ==
              inner_entries.end());
  EXPECT_EQ(*error_of(cache_->get_nested("outer.tar", std::string("inner.tar\0a.npy", 15))),
            ENOENT);
}

TEST_F(NestedTest, DepthZeroShowsNoNestedDirectory) {
  mount(0);
  EXPECT_EQ(names_in("shards.tar"),
            (std::vector<std::string>{"header.json", "magic", "raw", "slices.json"}));
  EXPECT_EQ(error_at("shards.tar/nested"), ENOENT);
  EXPECT_EQ(*error_of(cache_->get_nested("shards.tar", "sound.wav")), ENOENT);
}

TEST_F(NestedTest, AChangedContainerIsNeverServedStale) {
  auto old_node = walk("shards.tar/nested/train/000001.npy/header.json");
  ASSERT_EQ(error_of(old_node), nullptr);
  const NodeKey old_key = value_of(old_node).key;
  // The same file (same inode) rewritten with outer.tar's bytes.
  {
    std::ifstream in(dir_ / "outer.tar", std::ios::binary);
    std::ofstream out(dir_ / "shards.tar", std::ios::binary | std::ios::trunc);
    out << in.rdbuf();
  }
  EXPECT_EQ(*error_of(names_->resolve(old_key)), ESTALE);
  EXPECT_EQ(names_in("shards.tar/nested"), (std::vector<std::string>{"c.npy", "inner.tar"}));
  const Json header = header_of("shards.tar/nested/c.npy");
  EXPECT_EQ(header["container_offset"],
            manifest_["containers"]["outer.tar"]["nested"]["c.npy"]["offset"]);
}

TEST_F(NestedTest, NestedKeysAreDistinctFromTheFilesOwn) {
  auto top = walk("shards.tar/header.json");
  auto inner = walk("shards.tar/nested/sound.wav/header.json");
  ASSERT_EQ(error_of(top), nullptr);
  ASSERT_EQ(error_of(inner), nullptr);
  EXPECT_FALSE(value_of(top).key == value_of(inner).key);
  EXPECT_EQ(value_of(top).key.path, value_of(inner).key.path);  // invalidated with the file
  EXPECT_EQ(value_of(inner).key.nest, "sound.wav");
  EXPECT_NE(value_of(top).payload, value_of(inner).payload);
  // Built once, then served from the cache.
  const auto builds = cache_->counters().builds;
  EXPECT_EQ(payload_of("shards.tar/nested/sound.wav"), value_of(inner).payload);
  EXPECT_EQ(cache_->counters().builds, builds);
}

}  // namespace
}  // namespace payloadfs

// The virtual tree without a mount: what a name leads to, what a directory lists, attributes,
// what a file serves, extended attributes, and the checks that a source is still the object
// or version a key was made from.
#include "core/vfs/namespace.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/io/source_root.hpp"
#include "core/model/registry.hpp"
#include "core/payload_cache.hpp"
#include "core/payload_errors.hpp"
#include "core/vfs/control_files.hpp"

namespace payloadfs {
namespace {

namespace fsys = std::filesystem;

// A 4-byte uint8 .npy: a 128-byte header, then "abcd".
std::string small_npy(std::string_view data = "abcd") {
  std::string npy = std::string("\x93NUMPY\x01\x00\x76\x00", 10);
  std::string dict =
      "{'descr': '<u1', 'fortran_order': False, 'shape': (" + std::to_string(data.size()) + ",), }";
  dict += std::string(118 - dict.size() - 1, ' ') + "\n";
  return npy + dict + std::string(data);
}

class NamespaceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fsys::temp_directory_path() / ("namespace_test." + std::to_string(::getpid()));
    fsys::remove_all(dir_);
    fsys::create_directories(dir_ / "sub");
    write("a.npy", small_npy());
    root_ = std::make_unique<SourceRoot>(std::get<SourceRoot>(SourceRoot::open(dir_.string())));
    cache_ = std::make_unique<PayloadCache>(*root_, registry_, 8, 1 << 20);
    control_ = std::make_unique<ControlFiles>(*root_, registry_, errors_,
                                              [] { return std::string("{\"stats\": 1}\n"); });
    Namespace::Observer observer;
    observer.built = [this](const Payload&, const PayloadCache::Built&, bool) { ++builds_; };
    observer.source_failed = [this](const std::string&, int err) { failures_.push_back(err); };
    names_ =
        std::make_unique<Namespace>(*root_, *cache_, errors_, *control_, "s3://bucket/", observer);
  }
  void TearDown() override { fsys::remove_all(dir_); }

  void write(const std::string& name, const std::string& content) {
    // Written beside and renamed over: a new inode (a number freed by a remove could be
    // reused), so another file, not another version.
    std::ofstream(dir_ / (name + ".new"), std::ios::binary) << content;
    fsys::rename(dir_ / (name + ".new"), dir_ / name);
  }
  // The same file (inode) with new contents: another version of it.
  void write_in_place(const std::string& name, const std::string& content) {
    std::ofstream(dir_ / name, std::ios::binary | std::ios::trunc) << content;
  }
  struct stat stat_of(const std::string& name) {
    struct stat st {};
    EXPECT_EQ(::stat((dir_ / name).c_str(), &st), 0);
    return st;
  }
  ResolvedNode resolved(NodeKey key) {
    auto r = names_->resolve(std::move(key));
    EXPECT_EQ(error_of(r), nullptr);
    return error_of(r) == nullptr ? value_of(r) : ResolvedNode{};
  }
  // The node `path` (names separated by '/') leads to from the top, resolved.
  Result<ResolvedNode> walk(const std::string& path) {
    ResolvedNode at = resolved(names_->root_key());
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
  int error_at(const std::string& path) {
    auto node = walk(path);
    return error_of(node) != nullptr ? *error_of(node) : 0;
  }
  struct stat attributes_of(const std::string& path) {
    auto node = walk(path);
    EXPECT_EQ(error_of(node), nullptr) << path;
    if (error_of(node) != nullptr) return {};
    auto st = names_->attributes(value_of(node).key, value_of(node).payload.get());
    EXPECT_EQ(error_of(st), nullptr) << path;
    if (error_of(st) != nullptr) return {};
    return value_of(st);
  }

  fsys::path dir_;
  Registry registry_ = Registry::with_builtins();
  PayloadErrors errors_;
  std::unique_ptr<SourceRoot> root_;
  std::unique_ptr<PayloadCache> cache_;
  std::unique_ptr<ControlFiles> control_;
  std::unique_ptr<Namespace> names_;
  int builds_ = 0;
  std::vector<int> failures_;
};

TEST_F(NamespaceTest, SourceDirectoriesShowFilesDirectoriesAndLinksInside) {
  fsys::create_symlink("a.npy", dir_ / "inside");
  fsys::create_symlink("/etc/passwd", dir_ / "outside");
  ASSERT_EQ(::mkfifo((dir_ / "fifo").c_str(), 0644), 0);
  EXPECT_EQ(names_in(""), (std::vector<std::string>{"a.npy", "inside", "sub"}));
  EXPECT_EQ(value_of(walk("a.npy")).key.kind, NodeKind::payload_dir);
  EXPECT_EQ(value_of(walk("sub")).key.kind, NodeKind::source_dir);
  EXPECT_EQ(value_of(walk("inside")).key.kind, NodeKind::symlink);
  EXPECT_EQ(error_at("outside"), ENOENT);  // a link leading out of SRC is not shown
  EXPECT_EQ(error_at("fifo"), ENOENT);
  EXPECT_EQ(error_at("nothing"), ENOENT);
  EXPECT_EQ(error_at("sub/nothing"), ENOENT);
  EXPECT_EQ(error_at("inside/x"), ENOTDIR);
}

TEST_F(NamespaceTest, TheControlDirectoryHidesASourceEntryOfItsName) {
  fsys::create_directories(dir_ / ".payloadfs");
  auto top = names_->list(resolved(names_->root_key()));
  ASSERT_EQ(error_of(top), nullptr);
  EXPECT_TRUE(value_of(top).control_dir_hides_a_source);
  EXPECT_EQ(value_of(walk(".payloadfs")).key.kind, NodeKind::control_dir);
  EXPECT_EQ(names_in(".payloadfs"),
            (std::vector<std::string>{"errors.json", "formats.json", "stats.json", "version"}));
  EXPECT_EQ(error_at(".payloadfs/nothing"), ENOENT);
  // Only at the top: below it, the name is the source's.
  fsys::create_directories(dir_ / "sub" / ".payloadfs");
  EXPECT_EQ(value_of(walk("sub/.payloadfs")).key.kind, NodeKind::source_dir);
}

TEST_F(NamespaceTest, APayloadDirectoryListsItsEntriesButNotRange) {
  EXPECT_EQ(names_in("a.npy"),
            (std::vector<std::string>{"header.json", "magic", "raw", "refs.json", "slices.json"}));
  EXPECT_EQ(value_of(walk("a.npy/range")).key.kind, NodeKind::range_dir);
  EXPECT_EQ(names_in("a.npy/range"), std::vector<std::string>{});
  EXPECT_EQ(error_at("a.npy/bogus"), ENOENT);
  EXPECT_EQ(names_in("a.npy/raw"), std::vector<std::string>{"data"});
  EXPECT_EQ(error_at("a.npy/raw/nothing"), ENOENT);
  EXPECT_EQ(error_at("a.npy/header.json/x"), ENOTDIR);
}

TEST_F(NamespaceTest, AFileWithoutArraySlicesHasNoRefsJson) {
  write("plain.bin", "no format claims these bytes");
  EXPECT_EQ(names_in("plain.bin"),
            (std::vector<std::string>{"header.json", "magic", "raw", "slices.json"}));
  EXPECT_EQ(error_at("plain.bin/refs.json"), ENOENT);
}

TEST_F(NamespaceTest, AttributesComeFromTheSourceAndTheContent) {
  ASSERT_EQ(::chmod((dir_ / "a.npy").c_str(), 0640), 0);
  struct stat source {};
  ASSERT_EQ(::stat((dir_ / "a.npy").c_str(), &source), 0);
  const struct stat payload_dir = attributes_of("a.npy");
  EXPECT_EQ(payload_dir.st_mode, static_cast<mode_t>(S_IFDIR | 0550));  // x where r
  EXPECT_EQ(payload_dir.st_uid, source.st_uid);
  EXPECT_EQ(payload_dir.st_mtim.tv_nsec, source.st_mtim.tv_nsec);
  EXPECT_EQ(payload_dir.st_ino, 0U);  // the driver numbers nodes
  const struct stat data = attributes_of("a.npy/raw/data");
  EXPECT_EQ(data.st_mode, static_cast<mode_t>(S_IFREG | 0440));
  EXPECT_EQ(data.st_size, 4);
  EXPECT_EQ(data.st_blocks, 1);
  const auto payload = value_of(walk("a.npy/header.json")).payload;
  EXPECT_EQ(static_cast<size_t>(attributes_of("a.npy/header.json").st_size),
            payload->header_json().size());
  EXPECT_EQ(attributes_of("a.npy/magic").st_size, 6);
  EXPECT_EQ(attributes_of("a.npy/raw").st_mode, static_cast<mode_t>(S_IFDIR | 0550));
  EXPECT_EQ(attributes_of(".payloadfs/stats.json").st_size, 13);
  EXPECT_EQ(attributes_of(".payloadfs").st_mode, static_cast<mode_t>(S_IFDIR | 0555));
}

TEST_F(NamespaceTest, ContentIsTextOrARangeOfTheSource) {
  auto data = names_->content(value_of(walk("a.npy/raw/data")));
  ASSERT_EQ(error_of(data), nullptr);
  EXPECT_EQ(value_of(data).kind, NodeContent::Kind::bytes);
  EXPECT_EQ(value_of(data).range.offset, 128U);
  EXPECT_EQ(value_of(data).range.length, 4U);
  auto refs = names_->content(value_of(walk("a.npy/refs.json")));
  ASSERT_EQ(error_of(refs), nullptr);
  EXPECT_NE(value_of(refs).text.find("s3://bucket/a.npy"), std::string_view::npos);
  auto version = names_->content(value_of(walk(".payloadfs/version")));
  ASSERT_EQ(error_of(version), nullptr);
  EXPECT_EQ(value_of(version).kind, NodeContent::Kind::snapshot);
  EXPECT_EQ(value_of(version).snapshot->rfind("payloadfs ", 0), 0U);
  for (const char* dir : {"a.npy", "a.npy/raw", "a.npy/range", "sub", ".payloadfs"}) {
    auto c = names_->content(value_of(walk(dir)));
    ASSERT_NE(error_of(c), nullptr) << dir;
    EXPECT_EQ(*error_of(c), EISDIR) << dir;
  }
}

TEST_F(NamespaceTest, RangeNamesAreCheckedAgainstTheFileSize) {
  auto range = walk("a.npy/range/128+4");
  ASSERT_EQ(error_of(range), nullptr);
  EXPECT_EQ(value_of(range).key.offset, 128U);
  EXPECT_EQ(value_of(range).key.length, 4U);
  EXPECT_EQ(attributes_of("a.npy/range/0-132").st_size, 132);
  EXPECT_EQ(error_at("a.npy/range/130+4"), ENOENT);  // past the end
  EXPECT_EQ(error_at("a.npy/range/junk"), ENOENT);
}

TEST_F(NamespaceTest, AnotherFileUnderTheNameIsStale) {
  const NodeKey header = value_of(walk("a.npy/header.json")).key;
  const NodeKey payload_dir = value_of(walk("a.npy")).key;
  write("a.npy", small_npy("abcdefgh"));  // a new inode under the old name
  auto r = names_->resolve(header);
  ASSERT_NE(error_of(r), nullptr);
  EXPECT_EQ(*error_of(r), ESTALE);
  auto st = names_->attributes(payload_dir, nullptr);
  ASSERT_NE(error_of(st), nullptr);
  EXPECT_EQ(*error_of(st), ESTALE);
  EXPECT_EQ(attributes_of("a.npy/raw/data").st_size, 8);  // looked up afresh: the new file
}

TEST_F(NamespaceTest, ARemovedSliceIsStaleInTheNewVersion) {
  const NodeKey data = value_of(walk("a.npy/raw/data")).key;
  write("a.npy", "now it is no npy at all");
  // The key names the old file (dev/ino): stale, whatever the new one holds.
  auto r = names_->resolve(data);
  ASSERT_NE(error_of(r), nullptr);
  EXPECT_EQ(*error_of(r), ESTALE);
  EXPECT_EQ(error_at("a.npy/raw/data"), ENOENT);  // and the new file has no such slice
}

TEST_F(NamespaceTest, OpenVersionRefusesAChangedFile) {
  const auto payload = value_of(walk("a.npy/header.json")).payload;
  auto same = names_->open_version(*payload);
  EXPECT_EQ(error_of(same), nullptr);
  // The same inode, rewritten: another version.
  std::ofstream(dir_ / "a.npy", std::ios::binary | std::ios::app) << "more";
  auto changed = names_->open_version(*payload);
  ASSERT_NE(error_of(changed), nullptr);
  EXPECT_EQ(*error_of(changed), ESTALE);
  fsys::remove(dir_ / "a.npy");
  auto gone = names_->open_version(*payload);
  ASSERT_NE(error_of(gone), nullptr);
  EXPECT_EQ(*error_of(gone), ESTALE);  // ENOENT from the source: the version is gone
}

TEST_F(NamespaceTest, SourceErrorsAreAnsweredAsTheMountPromises) {
  EXPECT_EQ(names_->source_error("x", ENOENT), ESTALE);
  EXPECT_EQ(names_->source_error("x", ENOTDIR), ESTALE);
  EXPECT_EQ(names_->source_error("x", EACCES), EACCES);
  EXPECT_EQ(names_->source_error("x", EIO), EIO);
  EXPECT_TRUE(failures_.empty());
  EXPECT_EQ(names_->source_error("x", ENOSPC), EIO);  // means nothing to a reader
  EXPECT_EQ(failures_, std::vector<int>{ENOSPC});
}

TEST_F(NamespaceTest, EachVersionIsBuiltOnceAndReported) {
  (void)attributes_of("a.npy/header.json");
  (void)attributes_of("a.npy/raw/data");
  EXPECT_EQ(builds_, 1);
  write("a.npy", small_npy("xy"));
  (void)attributes_of("a.npy/raw/data");
  EXPECT_EQ(builds_, 2);
}

TEST_F(NamespaceTest, XattrsDescribeTheSliceAndTheSource) {
  auto all = names_->xattrs(value_of(walk("a.npy/raw/data")));
  ASSERT_EQ(error_of(all), nullptr);
  std::map<std::string, std::string> got(value_of(all).begin(), value_of(all).end());
  EXPECT_EQ(got["user.payloadfs.source"], "a.npy");
  EXPECT_EQ(got["user.payloadfs.format"], "npy");
  EXPECT_EQ(got["user.payloadfs.offset"], "128");
  EXPECT_EQ(got["user.payloadfs.length"], "4");
  auto dir = names_->xattrs(value_of(walk("a.npy")));
  ASSERT_EQ(error_of(dir), nullptr);
  EXPECT_EQ(value_of(dir).size(), 2U);  // source and format
  auto top = names_->xattrs(resolved(names_->root_key()));
  ASSERT_EQ(error_of(top), nullptr);
  EXPECT_TRUE(value_of(top).empty());
}

TEST_F(NamespaceTest, GeneratedFilesAreNumberedPerVersion) {
  const NodeKey header = value_of(walk("a.npy/header.json")).key;
  const NodeKey slices = value_of(walk("a.npy/slices.json")).key;
  const NodeKey data = value_of(walk("a.npy/raw/data")).key;
  EXPECT_NE(header.version, NodeVersion{});
  EXPECT_EQ(header.version, slices.version);
  EXPECT_EQ(data.version, NodeVersion{});  // bytes are checked by range, not numbered
  // The same file rewritten in place: another version of header.json, the old one stale.
  const struct stat before = stat_of("a.npy");
  write_in_place("a.npy", small_npy("0123456789abcdef"));
  ASSERT_EQ(stat_of("a.npy").st_ino, before.st_ino);
  auto old_header = names_->resolve(header);
  ASSERT_NE(error_of(old_header), nullptr);
  EXPECT_EQ(*error_of(old_header), ESTALE);
  const NodeKey now = value_of(walk("a.npy/header.json")).key;
  EXPECT_NE(now.version, header.version);
  EXPECT_EQ(value_of(walk("a.npy/header.json")).payload->header_json().size(),
            static_cast<size_t>(attributes_of("a.npy/header.json").st_size));
}

}  // namespace
}  // namespace payloadfs

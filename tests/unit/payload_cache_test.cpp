// The payload cache's counters and build reports, and the list behind errors.json.
#include "core/payload_cache.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "core/io/source_root.hpp"
#include "core/payload_errors.hpp"
#include "unit/test_support.hpp"

namespace payloadfs {
namespace {

namespace fsys = std::filesystem;

// A .npy whose header dict is cut short: parsed with errors.
const std::string kMalformedNpy = std::string("\x93NUMPY\x01\x00\x20\x00{'descr': '<f4', 'sha", 30);
// A file no format claims: parsed cleanly as unknown.
const std::string kPlain = "just some bytes";

class PayloadCacheTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir = fsys::temp_directory_path() / ("payload_cache_test." + std::to_string(::getpid()));
    fsys::remove_all(dir);
    fsys::create_directories(dir);
  }
  void TearDown() override { fsys::remove_all(dir); }

  void write(const std::string& name, const std::string& content) {
    // A new inode each time: the identity changes even within one timestamp tick.
    fsys::remove(dir / name);
    std::ofstream(dir / name, std::ios::binary) << content;
  }
  SourceRoot root() { return std::get<SourceRoot>(SourceRoot::open(dir.string())); }
  std::shared_ptr<const Payload> payload(const std::string& name) {
    return testing::payload_of((dir / name).string(), registry);
  }

  fsys::path dir;
  Registry registry = Registry::with_builtins();
};

TEST_F(PayloadCacheTest, CountsHitsMissesAndReportsBuilds) {
  write("a.bin", kPlain);
  write("b.npy", kMalformedNpy);
  const SourceRoot source = root();
  PayloadCache cache(source, registry, 8, 1 << 20);
  PayloadCache::Built built;
  ASSERT_TRUE(std::holds_alternative<std::shared_ptr<const Payload>>(cache.get("a.bin", &built)));
  EXPECT_TRUE(built.fresh);
  EXPECT_GE(built.took.count(), 0);
  (void)cache.get("a.bin", &built);
  EXPECT_FALSE(built.fresh);  // a hit: nothing built
  (void)cache.get("a.bin");
  (void)cache.get("b.npy", &built);
  EXPECT_TRUE(built.fresh);
  EXPECT_EQ(std::get<int>(cache.get("missing", &built)), ENOENT);
  EXPECT_FALSE(built.fresh);

  const auto c = cache.counters();
  EXPECT_EQ(c.hits, 2u);
  EXPECT_EQ(c.misses, 2u);  // a missing file is neither
  EXPECT_EQ(c.builds, 2u);
  EXPECT_EQ(c.builds_with_errors, 1u);
  EXPECT_EQ(c.cached, 2u);
  EXPECT_GT(c.memory, 0u);
  EXPECT_EQ(c.capacity, 8u);
  EXPECT_EQ(c.memory_budget, 1u << 20);
  ASSERT_EQ(c.formats.size(), 2u);
  EXPECT_EQ(c.formats.at("unknown").parsed, 1u);
  EXPECT_EQ(c.formats.at("unknown").with_errors, 0u);
  EXPECT_EQ(c.formats.at("npy").parsed, 1u);
  EXPECT_EQ(c.formats.at("npy").with_errors, 1u);
}

TEST_F(PayloadCacheTest, ChangedSourceIsAMissAndEvictionsAreCounted) {
  write("a.bin", kPlain);
  const SourceRoot source = root();
  PayloadCache cache(source, registry, 1);
  (void)cache.get("a.bin");
  write("a.bin", kPlain + "more");
  PayloadCache::Built built;
  (void)cache.get("a.bin", &built);
  EXPECT_TRUE(built.fresh);
  EXPECT_EQ(cache.counters().misses, 2u);
  EXPECT_EQ(cache.counters().evictions, 0u);  // replaced in place, not evicted
  write("b.bin", kPlain);
  (void)cache.get("b.bin");
  const auto c = cache.counters();
  EXPECT_EQ(c.evictions, 1u);
  EXPECT_EQ(c.cached, 1u);
  EXPECT_EQ(c.formats.at("unknown").parsed, 3u);
}

TEST_F(PayloadCacheTest, MemoryIsTheSumOfEstimatesAndDroppedPayloadsAreFreed) {
  write("a.bin", kPlain);
  write("b.bin", kPlain + kPlain);
  const SourceRoot source = root();
  PayloadCache cache(source, registry, 8, 1 << 20);
  std::weak_ptr<const Payload> first_a =
      std::get<std::shared_ptr<const Payload>>(cache.get("a.bin"));
  ASSERT_FALSE(first_a.expired());  // the cache holds it
  const size_t a_bytes = first_a.lock()->memory_estimate();
  const auto b = std::get<std::shared_ptr<const Payload>>(cache.get("b.bin"));
  EXPECT_EQ(cache.counters().memory, a_bytes + b->memory_estimate());
  write("a.bin", kPlain + "changed");
  const auto a = std::get<std::shared_ptr<const Payload>>(cache.get("a.bin"));
  EXPECT_TRUE(first_a.expired()) << "the replaced version is released by the time get() returns";
  EXPECT_EQ(cache.counters().memory, a->memory_estimate() + b->memory_estimate());
  // A budget smaller than one payload: the most recent one stays, the others are released.
  PayloadCache small(source, registry, 8, 1);
  std::weak_ptr<const Payload> evicted =
      std::get<std::shared_ptr<const Payload>>(small.get("b.bin"));
  (void)small.get("a.bin");
  EXPECT_EQ(small.counters().cached, 1u);
  EXPECT_TRUE(evicted.expired());
  EXPECT_EQ(small.counters().memory, a->memory_estimate());
}

TEST_F(PayloadCacheTest, ErrorsListsEachMalformedVersionOnce) {
  write("bad.npy", kMalformedNpy);
  write("good.bin", kPlain);
  PayloadErrors errors;
  const auto bad = payload("bad.npy");
  ASSERT_FALSE(bad->errors().empty());
  EXPECT_TRUE(errors.record(*bad));
  EXPECT_FALSE(errors.record(*bad));                 // the same version again: not news
  EXPECT_FALSE(errors.record(*payload("bad.npy")));  // rebuilt, same version
  EXPECT_FALSE(errors.record(*payload("good.bin")));
  auto listed = errors.entries();
  ASSERT_EQ(listed.size(), 1u);
  EXPECT_EQ(listed[0].path, bad->path());
  EXPECT_EQ(listed[0].format, "npy");
  EXPECT_EQ(listed[0].first_error, bad->errors().front());
  EXPECT_EQ(listed[0].error_count, bad->errors().size());

  write("bad.npy", kMalformedNpy + "x");  // a new version, still malformed: news again
  const auto bad2 = payload("bad.npy");
  EXPECT_TRUE(errors.record(*bad2));
  EXPECT_EQ(errors.entries().size(), 1u);

  errors.forget(bad->path(), bad->identity());  // an older version: nothing to forget
  EXPECT_EQ(errors.entries().size(), 1u);
  errors.forget(bad2->path(), bad2->identity());
  EXPECT_TRUE(errors.entries().empty());

  EXPECT_TRUE(errors.record(*bad2));
  write("bad.npy", kPlain);  // fixed: parsing it clean takes it off the list
  EXPECT_FALSE(errors.record(*payload("bad.npy")));
  EXPECT_TRUE(errors.entries().empty());
  EXPECT_EQ(errors.truncated(), 0u);
}

TEST_F(PayloadCacheTest, ErrorsListIsBoundedMostRecentFirst) {
  PayloadErrors errors(2);
  for (const char* name : {"1.npy", "2.npy", "3.npy"}) {
    write(name, kMalformedNpy);
    EXPECT_TRUE(errors.record(*payload(name)));
  }
  const auto listed = errors.entries();
  ASSERT_EQ(listed.size(), 2u);
  EXPECT_EQ(fsys::path(listed[0].path).filename(), "3.npy");
  EXPECT_EQ(fsys::path(listed[1].path).filename(), "2.npy");
  EXPECT_EQ(errors.truncated(), 1u);
}

}  // namespace
}  // namespace payloadfs

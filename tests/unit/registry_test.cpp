// The one list of built-in formats (core/formats/format_list.def) against what is built from it
// (the registry) and what documents it (docs/formats.md's detection table).

#include "core/model/registry.hpp"

#include <gtest/gtest.h>

#include <fstream>
#include <regex>
#include <string>
#include <vector>

namespace payloadfs {
namespace {

// The list as the .def spells it, the fallback last.
std::vector<std::string> listed_formats() {
  std::vector<std::string> names;
#define PAYLOADFS_FORMAT(name) names.emplace_back(#name);
#include "core/formats/format_list.def"
  return names;
}

std::string listed_fallback() {
  std::string fallback;
#define PAYLOADFS_FORMAT(name)
#define PAYLOADFS_FALLBACK_FORMAT(name) fallback = #name;
#include "core/formats/format_list.def"
  return fallback;
}

// The rows `| n | `name` | ... |` of the table under "## Detection and registry order", in
// order; the row numbers must count 1, 2, 3, ...
std::vector<std::string> documented_formats() {
  std::ifstream in(std::string(PAYLOADFS_SOURCE_DIR) + "/docs/formats.md");
  EXPECT_TRUE(in.good()) << "cannot read docs/formats.md";
  const std::regex row(R"(^\| *([0-9]+) *\| *`([a-z0-9_]+)` *\|.*)");
  std::vector<std::string> names;
  bool in_section = false;
  for (std::string line; std::getline(in, line);) {
    if (line.starts_with("## ")) {
      if (in_section) break;
      in_section = line == "## Detection and registry order";
      continue;
    }
    std::smatch m;
    if (!in_section || !std::regex_match(line, m, row)) continue;
    EXPECT_EQ(m[1].str(), std::to_string(names.size() + 1)) << line;
    names.push_back(m[2].str());
  }
  return names;
}

TEST(Registry, BuiltinsFollowTheFormatList) {
  const Registry registry = Registry::with_builtins();
  std::vector<std::string> names;
  for (const Format* format : registry.formats()) names.emplace_back(format->name());
  EXPECT_EQ(names, listed_formats());
  for (const Format* format : registry.formats())
    EXPECT_EQ(registry.source_of(*format), "built-in") << format->name();
}

TEST(Registry, FallbackIsLastAndTakesUnrecognisedFiles) {
  const std::string fallback = listed_fallback();
  ASSERT_FALSE(fallback.empty());
  const std::vector<std::string> names = listed_formats();
  ASSERT_FALSE(names.empty());
  EXPECT_EQ(names.back(), fallback);
  const Registry registry = Registry::with_builtins();
  EXPECT_EQ(registry.detect({}, 0).name(), fallback);
}

TEST(Registry, DocsTableMatchesTheFormatList) {
  const std::vector<std::string> documented = documented_formats();
  ASSERT_FALSE(documented.empty()) << "no detection table in docs/formats.md";
  EXPECT_EQ(documented, listed_formats())
      << "docs/formats.md's detection table and core/formats/format_list.def disagree";
}

}  // namespace
}  // namespace payloadfs

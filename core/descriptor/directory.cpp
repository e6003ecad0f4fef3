// Loading every descriptor of a list of directories (load_descriptors in descriptor.hpp): the
// files of each in byte-wise name order, so the result does not depend on the filesystem.

#include <dirent.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>
#include <memory>
#include <set>
#include <string_view>

#include "core/descriptor/descriptor.hpp"
#include "core/render/json_text.hpp"

namespace payloadfs::descriptor {
namespace {

struct DirCloser {
  void operator()(DIR* dir) const { ::closedir(dir); }
};
using DirHandle = std::unique_ptr<DIR, DirCloser>;

// The names of the `*.json` files in `dir` (hidden ones left out), byte-wise sorted; none when
// `dir` does not exist, since every default directory is optional.
std::variant<std::vector<std::string>, LoadError> descriptor_names(const std::string& dir) {
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0) {
    if (errno == ENOENT) return std::vector<std::string>{};
    return LoadError{utf8_or_escaped(dir) + ": " + std::strerror(errno)};
  }
  if (!S_ISDIR(st.st_mode)) return LoadError{utf8_or_escaped(dir) + ": not a directory"};
  const DirHandle d(::opendir(dir.c_str()));
  if (d == nullptr) return LoadError{utf8_or_escaped(dir) + ": " + std::strerror(errno)};
  std::vector<std::string> names;
  // A readdir error ends the listing like its end does.
  while (const dirent* e = ::readdir(d.get())) {
    const std::string_view n = e->d_name;
    if (n.size() > 5 && n.ends_with(".json") && !n.starts_with(".")) names.emplace_back(n);
  }
  std::sort(names.begin(), names.end());
  return names;
}

}  // namespace

std::variant<LoadedDescriptors, LoadError> load_descriptors(const std::vector<std::string>& dirs,
                                                            const Limits& limits) {
  LoadedDescriptors out;
  std::map<std::string, std::string> owner;  // name -> file
  for (const auto& dir : dirs) {
    auto listed = descriptor_names(dir);
    if (auto* err = std::get_if<LoadError>(&listed)) return std::move(*err);
    const auto& names = std::get<std::vector<std::string>>(listed);
    if (names.size() > limits.max_files_per_dir)
      return LoadError{utf8_or_escaped(dir) + ": more than " +
                       std::to_string(limits.max_files_per_dir) + " descriptor files"};
    std::set<std::string> here;
    for (const auto& n : names) {
      const std::string path = dir + (dir.ends_with("/") ? "" : "/") + n;
      auto loaded = load_descriptor_file(path, limits);
      if (auto* err = std::get_if<LoadError>(&loaded)) return *err;
      auto format = std::get<std::unique_ptr<DescriptorFormat>>(std::move(loaded));
      const std::string name(format->name());
      if (here.count(name) != 0)
        return LoadError{utf8_or_escaped(path) + ": /name: format '" + name +
                         "' is already defined by " + utf8_or_escaped(owner[name])};
      if (owner.count(name) != 0) {
        out.shadowed.push_back(utf8_or_escaped(path) + ": format '" + name + "' is shadowed by " +
                               utf8_or_escaped(owner[name]));
        continue;
      }
      here.insert(name);
      owner[name] = path;
      out.formats.push_back(std::move(format));
    }
  }
  return out;
}

}  // namespace payloadfs::descriptor

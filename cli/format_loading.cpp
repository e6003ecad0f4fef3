#include "cli/format_loading.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string_view>

#include "core/descriptor/descriptor.hpp"
#include "core/io/byte_source.hpp"
#include "core/io/unique_fd.hpp"
#include "core/payload.hpp"

namespace payloadfs {

std::vector<std::string> descriptor_dirs(const std::optional<std::string>& explicit_dir) {
  std::vector<std::string> dirs;
  if (explicit_dir) dirs.push_back(*explicit_dir);
  if (const char* xdg = std::getenv("XDG_CONFIG_HOME"); xdg != nullptr && *xdg != '\0') {
    dirs.push_back(std::string(xdg) + "/payloadfs/formats");
  } else if (const char* home = std::getenv("HOME"); home != nullptr && *home != '\0') {
    dirs.push_back(std::string(home) + "/.config/payloadfs/formats");
  }
  // Packagers and test suites redirect the system directory; an empty value reads none.
  if (const char* system = std::getenv("PAYLOADFS_SYSTEM_FORMATS"); system != nullptr) {
    if (*system != '\0') dirs.push_back(system);
  } else {
    dirs.push_back(kSystemDescriptorDir);
  }
  return dirs;
}

std::variant<Registry, std::string> load_registry(const std::vector<std::string>& dirs) {
  auto loaded = descriptor::load_descriptors(dirs);
  if (auto* err = std::get_if<descriptor::LoadError>(&loaded)) return err->message;
  auto& descriptors = std::get<descriptor::LoadedDescriptors>(loaded);
  Registry registry = Registry::with_builtins();
  for (auto& format : descriptors.formats) {
    std::string source = format->source_path();
    registry.add_descriptor(std::move(format), std::move(source));
  }
  return registry;
}

int run_check_format(int argc, char** argv) {
  std::vector<std::string> args;
  for (int i = 1; i < argc; ++i)
    if (std::string_view(argv[i]) != "--check-format") args.emplace_back(argv[i]);
  if (args.empty()) {
    std::fprintf(stderr, "payloadfs: --check-format needs DESCRIPTOR.json [FILE...]\n");
    return 2;
  }
  auto loaded = descriptor::load_descriptor_file(args[0]);
  if (auto* err = std::get_if<descriptor::LoadError>(&loaded)) {
    std::fprintf(stderr, "payloadfs: %s\n", err->message.c_str());
    return 1;
  }
  auto format = std::move(std::get<std::unique_ptr<descriptor::DescriptorFormat>>(loaded));
  std::printf("%s: descriptor '%.*s' is valid\n", args[0].c_str(),
              static_cast<int>(format->name().size()), format->name().data());
  const std::string name(format->name());
  Registry registry;
  registry.add_descriptor(std::move(format), args[0]);
  int status = 0;
  for (size_t i = 1; i < args.size(); ++i) {
    const UniqueFd fd(::open(args[i].c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY));
    struct stat st {};
    if (!fd.valid() || ::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode)) {
      std::fprintf(stderr, "payloadfs: %s: %s\n", args[i].c_str(),
                   fd.valid() ? "not a regular file" : std::strerror(errno));
      status = 1;
      continue;
    }
    const auto payload = Payload::build(args[i], fd.get(), st, registry);
    const Json header = Json::parse(payload->header_json());
    std::printf("\n== %s: %s\n%s", args[i].c_str(),
                payload->format() == name ? "matches" : "does NOT match the descriptor's magic",
                payload->header_json().c_str());
    if (payload->format() != name || header.contains("errors")) status = 1;
    // The first slices, as slices.json lists them.
    const std::string slices = payload->slices_json_text(FdSource(fd.get(), payload->size()));
    size_t shown = 0, at = 0;
    std::printf("first slices:\n");
    while (shown < 10 && at < slices.size()) {
      const size_t end = slices.find('\n', at);
      const std::string line =
          slices.substr(at, end == std::string::npos ? std::string::npos : end - at);
      if (line != "[" && line != "]" && line != "[]") {
        std::printf("%s\n", line.c_str());
        ++shown;
      }
      if (end == std::string::npos) break;
      at = end + 1;
    }
  }
  return status;
}

}  // namespace payloadfs

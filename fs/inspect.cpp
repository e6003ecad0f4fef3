#include "fs/inspect.hpp"

#include <fcntl.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>

#include "core/byte_source.hpp"
#include "core/payload.hpp"
#include "core/registry.hpp"
#include "core/unique_fd.hpp"
#include "fs/format_loading.hpp"

namespace payloadfs {

int run_inspect(int argc, char** argv) {
  bool slices = false;
  std::string file;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--inspect") continue;
    if (arg == "--slices") {
      slices = true;
    } else if (!arg.empty() && arg[0] == '-') {
      std::fprintf(stderr, "payloadfs: --inspect does not take option '%s'\n", argv[i]);
      return 2;
    } else if (file.empty()) {
      file = arg;
    } else {
      std::fprintf(stderr, "payloadfs: --inspect takes one FILE\n");
      return 2;
    }
  }
  if (file.empty()) {
    std::fprintf(stderr, "payloadfs: --inspect needs a FILE\n");
    return 2;
  }
  const UniqueFd fd(::open(file.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY));
  struct stat st {};
  if (!fd.valid() || ::fstat(fd.get(), &st) != 0) {
    std::fprintf(stderr, "payloadfs: %s: %s\n", file.c_str(), std::strerror(errno));
    return 1;
  }
  if (!S_ISREG(st.st_mode)) {
    std::fprintf(stderr, "payloadfs: %s: not a regular file\n", file.c_str());
    return 1;
  }
  auto loaded = load_registry(descriptor_dirs(std::nullopt));
  if (const auto* err = std::get_if<std::string>(&loaded)) {
    std::fprintf(stderr, "payloadfs: %s\n", err->c_str());
    return 1;
  }
  const Registry& registry = std::get<Registry>(loaded);
  const auto payload = Payload::build(file, fd.get(), st, registry);
  const std::string out = slices ? payload->slices_json_text(FdSource(fd.get(), payload->size()))
                                 : payload->header_json();
  return std::fwrite(out.data(), 1, out.size(), stdout) == out.size() ? 0 : 1;
}

}  // namespace payloadfs

#include "cli/inspect.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "cli/format_loading.hpp"
#include "core/io/byte_source.hpp"
#include "core/io/unique_fd.hpp"
#include "core/model/registry.hpp"
#include "core/payload.hpp"
#include "core/render/json_text.hpp"

namespace payloadfs {
namespace {

struct DirCloser {
  void operator()(DIR* dir) const { ::closedir(dir); }
};

struct Settings {
  bool slices = false;
  bool pretty = false;
  // --slices on a single FILE prints slices.json as the mount shows it, an array; otherwise
  // each file's slices are wrapped as {"path", "slices"}.
  bool wrap_slices = true;
};

class Inspector {
 public:
  Inspector(const Registry& registry, Settings settings)
      : registry_(registry), settings_(settings) {}

  // A FILE or DIR from the command line (followed if a symlink: the user named it).
  void argument(const std::string& path) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) return fail(path, std::strerror(errno));
    if (S_ISDIR(st.st_mode)) return directory(path, false);
    file(path, false);
  }

  [[nodiscard]] int status() const { return failed_ || output_failed_ ? 1 : 0; }
  [[nodiscard]] bool output_failed() const { return output_failed_; }

 private:
  void fail(const std::string& path, const char* why) {
    std::fprintf(stderr, "payloadfs: %s: %s\n", path.c_str(), why);
    failed_ = true;
  }

  // Sorted by name at each level, depth first: the order of the sorted full paths.
  void directory(const std::string& path, bool walked) {
    const UniqueFd fd(
        ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC | (walked ? O_NOFOLLOW : 0)));
    if (!fd.valid()) return fail(path, std::strerror(errno));
    UniqueFd listing(::dup(fd.get()));  // fdopendir takes it; fd stays for fstatat
    const std::unique_ptr<DIR, DirCloser> dir(listing.valid() ? ::fdopendir(listing.get())
                                                              : nullptr);
    if (!dir) return fail(path, std::strerror(errno));
    (void)listing.release_to_owner();
    std::vector<std::string> names;
    while (const dirent* e = ::readdir(dir.get())) {
      const std::string_view name = e->d_name;
      if (name != "." && name != "..") names.emplace_back(name);
    }
    std::sort(names.begin(), names.end());
    const std::string prefix = path.ends_with('/') ? path : path + "/";
    for (const auto& name : names) {
      if (output_failed_) return;
      struct stat st {};
      if (::fstatat(fd.get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
        fail(prefix + name, std::strerror(errno));
      } else if (S_ISDIR(st.st_mode)) {
        directory(prefix + name, true);
      } else if (S_ISREG(st.st_mode)) {
        file(prefix + name, true);
      }  // symlinks, devices, FIFOs, sockets: not payloads
    }
  }

  void file(const std::string& path, bool walked) {
    // O_NOFOLLOW: a file found by walking that became a symlink since is not followed.
    const int flags = O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY | (walked ? O_NOFOLLOW : 0);
    const UniqueFd fd(::open(path.c_str(), flags));
    struct stat st {};
    if (!fd.valid() || ::fstat(fd.get(), &st) != 0) return fail(path, std::strerror(errno));
    if (!S_ISREG(st.st_mode)) return fail(path, "not a regular file");
    const auto payload = Payload::build(path, fd.get(), st, registry_);
    if (!settings_.slices) {
      if (settings_.pretty) return write(payload->header_json());
      return write(Json::parse(payload->header_json()).dump() + "\n");
    }
    const std::string quoted_path = Json(utf8_or_escaped(path)).dump();
    if (settings_.wrap_slices) {
      write(settings_.pretty ? "{\n  \"path\": " + quoted_path + ",\n  \"slices\": "
                             : "{\"path\":" + quoted_path + ",\"slices\":");
    }
    if (!slices(*payload, fd.get())) return;
    if (settings_.wrap_slices) write(settings_.pretty ? "\n}\n" : "}");
    if (!settings_.pretty) write("\n");
  }

  // slices.json a piece at a time (captures can have millions of records). Compact drops
  // the newlines between its elements (JSON strings never hold a raw one); wrapped, its final
  // newline is the wrapper's to write.
  bool slices(const Payload& payload, int fd) {
    const FdSource source(fd, payload.size());
    const uint64_t size = payload.slices_json_size(source);
    SlicesJson::Piece piece;
    for (uint64_t at = 0; at < size;) {
      if (!payload.slices_json_piece(at, source, piece)) {
        // Part of the line may be out: end it so the next object starts on its own line.
        write("\n");
        fail(payload.path(), "changed while being read");
        return false;
      }
      std::string text = piece.text.substr(static_cast<size_t>(at - piece.start));
      at += text.size();
      if (!settings_.pretty) {
        text.erase(std::remove(text.begin(), text.end(), '\n'), text.end());
      } else if (at == size && settings_.wrap_slices && text.ends_with('\n')) {
        text.pop_back();
      }
      write(text);
    }
    return true;
  }

  void write(std::string_view text) {
    if (!output_failed_ && std::fwrite(text.data(), 1, text.size(), stdout) != text.size())
      output_failed_ = true;
  }

  const Registry& registry_;
  const Settings settings_;
  bool failed_ = false;
  bool output_failed_ = false;
};

}  // namespace

int run_inspect(int argc, char** argv) {
  Settings settings;
  settings.pretty = ::isatty(STDOUT_FILENO) == 1;
  std::vector<std::string> paths;
  bool options_done = false;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (options_done || arg.empty() || arg[0] != '-') {
      paths.emplace_back(arg);
    } else if (arg == "--") {
      options_done = true;
    } else if (arg == "--inspect") {
      continue;
    } else if (arg == "--slices") {
      settings.slices = true;
    } else if (arg == "--pretty") {
      settings.pretty = true;
    } else if (arg == "--compact") {
      settings.pretty = false;
    } else {
      std::fprintf(stderr, "payloadfs: --inspect does not take option '%s'\n", argv[i]);
      return 2;
    }
  }
  if (paths.empty()) {
    std::fprintf(stderr, "payloadfs: --inspect needs a FILE or DIR\n");
    return 2;
  }
  if (paths.size() == 1) {
    struct stat st {};
    settings.wrap_slices = ::stat(paths[0].c_str(), &st) == 0 && S_ISDIR(st.st_mode);
  }
  auto loaded = load_registry(descriptor_dirs(std::nullopt));
  if (const auto* err = std::get_if<std::string>(&loaded)) {
    std::fprintf(stderr, "payloadfs: %s\n", err->c_str());
    return 1;
  }
  Inspector inspector(std::get<Registry>(loaded), settings);
  for (const auto& path : paths) {
    inspector.argument(path);
    if (inspector.output_failed()) break;
  }
  if (std::fflush(stdout) != 0 || inspector.output_failed()) {
    std::fprintf(stderr, "payloadfs: writing the output failed: %s\n", std::strerror(errno));
    return 1;
  }
  return inspector.status();
}

}  // namespace payloadfs

#pragma once
// The SRC directory. Every path is resolved beneath it without following symbolic links
// (openat2 RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS), so nothing outside SRC can be reached,
// and everything is opened read-only: SRC is never written.

#include <sys/stat.h>

#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "core/io/result.hpp"
#include "core/io/unique_fd.hpp"

namespace payloadfs {

class SourceRoot {
 public:
  struct Entry {
    std::string name;
    unsigned char type;  // DT_* from getdents
    ino_t ino;
  };

  // An errno-style failure with a message for the user.
  struct OpenError {
    int error;
    std::string message;
  };
  static std::variant<SourceRoot, OpenError> open(const std::string& path);

  [[nodiscard]] const std::string& path() const noexcept { return path_; }
  [[nodiscard]] int fd() const noexcept { return fd_.get(); }

  // `rel` is "" for SRC itself or "a/b" (no leading '/'). Failures are errno values.
  [[nodiscard]] Result<struct stat> stat(std::string_view rel) const;
  [[nodiscard]] Result<UniqueFd> open_file(std::string_view rel) const;
  [[nodiscard]] Result<std::vector<Entry>> list(std::string_view rel) const;
  // For a symbolic link at `rel` that resolves to a directory or regular file inside SRC: a
  // target relative to the link's directory that names the same object without going through
  // any link. ENOENT for links that dangle, loop, or lead outside SRC (they are not shown).
  [[nodiscard]] Result<std::string> link_target(std::string_view rel) const;

  [[nodiscard]] static std::string join(std::string_view dir, std::string_view name);

 private:
  SourceRoot(UniqueFd fd, std::string path) : fd_(std::move(fd)), path_(std::move(path)) {}
  [[nodiscard]] Result<UniqueFd> open_beneath(std::string_view rel, int flags) const;

  UniqueFd fd_;
  std::string path_;  // canonical (realpath)
};

}  // namespace payloadfs

#include "core/io/source_root.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <memory>

namespace payloadfs {
namespace {

bool has_dot_component(std::string_view rel) {
  size_t start = 0;
  while (start <= rel.size()) {
    const size_t end = std::min(rel.find('/', start), rel.size());
    const std::string_view part = rel.substr(start, end - start);
    if (part.empty() || part == "." || part == "..") return true;
    start = end + 1;
  }
  return false;
}

int sys_openat2(int dirfd, const char* path, int flags) {
  open_how how{};
  how.flags = static_cast<uint64_t>(flags);
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
  return static_cast<int>(::syscall(SYS_openat2, dirfd, path, &how, sizeof how));
}

// For kernels without openat2: walk the components with O_NOFOLLOW.
int walk_open(int root, std::string_view rel, int flags) {
  UniqueFd dir(::fcntl(root, F_DUPFD_CLOEXEC, 0));
  if (!dir.valid()) return -1;
  size_t start = 0;
  while (true) {
    const size_t slash = rel.find('/', start);
    const std::string part(
        rel.substr(start, slash == std::string_view::npos ? rel.npos : slash - start));
    if (slash == std::string_view::npos)
      return ::openat(dir.get(), part.c_str(), flags | O_NOFOLLOW);
    UniqueFd next(::openat(dir.get(), part.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!next.valid()) return -1;
    dir = std::move(next);
    start = slash + 1;
  }
}

}  // namespace

std::variant<SourceRoot, SourceRoot::OpenError> SourceRoot::open(const std::string& given) {
  // Canonical, so that where a symbolic link leads can be compared with it.
  const std::unique_ptr<char, decltype(&std::free)> real(::realpath(given.c_str(), nullptr),
                                                         &std::free);
  const std::string path = real ? std::string(real.get()) : given;
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd.valid()) {
    const int err = errno;
    struct stat st {};
    if (err == ENOTDIR || (::stat(path.c_str(), &st) == 0 && !S_ISDIR(st.st_mode)))
      return OpenError{ENOTDIR, "source '" + path + "' is not a directory"};
    return OpenError{err, "source '" + path + "': " + std::strerror(err)};
  }
  return SourceRoot(std::move(fd), path);
}

std::string SourceRoot::join(std::string_view dir, std::string_view name) {
  if (dir.empty()) return std::string(name);
  std::string out;
  out.reserve(dir.size() + 1 + name.size());
  out.append(dir).append("/").append(name);
  return out;
}

Result<UniqueFd> SourceRoot::open_beneath(std::string_view rel, int flags) const {
  flags |= O_CLOEXEC;
  if (rel.empty()) {
    UniqueFd fd(::openat(fd_.get(), ".", flags));
    if (!fd.valid()) return errno;
    return fd;
  }
  if (has_dot_component(rel)) return ENOENT;
  const std::string path(rel);
  static std::atomic<bool> have_openat2{true};
  if (have_openat2) {
    int fd = sys_openat2(fd_.get(), path.c_str(), flags);
    if (fd < 0 && errno == ENOSYS) {
      have_openat2 = false;
    } else {
      if (fd < 0 && errno == ELOOP) return ENOENT;  // a symlink on the way: not exposed
      if (fd < 0 && errno == EXDEV) return ENOENT;
      if (fd < 0) return errno;
      return UniqueFd(fd);
    }
  }
  const int fd = walk_open(fd_.get(), rel, flags);
  if (fd < 0) return errno == ELOOP ? ENOENT : errno;
  return UniqueFd(fd);
}

Result<struct stat> SourceRoot::stat(std::string_view rel) const {
  auto opened = open_beneath(rel, O_PATH | O_NOFOLLOW);
  if (const int* err = error_of(opened)) return *err;
  struct stat st {};
  if (::fstat(value_of(opened).get(), &st) != 0) return errno;
  return st;
}

Result<UniqueFd> SourceRoot::open_file(std::string_view rel) const {
  // O_NONBLOCK: a FIFO swapped in for a regular file must not hang the daemon.
  const int flags = O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY;
  auto opened = open_beneath(rel, flags | O_NOATIME);  // reading must not even touch atime
  if (const int* err = error_of(opened); err != nullptr && *err == EPERM)
    opened = open_beneath(rel, flags);
  return opened;
}

Result<std::vector<SourceRoot::Entry>> SourceRoot::list(std::string_view rel) const {
  auto opened = open_beneath(rel, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
  if (const int* err = error_of(opened)) return *err;
  UniqueFd fd = std::move(value_of(opened));
  DIR* dir = ::fdopendir(fd.get());
  if (dir == nullptr) return errno;
  (void)fd.release_to_owner();
  std::vector<Entry> entries;
  errno = 0;
  while (const dirent* d = ::readdir(dir)) {
    const std::string_view name(d->d_name);
    if (name == "." || name == "..") continue;
    entries.push_back(Entry{std::string(name), d->d_type, d->d_ino});
  }
  const int err = errno;
  ::closedir(dir);
  if (err != 0) return err;
  return entries;
}

Result<std::string> SourceRoot::link_target(std::string_view rel) const {
  auto link = stat(rel);  // the link itself, reached without following any link
  if (const int* err = error_of(link)) return *err;
  if (!S_ISLNK(value_of(link).st_mode)) return EINVAL;
  // The kernel's own resolution, with every link and ".." on the way, decides where it leads.
  const std::string full = (path_ == "/" ? "" : path_) + "/" + std::string(rel);
  const std::unique_ptr<char, decltype(&std::free)> real(::realpath(full.c_str(), nullptr),
                                                         &std::free);
  if (!real) return ENOENT;
  const std::string_view resolved(real.get());
  std::string_view inside;
  if (resolved == path_) {
    inside = "";
  } else {
    const std::string_view prefix = path_ == "/" ? std::string_view() : std::string_view(path_);
    if (resolved.size() <= prefix.size() + 1 || resolved.substr(0, prefix.size()) != prefix ||
        resolved[prefix.size()] != '/')
      return ENOENT;
    inside = resolved.substr(prefix.size() + 1);
  }
  // Only what the mount shows may be linked to; checked again without following links, so the
  // answer is about the object that the mount will reach through the returned path.
  auto target = stat(inside);
  if ((error_of(target) != nullptr)) return ENOENT;
  const mode_t mode = value_of(target).st_mode;
  if (!S_ISDIR(mode) && !S_ISREG(mode)) return ENOENT;
  // Up to SRC from the link's directory, then down: the mount's ".." never leaves the mount
  // because every component is a real directory of SRC.
  std::string out;
  for (const char c : rel)
    if (c == '/') out += "../";
  out += inside;
  if (out.empty()) return std::string(".");
  if (out.back() == '/') out.pop_back();
  return out;
}

}  // namespace payloadfs

#include "fs/source_watcher.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <cstring>

#include "fs/log.hpp"

namespace payloadfs {
namespace {

constexpr uint32_t kEvents = IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_MODIFY |
                             IN_CLOSE_WRITE | IN_ATTRIB | IN_ONLYDIR | IN_DONT_FOLLOW |
                             IN_EXCL_UNLINK;

using WdOfDir = std::unordered_map<std::string, int>;
using DirOfWd = std::unordered_map<int, std::string>;

std::string joined(const std::string& dir, const std::string& name) {
  return dir.empty() ? name : dir + "/" + name;
}

// Directory `dir` was moved away (within SRC or out of it): the watches on it and on the
// directories below it are known by names that now lead elsewhere or nowhere. Forgotten and
// removed, so that a directory given one of those names later is watched anew when looked up
// (`mv data data.old && mkdir data`), and the moved ones are watched under their new names.
void forget_moved(int inotify, const std::string& dir, WdOfDir& wd_of_dir, DirOfWd& dir_of_wd) {
  for (auto it = wd_of_dir.begin(); it != wd_of_dir.end();) {
    const std::string& rel = it->first;
    const bool below =
        rel.size() > dir.size() && rel.compare(0, dir.size(), dir) == 0 && rel[dir.size()] == '/';
    if (rel != dir && !below) {
      ++it;
      continue;
    }
    ::inotify_rm_watch(inotify, it->second);
    dir_of_wd.erase(it->second);
    it = wd_of_dir.erase(it);
  }
}

// The names in source directory `path` (no "." or ".."); empty when it cannot be listed.
std::vector<std::string> names_in(const std::string& path) {
  std::vector<std::string> names;
  const int fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return names;
  DIR* dir = ::fdopendir(fd);
  if (dir == nullptr) {
    ::close(fd);
    return names;
  }
  while (const dirent* entry = ::readdir(dir)) {
    const std::string_view name = entry->d_name;
    if (name != "." && name != "..") names.emplace_back(name);
  }
  ::closedir(dir);
  return names;
}

// After an overflow: each watched directory's watch is checked against what its name leads to
// now (dropped when gone, moved to the directory that has the name now), and every name in
// each is returned as a change.
std::vector<SourceWatcher::Change> rescan(int inotify, const std::string& root, std::mutex& mutex,
                                          WdOfDir& wd_of_dir, DirOfWd& dir_of_wd) {
  std::vector<std::pair<std::string, int>> watched;
  {
    const std::lock_guard lock(mutex);
    watched.assign(wd_of_dir.begin(), wd_of_dir.end());
  }
  std::vector<SourceWatcher::Change> changes;
  for (const auto& [rel, wd] : watched) {
    const std::string path = rel.empty() ? root : root + "/" + rel;
    // SRC itself is served from the descriptor held since the mount, whatever its path
    // leads to now: its watch stays.
    if (!rel.empty()) {
      const std::lock_guard lock(mutex);
      const auto it = wd_of_dir.find(rel);
      if (it == wd_of_dir.end() || it->second != wd) continue;  // changed meanwhile
      // The same watch comes back while the name still leads to the directory watched.
      const int now = ::inotify_add_watch(inotify, path.c_str(), kEvents);
      if (now != wd) {  // gone (or unwatchable), or another directory has its name now
        ::inotify_rm_watch(inotify, wd);
        dir_of_wd.erase(wd);
        wd_of_dir.erase(rel);
        if (now >= 0) {
          if (auto old = dir_of_wd.find(now); old != dir_of_wd.end()) wd_of_dir.erase(old->second);
          dir_of_wd[now] = rel;
          wd_of_dir[rel] = now;
        }
      }
    }
    for (auto& name : names_in(path)) changes.push_back({rel, std::move(name)});
  }
  return changes;
}

}  // namespace

std::unique_ptr<SourceWatcher> SourceWatcher::start(std::string root_path, Listener listener) {
  UniqueFd inotify(::inotify_init1(IN_NONBLOCK | IN_CLOEXEC));
  UniqueFd wake(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  if (!inotify.valid() || !wake.valid()) return nullptr;
  return std::unique_ptr<SourceWatcher>(new SourceWatcher(
      std::move(inotify), std::move(wake), std::move(root_path), std::move(listener)));
}

SourceWatcher::SourceWatcher(UniqueFd inotify, UniqueFd wake, std::string root, Listener listener)
    : inotify_(std::move(inotify)),
      wake_(std::move(wake)),
      root_(std::move(root)),
      listener_(std::move(listener)),
      thread_([this] { run(); }) {}

void SourceWatcher::stop() {
  const uint64_t one = 1;
  (void)!::write(wake_.get(), &one, sizeof one);
  if (thread_.joinable()) thread_.join();
}

SourceWatcher::~SourceWatcher() {
  stop();
}

bool SourceWatcher::watch(const std::string& rel) {
  const std::lock_guard lock(mutex_);
  if (wd_of_dir_.contains(rel)) return true;
  const std::string path = rel.empty() ? root_ : root_ + "/" + rel;
  const int wd = ::inotify_add_watch(inotify_.get(), path.c_str(), kEvents);
  if (wd < 0) {
    // Typically the watch limit (ENOSPC): warn once, not for every directory looked up.
    static std::atomic<bool> warned{false};
    const int err = errno;
    const LogLevel level = warned.exchange(true) ? LogLevel::debug : LogLevel::warn;
    log(level, "cannot watch %s for changes (%s%s); its changes show as cached entries expire",
        path.c_str(), std::strerror(err),
        err == ENOSPC ? "; raise fs.inotify.max_user_watches" : "");
    return false;
  }
  // The same wd comes back for a directory reached by another name (a bind mount): keep one.
  if (auto old = dir_of_wd_.find(wd); old != dir_of_wd_.end()) wd_of_dir_.erase(old->second);
  dir_of_wd_[wd] = rel;
  wd_of_dir_[rel] = wd;
  return true;
}

bool SourceWatcher::watching(const std::string& rel) const {
  const std::lock_guard lock(mutex_);
  return wd_of_dir_.contains(rel);
}

void SourceWatcher::run() {
  alignas(inotify_event) std::array<char, 64 * 1024> buffer{};
  std::array<pollfd, 2> fds{pollfd{inotify_.get(), POLLIN, 0}, pollfd{wake_.get(), POLLIN, 0}};
  while (true) {
    if (::poll(fds.data(), fds.size(), -1) < 0 && errno != EINTR) {
      log(LogLevel::warn, "watching the source stopped: poll: %s", std::strerror(errno));
      return;
    }
    if ((fds[1].revents & POLLIN) != 0) return;
    std::vector<Change> changes;
    std::unordered_set<std::string> seen;
    bool overflow = false;
    // Drain everything queued, then report each distinct change once.
    while (true) {
      const ssize_t n = ::read(inotify_.get(), buffer.data(), buffer.size());
      if (n <= 0) break;
      for (ssize_t at = 0; at < n;) {
        inotify_event event{};
        std::memcpy(&event, buffer.data() + at, sizeof event);
        const char* name = buffer.data() + at + sizeof(inotify_event);
        at += static_cast<ssize_t>(sizeof(inotify_event) + event.len);
        if ((event.mask & IN_Q_OVERFLOW) != 0) {
          overflow = true;
          continue;
        }
        const std::lock_guard lock(mutex_);
        const auto dir = dir_of_wd_.find(event.wd);
        if (dir == dir_of_wd_.end()) continue;
        if ((event.mask & IN_IGNORED) != 0) {  // the directory is gone
          wd_of_dir_.erase(dir->second);
          dir_of_wd_.erase(dir);
          continue;
        }
        if (event.len == 0) continue;
        Change change{dir->second, std::string(name, ::strnlen(name, event.len))};
        if ((event.mask & (IN_MOVED_FROM | IN_ISDIR)) == (IN_MOVED_FROM | IN_ISDIR))
          forget_moved(inotify_.get(), joined(change.dir, change.name), wd_of_dir_, dir_of_wd_);
        if (seen.insert(change.dir + '\0' + change.name).second)
          changes.push_back(std::move(change));
      }
    }
    if (overflow) {
      log(LogLevel::warn,
          "inotify queue overflowed: invalidating every cached attribute, "
          "and every name in the watched directories");
      // The lost events may have created names the kernel caches as missing, and moved or
      // removed watched directories: every entry of every watched directory counts as
      // changed (the listener drops its cached name), reported before the overflow itself.
      for (auto& change : rescan(inotify_.get(), root_, mutex_, wd_of_dir_, dir_of_wd_)) {
        if (seen.insert(change.dir + '\0' + change.name).second)
          changes.push_back(std::move(change));
      }
      listener_(changes, false);
      listener_({}, true);
    } else if (!changes.empty()) {
      listener_(changes, false);
    }
  }
}

}  // namespace payloadfs

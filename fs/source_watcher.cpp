#include "fs/source_watcher.hpp"

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
        if (seen.insert(change.dir + '\0' + change.name).second)
          changes.push_back(std::move(change));
      }
    }
    if (overflow) {
      log(LogLevel::warn, "inotify queue overflowed: invalidating every cached attribute");
    }
    if (overflow || !changes.empty()) listener_(changes, overflow);
  }
}

}  // namespace payloadfs

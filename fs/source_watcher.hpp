#pragma once
// Watches the source directories the kernel has seen (inotify) and reports changes, so that
// payloadfs can let the kernel cache names and attributes for long and invalidate exactly
// what changed instead of expiring everything every second.

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "core/io/unique_fd.hpp"

namespace payloadfs {

class SourceWatcher {
 public:
  struct Change {
    std::string dir;   // source directory relative to SRC ("" is SRC)
    std::string name;  // the entry in it that changed
    friend bool operator==(const Change&, const Change&) = default;
  };
  // Called on the watcher's thread with a batch of distinct changes. `overflow` means events
  // were lost and everything should be considered changed.
  using Listener = std::function<void(const std::vector<Change>& changes, bool overflow)>;

  // Nullptr when inotify is unavailable.
  static std::unique_ptr<SourceWatcher> start(std::string root_path, Listener listener);
  // Ends the thread (the listener is not called after this returns); watch() and watching()
  // still answer. Not concurrently with itself or the destructor.
  void stop();
  ~SourceWatcher();
  SourceWatcher(const SourceWatcher&) = delete;
  SourceWatcher& operator=(const SourceWatcher&) = delete;

  // Starts watching source directory `rel` (idempotent). False when it cannot be watched
  // (e.g. the inotify watch limit): changes there are then only seen when caches expire.
  bool watch(const std::string& rel);
  [[nodiscard]] bool watching(const std::string& rel) const;

 private:
  SourceWatcher(UniqueFd inotify, UniqueFd wake, std::string root, Listener listener);
  void run();

  UniqueFd inotify_;
  UniqueFd wake_;  // eventfd: tells the thread to stop
  std::string root_;
  Listener listener_;

  mutable std::mutex mutex_;  // guards the two maps
  std::unordered_map<int, std::string> dir_of_wd_;
  std::unordered_map<std::string, int> wd_of_dir_;

  std::thread thread_;  // last: started once everything above exists
};

}  // namespace payloadfs

#pragma once
// SIGTERM, SIGINT and SIGHUP end the mount in two steps: first what must finish while the
// workers still answer requests, then the request loop.
//
// libfuse's own handlers end the loop at once. That can leave the source watcher stuck for
// good: a change notification waits in the kernel for a directory lock held by a LOOKUP, and
// once the workers stop nobody answers that LOOKUP. Closing /dev/fuse does not help (the
// notification's write holds the device open), and neither does SIGKILL (the thread waits
// uninterruptibly), so every reader of the mount hangs with it. Here the first signal wakes a
// thread that runs `quiesce` (stop the watcher, with the workers still serving) and only then
// tells the session to exit.

#include <fuse_lowlevel.h>

#include <atomic>
#include <functional>
#include <memory>
#include <thread>

#include "core/io/unique_fd.hpp"

namespace payloadfs {

class StopSignals {
 public:
  // Installs the handlers (before mounting, so that no signal meets the default action). One
  // instance at a time. Nullptr, with errno, when an eventfd cannot be had.
  static std::unique_ptr<StopSignals> install(fuse_session* session);
  // Starts the thread that answers the first signal: `quiesce`, then the session's exit.
  // Called in the process that serves (after fuse_daemonize, which forks).
  void start(std::function<void()> quiesce);
  // Restores the previous handlers and ends the thread.
  ~StopSignals();
  StopSignals(const StopSignals&) = delete;
  StopSignals& operator=(const StopSignals&) = delete;

 private:
  explicit StopSignals(UniqueFd wake) : wake_(std::move(wake)) {}
  void run();

  UniqueFd wake_;  // eventfd: the signal handler's (and the destructor's) word to run()
  std::atomic<bool> closing_{false};  // the destructor's word: return without quiescing
  std::function<void()> quiesce_;
  pthread_t loop_thread_{};  // the thread running the request loop, interrupted at the end
  std::thread thread_;
};

}  // namespace payloadfs

#include "fs/spin_loop.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <sys/epoll.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <thread>
#include <vector>

#include "core/io/unique_fd.hpp"
#include "fs/loop_status.hpp"

namespace payloadfs {
namespace {

// How long a sleeping worker waits before it looks at the session's exit flag again (a
// signal sets the flag from whichever thread it lands on).
constexpr int kExitCheckMs = 50;

class SpinLoop {
 public:
  SpinLoop(fuse_session* session, std::chrono::microseconds spin)
      : session_(session), spin_(spin) {}

  void worker() {
    // Each worker sleeps in its own epoll set, registered exclusively, so a request wakes
    // one worker rather than all of them.
    const UniqueFd epoll(::epoll_create1(EPOLL_CLOEXEC));
    epoll_event interest{};
    interest.events = EPOLLIN | EPOLLEXCLUSIVE;
    if (!epoll.valid() ||
        ::epoll_ctl(epoll.get(), EPOLL_CTL_ADD, fuse_session_fd(session_), &interest) != 0) {
      fail(-errno);
      return;
    }
    fuse_buf buf{};
    while (!fuse_session_exited(session_)) {
      const int got = fuse_session_receive_buf(session_, &buf);
      if (got > 0) {
        fuse_session_process_buf(session_, &buf);
        spin_after_request();
        continue;
      }
      if (got == 0) break;  // unmounted, or the session was told to exit
      if (connection_ended(got)) {
        fuse_session_exit(session_);
        break;
      }
      if (got == -EINTR) continue;
      if (got != -EAGAIN) {
        fail(got);
        break;
      }
      epoll_event ready{};
      (void)::epoll_wait(epoll.get(), &ready, 1, kExitCheckMs);
    }
    std::free(buf.mem);
  }

  [[nodiscard]] int error() const { return error_.load(); }

 private:
  // Polls for the next request for up to spin_, if no other worker is spinning already.
  // Returns with a request waiting, or when the time is up (the caller then sleeps).
  void spin_after_request() {
    bool expected = false;
    if (!spinning_.compare_exchange_strong(expected, true)) return;
    const auto until = std::chrono::steady_clock::now() + spin_;
    const int fd = fuse_session_fd(session_);
    while (std::chrono::steady_clock::now() < until && !fuse_session_exited(session_)) {
      pollfd ready{fd, POLLIN, 0};
      if (::poll(&ready, 1, 0) > 0) break;
      ::sched_yield();  // a reader sharing this vCPU runs now
    }
    spinning_.store(false);
  }

  void fail(int error) {
    int none = 0;
    error_.compare_exchange_strong(none, error);
    fuse_session_exit(session_);
  }

  fuse_session* const session_;
  const std::chrono::microseconds spin_;
  std::atomic<bool> spinning_{false};
  std::atomic<int> error_{0};
};

}  // namespace

int run_spin_loop(fuse_session* session, unsigned threads, std::chrono::microseconds spin) {
  const int fd = fuse_session_fd(session);
  const int flags = ::fcntl(fd, F_GETFL);
  if (flags < 0 || ::fcntl(fd, F_SETFL, flags | O_NONBLOCK) != 0) return -errno;
  SpinLoop loop(session, spin);
  std::vector<std::thread> workers;
  for (unsigned i = 0; i < (threads == 0 ? 1 : threads); ++i)
    workers.emplace_back([&loop] { loop.worker(); });
  for (auto& worker : workers) worker.join();
  return loop.error();
}

}  // namespace payloadfs

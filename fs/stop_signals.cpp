#include "fs/stop_signals.hpp"

#include <poll.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdint>

namespace payloadfs {
namespace {

constexpr int kStopSignals[] = {SIGTERM, SIGINT, SIGHUP};
constexpr int kResignalMs = 100;

// What the handler may touch: lock-free atomics only.
std::atomic<fuse_session*> g_session{nullptr};
std::atomic<int> g_wake_fd{-1};
std::atomic<bool> g_quiesced{false};
struct sigaction g_previous[3];
struct sigaction g_previous_pipe;

void on_stop_signal(int) {
  const int saved = errno;
  if (g_quiesced.load()) {
    // Sent by run() once quiesced (or repeated by the user then): end the loop. Delivered to
    // the loop's thread, it also interrupts the wait the loop is in.
    if (fuse_session* session = g_session.load(); session != nullptr) fuse_session_exit(session);
  } else {
    const uint64_t one = 1;
    (void)!::write(g_wake_fd.load(), &one, sizeof one);
  }
  errno = saved;
}

}  // namespace

std::unique_ptr<StopSignals> StopSignals::install(fuse_session* session) {
  UniqueFd wake(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!wake.valid()) return nullptr;
  std::unique_ptr<StopSignals> out(new StopSignals(std::move(wake)));
  g_session.store(session);
  g_wake_fd.store(out->wake_.get());
  g_quiesced.store(false);
  struct sigaction action {};
  action.sa_handler = on_stop_signal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = 0;  // no SA_RESTART: the loop's blocking read must see EINTR
  for (size_t i = 0; i < std::size(kStopSignals); ++i)
    ::sigaction(kStopSignals[i], &action, &g_previous[i]);
  struct sigaction ignore {};
  ignore.sa_handler = SIG_IGN;
  sigemptyset(&ignore.sa_mask);
  ::sigaction(SIGPIPE, &ignore, &g_previous_pipe);  // as libfuse does: replies never kill us
  return out;
}

void StopSignals::start(std::function<void()> quiesce) {
  quiesce_ = std::move(quiesce);
  loop_thread_ = ::pthread_self();
  thread_ = std::thread([this] { run(); });
}

void StopSignals::run() {
  pollfd ready{wake_.get(), POLLIN, 0};
  while (::poll(&ready, 1, -1) < 0 && errno == EINTR) {
  }
  uint64_t count = 0;
  (void)!::read(wake_.get(), &count, sizeof count);
  if (closing_.load()) return;
  if (quiesce_) quiesce_();
  g_quiesced.store(true);
  if (fuse_session* session = g_session.load(); session != nullptr) fuse_session_exit(session);
  // The loop's thread may sleep in a read of /dev/fuse or on the loop's semaphore: a signal
  // (handled as above, now that we are quiesced) wakes it to see the exit. Repeated until the
  // loop has returned, since one that lands just before the thread goes to sleep is lost.
  while (!closing_.load()) {
    ::pthread_kill(loop_thread_, SIGTERM);
    (void)::poll(&ready, 1, kResignalMs);
    uint64_t drained = 0;
    (void)!::read(wake_.get(), &drained, sizeof drained);
  }
}

StopSignals::~StopSignals() {
  if (thread_.joinable()) {
    // The word to stop waiting, unless a signal came first (then run() is past its wait).
    closing_.store(true);
    const uint64_t one = 1;
    (void)!::write(wake_.get(), &one, sizeof one);
    thread_.join();
  }
  for (size_t i = 0; i < std::size(kStopSignals); ++i)
    ::sigaction(kStopSignals[i], &g_previous[i], nullptr);
  ::sigaction(SIGPIPE, &g_previous_pipe, nullptr);
  g_wake_fd.store(-1);
  g_session.store(nullptr);
}

}  // namespace payloadfs

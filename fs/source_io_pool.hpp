#pragma once
// Threads that do the source I/O of requests whose source may be slow: sources on FUSE and
// network filesystems, whose bytes are read with pread rather than served from a mapping.
//
// A request worker hands such a read to the pool and goes back to /dev/fuse; a pool thread
// reads and replies (libfuse replies may come from any thread). At most `per_source` jobs of
// one source run at once, and sources with work take turns, so a source that stalls holds at
// most that many pool threads, never a request worker: every other payload stays served.

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

namespace payloadfs {

class SourceIoPool {
 public:
  // A job replies to its request. `cancelled`: the pool is stopping or full; reply with an
  // error without doing the I/O.
  using Job = std::function<void(bool cancelled)>;

  static constexpr size_t kMaxQueued = 4096;  // jobs waiting, all sources together

  SourceIoPool(unsigned threads, unsigned per_source);
  ~SourceIoPool();
  SourceIoPool(const SourceIoPool&) = delete;
  SourceIoPool& operator=(const SourceIoPool&) = delete;

  // Queues `job` behind the jobs of `source` (run in order of submission, per_source at once).
  void submit(const std::string& source, Job job);
  // Cancels what is queued (on this thread), and what is submitted from now on. Idempotent.
  void cancel_queued();
  // cancel_queued(), then waits for the jobs under way. Idempotent.
  void stop();
  [[nodiscard]] size_t queued() const;

 private:
  struct SourceQueue {
    std::deque<Job> jobs;
    unsigned running = 0;
    bool ready = false;  // listed in ready_
  };
  void run();
  // Lists `source` as ready if it has jobs and room to run one. mutex_ held.
  void offer(const std::string& source, SourceQueue& queue);

  const unsigned per_source_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::unordered_map<std::string, SourceQueue> queues_;
  std::deque<std::string> ready_;  // sources whose next job may start, in turn
  size_t queued_ = 0;
  bool stopping_ = false;
  std::vector<std::thread> threads_;  // last: started once the rest exists
};

}  // namespace payloadfs

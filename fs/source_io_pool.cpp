#include "fs/source_io_pool.hpp"

#include <utility>

namespace payloadfs {

SourceIoPool::SourceIoPool(unsigned threads, unsigned per_source)
    : per_source_(per_source == 0 ? 1 : per_source) {
  for (unsigned i = 0; i < (threads == 0 ? 1 : threads); ++i)
    threads_.emplace_back([this] { run(); });
}

SourceIoPool::~SourceIoPool() {
  stop();
}

void SourceIoPool::offer(const std::string& source, SourceQueue& queue) {
  if (queue.ready || queue.jobs.empty() || queue.running >= per_source_) return;
  queue.ready = true;
  ready_.push_back(source);
  wake_.notify_one();
}

void SourceIoPool::submit(const std::string& source, Job job) {
  {
    const std::lock_guard lock(mutex_);
    if (!stopping_ && queued_ < kMaxQueued) {
      SourceQueue& queue = queues_[source];
      queue.jobs.push_back(std::move(job));
      ++queued_;
      offer(source, queue);
      return;
    }
  }
  job(true);  // stopping, or too much waiting already: the request gets its error now
}

void SourceIoPool::run() {
  std::unique_lock lock(mutex_);
  while (true) {
    wake_.wait(lock, [this] { return stopping_ || !ready_.empty(); });
    if (ready_.empty()) return;  // stopping, and nothing may start any more
    const std::string source = std::move(ready_.front());
    ready_.pop_front();
    SourceQueue& queue = queues_.at(source);
    queue.ready = false;
    Job job = std::move(queue.jobs.front());
    queue.jobs.pop_front();
    --queued_;
    ++queue.running;
    offer(source, queue);  // behind the other sources' turns, if it may run another
    lock.unlock();
    job(false);
    job = nullptr;  // what it holds goes before the lock is taken again
    lock.lock();
    SourceQueue& after = queues_.at(source);  // rehashing moves nodes' buckets, not nodes
    --after.running;
    if (after.jobs.empty() && after.running == 0) {
      queues_.erase(source);
    } else {
      offer(source, after);
    }
  }
}

void SourceIoPool::cancel_queued() {
  std::vector<Job> cancelled;
  {
    const std::lock_guard lock(mutex_);
    stopping_ = true;
    ready_.clear();
    for (auto& [source, queue] : queues_) {
      queue.ready = false;
      for (auto& job : queue.jobs) cancelled.push_back(std::move(job));
      queue.jobs.clear();
    }
    queued_ = 0;
  }
  wake_.notify_all();
  for (auto& job : cancelled) job(true);
}

void SourceIoPool::stop() {
  cancel_queued();
  for (auto& thread : threads_) {
    if (thread.joinable()) thread.join();
  }
}

size_t SourceIoPool::queued() const {
  const std::lock_guard lock(mutex_);
  return queued_;
}

}  // namespace payloadfs

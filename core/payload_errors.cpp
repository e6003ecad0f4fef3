#include "core/payload_errors.hpp"

namespace payloadfs {

PayloadErrors::PayloadErrors(size_t capacity) : capacity_(capacity == 0 ? 1 : capacity) {}

bool PayloadErrors::record(const Payload& payload) {
  const std::lock_guard lock(mutex_);
  const auto listed = by_path_.find(payload.path());
  if (listed != by_path_.end()) {
    // Built again (evicted, or two requests raced): the same version is already listed.
    if (!payload.errors().empty() && listed->second->identity == payload.identity()) return false;
    entries_.erase(listed->second);
    by_path_.erase(listed);
  }
  if (payload.errors().empty()) return false;
  entries_.push_front(Entry{payload.path(), std::string(payload.format()), payload.errors().front(),
                            payload.errors().size(), payload.identity()});
  by_path_.emplace(payload.path(), entries_.begin());
  if (entries_.size() > capacity_) {
    by_path_.erase(entries_.back().path);
    entries_.pop_back();
    ++truncated_;
  }
  return true;
}

void PayloadErrors::forget(const std::string& path, const SourceIdentity& identity) {
  const std::lock_guard lock(mutex_);
  const auto listed = by_path_.find(path);
  if (listed == by_path_.end() || !(listed->second->identity == identity)) return;
  entries_.erase(listed->second);
  by_path_.erase(listed);
}

std::vector<PayloadErrors::Entry> PayloadErrors::entries() const {
  const std::lock_guard lock(mutex_);
  return {entries_.begin(), entries_.end()};
}

uint64_t PayloadErrors::truncated() const {
  const std::lock_guard lock(mutex_);
  return truncated_;
}

}  // namespace payloadfs

#pragma once
// The payloads currently reporting errors, for .payloadfs/errors.json: one entry per source
// path, the most recently recorded first, at most `capacity` of them. Fed with every payload
// built (a clean one takes its path off the list); versions whose source is gone or changed
// are dropped with forget().

#include <cstddef>
#include <cstdint>
#include <list>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/payload.hpp"

namespace payloadfs {

class PayloadErrors {
 public:
  struct Entry {
    std::string path;  // relative to SRC
    std::string format;
    std::string first_error;
    size_t error_count = 0;
    SourceIdentity identity;  // the version that reported them
  };

  static constexpr size_t kDefaultCapacity = 1000;
  explicit PayloadErrors(size_t capacity = kDefaultCapacity);

  // Records the outcome of building `payload`. True exactly when this is a version with
  // errors that was not listed yet: the moment to log it.
  bool record(const Payload& payload);
  // Takes `path` off the list if the listed version is `identity`.
  void forget(const std::string& path, const SourceIdentity& identity);

  [[nodiscard]] std::vector<Entry> entries() const;  // most recent first
  // Entries pushed off the end of a full list since the mount.
  [[nodiscard]] uint64_t truncated() const;

 private:
  const size_t capacity_;
  mutable std::mutex mutex_;
  std::list<Entry> entries_;  // front = most recently recorded
  std::unordered_map<std::string, std::list<Entry>::iterator> by_path_;
  uint64_t truncated_ = 0;
};

}  // namespace payloadfs

#pragma once
// Counters behind /.payloadfs/stats.json. Relaxed atomics: a snapshot, not a transaction.

#include <atomic>
#include <cstdint>

namespace payloadfs {

struct Stats {
  std::atomic<uint64_t> lookups{0};
  std::atomic<uint64_t> getattrs{0};
  std::atomic<uint64_t> readdirs{0};
  std::atomic<uint64_t> opendirs{0};  // OPENDIRs; none once the kernel opens directories itself
  std::atomic<uint64_t> opens{0};
  std::atomic<uint64_t> reads{0};
  std::atomic<uint64_t> bytes_served{0};
  std::atomic<uint64_t> errors{0};  // replies carrying an error other than ENOENT
};

}  // namespace payloadfs

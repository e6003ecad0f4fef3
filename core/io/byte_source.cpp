#include "core/io/byte_source.hpp"

#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "core/io/checked_math.hpp"

namespace payloadfs {

bool MemorySource::read_exact(uint64_t offset, std::span<std::byte> out) const noexcept {
  if (!range_within(offset, out.size(), bytes_.size())) return false;
  if (!out.empty()) std::memcpy(out.data(), bytes_.data() + offset, out.size());
  return true;
}

bool FdSource::read_exact(uint64_t offset, std::span<std::byte> out) const noexcept {
  if (!range_within(offset, out.size(), size_)) return false;
  size_t done = 0;
  while (done < out.size()) {
    const ssize_t n =
        ::pread(fd_, out.data() + done, out.size() - done, static_cast<off_t>(offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {  // error, or the file shrank since it was measured
      failed_.store(true, std::memory_order_relaxed);
      return false;
    }
    done += static_cast<size_t>(n);
  }
  return true;
}

bool WindowSource::read_exact(uint64_t offset, std::span<std::byte> out) const noexcept {
  if (!range_within(offset, out.size(), length_)) return false;
  return inner_.read_exact(offset_ + offset, out);
}

}  // namespace payloadfs

#pragma once
// Open files of the mount hold descriptors of their sources (for size checks and for reading
// record attributes back). They are counted against a budget well under the descriptor limit,
// so that many files held open by readers cannot starve lookups and parsing of descriptors.

#include <sys/resource.h>

#include <atomic>
#include <cstddef>
#include <utility>

#include "core/io/unique_fd.hpp"

namespace payloadfs {

class SourceBudget {
 public:
  // Half of the soft descriptor limit (at least 16), unless given.
  explicit SourceBudget(size_t limit = from_rlimit()) noexcept : limit_(limit) {}

  // A descriptor held within the budget; gives its place back when it goes away.
  class Held {
   public:
    Held() noexcept = default;
    Held(Held&& other) noexcept
        : fd_(std::move(other.fd_)), budget_(std::exchange(other.budget_, nullptr)) {}
    Held& operator=(Held&& other) noexcept {
      if (this != &other) {
        give_back();
        fd_ = std::move(other.fd_);
        budget_ = std::exchange(other.budget_, nullptr);
      }
      return *this;
    }
    Held(const Held&) = delete;
    Held& operator=(const Held&) = delete;
    ~Held() { give_back(); }

    [[nodiscard]] int get() const noexcept { return fd_.get(); }
    [[nodiscard]] bool valid() const noexcept { return fd_.valid(); }

   private:
    friend class SourceBudget;
    Held(UniqueFd fd, SourceBudget* budget) noexcept : fd_(std::move(fd)), budget_(budget) {}
    void give_back() noexcept {
      fd_.reset();
      if (budget_ != nullptr) budget_->held_.fetch_sub(1, std::memory_order_relaxed);
      budget_ = nullptr;
    }
    UniqueFd fd_;
    SourceBudget* budget_ = nullptr;
  };

  // Takes `fd` into the budget, or closes it and returns an empty Held when the budget is
  // spent.
  [[nodiscard]] Held hold(UniqueFd fd) noexcept {
    if (held_.fetch_add(1, std::memory_order_relaxed) >= limit_) {
      held_.fetch_sub(1, std::memory_order_relaxed);
      return {};
    }
    return Held(std::move(fd), this);
  }
  [[nodiscard]] bool spent() const noexcept {
    return held_.load(std::memory_order_relaxed) >= limit_;
  }
  [[nodiscard]] size_t held() const noexcept { return held_.load(std::memory_order_relaxed); }
  [[nodiscard]] size_t limit() const noexcept { return limit_; }

 private:
  static size_t from_rlimit() noexcept {
    rlimit limit{};
    if (::getrlimit(RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur == RLIM_INFINITY) return 4096;
    const auto half = static_cast<size_t>(limit.rlim_cur / 2);
    return half < 16 ? 16 : half;
  }

  const size_t limit_;
  std::atomic<size_t> held_{0};
};

}  // namespace payloadfs

#include "futex.hpp"

#include <cerrno>
#include <climits>
#include <ctime>
#include <linux/futex.h>
#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace shmq::detail {

namespace {
auto* address(std::atomic<std::uint32_t>& word) noexcept {
  return reinterpret_cast<std::uint32_t*>(&word);
}
}  // namespace

bool futex_wait(std::atomic<std::uint32_t>& word, std::uint32_t expected,
                clock::time_point deadline) noexcept {
  timespec ts{};
  timespec* abs = nullptr;
  if (deadline != clock::time_point::max()) {
    auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(deadline.time_since_epoch());
    if (ns.count() < 0) ns = std::chrono::nanoseconds(0);
    ts.tv_sec = static_cast<time_t>(ns.count() / 1'000'000'000);
    ts.tv_nsec = static_cast<long>(ns.count() % 1'000'000'000);
    abs = &ts;
  }
  // FUTEX_WAIT_BITSET takes an absolute CLOCK_MONOTONIC deadline, so a retry after a
  // spurious wake does not stretch the wait.
  long rc = syscall(SYS_futex, address(word), FUTEX_WAIT_BITSET, expected, abs, nullptr,
                    FUTEX_BITSET_MATCH_ANY);
  return !(rc == -1 && errno == ETIMEDOUT);
}

void futex_wake_all(std::atomic<std::uint32_t>& word) noexcept {
  syscall(SYS_futex, address(word), FUTEX_WAKE, INT_MAX, nullptr, nullptr, 0);
}

void yield_cpu() noexcept { ::sched_yield(); }

}  // namespace shmq::detail

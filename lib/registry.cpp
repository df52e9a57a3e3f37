#include "registry.hpp"

#include <cerrno>
#include <csignal>
#include <unistd.h>

namespace shmq::detail {

bool process_alive(std::uint32_t pid) noexcept {
  return ::kill(static_cast<pid_t>(pid), 0) == 0 || errno != ESRCH;
}

int claim_slot(std::span<std::atomic<std::uint32_t>> slots) noexcept {
  const auto self = static_cast<std::uint32_t>(::getpid());
  for (std::size_t i = 0; i < slots.size(); ++i) {
    std::uint32_t seen = slots[i].load(std::memory_order_relaxed);
    // acq_rel: we take over whatever the previous holder left, and publish our pid.
    while (seen == 0 || (seen != self && !process_alive(seen))) {
      if (slots[i].compare_exchange_strong(seen, self, std::memory_order_acq_rel))
        return static_cast<int>(i);
    }
  }
  return -1;
}

void release_slot(std::atomic<std::uint32_t>& slot) noexcept {
  auto self = static_cast<std::uint32_t>(::getpid());
  slot.compare_exchange_strong(self, 0, std::memory_order_acq_rel);
}

}  // namespace shmq::detail

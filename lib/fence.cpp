#include "fence.hpp"

#include <linux/membarrier.h>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <pthread.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace shmq::detail {

std::atomic<bool> light_fences{false};

#if !defined(__SANITIZE_THREAD__)
namespace {

long membarrier(int cmd) noexcept { return syscall(SYS_membarrier, cmd, 0, 0); }

bool kernel_has_global_expedited() noexcept {
  static const bool has = [] {
    const long cmds = membarrier(MEMBARRIER_CMD_QUERY);
    return cmds > 0 && (cmds & MEMBARRIER_CMD_GLOBAL_EXPEDITED) != 0 &&
           (cmds & MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED) != 0;
  }();
  return has;
}

}  // namespace
#endif

bool enable_light_fences() noexcept {
#if defined(__SANITIZE_THREAD__)
  return false;
#else
  static std::once_flag once;
  std::call_once(once, [] {
    // SHMQ_FENCES=full: this process publishes with seq_cst stores (docs/event-loops.md).
    const char* choice = std::getenv("SHMQ_FENCES");
    if (choice != nullptr && std::strcmp(choice, "full") == 0) return;
    if (kernel_has_global_expedited() && membarrier(MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED) == 0) {
      light_fences.store(true, std::memory_order_relaxed);
      // A forked child inherits light_fences = true: make sure it is a target too.
      pthread_atfork(nullptr, nullptr, [] {
        if (membarrier(MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED) != 0)
          light_fences.store(false, std::memory_order_relaxed);
      });
    }
  });
  return light_fences.load(std::memory_order_relaxed);
#endif
}

bool heavy_fence() noexcept {
#if defined(__SANITIZE_THREAD__)
  return true;  // publishers store seq_cst; the sleeper's seq_cst RMW and loads suffice
#else
  std::atomic_thread_fence(std::memory_order_seq_cst);  // enough for seq_cst publishers
  if (!kernel_has_global_expedited()) return true;       // then nobody publishes lightly
  return membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED) == 0;
#endif
}

}  // namespace shmq::detail

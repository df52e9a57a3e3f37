// Asymmetric fences for the sleep/wake protocol (wait_word.hpp).
//
// The protocol is a Dekker pattern: the publisher stores data then loads the wait word;
// a sleeper stores the wait word then loads the data. Each side needs a full fence
// between its store and its load. Publishing happens on every message, sleeping rarely,
// so the publisher gets only a compiler fence and the sleeper pays for both with
// membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED): it makes every CPU running a registered
// process execute a full memory barrier before it returns, so a publisher store that
// the sleeper's next load could miss has left its store buffer by then, or the
// publisher's load runs after the barrier and sees the sleeper's announcement.
//
// Every process that attaches registers itself as a target. Where the kernel does not
// offer it (or under TSan, which cannot see it), publishers use seq_cst stores as
// before and the sleeper's fence is an ordinary seq_cst fence.
#pragma once

#include <atomic>

namespace shmq::detail {

// Registers this process once; true if publishers in it may use light fences.
bool enable_light_fences() noexcept;

extern std::atomic<bool> light_fences;

// A store that the other side may be about to sleep on (P of the protocol).
template <class Atomic, class T>
inline void publish_store(Atomic&& a, T value) noexcept {
#if defined(__SANITIZE_THREAD__)
  a.store(value, std::memory_order_seq_cst);
#else
  if (light_fences.load(std::memory_order_relaxed)) {
    a.store(value, std::memory_order_release);
    std::atomic_signal_fence(std::memory_order_seq_cst);  // the heavy fence does the rest
  } else {
    a.store(value, std::memory_order_seq_cst);
  }
#endif
}

// The sleeper's side, between announcing itself and re-checking. False if no barrier
// could be forced on publishers: the caller must then not sleep for long.
bool heavy_fence() noexcept;

}  // namespace shmq::detail

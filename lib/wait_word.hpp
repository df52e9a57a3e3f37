// The sleep/wake protocol between a side that waits for a condition and the side that
// makes it true. One wait_word per direction lives in shared memory.
//
// word: bit 0 = "a futex sleeper announced itself"; bit 1 = "a readiness handle armed
// itself" (lib/readiness/, an event-loop waiter); bits 2.. = wake epoch.
//
// Sleeper                               Waker
//   E: v = word.fetch_or(1) | 1            P: publish (seq_cst store of the condition)
//   R: if ready() (seq_cst load) return    F: v = word.load()            (seq_cst)
//   futex_wait(word, v)                       if (v & 3) CAS v -> (v+4)&~3, then
//                                               FUTEX_WAKE if bit 0, wake_handles if bit 1
//
// With E, R, P, F all seq_cst they sit in one total order. If R comes before P, then E
// (sequenced before R) comes before F, and F sees bit 0: the waker bumps the epoch,
// which makes a futex_wait that has not started yet return at once (the word no longer
// equals v) and wakes one that has. If P comes before R, R sees the condition. Either
// way no wake-up is lost. The waker pays a syscall only while bit 0 or 1 is set, and
// clears them, so traffic to an awake peer costs one plain load per operation.
//
// A readiness handle runs the same protocol with bit 1 as E, after setting its own bit
// in `armed` (A): see lib/readiness/handle.cpp for why the waker's exchange of `armed`
// always sees A.
//
// P is publish_store (fence.hpp): where the kernel allows, a release store with only a
// compiler fence, and the sleeper runs a heavy fence (membarrier) between E and R,
// which restores the store-load order the argument above needs on the publisher side.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>

#include "fence.hpp"
#include "futex.hpp"

namespace shmq::detail {

inline constexpr std::uint32_t futex_sleeper = 1u;  // bit 0 of word
inline constexpr std::uint32_t handle_armed = 2u;   // bit 1
inline constexpr std::uint32_t epoch_step = 4u;     // bits 2..
inline constexpr std::size_t max_handles = 256;     // readiness handles per wait word

struct alignas(128) wait_word {
  std::atomic<std::uint32_t> word{0};
  // Set by the first readiness handle that arms here (never cleared): 1 once asked for,
  // 2 once a membarrier has completed after that. While it is nonzero every publisher
  // runs a full fence in wake_sleepers (F0); at 2, arming and sleeping need no
  // membarrier, which costs tens of microseconds per arm on a virtual machine.
  std::atomic<std::uint32_t> fenced_publishers{0};
  // On the word's line: every waker loads it with the word (F0, F), one line per publish.
  unsigned char padding[120];
  // Readiness handles: slot i belongs to the handle whose wake socket keys[i] names
  // (0 = free); bit i of armed says it waits for a wake. Touched only when someone
  // waits, never per message.
  std::atomic<std::uint64_t> armed[max_handles / 64];
  // Set (never cleared) by every process that attaches to the channel with light fences
  // (fence.hpp), before it publishes anything: while it is 0, every publisher stores
  // seq_cst, and a handle arming itself needs no membarrier.
  std::atomic<std::uint32_t> light_publishers;
  std::uint32_t reserved0;
  std::uint64_t reserved[11];
  std::atomic<std::uint64_t> keys[max_handles];
};
static_assert(sizeof(wait_word) == 256 + 8 * max_handles);
static_assert(offsetof(wait_word, armed) == 128 && offsetof(wait_word, light_publishers) == 160 &&
              offsetof(wait_word, fenced_publishers) == 4 && offsetof(wait_word, keys) == 256);
static_assert(std::atomic<std::uint32_t>::is_always_lock_free);

inline constexpr std::uint32_t publishers_fence_asked = 1;    // fenced_publishers values
inline constexpr std::uint32_t publishers_fence_settled = 2;

// What an attaching process does to both wait words of its channel (see light_publishers).
inline void note_publisher_fences(wait_word& w) noexcept {
  if (light_fences.load(std::memory_order_relaxed) && w.light_publishers.load(std::memory_order_relaxed) == 0)
    w.light_publishers.store(1, std::memory_order_seq_cst);
}

// True if no publisher of `w` can publish without a full fence before its F: none ever
// attached with light fences, or fenced_publishers settled. Then a sleeper's seq_cst
// E and R suffice, without a membarrier.
//
// Why settling needs one membarrier: a handle stores fenced_publishers = 1, then runs
// membarrier, which makes every publisher's CPU execute a full barrier B. A publisher's
// P comes before its F0 load. If F0 comes after B, it reads nonzero (the store came
// before B) and fences. If F0 comes before B, so does P, which B makes visible before the
// membarrier returns, that is before fenced_publishers = 2 is stored, which any later
// waiter reads (acquire) before its E and R: R sees P. So once 2 is seen, no publisher
// is left whose light P a waiter could miss.
inline bool fenced_publishers_settled(wait_word& w) noexcept {
  return w.light_publishers.load(std::memory_order_seq_cst) == 0 ||
         w.fenced_publishers.load(std::memory_order_acquire) == publishers_fence_settled;
}

// Sends a wake to every armed readiness handle of `w` (lib/readiness/wake.cpp): out of
// line, since only a waker that found bit 1 set (or a close) calls it.
void wake_handles(wait_word& w) noexcept;

inline void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

// Call after the publishing store (P).
inline void wake_sleepers(wait_word& w) noexcept {
  // F0: a handle waits here without membarriers (fenced_publishers): the store-load
  // fence that publish_store's light path left out. Why the first handle's single
  // membarrier covers a publisher that read 0 here: see fenced_publishers_settled().
#if !defined(__SANITIZE_THREAD__)  // under TSan P is a seq_cst store already (fence.hpp)
  if (w.fenced_publishers.load(std::memory_order_relaxed) != 0) std::atomic_thread_fence(std::memory_order_seq_cst);
#endif
  std::uint32_t v = w.word.load(std::memory_order_seq_cst);  // F
  while (v & (futex_sleeper | handle_armed)) {
    if (w.word.compare_exchange_weak(v, (v + epoch_step) & ~(futex_sleeper | handle_armed),
                                     std::memory_order_seq_cst)) {
      if (v & futex_sleeper) futex_wake_all(w.word);
      if (v & handle_armed) wake_handles(w);
      return;
    }
  }
}

// Unconditional wake, for rare events (close) where the caller cannot know who sleeps.
inline void wake_all(wait_word& w) noexcept {
  w.word.fetch_add(epoch_step, std::memory_order_seq_cst);
  futex_wake_all(w.word);
  wake_handles(w);
}

// Spins until `ready()` or `spin_until`, then sleeps until `ready()` or `deadline`.
// `ready` must do its load of the published state with seq_cst (R).
// The first `quiet_polls` rounds of the spin only pause, without calling ready(): they
// leave the shared lines to the other side for a while (the sleep phase always checks).
// Returns false if the deadline passed with ready() still false.
template <class Ready>
bool wait_until(wait_word& w, Ready&& ready, clock::time_point spin_until,
                clock::time_point deadline, unsigned quiet_polls = 0) {
  if (spin_until > deadline) spin_until = deadline;
  for (unsigned i = 1;; ++i) {
    if (i > quiet_polls && ready()) return true;
    if ((i & 63u) == 0) {
      if (clock::now() >= spin_until) break;
      // With more processes than CPUs, the one this wait is for may be queued behind
      // this one on the same CPU: let it run now rather than at the end of the spin.
      yield_cpu();
    }
    cpu_relax();
  }
  for (;;) {
    std::uint32_t v = w.word.fetch_or(futex_sleeper, std::memory_order_seq_cst) | futex_sleeper;  // E
    // Without a heavy fence a light publisher may not see bit 0: sleep in short slices.
    const bool fenced = fenced_publishers_settled(w) || heavy_fence();
    if (ready()) return true;  // R
    const auto until = fenced ? deadline : std::min(deadline, clock::now() + std::chrono::milliseconds(1));
    if (!futex_wait(w.word, v, until) && until == deadline) return ready();
  }
}

}  // namespace shmq::detail

// Shared (cross-process) futex calls. Never FUTEX_PRIVATE_FLAG: the waiter and the
// waker are different processes mapping the same page.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

namespace shmq::detail {

using clock = std::chrono::steady_clock;  // CLOCK_MONOTONIC, as FUTEX_WAIT_BITSET expects

static_assert(sizeof(std::atomic<std::uint32_t>) == sizeof(std::uint32_t));
static_assert(std::atomic<std::uint32_t>::is_always_lock_free);

// Sleeps while *word == expected, until woken or `deadline` (clock::time_point::max()
// for none). Returns false only when the deadline passed; spurious returns are true.
bool futex_wait(std::atomic<std::uint32_t>& word, std::uint32_t expected,
                clock::time_point deadline) noexcept;

// Wakes every process sleeping on `word`.
void futex_wake_all(std::atomic<std::uint32_t>& word) noexcept;

// Lets another runnable process on this CPU run (sched_yield); returns at once if none.
void yield_cpu() noexcept;

}  // namespace shmq::detail

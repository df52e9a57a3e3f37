// The background flush of a group-commit endpoint (docs/durability.md, "Group commit"):
// a thread that makes positions durable while the endpoint's own thread goes on at
// memory speed. The endpoint asks for a position (a producer's sealed tail, a
// consumer's head); the thread runs `work` up to the newest one asked for, one flush at
// a time, and sync() waits for it. A failed flush is final: the error is kept, nothing is
// flushed after it, and the endpoint is poisoned (Linux reports a writeback error once).
// The thread also keeps the group interval: once `interval` has passed since its last
// flush with nothing asked, interval_elapsed() says so, and the endpoint's next commit or
// release asks (no clock is read on the endpoint's hot path).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>

namespace shmq::detail {

class flush_thread {
 public:
  // `work(target)` makes everything before `target` durable: 0 or an errno.
  flush_thread(std::function<int(std::uint64_t)> work, std::chrono::nanoseconds interval, std::uint64_t start);
  // Finishes what was asked, then stops.
  ~flush_thread();
  flush_thread(const flush_thread&) = delete;
  flush_thread& operator=(const flush_thread&) = delete;

  // Asks for everything before `target` (returns at once; a smaller target than one
  // already asked for changes nothing).
  void request(std::uint64_t target);
  // Asks, then waits until everything before `target` is durable: 0, or the errno of the
  // flush that failed (now or before).
  int wait(std::uint64_t target);
  // relaxed: a hint for the endpoint's hot path; wait() returns the error itself.
  int error() const noexcept { return failed_.load(std::memory_order_relaxed); }
  bool interval_elapsed() const noexcept { return interval_elapsed_.load(std::memory_order_relaxed); }

 private:
  void run();

  std::function<int(std::uint64_t)> work_;
  const std::chrono::nanoseconds interval_;
  std::mutex mutex_;
  std::condition_variable asked_, done_;
  std::uint64_t wanted_, durable_;  // under mutex_
  bool stopping_ = false;          // under mutex_
  std::atomic<int> failed_{0};
  std::atomic<bool> interval_elapsed_{false};
  std::thread thread_;  // last: started once everything above is set
};

}  // namespace shmq::detail

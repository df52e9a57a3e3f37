#include "durable/flush_thread.hpp"

namespace shmq::detail {

flush_thread::flush_thread(std::function<int(std::uint64_t)> work, std::chrono::nanoseconds interval,
                           std::uint64_t start)
    : work_(std::move(work)), interval_(interval), wanted_(start), durable_(start), thread_([this] { run(); }) {}

flush_thread::~flush_thread() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  asked_.notify_one();
  thread_.join();
}

void flush_thread::request(std::uint64_t target) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    interval_elapsed_.store(false, std::memory_order_relaxed);  // asked: the next interval starts
    if (target <= wanted_) return;
    wanted_ = target;
  }
  asked_.notify_one();
}

int flush_thread::wait(std::uint64_t target) {
  request(target);
  std::unique_lock<std::mutex> lock(mutex_);
  done_.wait(lock, [&] { return durable_ >= target || failed_.load(std::memory_order_relaxed) != 0; });
  return failed_.load(std::memory_order_relaxed);
}

void flush_thread::run() {
  std::unique_lock<std::mutex> lock(mutex_);
  const auto more = [&] {
    return stopping_ || (wanted_ > durable_ && failed_.load(std::memory_order_relaxed) == 0);
  };
  for (;;) {
    // The interval runs from the last flush: past it with nothing asked, the next commit
    // (release) asks.
    if (!asked_.wait_for(lock, interval_, more)) {
      interval_elapsed_.store(true, std::memory_order_relaxed);
      asked_.wait(lock, more);
    }
    if (wanted_ > durable_ && failed_.load(std::memory_order_relaxed) == 0) {
      const std::uint64_t target = wanted_;
      lock.unlock();
      const int e = work_(target);  // the slow part, with the endpoint free to go on
      lock.lock();
      if (e != 0)
        failed_.store(e, std::memory_order_relaxed);  // final: never retried
      else
        durable_ = target;
      done_.notify_all();
    } else if (stopping_) {
      return;
    }
  }
}

}  // namespace shmq::detail

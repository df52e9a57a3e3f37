// What the readiness tests share: an event loop of their own (epoll in level or edge
// mode, or plain poll) that waits only through an endpoint's readiness descriptor, the
// read and push loops of include/shmq/readiness.hpp over it, and the three channel kinds
// behind one shape so each test runs on all of them.
#pragma once

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <poll.h>
#include <string>
#include <sys/epoll.h>
#include <unistd.h>

#include "shmq/mpmc.hpp"
#include "shmq/pubsub.hpp"
#include "shmq/readiness.hpp"
#include "shmq/spsc.hpp"
#include "test_support.hpp"

namespace shmq {
inline doctest::String toString(arm_result r) { return to_string(r); }
}  // namespace shmq

namespace shmq::test {

enum class loop_mode { level, edge, poll };

inline const char* to_string(loop_mode m) {
  return m == loop_mode::level ? "epoll level-triggered" : m == loop_mode::edge ? "epoll edge-triggered" : "poll";
}

// One descriptor watched for reading, without a timeout: a lost wake-up hangs here, and
// the test's watchdog turns the hang into a failure.
class fd_loop {
 public:
  fd_loop(int fd, loop_mode mode) : fd_(fd), mode_(mode) {
    if (mode_ == loop_mode::poll) return;
    epoll_ = ::epoll_create1(EPOLL_CLOEXEC);
    epoll_event ev{};
    ev.events = EPOLLIN | (mode_ == loop_mode::edge ? EPOLLET : 0u);
    ev.data.fd = fd_;
    if (epoll_ < 0 || ::epoll_ctl(epoll_, EPOLL_CTL_ADD, fd_, &ev) != 0) throw std::runtime_error("epoll setup");
  }
  ~fd_loop() {
    if (epoll_ >= 0) ::close(epoll_);
  }
  fd_loop(const fd_loop&) = delete;
  fd_loop& operator=(const fd_loop&) = delete;

  void wait() {
    ++waits;
    for (;;) {
      int n;
      if (mode_ == loop_mode::poll) {
        pollfd p{fd_, POLLIN, 0};
        n = ::poll(&p, 1, -1);
      } else {
        epoll_event ev{};
        n = ::epoll_wait(epoll_, &ev, 1, -1);
      }
      if (n > 0) return;
      if (n < 0 && errno != EINTR) throw std::runtime_error("wait on the readiness descriptor failed");
    }
  }

  std::uint64_t waits = 0;  // how often this loop went to sleep

 private:
  int fd_;
  loop_mode mode_;
  int epoll_ = -1;
};

// The consumer loop of shmq/readiness.hpp: a message, or the status that ended the wait.
template <class Consumer>
view read_through(Consumer& c, fd_loop& loop) {
  for (;;) {
    view v = c.try_read();
    if (v || v.status() != status::empty) return v;
    if (c.arm() == arm_result::ready) continue;
    loop.wait();
  }
}

// The producer loop: waits for room only through the descriptor.
template <class Producer>
status push_through(Producer& p, std::span<const std::byte> message, fd_loop& loop) {
  for (;;) {
    const status s = p.try_push(message);
    if (s != status::full) return s;
    if (p.arm(message.size()) == arm_result::ready) continue;
    loop.wait();
  }
}

// The three channel kinds, each with a small ring so that back-pressure comes often.
struct spsc_kind {
  using producer = spsc_producer;
  using consumer = spsc_consumer;
  using options = channel_options;
  static constexpr const char* name = "spsc";
  static options make(std::chrono::milliseconds liveness) {
    options o;
    o.capacity = 4096;
    o.max_message_size = 256;
    o.liveness_interval = liveness;
    return o;
  }
  static consumer open_consumer(const std::string& n, const options& o) { return consumer(n, o); }
};
struct mpmc_kind {
  using producer = mpmc_producer;
  using consumer = mpmc_consumer;
  using options = mpmc_options;
  static constexpr const char* name = "mpmc";
  static options make(std::chrono::milliseconds liveness) {
    options o;
    o.slots = 16;
    o.max_message_size = 256;
    o.liveness_interval = liveness;
    return o;
  }
  static consumer open_consumer(const std::string& n, const options& o) { return consumer(n, o); }
};
struct pubsub_kind {
  using producer = publisher;
  using consumer = subscriber;
  using options = pubsub_options;
  static constexpr const char* name = "pubsub";
  static options make(std::chrono::milliseconds liveness) {
    options o;
    o.slots = 16;
    o.max_message_size = 256;
    o.policy = overflow_policy::block;
    o.liveness_interval = liveness;
    return o;
  }
  // In a group, so the subscription outlives a subscriber that restarts.
  static consumer open_consumer(const std::string& n, const options& o) {
    return consumer(n, o, subscription{"readers", start_from::oldest, 0});
  }
};

}  // namespace shmq::test

// The readiness descriptor across processes: epoll in level and edge mode and plain
// poll, on every channel kind, both directions (messages and back-pressure), the ends
// of a stream while armed (close, a producer killed), idle waits of many liveness
// intervals, a waiter paused with SIGSTOP, and a lost-wake-up stress where both sides
// wait only through their descriptors. Every message is stamped (sequence number +
// checksum) and read in order. The loops wait without a timeout: a lost wake-up hangs,
// and the watchdog (alarm) turns the hang into a failure.
#include <doctest/doctest.h>

#include <random>
#include <sys/resource.h>

#include "readiness_support.hpp"

namespace shmq::test {
namespace {

using namespace std::chrono_literals;

// A hang becomes a failure: SIGALRM's default action ends the test binary.
struct watchdog {
  explicit watchdog(unsigned seconds) { ::alarm(seconds); }
  ~watchdog() { ::alarm(0); }
};

constexpr std::size_t max_size = 200;

std::size_t size_of(std::uint64_t seq) { return stream_message_size(7, seq, 16, max_size, 64); }

// Sends count messages in bursts of random length with random pauses between them, then
// closes: the other side goes to sleep and is woken over and over.
template <class Producer, class Pace>
int send_in_bursts(Producer& p, std::uint64_t count, std::uint64_t seed, Pace&& pace) {
  std::mt19937_64 rng(seed);
  for (std::uint64_t seq = 0; seq < count;) {
    for (std::uint64_t burst = 1 + rng() % 64; burst > 0 && seq < count; --burst, ++seq)
      if (pace(p, make_message(seq, size_of(seq))) != status::ok) return 10;
    if (rng() % 4 == 0) ::usleep(static_cast<useconds_t>(rng() % 200));  // a pause, not a handshake
  }
  p.close();
  return 0;
}

template <class Consumer>
int read_all_through(Consumer& c, fd_loop& loop, std::uint64_t count, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  for (std::uint64_t seq = 0; seq < count; ++seq) {
    view v = read_through(c, loop);
    if (!v) return 20;
    if (!message_ok(v.data(), seq)) return 21;
    if (rng() % 512 == 0) ::usleep(static_cast<useconds_t>(rng() % 300));
  }
  return read_through(c, loop).status() == status::closed ? 0 : 22;
}

template <class Kind>
void stream_through_descriptors(loop_mode mode, std::uint64_t count) {
  CAPTURE(Kind::name);
  CAPTURE(to_string(mode));
  segment_guard seg(std::string("rd-") + Kind::name);
  const auto o = Kind::make(100ms);
  auto consumer = Kind::open_consumer(seg.name(), o);  // before the producer: pub/sub
  child_process producer([&](child_process&) {
    typename Kind::producer p(seg.name(), o);
    fd_loop loop(p.native_handle(), mode);
    const int rc = send_in_bursts(p, count, 11, [&](auto& prod, const std::vector<std::byte>& m) {
      return push_through(prod, m, loop);
    });
    return rc != 0 ? rc : loop.waits > 0 ? 0 : 30;  // the small ring made it wait for room
  });
  fd_loop loop(consumer.native_handle(), mode);
  CHECK(read_all_through(consumer, loop, count, 12) == 0);
  CHECK(loop.waits > 0);
  CHECK(producer.wait() == 0);
}

TEST_SUITE("readiness") {

TEST_CASE("readiness: a stream and its back-pressure through epoll (level, edge) and poll, every kind") {
  watchdog dog(240);
  const std::uint64_t count = env_count("SHMQ_TEST_READINESS_MESSAGES", 20000);
  for (loop_mode mode : {loop_mode::level, loop_mode::edge, loop_mode::poll}) {
    stream_through_descriptors<spsc_kind>(mode, count);
    stream_through_descriptors<mpmc_kind>(mode, count);
    stream_through_descriptors<pubsub_kind>(mode, count);
  }
}

template <class Kind>
void ends_while_armed() {
  CAPTURE(Kind::name);
  segment_guard seg(std::string("rd-end-") + Kind::name);
  auto o = Kind::make(20ms);
  o.when_producer_gone = when_producer_gone::report;
  SUBCASE("close") {
    auto c = Kind::open_consumer(seg.name(), o);
    fd_loop loop(c.native_handle(), loop_mode::edge);
    peer_pipe go;
    child_process producer([&](child_process&) {
      go.keep_read();
      typename Kind::producer p(seg.name(), o);
      char ch;
      if (!go.receive(ch)) return 1;  // the consumer is armed
      if (p.try_push(make_message(0, 64)) != status::ok) return 2;
      p.close();
      return 0;
    });
    go.keep_write();
    CHECK(c.try_read().status() == status::empty);
    REQUIRE(c.arm() == arm_result::armed);
    REQUIRE(go.send('g'));
    view v = read_through(c, loop);
    REQUIRE(v);
    CHECK(message_ok(v.data(), 0));
    v.release();
    CHECK(read_through(c, loop).status() == status::closed);
    CHECK(producer.wait() == 0);
  }
  SUBCASE("every producer killed") {
    auto c = Kind::open_consumer(seg.name(), o);
    fd_loop loop(c.native_handle(), loop_mode::level);
    child_process producer([&](child_process& self) {
      typename Kind::producer p(seg.name(), o);
      if (p.try_push(make_message(0, 64)) != status::ok) return 1;
      self.notify('a');
      ::pause();
      return 2;
    });
    REQUIRE(producer.wait_notice() == 'a');
    view v = read_through(c, loop);
    REQUIRE(v);
    CHECK(message_ok(v.data(), 0));
    v.release();
    CHECK(c.try_read().status() == status::empty);
    REQUIRE(c.arm() == arm_result::armed);
    CHECK(producer.kill_and_wait() == 128 + SIGKILL);
    // Nobody wakes this waiter: its liveness tick does, and the check finds the producer dead.
    CHECK(read_through(c, loop).status() == status::producer_gone);
  }
}

TEST_CASE("readiness: close and a killed producer end an armed wait, every kind") {
  watchdog dog(60);
  ends_while_armed<spsc_kind>();
  ends_while_armed<mpmc_kind>();
  ends_while_armed<pubsub_kind>();
}

TEST_CASE("readiness: an armed consumer idles through many liveness intervals, then gets its message") {
  watchdog dog(60);
  segment_guard seg("rd-idle");
  const auto o = mpmc_kind::make(10ms);
  mpmc_consumer c(seg.name(), o);
  peer_pipe go;
  child_process producer([&](child_process&) {
    go.keep_read();
    mpmc_producer p(seg.name(), o);
    char ch;
    if (!go.receive(ch)) return 1;
    return p.try_push(make_message(0, 64)) == status::ok ? 0 : 2;
  });
  go.keep_write();
  fd_loop loop(c.native_handle(), loop_mode::edge);
  // Wake-ups with nothing there: the liveness ticks. Twenty of them, and the waiting
  // consumer was never taken for dead nor woken for nothing it could not handle.
  std::uint64_t ticks = 0;
  while (ticks < 20) {
    REQUIRE(c.try_read().status() == status::empty);
    if (c.arm() == arm_result::armed) {
      loop.wait();
      ++ticks;
    }
  }
  REQUIRE(go.send('g'));
  view v = read_through(c, loop);
  REQUIRE(v);
  CHECK(message_ok(v.data(), 0));
  CHECK(producer.wait() == 0);
}

TEST_CASE("readiness: a waiter paused with SIGSTOP while armed gets what came meanwhile") {
  watchdog dog(60);
  segment_guard seg("rd-stop");
  const auto o = spsc_kind::make(20ms);
  spsc_producer p(seg.name(), o);
  child_process consumer([&](child_process& self) {
    spsc_consumer c(seg.name(), o);
    fd_loop loop(c.native_handle(), loop_mode::edge);
    if (c.try_read().status() != status::empty || c.arm() != arm_result::armed) return 1;
    self.notify('a');
    loop.wait();  // stopped in here
    for (std::uint64_t seq = 0; seq < 10; ++seq) {
      view v = read_through(c, loop);
      if (!v || !message_ok(v.data(), seq)) return 2;
    }
    return read_through(c, loop).status() == status::closed ? 0 : 3;
  });
  REQUIRE(consumer.wait_notice() == 'a');
  ::kill(consumer.pid(), SIGSTOP);
  // Ten messages fit the ring: the producer needs nothing from the stopped consumer.
  for (std::uint64_t seq = 0; seq < 10; ++seq) REQUIRE(p.try_push(make_message(seq, size_of(seq))) == status::ok);
  p.close();
  ::kill(consumer.pid(), SIGCONT);
  CHECK(consumer.wait() == 0);
}

// Both sides wait only through their descriptors, in bursts with random pauses, so the
// ring runs empty and full over and over and each side arms thousands of times.
TEST_CASE("readiness: lost-wake-up stress, one million messages") {
  const std::uint64_t count = env_count("SHMQ_TEST_WAKE_MESSAGES", 1'000'000);
  watchdog dog(400);
  segment_guard seg("rd-stress");
  // No liveness tick within the test's life: a lost wake-up hangs instead of being
  // rescued by the next tick.
  // The ring holds about thirty messages, so the producer blocks for room all the time:
  // a lost wake-up of either side then leaves both asleep.
  channel_options o = spsc_kind::make(std::chrono::hours(1));
  spsc_consumer c(seg.name(), o);
  child_process producer([&](child_process&) {
    spsc_producer p(seg.name(), o);
    fd_loop loop(p.native_handle(), loop_mode::edge);
    return send_in_bursts(p, count, 21, [&](auto& prod, const std::vector<std::byte>& m) {
      return push_through(prod, m, loop);
    });
  });
  fd_loop loop(c.native_handle(), loop_mode::level);
  CHECK(read_all_through(c, loop, count, 22) == 0);
  MESSAGE("lost-wake-up stress: " << count << " messages, the consumer slept " << loop.waits << " times");
  CHECK(loop.waits > 100);
  CHECK(producer.wait() == 0);
}

TEST_CASE("readiness: the descriptor belongs to the endpoint") {
  segment_guard seg("rd-own");
  const auto o = mpmc_kind::make(100ms);
  SUBCASE("the same descriptor for its whole life, and it moves with the endpoint") {
    mpmc_consumer a(seg.name(), o);
    const int fd = a.native_handle();
    CHECK(a.native_handle() == fd);
    mpmc_consumer b(std::move(a));
    CHECK(b.native_handle() == fd);
  }
  SUBCASE("closing the endpoint closes its descriptors and frees its slot") {
    int fd = -1;
    {
      mpmc_consumer a(seg.name(), o);
      fd = a.native_handle();
      CHECK(::fcntl(fd, F_GETFD) >= 0);
    }
    CHECK(::fcntl(fd, F_GETFD) == -1);
    mpmc_consumer again(seg.name(), o);
    CHECK(again.native_handle() >= 0);
  }
  SUBCASE("out of descriptors: a clear error") {
    child_process child([&](child_process&) {
      mpmc_consumer a(seg.name(), o);
      rlimit lim{};
      ::getrlimit(RLIMIT_NOFILE, &lim);
      // Leave no descriptor free above the ones open now.
      int highest = ::dup(0);
      ::close(highest);
      lim.rlim_cur = static_cast<rlim_t>(highest);
      ::setrlimit(RLIMIT_NOFILE, &lim);
      try {
        (void)a.native_handle();
        return 1;
      } catch (const shmq::error& e) {
        return e.code() == errc::system_error && contains(e.what(), "3 descriptors") ? 0 : 2;
      }
    });
    CHECK(child.wait() == 0);
  }
}

TEST_CASE("readiness: a full table of handles, and the slots of dead processes taken back") {
  watchdog dog(60);
  segment_guard seg("rd-table");
  auto o = mpmc_kind::make(100ms);
  o.max_consumers = detail::max_handles + 8;
  rlimit lim{};
  ::getrlimit(RLIMIT_NOFILE, &lim);
  lim.rlim_cur = lim.rlim_max;
  ::setrlimit(RLIMIT_NOFILE, &lim);
  mpmc_producer p(seg.name(), o);  // keeps the channel alive
  child_process holder([&](child_process& self) {
    std::vector<mpmc_consumer> consumers;
    for (std::size_t i = 0; i < detail::max_handles; ++i) {
      consumers.emplace_back(seg.name(), o);
      (void)consumers.back().native_handle();
    }
    mpmc_consumer one_more(seg.name(), o);
    try {
      (void)one_more.native_handle();
      return 1;
    } catch (const shmq::error& e) {
      if (e.code() != errc::limit_reached) return 2;
    }
    self.notify('f');
    ::pause();
    return 3;
  });
  REQUIRE(holder.wait_notice() == 'f');
  CHECK(holder.kill_and_wait() == 128 + SIGKILL);
  // The dead process's 256 slots are still taken; making a handle finds them dead.
  mpmc_consumer c(seg.name(), o);
  CHECK(c.native_handle() >= 0);
}

}  // TEST_SUITE

}  // namespace
}  // namespace shmq::test

// A producer thread and a consumer thread in one process. Shared memory between two
// processes is invisible to ThreadSanitizer; between two threads it is not, so these
// are the tests that let TSan check the ring's memory ordering and the futex protocol.
#include <atomic>
#include <string>
#include <thread>

#include "ring_fixture.hpp"
#include "shmq/mpmc.hpp"
#include "test_support.hpp"

namespace {

using namespace std::chrono_literals;
using shmq::channel_options;
using shmq::spsc_consumer;
using shmq::spsc_producer;
using shmq::status;
using shmq::test::env_count;
using shmq::test::fill_message;
using shmq::test::make_message;
using shmq::test::message_ok;
using shmq::test::segment_guard;
using shmq::test::stream_message_size;

// What a consumer found wrong, reported by the test thread after join (doctest
// assertions are not meant to be made from other threads).
struct stream_result {
  std::uint64_t received = 0;
  std::uint64_t first_bad = ~std::uint64_t{0};
  std::string problem;

  void fail(std::uint64_t at, std::string what) {
    if (problem.empty()) {
      first_bad = at;
      problem = std::move(what);
    }
  }
};

std::uint64_t thread_messages() { return env_count("SHMQ_TEST_THREAD_MESSAGES", 1'000'000); }

}  // namespace

TEST_SUITE_BEGIN("unit");

TEST_CASE("ring_two_threads_stream") {
  const std::uint64_t count = thread_messages();
  constexpr std::uint64_t capacity = 1u << 16;
  const std::uint64_t max = shmq::detail::max_payload_for(capacity);
  shmq::test::heap_ring r(capacity, max);
  auto p = r.producer();
  auto c = r.consumer();
  std::atomic<bool> stop{false};
  std::uint64_t producer_full = 0;
  stream_result result;

  // Spinning on try_ forms: the ring alone has no waiting. yield() gives the peer the
  // core on a machine with fewer cores than threads; it is not a timing assumption.
  std::thread producer([&] {
    for (std::uint64_t seq = 0; seq < count; ++seq) {
      const std::uint64_t size = stream_message_size(1, seq, 0, 1024, max);
      std::byte* payload = nullptr;
      status s;
      while ((s = p.try_claim(size, payload)) == status::full) {
        ++producer_full;
        if (stop.load(std::memory_order_relaxed)) return;
        std::this_thread::yield();
      }
      if (s != status::ok) return;
      fill_message({payload, size}, seq);
      p.publish(size);
    }
  });
  std::thread consumer([&] {
    for (std::uint64_t seq = 0; seq < count; ++seq) {
      const std::byte* payload = nullptr;
      std::uint64_t size = 0;
      status s;
      while ((s = c.try_peek(payload, size)) == status::empty) std::this_thread::yield();
      if (s != status::ok) {
        result.fail(seq, std::string("try_peek gave ") + shmq::to_string(s));
        break;
      }
      if (size != stream_message_size(1, seq, 0, 1024, max)) {
        result.fail(seq, "wrong size " + std::to_string(size));
        break;
      }
      if (!message_ok({payload, size}, seq)) {
        result.fail(seq, "bad bytes: lost, repeated, reordered or torn");
        break;
      }
      c.release();
      ++result.received;
    }
    stop.store(true);
  });
  producer.join();
  consumer.join();
  CHECK_MESSAGE(result.problem.empty(),
                "first bad message: " << result.first_bad << ": " << result.problem);
  CHECK(result.received == count);
  MESSAGE("ring, two threads: " << count << " messages, producer found the ring full "
                                << producer_full << " times");
}

TEST_CASE("channel_two_threads_stream") {
  // A small ring keeps both sides waiting on each other; spin 0 sends every wait to the
  // futex at once, the default spin mostly avoids it. Both must deliver everything.
  std::uint64_t count = thread_messages();
  channel_options o;
  o.capacity = 8192;
  o.max_message_size = shmq::detail::max_payload_for(o.capacity);
  SUBCASE("default spin") {}
  SUBCASE("no spin") {
    o.spin = 0ns;
    count = count / 4 + 1;
  }
  segment_guard seg("threads");
  spsc_consumer c(seg.name(), o);
  spsc_producer p(seg.name(), o);
  stream_result result;
  status producer_status = status::ok;

  std::thread producer([&] {
    for (std::uint64_t seq = 0; seq < count; ++seq) {
      const std::size_t size = stream_message_size(2, seq, 0, 600, o.max_message_size);
      if (seq % 2 == 0) {
        shmq::loan l = p.loan(size);
        if (!l) {
          producer_status = l.status();
          break;
        }
        fill_message(l.data(), seq);
        l.commit();
      } else {
        auto m = make_message(seq, size);
        status s = p.push(m);
        if (s != status::ok) {
          producer_status = s;
          break;
        }
      }
    }
    p.close();
  });
  std::thread consumer([&] {
    std::vector<std::byte> buffer(o.max_message_size);
    // After a failure it goes on reading, unchecked, so the producer is never left
    // blocked on a full ring.
    for (std::uint64_t seq = 0;; ++seq) {
      std::span<const std::byte> message;
      shmq::view v;
      if (seq % 3 == 0) {
        auto r = c.pop(buffer);
        if (r.status == status::closed) break;
        if (r.status != status::ok) {
          result.fail(seq, std::string("pop gave ") + shmq::to_string(r.status));
          break;
        }
        message = {buffer.data(), r.size};
      } else {
        v = c.read();
        if (v.status() == status::closed) break;
        if (!v) {
          result.fail(seq, std::string("read gave ") + shmq::to_string(v.status()));
          break;
        }
        message = v.data();
      }
      if (message.size() != stream_message_size(2, seq, 0, 600, o.max_message_size))
        result.fail(seq, "wrong size " + std::to_string(message.size()));
      else if (!message_ok(message, seq))
        result.fail(seq, "bad bytes: lost, repeated, reordered or torn");
      ++result.received;
    }
  });
  producer.join();
  consumer.join();
  CHECK(producer_status == status::ok);
  CHECK_MESSAGE(result.problem.empty(),
                "first bad message: " << result.first_bad << ": " << result.problem);
  CHECK(result.received == count);
}

TEST_CASE("blocked_reader_is_woken_by_a_commit") {
  segment_guard seg("wake_commit");
  channel_options o;
  o.capacity = 4096;
  o.max_message_size = 2040;
  o.spin = 0ns;
  spsc_consumer c(seg.name(), o);
  spsc_producer p(seg.name(), o);
  status got = status::empty;
  bool intact = false;
  // Whether the reader is already asleep when the commit comes or not, it must return
  // with the message: both orders are correct and neither is waited for.
  std::thread reader([&] {
    shmq::view v = c.read();
    got = v.status();
    intact = v && message_ok(v.data(), 0);
  });
  auto m = make_message(0, 100);
  CHECK(p.push(m) == status::ok);
  reader.join();
  CHECK(got == status::ok);
  CHECK(intact);
}

TEST_CASE("blocked_reader_is_woken_by_close") {
  segment_guard seg("wake_close");
  channel_options o;
  o.capacity = 4096;
  o.max_message_size = 2040;
  o.spin = 0ns;
  spsc_consumer c(seg.name(), o);
  spsc_producer p(seg.name(), o);
  status got = status::ok;
  std::thread reader([&] { got = c.read().status(); });
  p.close();
  reader.join();
  CHECK(got == status::closed);
}

TEST_CASE("blocked_writer_is_woken_by_a_release") {
  segment_guard seg("wake_release");
  channel_options o;
  o.capacity = 4096;
  o.max_message_size = 2040;
  o.spin = 0ns;
  spsc_consumer c(seg.name(), o);
  spsc_producer p(seg.name(), o);
  std::uint64_t sent = 0;
  for (;; ++sent) {
    auto m = make_message(sent, 1000);
    status s = p.try_push(m);
    if (s == status::full) break;
    REQUIRE(s == status::ok);
  }
  REQUIRE(sent > 0);
  status got = status::empty;
  std::thread writer([&] {
    shmq::loan l = p.loan(1000);
    got = l.status();
    if (l) {
      fill_message(l.data(), sent);
      l.commit();
    }
  });
  // Draining frees room for the writer, whether it sleeps already or not yet.
  std::vector<std::byte> buffer(2040);
  for (std::uint64_t seq = 0; seq < sent; ++seq) {
    auto r = c.pop(buffer);
    CHECK(r.status == status::ok);
    CHECK(message_ok({buffer.data(), r.size}, seq));
  }
  writer.join();
  CHECK(got == status::ok);
  auto r = c.try_pop(buffer);
  REQUIRE(r.status == status::ok);
  CHECK(message_ok({buffer.data(), r.size}, sent));
}

TEST_CASE("mpmc_blocking_calls_through_full_and_empty") {
  // Four slots: the producer keeps filling the queue while writing back to back, and the
  // consumer keeps emptying it while reading back to back. Those are the waits that
  // start with quiet polls (slot_producer.hpp, mpmc.cpp); with spin 0 they run into the
  // sleep phase, whose check must still see the room or the message.
  for (const std::chrono::nanoseconds spin : {0ns, 20000ns}) {
    CAPTURE(spin.count());
    segment_guard seg("mpmc_catch_up");
    shmq::mpmc_options o;
    o.slots = 4;
    o.max_message_size = 64;
    o.spin = spin;
    shmq::mpmc_producer p(seg.name(), o);
    shmq::mpmc_consumer c(seg.name(), o);
    const std::uint64_t count = env_count("SHMQ_CATCH_UP_MESSAGES", 20000);
    std::thread writer([&] {
      for (std::uint64_t seq = 0; seq < count; ++seq) {
        auto m = make_message(seq, 8 + seq % 57);
        if (p.push(m) != status::ok) return;
      }
    });
    std::vector<std::byte> buffer(64);
    std::uint64_t received = 0;
    for (; received < count; ++received) {
      auto r = c.pop(buffer);
      if (r.status != status::ok || r.size != 8 + received % 57 ||
          !message_ok({buffer.data(), r.size}, received))
        break;
    }
    writer.join();
    CHECK(received == count);  // one producer, one consumer: all of them, in order
  }
}

TEST_SUITE_END();

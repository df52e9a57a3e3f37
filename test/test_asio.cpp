// shmq/asio.hpp across processes: one io_context thread reading an SPSC channel, an MPMC
// queue and a pub/sub subscription with coroutines while a timer fires; back-pressure
// through async_loan; close, a killed producer, cancel() and destroying the endpoint
// while an operation waits; callbacks, use_future and subscribe(). Every message is
// stamped (sequence number + checksum); the watchdog turns a hang into a failure.
#include <doctest/doctest.h>

#include "shmq/asio.hpp"  // first: it includes <utility> before Boost's awaitable.hpp

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>

#include "readiness_support.hpp"

namespace shmq::test {
namespace {

using namespace std::chrono_literals;
namespace net = boost::asio;
using shmq::asio::error_code;

struct watchdog {
  explicit watchdog(unsigned seconds) { ::alarm(seconds); }
  ~watchdog() { ::alarm(0); }
};

constexpr std::uint64_t per_channel = 5000;

std::size_t size_of(std::uint64_t seq) { return stream_message_size(3, seq, 16, 200, 64); }

template <class Producer>
int produce(Producer& p, std::uint64_t count) {
  for (std::uint64_t seq = 0; seq < count; ++seq)
    if (p.push(make_message(seq, size_of(seq))) != status::ok) return 10;
  p.close();
  return 0;
}

// Reads count stamped messages in order, then the end of the stream.
template <class C>
net::awaitable<int> read_stream(shmq::asio::endpoint<C>& in, std::uint64_t count) {
  for (std::uint64_t seq = 0; seq < count; ++seq) {
    view v = co_await shmq::asio::async_read(in, net::use_awaitable);
    if (!message_ok(v.data(), seq)) co_return 1;
  }
  try {
    (void)co_await shmq::asio::async_read(in, net::use_awaitable);
  } catch (const boost::system::system_error& e) {
    co_return e.code() == shmq::asio::make_error_code(status::closed) ? 0 : 2;
  }
  co_return 3;
}

TEST_SUITE("asio") {

TEST_CASE("asio: one thread reads three kinds of channel with coroutines while a timer fires") {
  watchdog dog(120);
  segment_guard a("asio-spsc"), b("asio-mpmc"), c("asio-pubsub");
  const auto spsc_o = spsc_kind::make(100ms);
  const auto mpmc_o = mpmc_kind::make(100ms);
  const auto pubsub_o = pubsub_kind::make(100ms);
  net::io_context io;
  shmq::asio::endpoint spsc(io.get_executor(), spsc_consumer(a.name(), spsc_o));
  shmq::asio::endpoint mpmc(io.get_executor(), mpmc_consumer(b.name(), mpmc_o));
  shmq::asio::endpoint sub(io.get_executor(), pubsub_kind::open_consumer(c.name(), pubsub_o));
  child_process p1([&](child_process&) { spsc_producer p(a.name(), spsc_o); return produce(p, per_channel); });
  child_process p2([&](child_process&) { mpmc_producer p(b.name(), mpmc_o); return produce(p, per_channel); });
  child_process p3([&](child_process&) { publisher p(c.name(), pubsub_o); return produce(p, per_channel); });

  int results[3] = {-1, -1, -1};
  int finished = 0;
  std::uint64_t ticks = 0;
  net::steady_timer timer(io);
  std::function<void()> tick = [&] {
    timer.expires_after(1ms);
    timer.async_wait([&](error_code ec) {
      // cancel() misses a wait that has expired but whose handler has not run yet
      if (ec || finished == 3) return;
      ++ticks;
      tick();
    });
  };
  tick();
  auto run = [&](auto& ep, int i) {
    net::co_spawn(io, read_stream(ep, per_channel), [&, i](std::exception_ptr e, int rc) {
      results[i] = e ? 100 : rc;
      if (++finished == 3) timer.cancel();
    });
  };
  run(spsc, 0);
  run(mpmc, 1);
  run(sub, 2);
  io.run();
  CHECK(results[0] == 0);
  CHECK(results[1] == 0);
  CHECK(results[2] == 0);
  MESSAGE("asio: 3 x " << per_channel << " messages on one thread, the timer fired " << ticks << " times");
  CHECK(p1.wait() == 0);
  CHECK(p2.wait() == 0);
  CHECK(p3.wait() == 0);
}

TEST_CASE("asio: back-pressure through async_loan, with a slow consumer in another process") {
  watchdog dog(120);
  segment_guard seg("asio-loan");
  const auto o = mpmc_kind::make(100ms);  // sixteen slots
  constexpr std::uint64_t count = 2000;
  net::io_context io;
  shmq::asio::endpoint out(io.get_executor(), mpmc_producer(seg.name(), o));
  child_process consumer([&](child_process&) {
    mpmc_consumer c(seg.name(), o);
    for (std::uint64_t seq = 0; seq < count; ++seq) {
      view v = c.read_for(30s);
      if (!v || !message_ok(v.data(), seq)) return 1;
      if (seq % 64 == 0) ::usleep(2000);  // slow now and then: the ring fills
    }
    return 0;
  });
  int rc = -1;
  net::co_spawn(io, [&]() -> net::awaitable<void> {
    for (std::uint64_t seq = 0; seq < count; ++seq) {
      loan l = co_await shmq::asio::async_loan(out, size_of(seq), net::use_awaitable);
      fill_message(l.data(), seq);
      l.commit();
    }
    rc = 0;
  }, net::detached);
  io.run();
  CHECK(rc == 0);
  CHECK(consumer.wait() == 0);
}

TEST_CASE("asio: async_wait, then drain with try_ calls (the reactor style), both directions") {
  watchdog dog(120);
  segment_guard in_seg("asio-wait-in"), out_seg("asio-wait-out");
  const auto spsc_o = spsc_kind::make(100ms);
  const auto mpmc_o = mpmc_kind::make(100ms);  // sixteen slots: the producer waits for room
  constexpr std::uint64_t count = 3000;
  net::io_context io;
  shmq::asio::endpoint in(io.get_executor(), spsc_consumer(in_seg.name(), spsc_o));
  shmq::asio::endpoint out(io.get_executor(), mpmc_producer(out_seg.name(), mpmc_o));
  child_process producer([&](child_process&) { spsc_producer p(in_seg.name(), spsc_o); return produce(p, count); });
  child_process consumer([&](child_process&) {
    mpmc_consumer c(out_seg.name(), mpmc_o);
    for (std::uint64_t seq = 0; seq < count; ++seq) {
      view v = c.read_for(30s);
      if (!v || !message_ok(v.data(), seq)) return 1;
      if (seq % 128 == 0) ::usleep(2000);  // slow now and then: the ring fills
    }
    return 0;
  });
  std::uint64_t read = 0, written = 0, waits = 0;
  int read_rc = -1, write_rc = -1;
  net::co_spawn(io, [&]() -> net::awaitable<void> {
    for (;;) {
      co_await shmq::asio::async_wait(in, net::use_awaitable);
      ++waits;
      for (;;) {  // each view released before the next try
        view v = in->try_read();
        if (!v) {
          if (v.status() == status::empty) break;
          read_rc = v.status() == status::closed && read == count ? 0 : 2;
          co_return;
        }
        if (!message_ok(v.data(), read++)) {
          read_rc = 1;
          co_return;
        }
      }
    }
  }, net::detached);
  net::co_spawn(io, [&]() -> net::awaitable<void> {
    while (written < count) {
      const std::size_t size = size_of(written);
      co_await shmq::asio::async_wait(out, size, net::use_awaitable);
      for (loan l = out->try_loan(size); l; l = out->try_loan(size_of(written))) {
        fill_message(l.data(), written);
        l.commit();
        if (++written == count) break;
      }
    }
    write_rc = 0;
  }, net::detached);
  io.run();
  CHECK(read_rc == 0);
  CHECK(write_rc == 0);
  CHECK(waits >= 1);
  CHECK(producer.wait() == 0);
  CHECK(consumer.wait() == 0);
}

TEST_CASE("asio: what ends a pending read") {
  watchdog dog(60);
  segment_guard seg("asio-end");
  auto o = mpmc_kind::make(20ms);
  o.when_producer_gone = when_producer_gone::report;
  net::io_context io;
  auto in = std::make_unique<shmq::asio::endpoint<mpmc_consumer>>(io.get_executor(), mpmc_consumer(seg.name(), o));
  error_code got;
  bool done = false;
  auto start = [&] {
    done = false;
    shmq::asio::async_read(*in, [&](error_code ec, view) {
      got = ec;
      done = true;
    });
  };
  SUBCASE("cancel()") {
    start();
    io.poll();
    REQUIRE(!done);
    in->cancel();
    io.run();
    CHECK(got == net::error::operation_aborted);
  }
  SUBCASE("destroying the endpoint") {
    start();
    io.poll();
    REQUIRE(!done);
    in.reset();
    io.run();
    CHECK(got == net::error::operation_aborted);
  }
  SUBCASE("a timeout from an Asio timer") {
    start();
    net::steady_timer t(io, 30ms);
    t.async_wait([&](error_code) { in->cancel(); });
    io.run();
    CHECK(got == net::error::operation_aborted);
  }
  SUBCASE("the stream closed, with use_future") {
    child_process producer([&](child_process&) {
      mpmc_producer p(seg.name(), o);
      p.close();
      return 0;
    });
    CHECK(producer.wait() == 0);
    auto f = shmq::asio::async_read(*in, net::use_future);
    io.run();
    try {
      (void)f.get();
      FAIL("read past the end");
    } catch (const boost::system::system_error& e) {
      CHECK(e.code() == shmq::asio::make_error_code(status::closed));
    }
  }
  SUBCASE("every producer killed, while armed") {
    child_process producer([&](child_process& self) {
      mpmc_producer p(seg.name(), o);
      self.notify('a');
      ::pause();
      return 1;
    });
    REQUIRE(producer.wait_notice() == 'a');
    start();
    io.poll();
    REQUIRE(!done);
    CHECK(producer.kill_and_wait() == 128 + SIGKILL);
    io.run();  // the liveness tick wakes the read; the check finds the producer dead
    CHECK(got == shmq::asio::make_error_code(status::producer_gone));
  }
}

TEST_CASE("asio: subscribe runs a callback per message until the stream ends or it unsubscribes") {
  watchdog dog(60);
  segment_guard seg("asio-sub");
  const auto o = pubsub_kind::make(100ms);
  net::io_context io;
  shmq::asio::endpoint sub(io.get_executor(), pubsub_kind::open_consumer(seg.name(), o));
  std::uint64_t next = 0;
  bool in_order = true;
  error_code end;
  view kept;
  SUBCASE("to the end of the stream, keeping a view now and then") {
    child_process producer([&](child_process&) { publisher p(seg.name(), o); return produce(p, 500); });
    auto s = shmq::asio::subscribe(
        sub,
        [&](view v) {
          in_order = in_order && message_ok(v.data(), next++);
          if (next % 50 == 0) {  // kept past the callback: the loop waits for its release
            kept = std::move(v);
            net::post(io, [&] { kept.release(); });
          }
        },
        [&](error_code ec) { end = ec; });
    io.run();
    CHECK(in_order);
    CHECK(next == 500);
    CHECK(end == shmq::asio::make_error_code(status::closed));
    CHECK(producer.wait() == 0);
  }
  SUBCASE("unsubscribe") {
    auto s = shmq::asio::subscribe(sub, [&](view) { ++next; }, [&](error_code ec) { end = ec; });
    io.poll();
    s.unsubscribe();
    io.run();
    CHECK(end == net::error::operation_aborted);
    CHECK(next == 0);
  }
}

}  // TEST_SUITE

}  // namespace
}  // namespace shmq::test

// shmq SPSC channels served by Boost.Asio (shmq/asio.hpp) between two processes.
//   shmq_spsc_latency_asio: ping-pong in which the child answers from a coroutine
//       (co_await async_read, co_await async_loan) and the parent runs one coroutine
//       round trip at a time on its io_context; every wait goes through the readiness
//       descriptor in the reactor's epoll, so each direction is one kernel wake-up, as in
//       floor_futex_latency.
//   shmq_spsc_throughput_asio: one-way stream into a consumer coroutine that folds every
//       byte in place, against shmq_spsc_throughput's blocking consumer: one
//       co_await async_read per message.
//   shmq_spsc_throughput_asio_drain: the same coroutine in the reactor style, co_await
//       async_wait then try_read() until the ring is empty.
#include "shmq/asio.hpp"  // first: it includes <utility> before Boost's awaitable.hpp

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <cstring>

#include "layout.hpp"
#include "shmq/spsc.hpp"
#include "shmq_exchange.hpp"
#include "suites.hpp"

namespace shmq_bench {

namespace {

namespace net = boost::asio;

shmq::channel_options asio_options() {
  shmq::channel_options o;
  o.capacity = 1u << 20;
  o.max_message_size = 64u << 10;
  return o;
}

void shmq_spsc_latency_asio(benchmark::State& state) {
  const auto bytes = static_cast<std::size_t>(state.range(0));
  const auto options = asio_options();
  channel_names names{"ping", "pong"};
  net::io_context io;
  shmq::asio::endpoint ping(io.get_executor(), shmq::spsc_producer(names[0], options));
  shmq::asio::endpoint pong(io.get_executor(), shmq::spsc_consumer(names[1], options));
  const payload message(bytes);
  const std::int64_t warmup = static_cast<std::int64_t>(options.capacity / shmq::detail::record_size(bytes)) + 1;
  const std::int64_t rounds = round_trips(state, warmup);

  peer child(state, [&](const control_link& link) {
    net::io_context child_io;
    shmq::asio::endpoint in(child_io.get_executor(), shmq::spsc_consumer(names[0], options));
    shmq::asio::endpoint out(child_io.get_executor(), shmq::spsc_producer(names[1], options));
    if (!signal_ready(link)) return 1;
    int rc = 2;
    net::co_spawn(child_io, [&]() -> net::awaitable<void> {
      for (std::int64_t i = 0; i < rounds; ++i) {
        shmq::view request = co_await shmq::asio::async_read(in, net::use_awaitable);
        shmq::loan reply = co_await shmq::asio::async_loan(out, request.size(), net::use_awaitable);
        std::memcpy(reply.data().data(), request.data().data(), request.size());
        reply.commit();
      }
      rc = 0;
    }, [](std::exception_ptr) {});
    child_io.run();
    return rc;
  });
  if (!child.wait_ready()) return;
  names.remove();

  std::uint64_t seq = 0;
  time_round_trips(state, [&] {
    bool ok = false;
    net::co_spawn(io, [&]() -> net::awaitable<void> {
      shmq::loan request = co_await shmq::asio::async_loan(ping, bytes, net::use_awaitable);
      message.write(request.data().data(), ++seq);
      request.commit();
      shmq::view reply = co_await shmq::asio::async_read(pong, net::use_awaitable);
      ok = reply.size() == bytes && sequence_of(reply.data().data()) == seq;
      benchmark::DoNotOptimize(fold(reply.data().data(), reply.size()));
    }, [](std::exception_ptr) {});
    io.restart();
    io.run();
    return ok;
  }, warmup);
  child.finish();
}

enum class coroutine_reads { per_message, drain };

template <coroutine_reads style>
void shmq_spsc_throughput_asio(benchmark::State& state) {
  const auto bytes = static_cast<std::size_t>(state.range(0));
  const auto options = asio_options();
  channel_names names{"stream"};
  shmq::spsc_producer out(names[0], options);
  const payload message(bytes);

  peer child(state, [&](const control_link& link) {
    net::io_context io;
    shmq::asio::endpoint in(io.get_executor(), shmq::spsc_consumer(names[0], options));
    if (!signal_ready(link)) return 1;
    stream_report report{};
    bool ended = false;
    const auto take = [&](const shmq::view& v) {
      report.fold += fold(v.data().data(), v.size());
      ++report.messages;
    };
    net::co_spawn(io, [&]() -> net::awaitable<void> {
      if constexpr (style == coroutine_reads::per_message) {
        try {
          for (;;) take(co_await shmq::asio::async_read(in, net::use_awaitable));
        } catch (const boost::system::system_error& e) {  // the end of the stream
          ended = e.code() == shmq::asio::make_error_code(shmq::status::closed);
        }
      } else {
        for (;;) {
          co_await shmq::asio::async_wait(in, net::use_awaitable);
          shmq::status s;
          for (;;) {  // one view at a time: each is released before the next try
            shmq::view v = in->try_read();
            if (!v) {
              s = v.status();
              break;
            }
            take(v);
          }
          if (s != shmq::status::empty) {
            ended = s == shmq::status::closed;
            break;
          }
        }
      }
    }, [](std::exception_ptr) {});
    io.run();
    if (!ended) return 2;
    return link.send(report) ? 0 : 1;
  });
  if (!child.wait_ready()) return;
  names.remove();
  time_stream(state, child, message, send_in_place(out, bytes, message), [&] { out.close(); });
  child.finish();
}

}  // namespace

sized_family shmq_spsc_latency_asio() {
  return latency_family("shmq_spsc_latency_asio", shmq_spsc_latency_asio, pace::kernel);
}

sized_family shmq_spsc_stream_asio() {
  return throughput_family("shmq_spsc_throughput_asio", shmq_spsc_throughput_asio<coroutine_reads::per_message>,
                           pace::cache);
}

sized_family shmq_spsc_stream_asio_drain() {
  return throughput_family("shmq_spsc_throughput_asio_drain", shmq_spsc_throughput_asio<coroutine_reads::drain>,
                           pace::cache);
}

}  // namespace shmq_bench

// One thread, one io_context, three channels and a timer: a coroutine per channel prints
// what arrives on an SPSC channel ("orders"), a work queue ("jobs") and a pub/sub
// subscription ("ticks"), and a timer prints the counts every second. Feed it from
// another terminal with the shmq command:
//
//   build/demo/shmq-event-loop &
//   seq 3 | build/tools/shmq pub orders
//   seq 3 | build/tools/shmq pub jobs --kind queue
//   seq 3 | build/tools/shmq pub ticks --kind pubsub
//
// A channel's coroutine ends when its stream closes; the program ends when all three
// have, or on Ctrl-C.
#include "shmq/asio.hpp"  // first: it includes <utility> before Boost's awaitable.hpp

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <csignal>
#include <cstdio>
#include <string_view>

#include "shmq/mpmc.hpp"
#include "shmq/pubsub.hpp"
#include "shmq/spsc.hpp"

namespace net = boost::asio;

namespace {

struct counts {
  std::uint64_t orders = 0, jobs = 0, ticks = 0;
  int open = 3;
};

// Prints every message of `in` until its stream ends.
template <class Consumer>
net::awaitable<void> serve(shmq::asio::endpoint<Consumer>& in, const char* name, std::uint64_t& count,
                           counts& all, net::steady_timer& timer) {
  try {
    for (;;) {
      shmq::view v = co_await shmq::asio::async_read(in, net::use_awaitable);
      ++count;
      const std::string_view text(reinterpret_cast<const char*>(v.data().data()), v.size());
      std::printf("%-6s %.*s\n", name, static_cast<int>(text.size()), text.data());
    }  // each view is released at the end of its iteration: at-least-once until then
  } catch (const boost::system::system_error& e) {
    std::printf("%-6s ended: %s\n", name, e.code().message().c_str());
  }
  if (--all.open == 0) timer.cancel();
}

net::awaitable<void> report_every_second(net::steady_timer& timer, const counts& all) {
  // cancel() misses a wait that expired but whose handler has not run: look at open too
  while (all.open > 0) {
    timer.expires_after(std::chrono::seconds(1));
    co_await timer.async_wait(net::use_awaitable);  // throws when cancelled: the end
    std::printf("-- orders %llu, jobs %llu, ticks %llu\n", static_cast<unsigned long long>(all.orders),
                static_cast<unsigned long long>(all.jobs), static_cast<unsigned long long>(all.ticks));
  }
}

}  // namespace

int main() {
  try {
    net::io_context io;
    shmq::asio::endpoint orders(io.get_executor(), shmq::spsc_consumer("orders"));
    shmq::asio::endpoint jobs(io.get_executor(), shmq::mpmc_consumer("jobs"));
    shmq::asio::endpoint ticks(io.get_executor(), shmq::subscriber("ticks"));
    counts all;
    net::steady_timer timer(io);
    net::signal_set stop(io, SIGINT, SIGTERM);
    stop.async_wait([&](auto, int) { io.stop(); });
    auto ignore = [](std::exception_ptr) {};
    net::co_spawn(io, serve(orders, "orders", all.orders, all, timer), ignore);
    net::co_spawn(io, serve(jobs, "jobs", all.jobs, all, timer), ignore);
    net::co_spawn(io, serve(ticks, "ticks", all.ticks, all, timer), ignore);
    net::co_spawn(io, report_every_second(timer, all), [&](std::exception_ptr) { stop.cancel(); });
    std::setvbuf(stdout, nullptr, _IOLBF, 0);
    io.run();
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "shmq-event-loop: %s\n", e.what());
    return 1;
  }
}

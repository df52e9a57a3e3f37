// shmq SPSC channels between two processes, through the public API only.
//   shmq_spsc_latency_busy / _block: ping-pong over two channels; messages written in
//       place (loan, commit) and read in place (view). busy polls try_loan/try_read;
//       block uses loan()/read(), which spin for options.spin and then sleep.
//   shmq_spsc_latency_fd: the same ping-pong through the readiness descriptors: each side
//       waits in epoll_wait every time (no spinning), so every message is one wake-up of
//       a sleeping process, as in floor_futex_latency, which it is compared with.
//   shmq_spsc_throughput: one-way stream, the consumer folding every byte in place.
//   shmq_spsc_idle_cpu: what a consumer blocked in read() costs while nothing comes;
//       shmq_spsc_idle_cpu_fd: the same for one armed in epoll_wait (liveness ticks).
#include <chrono>
#include <cstring>
#include <ctime>
#include <thread>

#include "layout.hpp"  // record_size: the same as the library uses
#include "shmq/spsc.hpp"
#include "shmq_exchange.hpp"
#include "suites.hpp"

namespace shmq_bench {

namespace {

shmq::channel_options bench_options() {
  shmq::channel_options o;
  o.capacity = 1u << 20;            // holds 2*(65536+16) with room to spare
  o.max_message_size = 64u << 10;   // the largest message size benchmarked
  return o;
}

// The SPSC channel for shmq_ping_pong (shmq_exchange.hpp).
struct spsc_kind {
  using producer = shmq::spsc_producer;
  using consumer = shmq::spsc_consumer;
  using options = shmq::channel_options;
  static options make_options(std::size_t) { return bench_options(); }
  static std::int64_t ring_lap(const options& o, std::size_t bytes) {
    return static_cast<std::int64_t>(o.capacity / shmq::detail::record_size(bytes)) + 1;
  }
};

void shmq_spsc_throughput(benchmark::State& state) {
  time_one_way_stream<shmq::spsc_producer, shmq::spsc_consumer>(state, bench_options());
}

std::chrono::nanoseconds process_cpu_time() {
  timespec ts{};
  ::clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return std::chrono::seconds(ts.tv_sec) + std::chrono::nanoseconds(ts.tv_nsec);
}

// The consumer blocks in read() (W = block) or waits armed in epoll_wait (W = fd) for
// about a second; the parent then sends one message. Targets: under 10 ms of CPU per
// second of waiting blocked, under 1 ms armed.
template <waiting W>
void shmq_spsc_idle_cpu(benchmark::State& state) {
  struct idle_report {
    std::int64_t cpu_ns;
    std::int64_t wall_ns;
  };
  constexpr std::uint64_t wake_up = 42;
  const auto options = bench_options();
  channel_names names{"idle"};
  shmq::spsc_producer out(names[0], options);

  peer child(state, [&](const control_link& link) {
    shmq::spsc_consumer in(names[0], options);
    const auto waiter = waiter_for<W>(in);
    if (!signal_ready(link)) return 1;
    const auto cpu_start = process_cpu_time();
    const auto wall_start = bench_clock::now();
    shmq::view v = take<W>(in, waiter);
    const idle_report report{(process_cpu_time() - cpu_start).count(),
                             (bench_clock::now() - wall_start).count()};
    if (!v || v.size() != 8 || sequence_of(v.data().data()) != wake_up) return 2;
    return link.send(report) ? 0 : 1;
  });
  if (!child.wait_ready()) return;
  names.remove();

  for (auto _ : state) {
    std::this_thread::sleep_for(std::chrono::seconds(1));  // a benchmark: a timed wait is the point
    shmq::loan l = out.loan(8);
    if (!l) {
      state.SkipWithError("loan failed");
      break;
    }
    std::memcpy(l.data().data(), &wake_up, 8);
    l.commit();
  }
  idle_report report{};
  if (child.link().receive(report) && report.wall_ns > 0)
    state.counters["cpu_ms_per_s"] =
        benchmark::Counter(static_cast<double>(report.cpu_ns) / 1e6 /
                           (static_cast<double>(report.wall_ns) / 1e9));
  else if (!state.error_occurred())
    state.SkipWithError("the consumer did not report its CPU time");
  child.finish();
}

}  // namespace

sized_family shmq_spsc_latency_busy() {
  return latency_family("shmq_spsc_latency_busy", shmq_ping_pong<spsc_kind, waiting::busy>, pace::cache);
}

sized_family shmq_spsc_latency_block() {
  return latency_family("shmq_spsc_latency_block", shmq_ping_pong<spsc_kind, waiting::block>,
                        pace::cache);
}

sized_family shmq_spsc_latency_fd() {
  return latency_family("shmq_spsc_latency_fd", shmq_ping_pong<spsc_kind, waiting::fd>, pace::kernel);
}

sized_family shmq_spsc_stream() {
  return throughput_family("shmq_spsc_throughput", shmq_spsc_throughput, pace::cache);
}

void register_shmq_spsc_idle_cpu() {
  register_guarded("shmq_spsc_idle_cpu", shmq_spsc_idle_cpu<waiting::block>, 1);
  register_guarded("shmq_spsc_idle_cpu_fd", shmq_spsc_idle_cpu<waiting::fd>, 1);
}

}  // namespace shmq_bench

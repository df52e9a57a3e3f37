// How every benchmark is sized, timed and reported: message sizes and iteration
// counts, ping-pong percentiles, and stream rates. Shared by all transports so their
// numbers mean the same thing.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <string>
#include <utility>
#include <vector>

#include <benchmark/benchmark.h>

#include "payload.hpp"
#include "peer.hpp"

namespace shmq_bench {

using bench_clock = std::chrono::steady_clock;

inline constexpr std::array<std::int64_t, 5> message_sizes{8, 64, 1024, 4096, 65536};

// Multiplies every iteration count registered after it (at least 100 each): below 1 for
// a quick smoke run whose numbers mean little.
void set_iteration_scale(double scale) noexcept;

// How long one message takes on a transport, which sets its iteration counts: cache
// transports move a message in nanoseconds, kernel ones in microseconds.
enum class pace { cache, kernel };

// Slots of a slotted ring (shmq MPMC and pub/sub, and the Boost queue they are compared
// with) for messages of `bytes`: about the 1 MiB of the SPSC benchmarks' ring, so that
// it stays in cache as that one does; a power of two from 16 to 1024.
std::size_t ring_slots(std::size_t bytes);

// A benchmark family: registers its run for one message size, name/<bytes>, with a
// fixed iteration count per size and real time (the parent's CPU time says nothing
// about a two-process exchange). An exception from `fn` (setup failed: shmq::error,
// std::system_error, ...) fails that run instead of ending the program.
using sized_family = std::function<void(std::int64_t bytes)>;
sized_family latency_family(const char* name, void (*fn)(benchmark::State&), pace p);
sized_family throughput_family(const char* name, void (*fn)(benchmark::State&), pace p);

// Registers every message size of each family, size by size (a/8, b/8, a/64, b/64, ...),
// which is the order they run in: numbers compared with each other are taken seconds
// apart, not minutes, so a change of conditions mid-run (see suites.hpp) rarely falls
// between them.
void register_side_by_side(std::initializer_list<sized_family> families);

// Every message size of one family.
void register_latency(const char* name, void (*fn)(benchmark::State&), pace p);
void register_throughput(const char* name, void (*fn)(benchmark::State&), pace p);

// The same for one benchmark, any callable, without a size argument: the caller adds
// arguments to the registration it returns.
using benchmark_fn = std::function<void(benchmark::State&)>;
benchmark::internal::Benchmark* register_guarded(const std::string& name, benchmark_fn fn,
                                                 std::int64_t iterations);

// Untimed round trips before the timed ones: 1000 (a tenth of a shorter run), or
// `at_least` where a transport needs more to reach its steady state.
std::int64_t warmup_round_trips(const benchmark::State& state, std::int64_t at_least = 0);

// Round trips the echo side must answer: the warm-up, then one per iteration.
inline std::int64_t round_trips(const benchmark::State& state, std::int64_t warmup_at_least = 0) {
  return warmup_round_trips(state, warmup_at_least) + state.max_iterations;
}

// The percentiles of every latency run (counter name, fraction of round trips at or
// below): with min_ns and max_ns, enough points to draw the distribution.
inline constexpr std::array<std::pair<const char*, double>, 8> latency_percentiles{{
    {"p10_ns", 0.10}, {"p25_ns", 0.25}, {"p50_ns", 0.50}, {"p75_ns", 0.75},
    {"p90_ns", 0.90}, {"p99_ns", 0.99}, {"p999_ns", 0.999}, {"p9999_ns", 0.9999}}};

// Sets min_ns, the latency_percentiles and max_ns: one-way latency, i.e. round trip / 2.
void report_one_way(benchmark::State& state, std::vector<std::int64_t>& round_trip_ns);

// Runs `round_trip()` (returns false on a wrong or missing reply) for the warm-up, then
// once per iteration, timing each one.
template <class RoundTrip>
void time_round_trips(benchmark::State& state, RoundTrip&& round_trip,
                      std::int64_t warmup_at_least = 0) {
  static constexpr const char* failed = "a round trip failed: wrong or missing reply";
  for (std::int64_t i = warmup_round_trips(state, warmup_at_least); i > 0; --i) {
    if (!round_trip()) {
      state.SkipWithError(failed);
      return;
    }
  }
  std::vector<std::int64_t> samples;
  samples.reserve(static_cast<std::size_t>(state.max_iterations));
  for (auto _ : state) {
    // Two clock reads per sample rather than one shared between neighbours: the first
    // iteration would otherwise carry the library's loop start-up.
    const auto start = bench_clock::now();
    if (!round_trip()) {
      state.SkipWithError(failed);
      break;
    }
    samples.push_back(std::chrono::nanoseconds(bench_clock::now() - start).count());
  }
  if (!state.error_occurred()) report_one_way(state, samples);
}

// Sets msgs_per_s and bytes_per_s from our own wall clock.
void report_rate(benchmark::State& state, std::uint64_t messages, std::size_t bytes,
                 bench_clock::duration elapsed);

// What a stream consumer sends back once it has seen the end of the stream.
struct stream_report {
  std::uint64_t messages;
  std::uint64_t fold;
};

// Times a one-way stream to `child`: `send(seq)` once per iteration (false: failed),
// then `end_stream()`, then the consumer's report. The clock stops at the report, so
// the consumer's draining is included; the report is checked against `message`.
template <class Send, class EndStream>
void time_stream(benchmark::State& state, peer& child, const payload& message, Send&& send,
                 EndStream&& end_stream) {
  std::uint64_t seq = 0;
  const auto start = bench_clock::now();
  for (auto _ : state) {
    if (!send(seq++)) {
      state.SkipWithError("sending failed");
      break;
    }
  }
  end_stream();
  stream_report report{};
  const bool got = child.link().receive(report);
  const auto elapsed = bench_clock::now() - start;
  if (state.error_occurred()) return;
  if (!got) {
    state.SkipWithError("the consumer did not report");
  } else if (report.messages != seq || report.fold != message.expected_fold(seq)) {
    state.SkipWithError("the consumer's count or checksum does not match what was sent");
  } else {
    report_rate(state, seq, message.size(), elapsed);
  }
}

}  // namespace shmq_bench

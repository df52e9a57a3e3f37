#include "measure.hpp"

#include <algorithm>
#include <bit>
#include <cmath>
#include <exception>

#include "layout.hpp"  // slot_size_for: what the library lays a slot out as

namespace shmq_bench {

namespace {

// Round trips per latency run. 200k puts 200 samples beyond p999. Kernel transports
// take tens of microseconds per round trip (a wake-up each way), so they get 100k to
// keep the whole run within a few minutes; 64 KiB messages are slow everywhere.
std::int64_t latency_iterations(std::int64_t bytes, pace p) {
  if (p == pace::cache) return bytes <= 4096 ? 200'000 : 20'000;
  return bytes <= 4096 ? 100'000 : 20'000;
}

// Messages per throughput run: a few hundred milliseconds each, long enough that
// scheduling noise on a shared machine averages out.
std::int64_t throughput_iterations(std::int64_t bytes, pace p) {
  if (p == pace::cache) {
    if (bytes <= 64) return 20'000'000;
    if (bytes <= 1024) return 5'000'000;
    if (bytes <= 4096) return 2'000'000;
    return 200'000;
  }
  if (bytes <= 1024) return 1'000'000;
  if (bytes <= 4096) return 400'000;
  return 50'000;
}

double iteration_scale = 1.0;  // set_iteration_scale

sized_family sized(const char* name, void (*fn)(benchmark::State&), pace p,
                   std::int64_t (*iterations)(std::int64_t, pace)) {
  return [=](std::int64_t bytes) {
    const auto n = static_cast<std::int64_t>(static_cast<double>(iterations(bytes, p)) * iteration_scale);
    register_guarded(name, fn, std::max<std::int64_t>(n, 100))->Arg(bytes);
  };
}

// Nearest-rank percentile of sorted samples.
std::int64_t percentile(const std::vector<std::int64_t>& sorted, double q) {
  const auto rank = static_cast<std::size_t>(std::ceil(q * static_cast<double>(sorted.size())));
  return sorted[std::clamp<std::size_t>(rank, 1, sorted.size()) - 1];
}

}  // namespace

void set_iteration_scale(double scale) noexcept { iteration_scale = scale; }

std::size_t ring_slots(std::size_t bytes) {
  constexpr std::size_t ring_bytes = 1u << 20;
  const std::size_t fit = ring_bytes / shmq::detail::slot_size_for(bytes);
  return std::clamp<std::size_t>(std::bit_floor(fit), 16, 1024);
}

sized_family latency_family(const char* name, void (*fn)(benchmark::State&), pace p) {
  return sized(name, fn, p, latency_iterations);
}

sized_family throughput_family(const char* name, void (*fn)(benchmark::State&), pace p) {
  return sized(name, fn, p, throughput_iterations);
}

void register_side_by_side(std::initializer_list<sized_family> families) {
  for (std::int64_t bytes : message_sizes)
    for (const sized_family& family : families) family(bytes);
}

void register_latency(const char* name, void (*fn)(benchmark::State&), pace p) {
  register_side_by_side({latency_family(name, fn, p)});
}

void register_throughput(const char* name, void (*fn)(benchmark::State&), pace p) {
  register_side_by_side({throughput_family(name, fn, p)});
}

benchmark::internal::Benchmark* register_guarded(const std::string& name, benchmark_fn fn,
                                                 std::int64_t iterations) {
  auto guarded = [fn = std::move(fn)](benchmark::State& state) {
    try {
      fn(state);
    } catch (const std::exception& e) {
      state.SkipWithError(e.what());
    }
  };
  return benchmark::RegisterBenchmark(name.c_str(), std::move(guarded))
      ->Iterations(iterations)
      ->UseRealTime();
}

std::int64_t warmup_round_trips(const benchmark::State& state, std::int64_t at_least) {
  return std::max(at_least, std::min<std::int64_t>(1000, state.max_iterations / 10));
}

void report_one_way(benchmark::State& state, std::vector<std::int64_t>& round_trip_ns) {
  if (round_trip_ns.empty()) return;
  std::sort(round_trip_ns.begin(), round_trip_ns.end());
  auto one_way = [](std::int64_t ns) { return benchmark::Counter(static_cast<double>(ns) / 2.0); };
  state.counters["min_ns"] = one_way(round_trip_ns.front());
  for (const auto& [name, q] : latency_percentiles) state.counters[name] = one_way(percentile(round_trip_ns, q));
  state.counters["max_ns"] = one_way(round_trip_ns.back());
}

void report_rate(benchmark::State& state, std::uint64_t messages, std::size_t bytes,
                 bench_clock::duration elapsed) {
  const double seconds = std::chrono::duration<double>(elapsed).count();
  if (seconds <= 0) return;
  const auto count = static_cast<double>(messages);
  state.counters["msgs_per_s"] = benchmark::Counter(count / seconds);
  state.counters["bytes_per_s"] = benchmark::Counter(count * static_cast<double>(bytes) / seconds);
}

}  // namespace shmq_bench

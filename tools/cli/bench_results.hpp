// What `shmq bench` measured: each run's counters by "<family>/<bytes>", and what
// draws them (plot.cpp).
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

namespace shmq_cli {

struct bench_run {
  std::map<std::string, double> counters;  // p50_ns, msgs_per_s, bytes_per_s, ...
  std::string error;                       // empty: it ran
};

struct bench_results {
  std::map<std::string, bench_run> runs;  // "floor_spin_latency/64", ...

  std::optional<double> counter(const std::string& run, const std::string& name) const;
};

// The latency runs drawn as CDFs, with their titles; the throughput runs by message size.
struct plot_series {
  std::string run_prefix;  // "floor_spin_latency" (+ "/<bytes>")
  std::string title;       // one word (gnuplot's word() splits titles on spaces)
};

// Draws `latency` (at `latency_bytes`) and `throughput` (at each of `sizes`) into a PNG
// with gnuplot and the script built in from bench/plot.gp. Throws std::runtime_error.
void plot_results(const bench_results& results, const std::vector<plot_series>& latency, long latency_bytes,
                  const std::vector<plot_series>& throughput, const std::vector<long>& sizes,
                  const std::string& png);

}  // namespace shmq_cli

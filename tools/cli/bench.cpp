// shmq bench: the headline numbers in about a minute, measured by the benchmarks of
// bench/ (through their static library) with their floors in the same run: SPSC
// ping-pong latency against the spin and futex floors, and SPSC throughput by message
// size against the memcpy floor. Processes are pinned to two CPUs (bench/peer.hpp).
// --plot draws the latency distribution and the throughput; --json keeps the full
// Google Benchmark JSON, which bench/report.py reads.
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <exception>
#include <memory>
#include <string>
#include <vector>

#include <benchmark/benchmark.h>

#include "bench_results.hpp"
#include "commands.hpp"
#include "measure.hpp"
#include "suites.hpp"

namespace shmq_cli {

namespace {

constexpr long latency_bytes = 64;

const std::vector<plot_series> latency_series{
    {"floor_spin_latency", "spin-floor"},
    {"shmq_spsc_latency_busy", "shmq-SPSC-polling"},
    {"shmq_spsc_latency_block", "shmq-SPSC-blocking"},
    {"floor_futex_latency", "futex-floor"},
};
const std::vector<plot_series> throughput_series{
    {"shmq_spsc_throughput", "shmq-SPSC"},
    {"floor_memcpy_throughput", "memcpy-floor"},
};

struct bench_settings {
  std::string plot;
  std::string json;
  bool quick = false;
};

// Keeps every run's counters and prints a progress line as each one ends.
class collector final : public benchmark::BenchmarkReporter {
 public:
  collector(bench_results& results, std::size_t total) : results_(results), total_(total) {}

  bool ReportContext(const Context&) override { return true; }
  void ReportRuns(const std::vector<Run>& runs) override {
    for (const Run& run : runs) {
      const std::string name = run.run_name.function_name + "/" + run.run_name.args;
      bench_run& r = results_.runs[name];
      r.error = run.error_occurred ? (run.error_message.empty() ? "failed" : run.error_message) : "";
      for (const auto& [key, c] : run.counters) r.counters[key] = c.value;
      ++done_;
      std::fprintf(stderr, "%s[%2zu/%zu] %-36s %s%s", tty_ ? "\r\033[K" : "", done_, total_, name.c_str(),
                   r.error.empty() ? "done" : ("FAILED: " + r.error).c_str(), tty_ && done_ < total_ ? "" : "\n");
    }
  }

 private:
  bench_results& results_;
  std::size_t total_;
  std::size_t done_ = 0;
  bool tty_ = ::isatty(STDERR_FILENO) != 0;
};

std::string ns(std::optional<double> v) {
  if (!v) return "-";
  char text[32];
  if (*v >= 1e6) std::snprintf(text, sizeof text, "%.2f ms", *v / 1e6);
  else if (*v >= 1e3) std::snprintf(text, sizeof text, "%.2f us", *v / 1e3);
  else std::snprintf(text, sizeof text, "%.1f ns", *v);
  return text;
}

std::string rate(std::optional<double> v, const char* unit) {
  if (!v) return "-";
  char text[32];
  if (*v >= 1e9) std::snprintf(text, sizeof text, "%.2f G%s", *v / 1e9, unit);
  else if (*v >= 1e6) std::snprintf(text, sizeof text, "%.2f M%s", *v / 1e6, unit);
  else std::snprintf(text, sizeof text, "%.2f k%s", *v / 1e3, unit);
  return text;
}

std::string times(std::optional<double> a, std::optional<double> b) {
  if (!a || !b || *b == 0) return "-";
  char text[32];
  std::snprintf(text, sizeof text, *a / *b >= 10 ? "%.0fx" : "%.2fx", *a / *b);
  return text;
}

void print_results(const bench_results& r) {
  const auto lat = [&](const std::string& family, const char* counter) {
    return r.counter(family + "/" + std::to_string(latency_bytes), counter);
  };
  const auto spin = lat("floor_spin_latency", "p50_ns");
  std::printf("\nOne-way latency, %ld-byte messages (ping-pong round trip / 2)\n", latency_bytes);
  std::printf("  %-34s %10s %10s %10s %14s\n", "", "p50", "p99", "p99.9", "p50/spin floor");
  const char* labels[] = {"spin floor (two cache lines)", "shmq SPSC, polling (try_read)",
                          "shmq SPSC, blocking (read)", "futex floor (a wake-up each way)"};
  for (std::size_t i = 0; i < latency_series.size(); ++i) {
    const std::string& f = latency_series[i].run_prefix;
    std::printf("  %-34s %10s %10s %10s %14s\n", labels[i], ns(lat(f, "p50_ns")).c_str(), ns(lat(f, "p99_ns")).c_str(),
                ns(lat(f, "p999_ns")).c_str(), times(lat(f, "p50_ns"), spin).c_str());
  }
  std::printf("\nThroughput between two processes, the consumer reading every byte\n");
  std::printf("  %-10s %16s %14s %16s %12s\n", "size", "shmq SPSC msg/s", "bytes/s", "memcpy floor B/s", "/ floor");
  for (const long bytes : shmq_bench::message_sizes) {
    const std::string n = std::to_string(bytes);
    const auto b = r.counter("shmq_spsc_throughput/" + n, "bytes_per_s");
    const auto floor = r.counter("floor_memcpy_throughput/" + n, "bytes_per_s");
    std::printf("  %-10s %16s %14s %16s %12s\n", (n + " B").c_str(),
                rate(r.counter("shmq_spsc_throughput/" + n, "msgs_per_s"), "").c_str(), rate(b, "B").c_str(),
                rate(floor, "B").c_str(), times(b, floor).c_str());
  }
  const auto block = lat("shmq_spsc_latency_block", "p50_ns");
  std::printf("\nHeadline: %s one-way at p50 when blocking (%s the spin floor; the futex floor is %s slower);\n"
              "          %s msg/s at 64 B, %s at 64 KiB (%s the memcpy floor).\n",
              ns(block).c_str(), times(block, spin).c_str(), times(lat("floor_futex_latency", "p50_ns"), block).c_str(),
              rate(r.counter("shmq_spsc_throughput/64", "msgs_per_s"), "").c_str(),
              rate(r.counter("shmq_spsc_throughput/65536", "bytes_per_s"), "B/s").c_str(),
              times(r.counter("shmq_spsc_throughput/65536", "bytes_per_s"),
                    r.counter("floor_memcpy_throughput/65536", "bytes_per_s")).c_str());
}

// Registers the headline runs; returns how many.
std::size_t register_headline_runs() {
  using namespace shmq_bench;
  std::size_t n = 0;
  for (const auto& family : {spin_latency_floor(), shmq_spsc_latency_busy(), shmq_spsc_latency_block(),
                             futex_latency_floor()}) {
    family(latency_bytes);
    ++n;
  }
  const sized_family memcpy_floor = memcpy_throughput_floor(), spsc = shmq_spsc_stream();
  for (const std::int64_t bytes : message_sizes) {  // side by side, size by size (suites.hpp)
    memcpy_floor(bytes);
    spsc(bytes);
    n += 2;
  }
  return n;
}

int bench(const bench_settings& s) {
  // A peer that dies must show up as a failed write, not end the run with SIGPIPE.
  std::signal(SIGPIPE, SIG_IGN);
  std::vector<std::string> args{"shmq bench"};
  if (!s.json.empty()) args.insert(args.end(), {"--benchmark_out=" + s.json, "--benchmark_out_format=json"});
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  int argc = static_cast<int>(argv.size());
  benchmark::Initialize(&argc, argv.data());
  if (s.quick) shmq_bench::set_iteration_scale(0.01);
  const std::size_t total = register_headline_runs();
  const auto& cpus = shmq_bench::placement();
  std::fprintf(stderr, "shmq bench: %zu runs on CPUs %d and %d%s, about a minute\n", total, cpus.parent, cpus.child,
               cpus.parent == cpus.child ? " (one CPU only: latency figures will be poor)" : "");
  bench_results results;
  collector progress(results, total);
  std::unique_ptr<benchmark::BenchmarkReporter> file;
  if (!s.json.empty()) file = std::make_unique<benchmark::JSONReporter>();
  benchmark::RunSpecifiedBenchmarks(&progress, file.get());
  benchmark::Shutdown();
  print_results(results);
  int rc = 0;
  for (const auto& [name, run] : results.runs)
    if (!run.error.empty()) rc = fail("bench", name + " failed: " + run.error);
  if (!s.plot.empty()) {
    try {
      std::vector<long> sizes(shmq_bench::message_sizes.begin(), shmq_bench::message_sizes.end());
      plot_results(results, latency_series, latency_bytes, throughput_series, sizes, s.plot);
      std::printf("plot: %s\n", s.plot.c_str());
    } catch (const std::exception& e) {
      rc = fail("bench", e.what());
    }
  }
  return rc;
}

}  // namespace

void add_bench_command(CLI::App& app, runner& run) {
  auto s = std::make_shared<bench_settings>();
  CLI::App* cmd = app.add_subcommand(
      "bench", "the headline numbers in about a minute: SPSC latency and throughput, with the spin, futex and memcpy floors");
  cmd->add_option("--plot", s->plot, "draw the latency distribution and the throughput by message size into FILE.png (gnuplot)");
  cmd->add_option("--json", s->json, "also write the Google Benchmark JSON (bench/report.py reads it)");
  cmd->add_flag("--quick", s->quick, "a hundredth of the iterations: a smoke run, its numbers mean little");
  cmd->callback([s, &run] { run = [s] { return bench(*s); }; });
}

}  // namespace shmq_cli

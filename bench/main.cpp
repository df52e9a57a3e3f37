// shmq-bench: the floors, shmq and the baselines, measured in one run so that their
// numbers can be compared with each other.
//
// Why not BENCHMARK_MAIN(): the runs have fixed iteration counts and use real time,
// and Google Benchmark then names them "<family>/<bytes>/iterations:N/real_time".
// report.py, and whoever reads the JSON, key on "<family>/<bytes>", so the reporters
// that --benchmark_format and --benchmark_out_format select are wrapped in one that
// leaves those two parts out. (--benchmark_filter still matches the full names.)
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <csignal>
#include <cstdlib>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <benchmark/benchmark.h>

#include "suites.hpp"

namespace {

using benchmark::BenchmarkReporter;
using benchmark::ConsoleReporter;

// The output flags, read as the library reads them: the environment first
// (BENCHMARK_FORMAT, ...), then the command line. Initialize() validates the values.
struct output_flags {
  std::string format = "console";
  std::string out;
  std::string out_format = "json";
  std::string color = "auto";
  std::string counters_tabular = "false";
};

output_flags read_output_flags(int argc, char** argv) {
  output_flags f;
  const struct {
    std::string_view name;
    std::string* value;
    bool boolean;  // may stand alone, meaning true
  } flags[] = {
      {"benchmark_format", &f.format, false},
      {"benchmark_out", &f.out, false},
      {"benchmark_out_format", &f.out_format, false},
      {"benchmark_color", &f.color, false},
      {"benchmark_counters_tabular", &f.counters_tabular, true},
  };
  for (const auto& flag : flags) {
    std::string env(flag.name);
    std::transform(env.begin(), env.end(), env.begin(), [](unsigned char c) { return std::toupper(c); });
    if (const char* v = std::getenv(env.c_str())) *flag.value = v;
  }
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (!arg.starts_with('-')) continue;
    arg.remove_prefix(arg.starts_with("--") ? 2 : 1);
    for (const auto& flag : flags) {
      if (!arg.starts_with(flag.name)) continue;
      const std::string_view rest = arg.substr(flag.name.size());
      if (rest.starts_with('='))
        *flag.value = rest.substr(1);
      else if (rest.empty() && flag.boolean)
        *flag.value = "true";
    }
  }
  return f;
}

bool truthy(std::string value) {
  std::transform(value.begin(), value.end(), value.begin(), [](unsigned char c) { return std::tolower(c); });
  if (value.size() == 1) return std::isalnum(static_cast<unsigned char>(value[0])) && value != "0" && value != "f" && value != "n";
  return value != "false" && value != "no" && value != "off";
}

ConsoleReporter::OutputOptions console_options(const output_flags& f) {
  int options = ConsoleReporter::OO_None;
  const char* term = std::getenv("TERM");
  const bool color_terminal = ::isatty(STDOUT_FILENO) && term != nullptr && std::string_view(term) != "dumb";
  if (f.color == "auto" ? color_terminal : truthy(f.color)) options |= ConsoleReporter::OO_Color;
  if (truthy(f.counters_tabular)) options |= ConsoleReporter::OO_Tabular;
  return static_cast<ConsoleReporter::OutputOptions>(options);
}

std::unique_ptr<BenchmarkReporter> make_reporter(std::string_view format,
                                                 ConsoleReporter::OutputOptions options) {
  if (format == "json") return std::make_unique<benchmark::JSONReporter>();
  if (format == "csv") {
    // Deprecated upstream, but --benchmark_format=csv must keep working.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
    return std::make_unique<benchmark::CSVReporter>();
#pragma GCC diagnostic pop
  }
  return std::make_unique<ConsoleReporter>(options);
}

// Reports runs as "<family>/<bytes>" (see the top of this file).
class plain_names final : public BenchmarkReporter {
 public:
  explicit plain_names(std::unique_ptr<BenchmarkReporter> inner) : inner_(std::move(inner)) {}

  bool ReportContext(const Context& context) override {
    // The library has pointed this reporter at its streams by now.
    inner_->SetOutputStream(&GetOutputStream());
    inner_->SetErrorStream(&GetErrorStream());
    return inner_->ReportContext(context);
  }
  void ReportRuns(const std::vector<Run>& runs) override {
    std::vector<Run> renamed(runs);
    for (Run& run : renamed) {
      run.run_name.iterations.clear();
      run.run_name.time_type.clear();
    }
    inner_->ReportRuns(renamed);
  }
  void Finalize() override { inner_->Finalize(); }

 private:
  std::unique_ptr<BenchmarkReporter> inner_;
};

}  // namespace

int main(int argc, char** argv) {
  // A peer that dies must show up as a failed write, not end the run with SIGPIPE.
  std::signal(SIGPIPE, SIG_IGN);
  const output_flags flags = read_output_flags(argc, argv);
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;

  // Run order; why compared families are interleaved size by size: see suites.hpp.
  using namespace shmq_bench;
  register_side_by_side({spin_latency_floor(), shmq_spsc_latency_busy(), shmq_spsc_latency_block(),
                         shmq_pubsub_latency()});
  register_side_by_side({memcpy_throughput_floor(), shmq_spsc_stream(), shmq_spsc_stream_asio(), shmq_spsc_stream_asio_drain(), boost_mq_stream(),
                         shmq_mpmc_stream(work_queue_shapes[0]),
                         boost_mq_work_queue(work_queue_shapes[0])});
  for (const fan_shape& shape : std::span(work_queue_shapes).subspan(1))
    register_side_by_side({shmq_mpmc_stream(shape), boost_mq_work_queue(shape)});
  register_side_by_side({shmq_pubsub_stream(fan_out_shapes[0]), shmq_pubsub_stream(fan_out_shapes[1]),
                         shmq_pubsub_stream(fan_out_shapes[2])});
  register_shmq_spsc_idle_cpu();
  register_kernel_floors();
  register_fd_baselines();
  register_queue_baselines();
  register_durable_suite();

  plain_names display(make_reporter(flags.format, console_options(flags)));
  std::unique_ptr<plain_names> file;
  if (!flags.out.empty())
    file = std::make_unique<plain_names>(make_reporter(flags.out_format, ConsoleReporter::OO_None));
  benchmark::RunSpecifiedBenchmarks(&display, file.get());
  benchmark::Shutdown();
  return 0;
}

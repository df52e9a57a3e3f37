// shmq bench --plot: the measured counters as gnuplot data files, then gnuplot with the
// script of bench/plot.gp (built in), as bench/report.py --plot does from a JSON file.
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <stdexcept>

#include "bench_results.hpp"
#include "measure.hpp"  // latency_percentiles

extern char** environ;

namespace shmq_bench {
extern const char plot_script[];
}

namespace shmq_cli {

std::optional<double> bench_results::counter(const std::string& run, const std::string& name) const {
  const auto r = runs.find(run);
  if (r == runs.end() || !r->second.error.empty()) return std::nullopt;
  const auto c = r->second.counters.find(name);
  return c == r->second.counters.end() ? std::nullopt : std::optional(c->second);
}

namespace {

namespace fs = std::filesystem;

// A private directory for the data files, removed with everything in it.
struct scratch_dir {
  fs::path path;
  scratch_dir() {
    std::string pattern = (fs::temp_directory_path() / "shmq-plot-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error(std::string("mkdtemp: ") + std::strerror(errno));
    path = pattern;
  }
  ~scratch_dir() {
    std::error_code ignored;
    fs::remove_all(path, ignored);
  }
};

// gnuplot's single-quoted strings: a quote is doubled.
std::string gnuplot_quoted(const std::string& s) {
  std::string out = "'";
  for (const char c : s) out += c == '\'' ? std::string("''") : std::string(1, c);
  return out + "'";
}

void run_gnuplot(const std::string& settings, const fs::path& script) {
  std::string program = "gnuplot";
  std::string dash_e = "-e";
  std::string set = settings;
  std::string file = script.string();
  char* argv[] = {program.data(), dash_e.data(), set.data(), file.data(), nullptr};
  pid_t pid = 0;
  if (const int e = ::posix_spawnp(&pid, "gnuplot", nullptr, nullptr, argv, environ); e != 0)
    throw std::runtime_error(std::string("cannot run gnuplot (") + std::strerror(e) +
                             "): install it with apt-get install gnuplot-nox");
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) throw std::runtime_error("gnuplot failed (see its messages above)");
}

}  // namespace

void plot_results(const bench_results& results, const std::vector<plot_series>& latency, long latency_bytes,
                  const std::vector<plot_series>& throughput, const std::vector<long>& sizes,
                  const std::string& png) {
  const scratch_dir dir;
  const fs::path lat = dir.path / "latency.dat", tp = dir.path / "throughput.dat", gp = dir.path / "plot.gp";
  std::string titles;
  {
    std::ofstream out(lat);
    for (const plot_series& s : latency) {
      const std::string run = s.run_prefix + "/" + std::to_string(latency_bytes);
      const auto lowest = results.counter(run, "min_ns");
      if (!lowest) continue;
      out << "# " << s.title << "\n" << *lowest << " 0\n";
      for (const auto& [name, q] : shmq_bench::latency_percentiles)
        if (const auto v = results.counter(run, name)) out << *v << " " << q << "\n";
      if (const auto v = results.counter(run, "max_ns")) out << *v << " 1\n";
      out << "\n\n";
      titles += (titles.empty() ? "" : " ") + s.title;
    }
  }
  {
    std::ofstream out(tp);
    out << "bytes";
    for (const plot_series& s : throughput) out << " " << s.title;
    out << "\n";
    for (const long bytes : sizes) {
      out << bytes;
      for (const plot_series& s : throughput) {
        const auto v = results.counter(s.run_prefix + "/" + std::to_string(bytes), "bytes_per_s");
        out << " " << (v ? std::to_string(*v) : "NaN");
      }
      out << "\n";
    }
  }
  std::ofstream(gp) << shmq_bench::plot_script;
  if (titles.empty()) throw std::runtime_error("no latency run succeeded: nothing to plot");
  run_gnuplot("out=" + gnuplot_quoted(png) + "; latency=" + gnuplot_quoted(lat.string()) + "; latency_titles=" + gnuplot_quoted(titles) +
                  "; throughput=" + gnuplot_quoted(tp.string()) +
                  "; throughput_columns=" + std::to_string(throughput.size() + 1),
              gp);
}

}  // namespace shmq_cli

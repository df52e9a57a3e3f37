// shmq bench in a build without Google Benchmark (libbenchmark-dev): says so.
#include "commands.hpp"

namespace shmq_cli {

void add_bench_command(CLI::App& app, runner& run) {
  CLI::App* cmd = app.add_subcommand("bench", "benchmarks (this build has none: it was made without libbenchmark-dev)");
  cmd->callback([&run] { run = [] { return fail("bench", "built without Google Benchmark (apt-get install libbenchmark-dev)"); }; });
}

}  // namespace shmq_cli

// The subcommands of shmq. Each adds itself to the app and sets `run` to what it does
// once the command line is parsed: run() returns the exit status (0 success, 1 failure;
// CLI11 reports usage errors with 2 before anything runs).
#pragma once

#include <functional>

#include <CLI/CLI.hpp>

namespace shmq_cli {

using runner = std::function<int()>;

void add_pub_command(CLI::App& app, runner& run);
void add_sub_command(CLI::App& app, runner& run);
void add_stat_command(CLI::App& app, runner& run);
void add_top_command(CLI::App& app, runner& run);
void add_ls_command(CLI::App& app, runner& run);
void add_rm_command(CLI::App& app, runner& run);
void add_bench_command(CLI::App& app, runner& run);
void add_completion_command(CLI::App& app, runner& run);

// "shmq CMD: what" on stderr; returns 1, the failure status.
int fail(const char* command, const std::string& what);

}  // namespace shmq_cli

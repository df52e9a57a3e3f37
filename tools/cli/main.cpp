// shmq: pipe data through channels, watch them, benchmark them, clean them up.
//   shmq pub NAME / shmq sub NAME     stdin into a channel, a channel to stdout
//   shmq stat NAME / shmq top         one channel or every segment, once or live
//   shmq bench [--plot FILE.png]      the headline numbers, with their floors
//   shmq ls / shmq rm                 list and remove segments
//   shmq completion                   a bash completion script
// Exit status: 0 success, 1 failure, 2 usage.
#include <cstdio>
#include <string>

#include <CLI/CLI.hpp>

#include "commands.hpp"

#ifndef SHMQ_VERSION
#define SHMQ_VERSION "unknown"
#endif

namespace shmq_cli {

int fail(const char* command, const std::string& what) {
  std::fprintf(stderr, "shmq %s: %s\n", command, what.c_str());
  return 1;
}

}  // namespace shmq_cli

int main(int argc, char** argv) {
  using namespace shmq_cli;
  CLI::App app("shmq: message passing between processes through shared memory", "shmq");
  app.set_version_flag("--version", "shmq " SHMQ_VERSION);
  app.require_subcommand(1);
  runner run;
  add_pub_command(app, run);
  add_sub_command(app, run);
  add_stat_command(app, run);
  add_top_command(app, run);
  add_bench_command(app, run);
  add_ls_command(app, run);
  add_rm_command(app, run);
  add_completion_command(app, run);  // last: it lists the others
  // CLI11 would only say that a subcommand is required.
  const auto known = [&](const char* name) {
    for (const CLI::App* cmd : app.get_subcommands({}))
      if (cmd->check_name(name)) return true;
    return false;
  };
  if (argc > 1 && argv[1][0] != '-' && !known(argv[1])) {
    std::fprintf(stderr, "shmq: unknown command '%s'\nRun with --help for more information.\n", argv[1]);
    return 2;
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);  // prints help, the version, or the error and the usage hint
    return rc == 0 ? 0 : 2;
  }
  return run ? run() : 2;
}

// shmq ls and shmq rm: list segments (their kind, size and participants) and remove
// them, by name or every stale one.
#include <cstdio>
#include <exception>
#include <memory>
#include <string>
#include <vector>

#include "commands.hpp"
#include "shmq/segment.hpp"
#include "shmq/status.hpp"

namespace shmq_cli {

namespace {

void print(const shmq::segment_info& s) {
  if (!s.problem.empty()) {
    std::printf("%-32s  ?       %s\n", s.name.c_str(), s.problem.c_str());
    return;
  }
  std::string who;
  for (const auto& p : s.participants)
    who += (who.empty() ? "" : ", ") + p.role + " " + std::to_string(p.pid) + (p.alive ? "" : " (dead)");
  std::printf("%-32s  %-6s  %10llu  %-5s  %s\n", s.name.c_str(), s.kind.c_str(),
              static_cast<unsigned long long>(s.size), s.stale ? "stale" : "", who.empty() ? "-" : who.c_str());
}

}  // namespace

void add_ls_command(CLI::App& app, runner& run) {
  auto stale = std::make_shared<bool>(false);
  CLI::App* cmd = app.add_subcommand("ls", "list segments: kind, size, participants");
  cmd->add_flag("--stale", *stale, "only those whose participants all died");
  cmd->callback([stale, &run] {
    run = [stale] {
      try {
        for (const auto& s : shmq::list_segments())
          if (!*stale || s.stale) print(s);
        return 0;
      } catch (const std::exception& e) {
        return fail("ls", e.what());
      }
    };
  });
}

void add_rm_command(CLI::App& app, runner& run) {
  auto names = std::make_shared<std::vector<std::string>>();
  auto stale = std::make_shared<bool>(false);
  CLI::App* cmd = app.add_subcommand("rm", "remove segments, by name or every stale one");
  auto* which = cmd->add_option_group("which", "what to remove (one of)");
  which->add_option("NAME", *names, "segments to remove");
  which->add_flag("--stale", *stale, "every segment whose participants all died");
  which->require_option(1);
  cmd->callback([names, stale, &run] {
    run = [names, stale] {
      try {
        if (*stale) {
          for (const auto& name : shmq::remove_stale_segments()) std::printf("removed %s\n", name.c_str());
          return 0;
        }
        int rc = 0;
        for (const auto& name : *names) {
          if (shmq::remove_segment(name))
            std::printf("removed %s\n", name.c_str());
          else
            rc = fail("rm", "no segment '" + name + "'");
        }
        return rc;
      } catch (const std::exception& e) {
        return fail("rm", e.what());
      }
    };
  });
}

}  // namespace shmq_cli

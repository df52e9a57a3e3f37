// shmq: look at and clean up shmq segments.
//
//   shmq ls [--stale]       every segment (or the stale ones): kind, size, participants
//   shmq rm NAME...         remove these segments
//   shmq rm --stale         remove every segment whose participants all died
#include <cstdio>
#include <string>
#include <string_view>

#include "shmq/segment.hpp"
#include "shmq/status.hpp"

namespace {

int usage() {
  std::fprintf(stderr,
               "usage: shmq ls [--stale]     list segments (or the stale ones)\n"
               "       shmq rm NAME...       remove segments\n"
               "       shmq rm --stale       remove every segment whose participants all died\n");
  return 2;
}

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

int main(int argc, char** argv) {
  if (argc < 2) return usage();
  const std::string_view command = argv[1];
  const bool stale = argc == 3 && std::string_view(argv[2]) == "--stale";
  try {
    if (command == "ls" && (argc == 2 || stale)) {
      for (const auto& s : shmq::list_segments())
        if (!stale || s.stale) print(s);
      return 0;
    }
    if (command == "rm" && stale) {
      for (const auto& name : shmq::remove_stale_segments()) std::printf("removed %s\n", name.c_str());
      return 0;
    }
    if (command == "rm" && argc > 2) {
      int rc = 0;
      for (int i = 2; i < argc; ++i) {
        if (shmq::remove_segment(argv[i])) {
          std::printf("removed %s\n", argv[i]);
        } else {
          std::fprintf(stderr, "shmq: no segment '%s'\n", argv[i]);
          rc = 1;
        }
      }
      return rc;
    }
  } catch (const shmq::error& e) {
    std::fprintf(stderr, "shmq: %s\n", e.what());
    return 1;
  }
  return usage();
}

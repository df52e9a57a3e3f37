// Command-line options shared by the two demo programs.
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

namespace shmq::demo {

struct options {
  std::string channel = "demo";
  std::uint64_t count = 1'000'000;
  std::uint64_t size = 64;
};

inline options parse(int argc, char** argv, const char* program) {
  options o;
  auto usage = [&](const char* why) {
    std::fprintf(stderr, "%s: %s\nusage: %s [--channel NAME] [--count N] [--size BYTES]\n"
                 "  BYTES is at least 16 (sequence number and checksum) and at most 65536.\n",
                 program, why, program);
    std::exit(2);
  };
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    if (a == "--help" || a == "-h") usage("send and check stamped messages over a shmq channel");
    if (i + 1 >= argc) usage("missing value");
    std::string_view v = argv[++i];
    char* end = nullptr;
    if (a == "--channel") {
      o.channel = v;
    } else if (a == "--count" || a == "--size") {
      unsigned long long n = std::strtoull(argv[i], &end, 10);
      if (v.empty() || *end != '\0') usage("not a number");
      (a == "--count" ? o.count : o.size) = n;
    } else {
      usage("unknown option");
    }
  }
  if (o.size < 16 || o.size > 65536) usage("--size must be from 16 to 65536");
  return o;
}

}  // namespace shmq::demo

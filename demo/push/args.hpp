// The push programs' command lines: --name value pairs, each checked against the
// program's list of options, with typed getters that fail clearly on a bad value.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <initializer_list>
#include <map>
#include <string>
#include <string_view>

namespace shmq::push {

class args {
 public:
  args(int argc, char** argv, const char* usage, std::initializer_list<std::string_view> known)
      : program_(argv[0]), usage_(usage) {
    for (int i = 1; i < argc; ++i) {
      const std::string_view a = argv[i];
      if (a == "--help" || a == "-h") fail("");
      bool ok = false;
      for (std::string_view k : known) ok = ok || a == k;
      if (!ok) fail("unknown option");
      if (i + 1 >= argc) fail("missing value");
      values_[std::string(a)] = argv[++i];
    }
  }

  std::string text(const char* name, std::string fallback) const {
    auto it = values_.find(name);
    return it == values_.end() ? fallback : it->second;
  }
  std::uint64_t number(const char* name, std::uint64_t fallback, std::uint64_t lo, std::uint64_t hi) const {
    auto it = values_.find(name);
    if (it == values_.end()) return fallback;
    char* end = nullptr;
    const unsigned long long n = std::strtoull(it->second.c_str(), &end, 10);
    if (it->second.empty() || *end != '\0' || n < lo || n > hi) fail((std::string(name) + ": out of range").c_str());
    return n;
  }
  double fraction(const char* name, double fallback) const {
    auto it = values_.find(name);
    if (it == values_.end()) return fallback;
    char* end = nullptr;
    const double f = std::strtod(it->second.c_str(), &end);
    if (it->second.empty() || *end != '\0' || !(f >= 0.0 && f <= 1.0)) fail((std::string(name) + ": not in [0, 1]").c_str());
    return f;
  }

 private:
  [[noreturn]] void fail(const char* why) const {
    if (*why != '\0') std::fprintf(stderr, "%s: %s\n", program_, why);
    std::fprintf(stderr, "usage: %s %s", program_, usage_);
    std::exit(2);
  }
  const char* program_;
  const char* usage_;
  std::map<std::string, std::string, std::less<>> values_;
};

}  // namespace shmq::push

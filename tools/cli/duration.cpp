#include "duration.hpp"

#include <cmath>
#include <cstdlib>
#include <string_view>

namespace shmq_cli {

std::optional<std::chrono::nanoseconds> parse_duration(const std::string& text) {
  if (text.empty()) return std::nullopt;
  char* end = nullptr;
  const double value = std::strtod(text.c_str(), &end);
  if (end == text.c_str() || !std::isfinite(value) || value < 0) return std::nullopt;
  const std::string_view unit(end);
  double scale = 0;
  if (unit.empty() || unit == "s") scale = 1e9;
  else if (unit == "ms") scale = 1e6;
  else if (unit == "us") scale = 1e3;
  else if (unit == "ns") scale = 1;
  else if (unit == "m") scale = 60e9;
  else if (unit == "h") scale = 3600e9;
  else return std::nullopt;
  const double ns = value * scale;
  if (ns > 1e18) return std::nullopt;  // centuries: surely a typo
  return std::chrono::nanoseconds(static_cast<std::int64_t>(ns));
}

CLI::Validator duration_check() {
  return CLI::Validator(
      [](std::string& text) {
        return parse_duration(text) ? std::string() : "'" + text + "' is not a duration (e.g. 500ms, 2s, 1m)";
      },
      "DURATION");
}

}  // namespace shmq_cli

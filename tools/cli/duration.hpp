// Durations on the command line: "250ms", "2s", "1.5s", "100us", "1m"; a bare number is
// seconds.
#pragma once

#include <chrono>
#include <optional>
#include <string>

#include <CLI/CLI.hpp>

namespace shmq_cli {

std::optional<std::chrono::nanoseconds> parse_duration(const std::string& text);

// A CLI11 check that names the bad value.
CLI::Validator duration_check();

}  // namespace shmq_cli

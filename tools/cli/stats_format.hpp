// How shmq stat and shmq top show a channel: text for people, JSON for scripts, and
// rates per second between two snapshots (--watch, top).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "shmq/channel_stats.hpp"

namespace shmq_cli {

struct stats_rates {
  double committed = 0, delivered = 0, redelivered = 0, missed = 0;  // per second
  std::vector<std::optional<double>> groups;  // handed out per second, by group; unknown when it changed
};

// Rates from `before` to `now`, `seconds` apart (before must be the same channel).
stats_rates rates_between(const shmq::channel_stats& before, const shmq::channel_stats& now, double seconds);

std::string stats_text(const shmq::channel_stats& s, const stats_rates* rates);
std::string stats_json(const shmq::channel_stats& s, const stats_rates* rates);

// One line per channel for top.
std::string top_header();
std::string top_line(const shmq::channel_stats& s, const stats_rates* rates);
std::string top_problem_line(const std::string& name, const std::string& problem);

}  // namespace shmq_cli

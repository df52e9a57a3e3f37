// Fault harness settings: what the SHMQ_FAULT_* environment variables ask for (see
// test_fault.cpp), and the clock every part of the harness measures with.
#pragma once

#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <random>
#include <string>
#include <string_view>

#include "test_support.hpp"

namespace shmq::test::fault {

using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;
using std::chrono::milliseconds;

struct settings {
  std::uint64_t kills;      // per pattern, when not soaking
  milliseconds soak;        // 0: run until `kills`
  milliseconds bound;       // recovery bound
  milliseconds kill_gap;    // kills come a random 0..kill_gap apart
  std::uint64_t round_messages;
  std::uint64_t seed;
  bool kill_producers = true, kill_consumers = true;
  milliseconds liveness;    // every endpoint's liveness_interval
  // The timing nemeses (test_fault.cpp): quiet periods, SIGSTOP pauses, slow consumers.
  bool quiet = true, pauses = true, slow = true;
};

// One SHMQ_FAULT_NEMESES word: "all" and "none" set every flag; "quiet", "pauses",
// "slow" set one.
inline bool set_nemesis(settings& s, std::string_view word) {
  if (word == "all" || word == "none") {
    s.quiet = s.pauses = s.slow = word == "all";
  } else if (word == "quiet") {
    s.quiet = true;
  } else if (word == "pauses") {
    s.pauses = true;
  } else if (word == "slow") {
    s.slow = true;
  } else {
    return false;
  }
  return true;
}

// SHMQ_FAULT_NEMESES: a comma-separated list of those words (default "all").
inline void nemeses_from_env(settings& s) {
  const char* list = std::getenv("SHMQ_FAULT_NEMESES");
  if (list == nullptr || *list == '\0') return;
  s.quiet = s.pauses = s.slow = false;
  std::string_view rest = list;
  while (!rest.empty()) {
    const std::string_view word = rest.substr(0, rest.find(','));
    rest.remove_prefix(std::min(rest.size(), word.size() + 1));
    REQUIRE_MESSAGE(set_nemesis(s, word), "SHMQ_FAULT_NEMESES: a list of all, none, quiet, pauses, slow, not "
                                              << std::string(word));
  }
}

inline settings settings_from_env() {
  settings s{};
  s.kills = env_count("SHMQ_FAULT_KILLS", 200);
  s.soak = milliseconds(1000 * env_count("SHMQ_FAULT_SECONDS", 0));
  s.bound = milliseconds(env_count("SHMQ_FAULT_BOUND_MS", 1000));
  s.kill_gap = milliseconds(env_count("SHMQ_FAULT_KILL_GAP_MS", 60));
  s.round_messages = env_count("SHMQ_FAULT_ROUND_MESSAGES", 2'000'000);
  s.seed = env_count("SHMQ_FAULT_SEED", std::random_device{}());
  const char* victims = std::getenv("SHMQ_FAULT_VICTIMS");
  const std::string_view v = victims != nullptr ? victims : "all";
  REQUIRE_MESSAGE((v == "all" || v == "producers" || v == "consumers"),
                  "SHMQ_FAULT_VICTIMS is all, producers or consumers, not " << v);
  s.kill_producers = v != "consumers";
  s.kill_consumers = v != "producers";
  s.liveness = milliseconds(env_count("SHMQ_FAULT_LIVENESS_MS", 25));
  nemeses_from_env(s);
  return s;
}

// How long the harness waits for the end of a round: long enough for a sound library
// under a sanitizer, short enough that a stalled one fails in seconds.
inline milliseconds finish_timeout(const settings& s) { return std::max(milliseconds(5000), 5 * s.bound); }

// How long one blocking call in a child lasts before it looks at the ledger's flags
// again: several liveness intervals, so that a wait runs the library's liveness checks
// (a wait shorter than liveness_interval never does).
inline milliseconds wait_slice(const settings& s) { return 4 * s.liveness; }

}  // namespace shmq::test::fault

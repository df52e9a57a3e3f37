// Fault harness settings: what the SHMQ_FAULT_* environment variables ask for (see
// test_fault.cpp), and the clock every part of the harness measures with.
#pragma once

#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <random>
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
};

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
  return s;
}

// How long the harness waits for the end of a round: long enough for a sound library
// under a sanitizer, short enough that a stalled one fails in seconds.
inline milliseconds finish_timeout(const settings& s) { return std::max(milliseconds(5000), 5 * s.bound); }

}  // namespace shmq::test::fault

// The timing nemeses of a fault round (fault_round.hpp), between the kills:
//   - pauses: SIGSTOP a random participant for 0-300 ms, often in a window where it
//     holds something (a loan, a view; an MPMC position lease is held all along), then
//     SIGCONT. A stopped participant is alive: nobody may take over what it holds, and
//     it may hold anyone back, so the stall clocks stand still while one is stopped
//     (stall_timer). One at a time; a kill or the end of the round continues it first.
//   - quiet periods: producers stop taking ids (the ledger's quiet flag), the consumers
//     empty the channel and wait in read_for for several liveness intervals; no kills
//     meanwhile, so every wait is a live participant's.
// Slow consumers are chosen where children start (fault_round::spawn).
#include <algorithm>
#include <chrono>
#include <csignal>
#include <random>
#include <string>

#include "fault/fault_round.hpp"

namespace shmq::test::fault {

namespace {

// A pause instead of a kill in one step in twelve; a quiet period after 20-50 kills.
constexpr double pause_chance = 1.0 / 12;
constexpr int quiet_after_min = 20, quiet_after_max = 50;
constexpr auto longest_pause = 300ms;

// Long enough for several liveness intervals, whatever SHMQ_FAULT_LIVENESS_MS says.
milliseconds quiet_length(const settings& s, std::mt19937_64& rng) {
  const long lo = std::max<long>(150, 6 * s.liveness.count());
  const long hi = std::max<long>(400, 16 * s.liveness.count());
  return milliseconds(std::uniform_int_distribution<long>(lo, hi)(rng));
}

}  // namespace

bool fault_round::any_stopped() const {
  return std::any_of(children_.begin(), children_.end(), [](const child& c) { return c.stopped_until.has_value(); });
}

// Whether this step of kill_phase is a nemesis rather than a kill.
bool fault_round::nemesis_step() {
  if (settings_.quiet && next_quiet_ == 0)
    next_quiet_ = result_.kills + std::uniform_int_distribution<int>(quiet_after_min, quiet_after_max)(rng_);
  if (settings_.quiet && result_.kills >= next_quiet_) {
    quiet_period();
    next_quiet_ = 0;
    return true;
  }
  if (!settings_.pauses || any_stopped() || !std::bernoulli_distribution(pause_chance)(rng_)) return false;
  std::vector<std::size_t> candidates;
  for (std::size_t i = 0; i < children_.size(); ++i)
    if (running(i)) candidates.push_back(i);
  if (candidates.empty()) return false;
  const std::size_t i = candidates[std::uniform_int_distribution<std::size_t>(0, candidates.size() - 1)(rng_)];
  if (std::bernoulli_distribution(0.5)(rng_)) catch_in_window(i);
  pause(i);
  return true;
}

void fault_round::pause(std::size_t i) {
  const auto length = std::chrono::microseconds(
      std::uniform_int_distribution<long>(0, std::chrono::microseconds(longest_pause).count())(rng_));
  if (::kill(children_[i].pid, SIGSTOP) != 0) return;
  children_[i].stopped_until = clock_type::now() + length;
  ++result_.pauses;
}

void fault_round::resume(std::size_t i) noexcept {
  if (!children_[i].stopped_until) return;
  ::kill(children_[i].pid, SIGCONT);  // a SIGSTOP not acted on yet is discarded too
  children_[i].stopped_until.reset();
}

void fault_round::resume_due(clock_type::time_point now) {
  for (std::size_t i = 0; i < children_.size(); ++i)
    if (children_[i].stopped_until && *children_[i].stopped_until <= now) resume(i);
}

void fault_round::resume_all() noexcept {
  for (std::size_t i = 0; i < children_.size(); ++i) resume(i);
}

// Every producer still running stands at the quiet flag.
bool fault_round::producers_quiet() const {
  for (std::size_t i = 0; i < children_.size(); ++i)
    if (plan_of(i).producer && running(i) && led_.phase_of(i) != phase::quiet) return false;
  return true;
}

// The quiet period starts once every producer has stopped (a blocked one first commits
// what it was sending; a stopped one is continued on schedule), and lasts several
// liveness intervals.
void fault_round::quiet_period() {
  const auto wait = finish_timeout(settings_);
  led_.begin_quiet();
  if (!watch_until(clock_type::now() + wait, [&] { return failed() || producers_quiet(); }))
    problem("producers did not stop for a quiet period within " + std::to_string(wait.count()) + " ms");
  if (!failed()) watch_until(clock_type::now() + quiet_length(settings_, rng_), [&] { return failed(); });
  led_.end_quiet();
  ++result_.quiet_periods;
}

}  // namespace shmq::test::fault

// One round of the fault harness: on a fresh channel, it forks the children a pattern
// plan names, kills and restarts them at random moments, stops and continues them,
// keeps the channel quiet for a while, watching progress through the ledger all along,
// then lets them finish and checks what was delivered.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include <sys/types.h>

#include <doctest/doctest.h>

#include "fault/ledger.hpp"
#include "fault/settings.hpp"
#include "fault/watchers.hpp"

namespace shmq::test::fault {

// What a round runs: one entry per child (forked again after each kill), and how the
// channel is created.
struct participant_plan {
  std::string label;
  bool producer = false;
  std::size_t group = 0;   // consumers: the ledger group
  bool private_subscription = false;  // its group is its own, logged (private_log.hpp)
  int sibling = -1;        // a group member that must be up before this one may be killed
  std::function<int(ledger&, std::size_t slot)> body;
};

struct pattern_plan {
  std::size_t groups = 1;
  std::vector<participant_plan> participants;
  std::function<void()> create;  // creates the channel in the parent, then detaches

  unsigned logged_groups() const {
    unsigned mask = 0;
    for (const participant_plan& p : participants)
      if (p.private_subscription) mask |= 1u << p.group;
    return mask;
  }
};

// What a round found: counts for the summary, and the problems that fail the test.
struct round_result {
  std::uint64_t kills = 0, producer_kills = 0;
  std::uint64_t consumer_kills[max_groups] = {};
  std::uint64_t kills_at[phases] = {};  // by the phase they interrupted
  std::uint64_t copy_kills[max_groups] = {};  // consumers killed in phase::copying
  std::uint64_t counted_for_dead = 0;  // copies consumers were killed holding
  std::uint64_t attach_kills = 0;      // children killed before their endpoint was up
  std::uint64_t committed = 0, deliveries = 0, redelivered = 0, duplicates = 0;
  milliseconds consumer_gap{}, producer_gap{};
  // The timing nemeses (round_nemeses.cpp), and private subscriptions checked.
  std::uint64_t quiet_periods = 0, pauses = 0, stopped_kills = 0, slow_consumers = 0;
  std::uint64_t private_incarnations = 0;
  std::vector<std::string> problems;
};

class fault_round {
 public:
  fault_round(const pattern_plan& plan, const settings& s, std::mt19937_64& rng)
      : plan_(plan), settings_(s), rng_(rng), led_(s.round_messages, plan.groups, plan.logged_groups()),
        children_(plan.participants.size()), groups_(plan.groups), timers_(plan.participants.size()) {
    REQUIRE(plan.participants.size() <= max_children);
  }
  ~fault_round() { kill_all(); }
  fault_round(const fault_round&) = delete;
  fault_round& operator=(const fault_round&) = delete;

  round_result run(std::uint64_t kill_goal, clock_type::time_point soak_end) {
    start();
    if (!failed()) kill_phase(kill_goal, soak_end);
    finish();
    verify();
    return std::move(result_);
  }

 private:
  struct child {
    pid_t pid = -1;
    std::uint32_t incarnation = 0;  // starts so far
    std::optional<clock_type::time_point> stopped_until;  // SIGSTOPped, to continue then
  };
  struct group_state {
    backlog_watch backlog;
    stall_timer timer;
    std::uint32_t watched = 0;  // private subscriptions: the incarnation `backlog` is of
  };

  const participant_plan& plan_of(std::size_t i) const { return plan_.participants[i]; }
  bool failed() const { return !result_.problems.empty(); }
  void problem(const std::string& what) { result_.problems.push_back(what); }
  bool running(std::size_t i) const { return children_[i].pid > 0; }

  // ---- children ----
  void spawn(std::size_t i);
  int run_child(std::size_t i) noexcept;
  static std::string describe_exit(int st);
  void ended(std::size_t i, int st);
  void reap_ended();
  void kill_and_restart(std::size_t i);
  void count_for_the_dead(std::size_t i, phase interrupted);
  void kill_all() noexcept;

  // ---- the timing nemeses (round_nemeses.cpp) ----
  bool any_stopped() const;
  bool nemesis_step();
  void pause(std::size_t i);
  void resume(std::size_t i) noexcept;
  void resume_due(clock_type::time_point now);
  void resume_all() noexcept;
  bool producers_quiet() const;
  void quiet_period();

  // ---- watching ----
  bool waiting_messages(std::size_t g);
  bool group_has_ready_member(std::size_t g) const;
  bool every_group_ready() const;
  bool producer_running() const;
  void watch_private(std::size_t i);
  void sample();
  bool watch_until(clock_type::time_point until, const std::function<bool()>& done);

  // ---- phases ----
  void start();
  bool may_kill(std::size_t i) const;
  std::optional<std::size_t> pick_victim();
  void kill_phase(std::uint64_t kill_goal, clock_type::time_point soak_end);
  void kill_while_attaching(std::size_t i);
  void catch_in_window(std::size_t i) const;
  bool all_delivered();
  void finish();

  // ---- the checks ----
  void verify_group(std::size_t g);
  void verify_private(std::size_t g, std::uint64_t& duplicates);
  void verify();

  const pattern_plan& plan_;
  const settings& settings_;
  std::mt19937_64& rng_;
  ledger led_;
  std::vector<child> children_;
  std::vector<group_state> groups_;
  std::vector<stall_timer> timers_;  // per child; producers only
  round_result result_;
  std::uint64_t kill_goal_ = 0;
  std::uint64_t next_quiet_ = 0;  // the kill count after which the next quiet period comes
};

}  // namespace shmq::test::fault

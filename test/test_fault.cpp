// Fault injection: producers and consumers of every pattern run in forked processes
// while the harness kills random ones with SIGKILL at random moments and starts
// replacements, and, between the kills, the timing nemeses below. At the end it checks
// that every committed message reached every consumer group, that the only duplicates
// are counted redeliveries, and that no group and no producer went without progress
// for longer than the recovery bound.
//
// Patterns: SPSC (1 producer, 1 consumer), the MPMC work queue (2 producers, 2 competing
// consumers; and 1 of each, holding the position leases), and publish/subscribe under
// the block policy (2 publishers, 2 named groups of 2 members, 2 private subscriptions).
//
// Timing nemeses. Every endpoint has a short liveness_interval (SHMQ_FAULT_LIVENESS_MS,
// 25 ms) and every blocking call in a child lasts 4 of them, so waits run the library's
// liveness checks (a wait shorter than liveness_interval never does).
//   - Quiet periods: after every 20-50 kills, producers stop taking ids (a flag in the
//     ledger; they wait for its end on a futex), the consumers empty the channel and
//     wait in read_for for 150-400 ms (6-16 liveness intervals); nobody is killed.
//   - Pauses: in one step in twelve, a random participant (half the time caught holding
//     a loan or a view) is SIGSTOPped for 0-300 ms, then continued; a kill or the end
//     of the round continues it first. A stopped participant is alive and may hold
//     anyone back (under block a view gates publishers; a stopped MPMC lease holder
//     holds back its role, docs/limits.md), so the stall clocks stand still while one
//     is stopped: they neither run nor start again.
//   - Slow consumers: one start in six of a consumer (one at a time) holds each view up
//     to 300 us, and one in 32 for 1.5-4 liveness intervals, so producers block on
//     back-pressure for longer than liveness_interval.
//
// Environment:
//   SHMQ_FAULT_KILLS           kills per pattern (default 200: 800 for the suite)
//   SHMQ_FAULT_SECONDS         soak: kill for this many seconds per pattern instead
//   SHMQ_FAULT_BOUND_MS        recovery bound (default 1000, sanitizer builds included:
//                              recovery takes milliseconds, restarts are not counted)
//   SHMQ_FAULT_KILL_GAP_MS     the most time between two kills (default 60)
//   SHMQ_FAULT_ROUND_MESSAGES  message ids per round (default 2000000); a pattern runs
//                              rounds on fresh channels until its kills are done
//   SHMQ_FAULT_SEED            seed of the kill schedule (default: random, printed)
//   SHMQ_FAULT_VICTIMS         all (default), producers or consumers: who may be killed
//   SHMQ_FAULT_LIVENESS_MS     every endpoint's liveness_interval (default 25)
//   SHMQ_FAULT_NEMESES         which timing nemeses run: all (default), none, or a
//                              comma-separated list of quiet, pauses, slow
//
// The ledger. Every message is stamped with an id from a shared counter. Producers mark
// an id committed after commit(); consumers count each delivery per group, and count a
// redelivery (view::redelivered()) before counting the delivery, so a kill between the
// two can only over-count redeliveries, never hide a duplicate. A producer killed
// between commit() and marking leaves a message that is delivered but unmarked: at
// most one per producer kill.
//
// Private subscriptions. A private subscription ends with its subscriber, and its
// replacement is a new subscription that starts after the newest message, so each
// start (incarnation) is judged on its own from a log of what it received: per
// publisher, ids in order, a repeat only if flagged redelivered, and nothing committed
// missing between where it subscribed (or its first id from that publisher) and its
// last one; the incarnation alive at the end misses nothing after that either
// (fault/private_log.hpp says why this is exactly what is promised).
//
// Producers send in place (loan, commit) and by copy (push); consumers read in place
// (read_for, holding the view while counting) and by copy (try_pop). Half the kills aim
// at a child in a window recovery is about (a producer between loan and commit, a
// consumer holding a message); the rest land wherever the child is.
//
// The parts: fault/settings.hpp (these variables), fault/ledger.hpp (the ledger),
// fault/private_log.hpp (private subscriptions' logs and their check),
// fault/children.hpp (the producer and consumer loops), fault/watchers.hpp and
// fault/fault_round.{hpp,cpp} (one round: a channel, children, kills, checks),
// fault/round_nemeses.cpp (pauses and quiet periods). This file holds the pattern
// plans, runs each pattern's rounds, and reports.
#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <random>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "fault/children.hpp"
#include "fault/fault_round.hpp"
#include "fault/ledger.hpp"
#include "fault/private_log.hpp"
#include "fault/settings.hpp"
#include "shmq/mpmc.hpp"
#include "shmq/pubsub.hpp"
#include "test_support.hpp"

namespace shmq::test::fault {
namespace {

// ---- the patterns ----

// Every endpoint checks liveness often (SHMQ_FAULT_LIVENESS_MS), so that quiet periods,
// pauses and slow consumers make waits of several liveness intervals.
template <class Options>
Options with_liveness(Options o, const settings& s) {
  o.liveness_interval = s.liveness;
  return o;
}

template <class Producer, class Options>
participant_plan producer_plan(std::string label, const std::string& name, const Options& o, const settings& s) {
  participant_plan p;
  p.label = std::move(label);
  p.producer = true;
  p.body = [name, o, t = timing_of(s)](ledger& led, std::size_t slot) {
    return run_producer(led, slot, [&] { return Producer(name, o); }, t);
  };
  return p;
}

template <class Consumer, class Options, class... How>
participant_plan consumer_plan(std::string label, std::size_t group, const std::string& name, const Options& o,
                               const settings& s, const How&... how) {
  participant_plan p;
  p.label = std::move(label);
  p.group = group;
  p.body = [name, o, group, t = timing_of(s), how...](ledger& led, std::size_t slot) {
    return run_consumer(led, slot, group, [&] { return Consumer(name, o, how...); }, t);
  };
  return p;
}

pattern_plan spsc_plan(const std::string& name, const settings& s) {
  channel_options o;
  o.capacity = 8u << 10;  // small: the ring fills and both sides wait on each other
  o.max_message_size = 1024;
  o = with_liveness(o, s);
  pattern_plan plan;
  plan.participants.push_back(producer_plan<spsc_producer>("producer", name, o, s));
  plan.participants.push_back(consumer_plan<spsc_consumer>("consumer", 0, name, o, s));
  plan.create = [name, o] { spsc_consumer c(name, o); };
  return plan;
}

// n producers and n competing consumers. With one of each, each holds its position
// lease (position_lease.hpp) until it is killed, and the one restarted in its place
// takes the lease over from the dead holder.
pattern_plan queue_plan_of(const std::string& name, const settings& s, int n) {
  mpmc_options o;
  o.slots = 64;
  o.max_message_size = 256;
  o = with_liveness(o, s);
  pattern_plan plan;
  for (int i = 0; i < n; ++i)
    plan.participants.push_back(producer_plan<mpmc_producer>("producer " + std::to_string(i), name, o, s));
  for (int i = 0; i < n; ++i)
    plan.participants.push_back(consumer_plan<mpmc_consumer>("consumer " + std::to_string(i), 0, name, o, s));
  plan.create = [name, o] { mpmc_consumer c(name, o); };
  return plan;
}
pattern_plan queue_plan(const std::string& name, const settings& s) { return queue_plan_of(name, s, 2); }
pattern_plan queue_lease_plan(const std::string& name, const settings& s) { return queue_plan_of(name, s, 1); }

// Two named groups of two, and two private subscriptions. A group whose last member
// died stops holding publishers back (it may be lapped), so the harness never kills a
// member unless its sibling is up. A private subscription dies with its subscriber by
// design; its replacement is a new subscription, judged on its own (private_log.hpp).
pattern_plan pubsub_plan(const std::string& name, const settings& s) {
  pubsub_options o;
  o.slots = 32;
  o.max_message_size = 256;
  o.policy = overflow_policy::block;
  o.max_subscribers = 8;
  o.max_groups = 6;  // room for a replacement's new subscription before the dead one is reaped
  o = with_liveness(o, s);
  pattern_plan plan;
  plan.groups = 4;
  for (std::size_t g = 0; g < 2; ++g)
    for (int m = 0; m < 2; ++m) {
      participant_plan p = consumer_plan<subscriber>("group g" + std::to_string(g) + " member " + std::to_string(m),
                                                     g, name, o, s, subscription{.group = g == 0 ? "g0" : "g1"});
      p.sibling = static_cast<int>(plan.participants.size()) + (m == 0 ? 1 : -1);
      plan.participants.push_back(std::move(p));
    }
  for (std::size_t g = 2; g < 4; ++g) {
    participant_plan p =
        consumer_plan<subscriber>("private subscriber " + std::to_string(g - 2), g, name, o, s, subscription{});
    p.private_subscription = true;
    plan.participants.push_back(std::move(p));
  }
  for (int i = 0; i < 2; ++i)
    plan.participants.push_back(producer_plan<publisher>("publisher " + std::to_string(i), name, o, s));
  plan.create = [name, o] { publisher p(name, o); };
  return plan;
}

// ---- a pattern: rounds until its kills (or soak time) are done ----

struct pattern_result {
  round_result total;
  std::uint64_t rounds = 0;
  milliseconds elapsed{};
};

void add(round_result& total, round_result&& r) {
  total.kills += r.kills;
  total.producer_kills += r.producer_kills;
  for (std::size_t g = 0; g < max_groups; ++g) total.consumer_kills[g] += r.consumer_kills[g];
  for (std::size_t p = 0; p < phases; ++p) total.kills_at[p] += r.kills_at[p];
  for (std::size_t g = 0; g < max_groups; ++g) total.copy_kills[g] += r.copy_kills[g];
  total.counted_for_dead += r.counted_for_dead;
  total.attach_kills += r.attach_kills;
  total.committed += r.committed;
  total.deliveries += r.deliveries;
  total.redelivered += r.redelivered;
  total.duplicates += r.duplicates;
  total.quiet_periods += r.quiet_periods;
  total.pauses += r.pauses;
  total.stopped_kills += r.stopped_kills;
  total.slow_consumers += r.slow_consumers;
  total.private_incarnations += r.private_incarnations;
  total.consumer_gap = std::max(total.consumer_gap, r.consumer_gap);
  total.producer_gap = std::max(total.producer_gap, r.producer_gap);
  for (std::string& p : r.problems) total.problems.push_back(std::move(p));
}

using plan_maker = pattern_plan (*)(const std::string&, const settings&);

pattern_result run_pattern(const char* kind, plan_maker make_plan, const settings& s) {
  std::mt19937_64 rng(s.seed);
  pattern_result out;
  const auto start = clock_type::now();
  const bool soaking = s.soak.count() > 0;
  const auto soak_end = soaking ? start + s.soak : clock_type::time_point::max();
  const std::uint64_t goal = soaking ? ~std::uint64_t{0} : s.kills;
  while (out.total.kills < goal && clock_type::now() < soak_end && out.total.problems.empty()) {
    segment_guard seg(std::string("fault-") + kind);
    const pattern_plan plan = make_plan(seg.name(), s);
    fault_round round(plan, s, rng);
    round_result r = round.run(goal - out.total.kills, soak_end);
    ++out.rounds;
    const bool no_kills = r.kills == 0;
    add(out.total, std::move(r));
    if (no_kills && !soaking) {  // a round of ids with no kill: raise SHMQ_FAULT_ROUND_MESSAGES
      out.total.problems.push_back("a round used all its message ids before its first kill");
      break;
    }
  }
  out.elapsed = std::chrono::duration_cast<milliseconds>(clock_type::now() - start);
  return out;
}

void check_pattern(const char* kind, plan_maker make_plan) {
  const settings s = settings_from_env();
  const pattern_result r = run_pattern(kind, make_plan, s);
  const round_result& t = r.total;
  std::ostringstream summary;
  const auto at = [&](phase p) { return t.kills_at[static_cast<std::size_t>(p)]; };
  summary << kind << ": " << t.kills << " kills (" << t.attach_kills << " while attaching): " << t.producer_kills << " producers (" << at(phase::loaned)
          << " between loan and commit, " << at(phase::blocked) << " blocked in a loan), "
          << t.kills - t.producer_kills << " consumers (" << at(phase::holding) << " holding a message, "
          << at(phase::copied) << " holding a copy, " << at(phase::copying) << " inside try_pop); "
          << t.committed << " messages committed, " << t.deliveries << " delivered, " << t.redelivered
          << " redelivered, " << t.duplicates << " duplicates";
  if (t.private_incarnations > 0) summary << " (" << t.private_incarnations << " private subscriptions checked)";
  summary << "; " << t.quiet_periods << " quiet periods, " << t.pauses << " pauses (" << t.stopped_kills
          << " ended by a kill), " << t.slow_consumers << " slow consumers; longest gap: consumers "
          << t.consumer_gap.count() << " ms, producers " << t.producer_gap.count() << " ms; " << r.rounds
          << " rounds in " << r.elapsed.count() << " ms (seed " << s.seed << ", bound " << s.bound.count()
          << " ms, liveness " << s.liveness.count() << " ms)";
  MESSAGE(summary.str());
  const std::string name = kind;
  for (const std::string& p : t.problems) FAIL_CHECK(name << ": " << p);
  if (s.soak.count() == 0 && t.problems.empty()) CHECK_MESSAGE(t.kills >= s.kills, name << ": too few kills");
}

}  // namespace

TEST_SUITE("fault") {

// The check itself, on hand-made logs: ids 0..19, even ones from producer slot 0, odd
// ones from slot 1, id 7 never committed.
TEST_CASE("fault harness: a private subscription's log is judged per incarnation") {
  std::vector<std::uint64_t> memory(private_log::bytes_for(20) / sizeof(std::uint64_t));
  private_log log(reinterpret_cast<std::byte*>(memory.data()), 20);
  const auto committer = [](std::uint64_t id) { return id == 7 ? -1 : static_cast<int>(id % 2); };
  const auto deliver = [&](std::uint32_t incarnation, std::uint64_t from, std::uint64_t to, std::uint64_t skip) {
    for (std::uint64_t id = from; id < to; ++id)
      if (id != skip) log.delivered(incarnation, id, false);
  };
  log.start(1, 0);
  deliver(1, 0, 10, 7);  // incarnation 1 dies after id 9; 10 and 11 go to nobody
  log.start(2, 12);
  SUBCASE("complete") {
    deliver(2, 12, 20, 99);
    const private_log::verdict v = log.check(20, committer, 2);
    CHECK(v.problems.empty());
    CHECK(v.incarnations == 2);
  }
  SUBCASE("a gap, and a tail missing only from the incarnation alive at the end") {
    deliver(2, 12, 18, 14);
    CHECK(log.check(20, committer, 3).problems.size() == 1);  // 2 died: 18, 19 not owed
    const private_log::verdict v = log.check(20, committer, 2);
    REQUIRE(v.problems.size() == 2);
    CHECK(contains(v.problems[0], "first id 14"));
    CHECK(contains(v.problems[1], "first id 19"));
  }
  SUBCASE("a repeat counts only if flagged") {
    deliver(2, 12, 20, 99);
    log.delivered(2, 19, true);
    CHECK(log.check(20, committer, 2).duplicates == 1);
    log.delivered(2, 17, false);
    CHECK(log.check(20, committer, 2).problems.size() == 1);
  }
}

TEST_CASE("fault injection: spsc, random kills of the producer and the consumer") {
  check_pattern("spsc", spsc_plan);
}

TEST_CASE("fault injection: mpmc queue, 2 producers and 2 competing consumers") {
  check_pattern("queue", queue_plan);
}

TEST_CASE("fault injection: mpmc queue, 1 producer and 1 consumer holding the leases") {
  check_pattern("queue-1x1", queue_lease_plan);
}

TEST_CASE("fault injection: pubsub block, 2 publishers, 2 named groups of 2 and 2 private subscriptions") {
  check_pattern("pubsub", pubsub_plan);
}

}  // TEST_SUITE
}  // namespace shmq::test::fault

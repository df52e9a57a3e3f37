// One round of the fault harness (fault_round.hpp): forking, killing and restarting
// the children, watching progress through the ledger, finishing, and the checks. The
// timing nemeses (pauses, quiet periods) are in round_nemeses.cpp.
#include "fault/fault_round.hpp"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <exception>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

namespace shmq::test::fault {

// ---- children ----

// One start in six of a consumer consumes slowly (hold_slowly in children.hpp), if no
// other slow one is running: under block one slow consumer slows every publisher.
void fault_round::spawn(std::size_t i) {
  bool slow = settings_.slow && !plan_of(i).producer && std::bernoulli_distribution(1.0 / 6)(rng_);
  for (std::size_t j = 0; j < children_.size() && slow; ++j)
    slow = j == i || !running(j) || !led_.slow(j);
  result_.slow_consumers += slow;
  led_.clear_flags(i, ++children_[i].incarnation, slow);
  timers_[i] = stall_timer{};
  const pid_t parent = ::getpid();
  std::fflush(nullptr);  // nothing buffered in the parent may be written twice
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);  // a dying harness leaves no orphans
    if (::getppid() != parent) ::_exit(120);
    ::_exit(run_child(i));
  }
  REQUIRE(pid > 0);
  children_[i].pid = pid;
}

int fault_round::run_child(std::size_t i) noexcept {
  try {
    return plan_of(i).body(led_, i);
  } catch (const std::exception& e) {
    led_.report("%s (pid %d): exception: %s", plan_of(i).label.c_str(), ::getpid(), e.what());
  } catch (...) {
    led_.report("%s: unknown exception", plan_of(i).label.c_str());
  }
  return 122;
}

std::string fault_round::describe_exit(int st) {
  if (WIFEXITED(st)) return "exited with code " + std::to_string(WEXITSTATUS(st));
  if (WIFSIGNALED(st)) return std::string("died of signal ") + ::strsignal(WTERMSIG(st));
  return "ended oddly";
}

// A child ended without being killed by the harness.
void fault_round::ended(std::size_t i, int st) {
  children_[i].pid = -1;
  children_[i].stopped_until.reset();
  const bool clean = WIFEXITED(st) && WEXITSTATUS(st) == 0;
  if (clean && (plan_of(i).producer || led_.stopping())) return;  // a producer out of ids, or told to
  std::string what = plan_of(i).label + " " + (clean ? "left before the end" : describe_exit(st));
  if (const std::string e = led_.error_text(); !e.empty()) what += " (first error: " + e + ")";
  problem(what);
}

void fault_round::reap_ended() {
  for (;;) {
    int st = 0;
    const pid_t pid = ::waitpid(-1, &st, WNOHANG);
    if (pid <= 0) return;
    for (std::size_t i = 0; i < children_.size(); ++i)
      if (children_[i].pid == pid) ended(i, st);
  }
}

// A stopped child is continued first, so that nothing waits on a stopped process.
void fault_round::kill_and_restart(std::size_t i) {
  const pid_t pid = children_[i].pid;
  if (children_[i].stopped_until) {
    ++result_.stopped_kills;
    resume(i);
  }
  ::kill(pid, SIGKILL);
  int st = 0;
  while (::waitpid(pid, &st, 0) < 0 && errno == EINTR) {
  }
  if (!(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL)) {  // it ended just before the kill
    ended(i, st);
    return;
  }
  ++result_.kills;
  const phase interrupted = led_.phase_of(i);
  ++result_.kills_at[static_cast<std::size_t>(interrupted)];
  result_.attach_kills += !led_.ready(i);
  if (plan_of(i).producer) {
    ++result_.producer_kills;
  } else {
    ++result_.consumer_kills[plan_of(i).group];
    count_for_the_dead(i, interrupted);
  }
  spawn(i);
}

// A consumer killed with a copy it had not counted received it all the same.
void fault_round::count_for_the_dead(std::size_t i, phase interrupted) {
  const std::size_t g = plan_of(i).group;
  if (interrupted == phase::copying) ++result_.copy_kills[g];
  if (interrupted != phase::copied) return;
  const std::uint64_t id = led_.copied(i);
  if (id < led_.capacity() && led_.delivered(g, id) == 0) {
    led_.deliver(g, id);
    ++result_.counted_for_dead;
  }
}

void fault_round::kill_all() noexcept {
  resume_all();
  for (child& c : children_)
    if (c.pid > 0) {
      ::kill(c.pid, SIGKILL);
      int st = 0;
      while (::waitpid(c.pid, &st, 0) < 0 && errno == EINTR) {
      }
      c.pid = -1;
    }
}

// ---- watching ----

// Committed messages wait for group g, beyond those that may have died with a consumer
// killed inside try_pop (see receive_copy in children.hpp).
bool fault_round::waiting_messages(std::size_t g) {
  return groups_[g].backlog.pending(led_, g) > result_.copy_kills[g];
}

bool fault_round::group_has_ready_member(std::size_t g) const {
  for (std::size_t i = 0; i < children_.size(); ++i)
    if (!plan_of(i).producer && plan_of(i).group == g && running(i) && led_.ready(i)) return true;
  return false;
}

bool fault_round::every_group_ready() const {
  for (std::size_t g = 0; g < plan_.groups; ++g)
    if (!group_has_ready_member(g)) return false;
  return true;
}

bool fault_round::producer_running() const {
  for (std::size_t i = 0; i < children_.size(); ++i)
    if (plan_of(i).producer && running(i)) return true;
  return false;
}

// A private subscription's new incarnation is owed only what was taken after it
// subscribed: its backlog starts there.
void fault_round::watch_private(std::size_t i) {
  group_state& g = groups_[plan_of(i).group];
  if (!running(i) || !led_.ready(i) || g.watched == children_[i].incarnation) return;
  g.backlog = backlog_watch(led_.start_id(i));
  g.watched = children_[i].incarnation;
}

// One look at the ledger: a group with a committed message waiting and a member up
// must receive something within the bound, and a producer blocked in a loan while
// every group has a member up must commit within the bound; neither clock runs while a
// participant is stopped.
void fault_round::sample() {
  reap_ended();
  const auto now = clock_type::now();
  resume_due(now);
  const bool excused = any_stopped();
  for (std::size_t i = 0; i < children_.size(); ++i)
    if (plan_of(i).private_subscription) watch_private(i);
  for (std::size_t g = 0; g < plan_.groups; ++g) {
    const bool due = waiting_messages(g) && group_has_ready_member(g);
    const std::uint64_t got = led_.header().deliveries[g].load(std::memory_order_relaxed);
    if (groups_[g].timer.update(got, due, excused, now, settings_.bound))
      problem("group " + std::to_string(g) + " received nothing for " +
              std::to_string(settings_.bound.count()) + " ms with committed messages waiting (" +
              std::to_string(got) + " received, " + std::to_string(led_.end()) + " ids taken)");
  }
  const bool groups_up = every_group_ready();
  for (std::size_t i = 0; i < children_.size(); ++i) {
    if (!plan_of(i).producer) continue;
    const bool due = running(i) && led_.ready(i) && led_.phase_of(i) == phase::blocked && groups_up;
    if (timers_[i].update(led_.commits(i), due, excused, now, settings_.bound))
      problem(plan_of(i).label + " blocked in a loan for " + std::to_string(settings_.bound.count()) +
              " ms while every group had a member up (" +
              std::to_string(led_.header().committed_total.load()) + " committed in all)");
  }
}

// Samples about every millisecond until `until`, or until `done()`.
bool fault_round::watch_until(clock_type::time_point until, const std::function<bool()>& done) {
  for (;;) {
    sample();
    if (done()) return true;
    if (clock_type::now() >= until) return false;
    const timespec pause{0, 1'000'000};
    ::nanosleep(&pause, nullptr);
  }
}

// ---- phases ----

// Consumers first, and up, so that every group exists before the first message.
void fault_round::start() {
  plan_.create();
  const auto deadline = clock_type::now() + finish_timeout(settings_);
  for (std::size_t i = 0; i < children_.size(); ++i)
    if (!plan_of(i).producer) spawn(i);
  if (!watch_until(deadline, [&] { return failed() || every_group_ready(); }))
    problem("consumers did not attach within " + std::to_string(finish_timeout(settings_).count()) + " ms");
  if (failed()) return;
  for (std::size_t i = 0; i < children_.size(); ++i)
    if (plan_of(i).producer) spawn(i);
}

// Pub/sub: a member may die only while its sibling is up, so its group never empties.
bool fault_round::may_kill(std::size_t i) const {
  if (!running(i) || !(plan_of(i).producer ? settings_.kill_producers : settings_.kill_consumers))
    return false;
  const int s = plan_of(i).sibling;
  return s < 0 || (running(static_cast<std::size_t>(s)) && led_.ready(static_cast<std::size_t>(s)));
}

// A stopped child is a candidate one time in four: most pauses end in SIGCONT.
std::optional<std::size_t> fault_round::pick_victim() {
  std::vector<std::size_t> candidates;
  for (std::size_t i = 0; i < children_.size(); ++i)
    if (may_kill(i) && (!children_[i].stopped_until || std::bernoulli_distribution(0.25)(rng_)))
      candidates.push_back(i);
  if (candidates.empty()) return std::nullopt;
  return candidates[std::uniform_int_distribution<std::size_t>(0, candidates.size() - 1)(rng_)];
}

// Between kills, now and then, a nemesis step instead: a pause or a quiet period.
void fault_round::kill_phase(std::uint64_t kill_goal, clock_type::time_point soak_end) {
  kill_goal_ = kill_goal;
  std::uniform_int_distribution<long> gap_us(0, settings_.kill_gap.count() * 1000);
  while (result_.kills < kill_goal && !failed() && producer_running()) {
    const auto at = clock_type::now() + std::chrono::microseconds(gap_us(rng_));
    if (watch_until(std::min(at, soak_end), [&] { return failed(); }) || at >= soak_end) break;
    if (nemesis_step()) continue;
    const auto victim = pick_victim();
    if (!victim) continue;
    if (std::bernoulli_distribution(0.5)(rng_)) catch_in_window(*victim);
    kill_and_restart(*victim);
    if (std::bernoulli_distribution(0.1)(rng_)) kill_while_attaching(*victim);
  }
}

// Kills a child just restarted, within its first 0.6 ms: often while it attaches
// (claims its place, joins its group), which kills at random moments rarely hit.
void fault_round::kill_while_attaching(std::size_t i) {
  if (!may_kill(i) || result_.kills >= kill_goal_) return;
  const auto until = clock_type::now() + std::chrono::microseconds(
                                             std::uniform_int_distribution<int>(0, 600)(rng_));
  while (clock_type::now() < until && !led_.ready(i)) {
  }
  kill_and_restart(i);
}

// Half the kills aim at the windows recovery is about: a producer between loan and
// commit, a consumer holding a message. Polls the victim's phase for up to 20 ms (the
// child never waits for this); the kill lands wherever the child is by then.
void fault_round::catch_in_window(std::size_t i) const {
  const phase wanted = plan_of(i).producer ? phase::loaned : phase::holding;
  const auto until = clock_type::now() + 20ms;
  while (led_.phase_of(i) != wanted && clock_type::now() < until) {
  }
}

bool fault_round::all_delivered() {
  for (std::size_t g = 0; g < plan_.groups; ++g)
    if (waiting_messages(g)) return false;
  return true;
}

// No more kills: producers stop taking ids, groups receive what was committed, then
// everyone leaves. Each step is bounded; a step that does not end is a failure.
void fault_round::finish() {
  const auto wait = finish_timeout(settings_);
  resume_all();
  led_.header().stop_producing.store(1, std::memory_order_release);
  if (!watch_until(clock_type::now() + wait, [&] { return !producer_running(); }))
    problem("producers still blocked " + std::to_string(wait.count()) + " ms after the last kill");
  if (!watch_until(clock_type::now() + wait, [&] { return all_delivered(); }))
    problem("committed messages still undelivered " + std::to_string(wait.count()) + " ms after the last kill");
  led_.header().stop.store(1, std::memory_order_release);
  const auto any_running = [&] {
    for (std::size_t i = 0; i < children_.size(); ++i)
      if (running(i)) return true;
    return false;
  };
  if (!watch_until(clock_type::now() + wait, [&] { return !any_running(); })) {
    for (std::size_t i = 0; i < children_.size(); ++i)
      if (running(i)) problem(plan_of(i).label + " did not leave when told to");
    kill_all();
  }
}

// ---- the checks ----

// A private subscription's counts span its incarnations; its log judges each one.
void fault_round::verify_private(std::size_t g, std::uint64_t& duplicates) {
  for (std::size_t i = 0; i < children_.size(); ++i) {
    if (!plan_of(i).private_subscription || plan_of(i).group != g) continue;
    const private_log::verdict v = led_.log(g).check(
        led_.end(), [&](std::uint64_t id) { return led_.committer(id); }, children_[i].incarnation);
    for (const std::string& p : v.problems) problem(plan_of(i).label + ": " + p);
    duplicates = v.duplicates;
    result_.private_incarnations += v.incarnations;
  }
}

void fault_round::verify_group(std::size_t g) {
  std::uint64_t missing = 0, unmarked = 0, duplicates = 0, first_missing = 0;
  for (std::uint64_t id = 0; id < led_.end(); ++id) {
    const std::uint32_t n = led_.delivered(g, id);
    if (led_.committed(id) && n == 0 && missing++ == 0) first_missing = id;
    if (!led_.committed(id) && n > 0) ++unmarked;
    if (n > 1) duplicates += n - 1;
  }
  const std::uint64_t redelivered = led_.header().redelivered[g].load();
  const std::string group = "group " + std::to_string(g) + ": ";
  if (led_.logged(g)) {
    verify_private(g, duplicates);
  } else if (missing > result_.copy_kills[g]) {
    problem(group + std::to_string(missing) + " committed messages never delivered (first id " +
            std::to_string(first_missing) + "; " + std::to_string(result_.copy_kills[g]) +
            " may have died with consumers killed inside try_pop)");
  }
  if (duplicates > redelivered)
    problem(group + std::to_string(duplicates) + " duplicate deliveries but only " +
            std::to_string(redelivered) + " flagged as redelivered");
  // Each consumer death leaves at most one message to hand out again.
  if (redelivered > result_.consumer_kills[g])
    problem(group + std::to_string(redelivered) + " redeliveries after " +
            std::to_string(result_.consumer_kills[g]) + " consumer kills");
  if (unmarked > result_.producer_kills)
    problem(group + std::to_string(unmarked) + " delivered messages never committed, after " +
            std::to_string(result_.producer_kills) + " producer kills");
  result_.duplicates += duplicates;
  result_.redelivered += redelivered;
}

void fault_round::verify() {
  const ledger_header& h = led_.header();
  if (h.errors.load() != 0)
    problem(std::to_string(h.errors.load()) + " errors in children, the first: " + led_.error_text());
  for (std::size_t g = 0; g < plan_.groups; ++g) verify_group(g);
  result_.committed = h.committed_total.load();
  for (std::size_t g = 0; g < plan_.groups; ++g) {
    result_.deliveries += h.deliveries[g].load();
    result_.consumer_gap = std::max(result_.consumer_gap, groups_[g].timer.max_gap());
  }
  for (std::size_t i = 0; i < children_.size(); ++i)
    if (plan_of(i).producer) result_.producer_gap = std::max(result_.producer_gap, timers_[i].max_gap());
}

}  // namespace shmq::test::fault

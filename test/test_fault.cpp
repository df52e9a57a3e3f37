// Fault injection: producers and consumers of every pattern run in forked processes
// while the harness kills random ones with SIGKILL at random moments and starts
// replacements. At the end it checks that every committed message reached every
// consumer group, that the only duplicates are counted redeliveries, and that no group
// and no producer went without progress for longer than the recovery bound.
//
// Patterns: SPSC (1 producer, 1 consumer), the MPMC work queue (2 producers, 2 competing
// consumers), and publish/subscribe under the block policy (2 publishers, 2 named groups
// of 2 members).
//
// Environment:
//   SHMQ_FAULT_KILLS           kills per pattern (default 110: over 300 for the suite)
//   SHMQ_FAULT_SECONDS         soak: kill for this many seconds per pattern instead
//   SHMQ_FAULT_BOUND_MS        recovery bound (default 1000, sanitizer builds included:
//                              recovery takes milliseconds, restarts are not counted)
//   SHMQ_FAULT_KILL_GAP_MS     the most time between two kills (default 60)
//   SHMQ_FAULT_ROUND_MESSAGES  message ids per round (default 2000000); a pattern runs
//                              rounds on fresh channels until its kills are done
//   SHMQ_FAULT_SEED            seed of the kill schedule (default: random, printed)
//   SHMQ_FAULT_VICTIMS         all (default), producers or consumers: who may be killed
//
// The ledger. Every message is stamped with an id from a shared counter. Producers mark
// an id committed after commit(); consumers count each delivery per group, and count a
// redelivery (view::redelivered()) before counting the delivery, so a kill between the
// two can only over-count redeliveries, never hide a duplicate. A producer killed
// between commit() and marking leaves a message that is delivered but unmarked: at
// most one per producer kill.
//
// Producers send in place (loan, commit) and by copy (push); consumers read in place
// (read_for, holding the view while counting) and by copy (try_pop). Half the kills aim
// at a child in a window recovery is about (a producer between loan and commit, a
// consumer holding a message); the rest land wherever the child is.
#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <cstdarg>
#include <functional>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include <sys/mman.h>
#include <time.h>

#include "shmq/mpmc.hpp"
#include "shmq/pubsub.hpp"
#include "test_support.hpp"

namespace shmq::test {
namespace {

using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;
using std::chrono::milliseconds;

// ---- settings ----

struct settings {
  std::uint64_t kills;      // per pattern, when not soaking
  milliseconds soak;        // 0: run until `kills`
  milliseconds bound;       // recovery bound
  milliseconds kill_gap;    // kills come a random 0..kill_gap apart
  std::uint64_t round_messages;
  std::uint64_t seed;
  bool kill_producers = true, kill_consumers = true;
};

settings settings_from_env() {
  settings s{};
  s.kills = env_count("SHMQ_FAULT_KILLS", 110);
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
milliseconds finish_timeout(const settings& s) { return std::max(milliseconds(5000), 5 * s.bound); }

// ---- the ledger ----

constexpr std::size_t max_groups = 2;
constexpr std::size_t max_children = 8;

// Where a child is in its loop: the harness reads it to time blocked producers, and
// after a kill to count what the kill interrupted.
enum class phase : std::uint32_t { idle, blocked, loaned, holding, copying, copied };
constexpr std::size_t phases = 6;

struct alignas(64) child_flags {  // a cache line each: children write them all the time
  std::atomic<std::uint32_t> ready;  // the child attached its endpoint
  std::atomic<phase> at;
  std::atomic<std::uint64_t> commits;  // per producer, over its restarts
  std::atomic<std::uint64_t> copied;   // the id a consumer in phase::copied holds
};

struct ledger_header {
  std::atomic<std::uint64_t> next_id;
  std::atomic<std::uint64_t> committed_total;
  std::atomic<std::uint32_t> stop_producing;  // take no new ids
  std::atomic<std::uint32_t> stop;            // everyone leaves
  child_flags children[max_children];
  std::atomic<std::uint64_t> deliveries[max_groups];  // duplicates included
  std::atomic<std::uint64_t> redelivered[max_groups];
  std::atomic<std::uint64_t> errors;
  std::atomic<std::uint32_t> error_claimed;
  char error_text[512];  // the first error a child reported
};

// Shared by the harness and every child it forks: an anonymous MAP_SHARED mapping made
// before forking, so the parent reads what a killed child wrote.
class ledger {
 public:
  ledger(std::uint64_t capacity, std::size_t groups) : capacity_(capacity) {
    bytes_ = sizeof(ledger_header) + capacity * (1 + groups * sizeof(std::atomic<std::uint16_t>));
    void* p = ::mmap(nullptr, bytes_, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    REQUIRE(p != MAP_FAILED);
    header_ = static_cast<ledger_header*>(p);  // zero-filled by the kernel
    auto* counts = reinterpret_cast<std::byte*>(header_ + 1);
    delivered_ = reinterpret_cast<std::atomic<std::uint16_t>*>(counts);
    committed_ = reinterpret_cast<std::atomic<std::uint8_t>*>(counts + capacity * groups * 2);
  }
  ~ledger() { ::munmap(header_, bytes_); }
  ledger(const ledger&) = delete;
  ledger& operator=(const ledger&) = delete;

  std::uint64_t capacity() const noexcept { return capacity_; }
  ledger_header& header() const noexcept { return *header_; }

  // ---- in children ----
  std::uint64_t take_id() noexcept { return header_->next_id.fetch_add(1, std::memory_order_relaxed); }
  void mark_committed(std::size_t slot, std::uint64_t id) noexcept {
    committed_[id].store(1, std::memory_order_relaxed);
    header_->committed_total.fetch_add(1, std::memory_order_relaxed);
    header_->children[slot].commits.fetch_add(1, std::memory_order_relaxed);
  }
  void set_phase(std::size_t slot, phase p) noexcept { header_->children[slot].at.store(p, std::memory_order_release); }
  // A consumer holds a copy of message `id` that it has not counted yet.
  void note_copy(std::size_t slot, std::uint64_t id) noexcept {
    header_->children[slot].copied.store(id, std::memory_order_relaxed);
    set_phase(slot, phase::copied);
  }
  void count_redelivery(std::size_t g) noexcept { header_->redelivered[g].fetch_add(1, std::memory_order_relaxed); }
  void deliver(std::size_t g, std::uint64_t id) noexcept {
    delivered_[g * capacity_ + id].fetch_add(1, std::memory_order_relaxed);
    header_->deliveries[g].fetch_add(1, std::memory_order_relaxed);
  }
  void mark_ready(std::size_t slot) noexcept { header_->children[slot].ready.store(1, std::memory_order_release); }
  bool stop_producing() const noexcept { return header_->stop_producing.load(std::memory_order_acquire) != 0; }
  bool stopping() const noexcept { return header_->stop.load(std::memory_order_acquire) != 0; }

  // Counts an error; the first one's text is kept for the report.
  void report(const char* format, ...) noexcept __attribute__((format(printf, 2, 3))) {
    header_->errors.fetch_add(1, std::memory_order_relaxed);
    if (header_->error_claimed.exchange(1) != 0) return;
    va_list args;
    va_start(args, format);
    std::vsnprintf(header_->error_text, sizeof header_->error_text, format, args);
    va_end(args);
  }

  // ---- in the parent ----
  bool ready(std::size_t slot) const noexcept {
    return header_->children[slot].ready.load(std::memory_order_acquire) != 0;
  }
  // Before (re)starting the child of `slot`: a killed one may have left its flags set.
  void clear_flags(std::size_t slot) noexcept {
    header_->children[slot].ready.store(0, std::memory_order_release);
    header_->children[slot].at.store(phase::idle, std::memory_order_release);
  }
  phase phase_of(std::size_t slot) const noexcept { return header_->children[slot].at.load(std::memory_order_acquire); }
  std::uint64_t copied(std::size_t slot) const noexcept {
    return header_->children[slot].copied.load(std::memory_order_relaxed);
  }
  std::uint64_t commits(std::size_t slot) const noexcept {
    return header_->children[slot].commits.load(std::memory_order_relaxed);
  }
  bool committed(std::uint64_t id) const noexcept { return committed_[id].load(std::memory_order_relaxed) != 0; }
  std::uint32_t delivered(std::size_t g, std::uint64_t id) const noexcept {
    return delivered_[g * capacity_ + id].load(std::memory_order_relaxed);
  }
  // Ids handed out so far that fit the ledger.
  std::uint64_t end() const noexcept {
    return std::min(header_->next_id.load(std::memory_order_relaxed), capacity_);
  }
  std::string error_text() const { return header_->error_claimed.load() != 0 ? header_->error_text : ""; }

 private:
  std::uint64_t capacity_;
  std::size_t bytes_ = 0;
  ledger_header* header_ = nullptr;
  std::atomic<std::uint16_t>* delivered_ = nullptr;
  std::atomic<std::uint8_t>* committed_ = nullptr;
};

// ---- the children ----

// How long one wait in a child lasts before it looks at the ledger's stop flags again.
constexpr auto poll_timeout = 20ms;

// The size of message `id`: a function of the id, so a consumer detects truncation.
std::size_t message_size(std::uint64_t id, std::size_t max) noexcept {
  return stream_message_size(0xfa17, id, stamped::header_size, max, max);
}

// Holds a loan or a view a little longer for one message in eight: widens the windows
// a kill must hit (between loan and commit; between read and counting, and between
// counting and release). Work, not a wait. `where` picks a different eighth each time.
void dawdle(std::uint64_t id, std::uint64_t where) noexcept {
  const std::uint64_t r = stamped::mix(id ^ (where * 0x9e3779b97f4a7c15ull));
  if ((r & 7) != 0) return;
  const auto until = clock_type::now() + std::chrono::microseconds((r >> 3) % 50);
  while (clock_type::now() < until) {
  }
}

// Waits for room as an application would, in slices so that the stop flag is seen. The
// phase tells the harness that the producer is blocked, so it can time how long.
template <class Producer>
loan loan_waiting(Producer& producer, std::size_t size, ledger& led, std::size_t slot) {
  loan l = producer.try_loan(size);
  if (l.status() != status::full) return l;
  led.set_phase(slot, phase::blocked);
  do {
    l = producer.loan_for(size, poll_timeout);
  } while (l.status() == status::timed_out && !led.stopping());
  led.set_phase(slot, phase::idle);
  return l;
}

template <class Producer>
status push_waiting(Producer& producer, std::span<const std::byte> message, ledger& led, std::size_t slot) {
  status s = producer.try_push(message);
  if (s != status::full) return s;
  led.set_phase(slot, phase::blocked);
  do {
    s = producer.push_for(message, poll_timeout);
  } while (s == status::timed_out && !led.stopping());
  led.set_phase(slot, phase::idle);
  return s;
}

// Writes message `id` in place: loan, fill, commit.
template <class Producer>
status send_in_place(Producer& producer, std::uint64_t id, std::size_t size, ledger& led, std::size_t slot) {
  loan l = loan_waiting(producer, size, led, slot);
  if (!l) return l.status();
  led.set_phase(slot, phase::loaned);
  stamped::fill(l.data(), id);
  dawdle(id, 1);
  l.commit();
  return status::ok;
}

// One message in four goes by push (a copy), the rest in place.
template <class Make>
int run_producer(ledger& led, std::size_t slot, Make&& make) {
  auto producer = make();
  led.mark_ready(slot);
  const std::size_t max = producer.max_message_size();
  std::vector<std::byte> buffer(max);
  while (!led.stop_producing()) {
    const std::uint64_t id = led.take_id();
    if (id >= led.capacity()) return 0;  // the round's ids are used up
    const std::span<std::byte> message = std::span(buffer).first(message_size(id, max));
    status s;
    if (id % 4 == 3) {
      stamped::fill(message, id);
      s = push_waiting(producer, message, led, slot);
    } else {
      s = send_in_place(producer, id, message.size(), led, slot);
    }
    if (s == status::ok) {
      led.mark_committed(slot, id);
      led.set_phase(slot, phase::idle);
      continue;
    }
    if (led.stopping()) return 0;  // given up: the id stays a hole, never committed
    led.report("producer %d: sending %zu bytes: %s", ::getpid(), message.size(), to_string(s));
    return 2;
  }
  return 0;
}

// Checks one received message and counts it; false (and an error reported) if it is
// not a message some producer wrote.
bool take_delivery(ledger& led, std::size_t group, std::span<const std::byte> data, bool redelivered,
                   std::size_t max) {
  std::uint64_t id = 0;
  if (stamped::check(data, id) != stamped::verdict::ok) {
    led.report("group %zu: message of %zu bytes with a bad stamp", group, data.size());
    return false;
  }
  if (id >= led.capacity() || data.size() != message_size(id, max)) {
    led.report("group %zu: message id %llu has %zu bytes", group, static_cast<unsigned long long>(id),
               data.size());
    return false;
  }
  dawdle(id, 2 + redelivered);
  if (redelivered) led.count_redelivery(group);  // first: see the ledger comment above
  led.deliver(group, id);
  dawdle(id, 4 + redelivered);
  return true;
}

// Receives one message in place, holding it while it is checked and counted. 0 when it
// did, or nothing came in time; else an exit code.
template <class Consumer>
int receive_in_place(Consumer& consumer, ledger& led, std::size_t slot, std::size_t group) {
  view v = consumer.read_for(poll_timeout);
  if (v.status() == status::timed_out) return 0;
  if (!v) {
    led.report("group %zu consumer %d: read: %s", group, ::getpid(), to_string(v.status()));
    return 3;
  }
  led.set_phase(slot, phase::holding);
  if (!take_delivery(led, group, v.data(), v.redelivered(), consumer.max_message_size())) return 4;
  v.release();
  led.set_phase(slot, phase::idle);
  return 0;
}

// Receives one message by copy, if one is there: pop_result must carry the redelivered
// flag as view does. A copy is the caller's once pop returns, so a kill after that and
// before counting loses it legitimately. note_copy() names it for the harness, which
// counts it for the dead; a kill in the few instructions before (phase::copying) may
// lose one unnamed message, which the checks allow for. try_pop (no waiting inside)
// keeps that phase short. 1 if nothing was there.
template <class Consumer>
int receive_copy(Consumer& consumer, std::span<std::byte> buffer, ledger& led, std::size_t slot, std::size_t group) {
  led.set_phase(slot, phase::copying);
  const pop_result r = consumer.try_pop(buffer);
  if (r.status == status::empty) {
    led.set_phase(slot, phase::idle);
    return 1;
  }
  if (r.status != status::ok) {
    led.report("group %zu consumer %d: pop: %s", group, ::getpid(), to_string(r.status));
    return 3;
  }
  std::uint64_t id = ~std::uint64_t{0};
  if (r.size >= sizeof id) std::memcpy(&id, buffer.data(), sizeof id);
  led.note_copy(slot, id);
  if (!take_delivery(led, group, buffer.first(r.size), r.redelivered, consumer.max_message_size())) return 4;
  led.set_phase(slot, phase::idle);
  return 0;
}

// One receive in four copies (pop) when a message is there; the others, and the waits,
// read in place.
template <class Make>
int run_consumer(ledger& led, std::size_t slot, std::size_t group, Make&& make) {
  auto consumer = make();
  led.mark_ready(slot);
  std::vector<std::byte> buffer(consumer.max_message_size());
  for (std::uint64_t n = 0; !led.stopping(); ++n) {
    int rc = n % 4 == 3 ? receive_copy(consumer, buffer, led, slot, group) : 1;
    if (rc == 1) rc = receive_in_place(consumer, led, slot, group);
    if (rc != 0) return rc;
  }
  return 0;
}

// ---- the patterns ----

struct participant_plan {
  std::string label;
  bool producer = false;
  std::size_t group = 0;   // consumers: the ledger group
  int sibling = -1;        // a group member that must be up before this one may be killed
  std::function<int(ledger&, std::size_t slot)> body;
};

struct pattern_plan {
  std::size_t groups = 1;
  std::vector<participant_plan> participants;
  std::function<void()> create;  // creates the channel in the parent, then detaches
};

template <class Producer, class Options>
participant_plan producer_plan(std::string label, const std::string& name, const Options& o) {
  participant_plan p;
  p.label = std::move(label);
  p.producer = true;
  p.body = [name, o](ledger& led, std::size_t slot) {
    return run_producer(led, slot, [&] { return Producer(name, o); });
  };
  return p;
}

template <class Consumer, class Options>
participant_plan consumer_plan(std::string label, std::size_t group, const std::string& name, const Options& o) {
  participant_plan p;
  p.label = std::move(label);
  p.group = group;
  p.body = [name, o, group](ledger& led, std::size_t slot) {
    return run_consumer(led, slot, group, [&] { return Consumer(name, o); });
  };
  return p;
}

pattern_plan spsc_plan(const std::string& name) {
  channel_options o;
  o.capacity = 8u << 10;  // small: the ring fills and both sides wait on each other
  o.max_message_size = 1024;
  pattern_plan plan;
  plan.participants.push_back(producer_plan<spsc_producer>("producer", name, o));
  plan.participants.push_back(consumer_plan<spsc_consumer>("consumer", 0, name, o));
  plan.create = [name, o] { spsc_consumer c(name, o); };
  return plan;
}

pattern_plan queue_plan(const std::string& name) {
  mpmc_options o;
  o.slots = 64;
  o.max_message_size = 256;
  pattern_plan plan;
  for (int i = 0; i < 2; ++i)
    plan.participants.push_back(producer_plan<mpmc_producer>("producer " + std::to_string(i), name, o));
  for (int i = 0; i < 2; ++i)
    plan.participants.push_back(consumer_plan<mpmc_consumer>("consumer " + std::to_string(i), 0, name, o));
  plan.create = [name, o] { mpmc_consumer c(name, o); };
  return plan;
}

// Named groups only: a private subscription dies with its subscriber by design. A group
// whose last member died stops holding publishers back (it may be lapped), so the
// harness never kills a member unless its sibling is up.
pattern_plan pubsub_plan(const std::string& name) {
  pubsub_options o;
  o.slots = 32;
  o.max_message_size = 256;
  o.policy = overflow_policy::block;
  o.max_subscribers = 8;
  o.max_groups = 4;
  pattern_plan plan;
  plan.groups = 2;
  for (std::size_t g = 0; g < 2; ++g)
    for (int m = 0; m < 2; ++m) {
      participant_plan p;
      p.label = "group g" + std::to_string(g) + " member " + std::to_string(m);
      p.group = g;
      p.sibling = static_cast<int>(plan.participants.size()) + (m == 0 ? 1 : -1);
      subscription how;
      how.group = g == 0 ? "g0" : "g1";
      p.body = [name, o, g, how](ledger& led, std::size_t slot) {
        return run_consumer(led, slot, g, [&] { return subscriber(name, o, how); });
      };
      plan.participants.push_back(std::move(p));
    }
  for (int i = 0; i < 2; ++i)
    plan.participants.push_back(producer_plan<publisher>("publisher " + std::to_string(i), name, o));
  plan.create = [name, o] { publisher p(name, o); };
  return plan;
}

// ---- watching progress from the parent ----

// How long something went without progress while progress was due. Sampling, not
// synchronization: the children never wait for the parent.
class stall_timer {
 public:
  // True when this sample starts a stall: no progress for longer than `bound`.
  bool update(std::uint64_t progress, bool due, clock_type::time_point now, milliseconds bound) {
    if (progress != last_ || !due) {
      last_ = progress;
      since_ = now;
      flagged_ = false;
      return false;
    }
    const auto gap = now - since_;
    max_gap_ = std::max(max_gap_, gap);
    if (gap <= bound || flagged_) return false;
    flagged_ = true;
    return true;
  }
  milliseconds max_gap() const { return std::chrono::duration_cast<milliseconds>(max_gap_); }

 private:
  std::uint64_t last_ = ~std::uint64_t{0};
  clock_type::time_point since_{};
  clock_type::duration max_gap_{};
  bool flagged_ = false;
};

// Counts the committed messages a group has not received yet. Every id below the
// frontier is delivered or set aside: waiting, a hole (never committed) or in flight
// (not marked committed yet). Set-aside ids are looked at again on each sample; they
// are few (about the ring's slots, plus one per kill).
class backlog_watch {
 public:
  std::uint64_t pending(const ledger& led, std::size_t g) {
    for (const std::uint64_t end = led.end(); frontier_ < end; ++frontier_)
      if (led.delivered(g, frontier_) == 0) set_aside_.push_back(frontier_);
    std::uint64_t n = 0;
    std::erase_if(set_aside_, [&](std::uint64_t id) {
      if (led.delivered(g, id) != 0) return true;
      n += led.committed(id);
      return false;
    });
    return n;
  }

 private:
  std::uint64_t frontier_ = 0;
  std::vector<std::uint64_t> set_aside_;
};

// ---- one round: a fresh channel, children, kills, and the checks ----

struct round_result {
  std::uint64_t kills = 0, producer_kills = 0;
  std::uint64_t consumer_kills[max_groups] = {};
  std::uint64_t kills_at[phases] = {};  // by the phase they interrupted
  std::uint64_t copy_kills[max_groups] = {};  // consumers killed in phase::copying
  std::uint64_t counted_for_dead = 0;  // copies consumers were killed holding
  std::uint64_t attach_kills = 0;      // children killed before their endpoint was up
  std::uint64_t committed = 0, deliveries = 0, redelivered = 0, duplicates = 0;
  milliseconds consumer_gap{}, producer_gap{};
  std::vector<std::string> problems;
};

class fault_round {
 public:
  fault_round(const pattern_plan& plan, const settings& s, std::mt19937_64& rng)
      : plan_(plan), settings_(s), rng_(rng), led_(s.round_messages, plan.groups),
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
  };
  struct group_state {
    backlog_watch backlog;
    stall_timer timer;
  };

  const participant_plan& plan_of(std::size_t i) const { return plan_.participants[i]; }
  bool failed() const { return !result_.problems.empty(); }
  void problem(const std::string& what) { result_.problems.push_back(what); }
  bool running(std::size_t i) const { return children_[i].pid > 0; }

  // ---- children ----

  void spawn(std::size_t i) {
    led_.clear_flags(i);
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

  int run_child(std::size_t i) noexcept {
    try {
      return plan_of(i).body(led_, i);
    } catch (const std::exception& e) {
      led_.report("%s (pid %d): exception: %s", plan_of(i).label.c_str(), ::getpid(), e.what());
    } catch (...) {
      led_.report("%s: unknown exception", plan_of(i).label.c_str());
    }
    return 122;
  }

  static std::string describe_exit(int st) {
    if (WIFEXITED(st)) return "exited with code " + std::to_string(WEXITSTATUS(st));
    if (WIFSIGNALED(st)) return std::string("died of signal ") + ::strsignal(WTERMSIG(st));
    return "ended oddly";
  }

  // A child ended without being killed by the harness.
  void ended(std::size_t i, int st) {
    children_[i].pid = -1;
    const bool clean = WIFEXITED(st) && WEXITSTATUS(st) == 0;
    if (clean && (plan_of(i).producer || led_.stopping())) return;  // a producer out of ids, or told to
    std::string what = plan_of(i).label + " " + (clean ? "left before the end" : describe_exit(st));
    if (const std::string e = led_.error_text(); !e.empty()) what += " (first error: " + e + ")";
    problem(what);
  }

  void reap_ended() {
    for (;;) {
      int st = 0;
      const pid_t pid = ::waitpid(-1, &st, WNOHANG);
      if (pid <= 0) return;
      for (std::size_t i = 0; i < children_.size(); ++i)
        if (children_[i].pid == pid) ended(i, st);
    }
  }

  void kill_and_restart(std::size_t i) {
    const pid_t pid = children_[i].pid;
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
  void count_for_the_dead(std::size_t i, phase interrupted) {
    const std::size_t g = plan_of(i).group;
    if (interrupted == phase::copying) ++result_.copy_kills[g];
    if (interrupted != phase::copied) return;
    const std::uint64_t id = led_.copied(i);
    if (id < led_.capacity() && led_.delivered(g, id) == 0) {
      led_.deliver(g, id);
      ++result_.counted_for_dead;
    }
  }

  void kill_all() noexcept {
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
  // killed inside try_pop (see receive_copy).
  bool waiting_messages(std::size_t g) {
    return groups_[g].backlog.pending(led_, g) > result_.copy_kills[g];
  }

  bool group_has_ready_member(std::size_t g) const {
    for (std::size_t i = 0; i < children_.size(); ++i)
      if (!plan_of(i).producer && plan_of(i).group == g && running(i) && led_.ready(i)) return true;
    return false;
  }

  bool every_group_ready() const {
    for (std::size_t g = 0; g < plan_.groups; ++g)
      if (!group_has_ready_member(g)) return false;
    return true;
  }

  bool producer_running() const {
    for (std::size_t i = 0; i < children_.size(); ++i)
      if (plan_of(i).producer && running(i)) return true;
    return false;
  }

  // One look at the ledger: a group with a committed message waiting and a member up
  // must receive something within the bound, and a producer blocked in a loan while
  // every group has a member up must commit within the bound.
  void sample() {
    reap_ended();
    const auto now = clock_type::now();
    for (std::size_t g = 0; g < plan_.groups; ++g) {
      const bool due = waiting_messages(g) && group_has_ready_member(g);
      const std::uint64_t got = led_.header().deliveries[g].load(std::memory_order_relaxed);
      if (groups_[g].timer.update(got, due, now, settings_.bound))
        problem("group " + std::to_string(g) + " received nothing for " +
                std::to_string(settings_.bound.count()) + " ms with committed messages waiting (" +
                std::to_string(got) + " received, " + std::to_string(led_.end()) + " ids taken)");
    }
    const bool groups_up = every_group_ready();
    for (std::size_t i = 0; i < children_.size(); ++i) {
      if (!plan_of(i).producer) continue;
      const bool due = running(i) && led_.ready(i) && led_.phase_of(i) == phase::blocked && groups_up;
      if (timers_[i].update(led_.commits(i), due, now, settings_.bound))
        problem(plan_of(i).label + " blocked in a loan for " + std::to_string(settings_.bound.count()) +
                " ms while every group had a member up (" +
                std::to_string(led_.header().committed_total.load()) + " committed in all)");
    }
  }

  // Samples about every millisecond until `until`, or until `done()`.
  template <class Done>
  bool watch_until(clock_type::time_point until, Done&& done) {
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
  void start() {
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
  bool may_kill(std::size_t i) const {
    if (!running(i) || !(plan_of(i).producer ? settings_.kill_producers : settings_.kill_consumers))
      return false;
    const int s = plan_of(i).sibling;
    return s < 0 || (running(static_cast<std::size_t>(s)) && led_.ready(static_cast<std::size_t>(s)));
  }

  std::optional<std::size_t> pick_victim() {
    std::vector<std::size_t> candidates;
    for (std::size_t i = 0; i < children_.size(); ++i)
      if (may_kill(i)) candidates.push_back(i);
    if (candidates.empty()) return std::nullopt;
    return candidates[std::uniform_int_distribution<std::size_t>(0, candidates.size() - 1)(rng_)];
  }

  void kill_phase(std::uint64_t kill_goal, clock_type::time_point soak_end) {
    kill_goal_ = kill_goal;
    std::uniform_int_distribution<long> gap_us(0, settings_.kill_gap.count() * 1000);
    while (result_.kills < kill_goal && !failed() && producer_running()) {
      const auto at = clock_type::now() + std::chrono::microseconds(gap_us(rng_));
      if (watch_until(std::min(at, soak_end), [&] { return failed(); }) || at >= soak_end) break;
      const auto victim = pick_victim();
      if (!victim) continue;
      if (std::bernoulli_distribution(0.5)(rng_)) catch_in_window(*victim);
      kill_and_restart(*victim);
      if (std::bernoulli_distribution(0.1)(rng_)) kill_while_attaching(*victim);
    }
  }

  // Kills a child just restarted, within its first 0.6 ms: often while it attaches
  // (claims its place, joins its group), which kills at random moments rarely hit.
  void kill_while_attaching(std::size_t i) {
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
  void catch_in_window(std::size_t i) const {
    const phase wanted = plan_of(i).producer ? phase::loaned : phase::holding;
    const auto until = clock_type::now() + 20ms;
    while (led_.phase_of(i) != wanted && clock_type::now() < until) {
    }
  }

  bool all_delivered() {
    for (std::size_t g = 0; g < plan_.groups; ++g)
      if (waiting_messages(g)) return false;
    return true;
  }

  // No more kills: producers stop taking ids, groups receive what was committed, then
  // everyone leaves. Each step is bounded; a step that does not end is a failure.
  void finish() {
    const auto wait = finish_timeout(settings_);
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

  void verify_group(std::size_t g) {
    std::uint64_t missing = 0, unmarked = 0, duplicates = 0, first_missing = 0;
    for (std::uint64_t id = 0; id < led_.end(); ++id) {
      const std::uint32_t n = led_.delivered(g, id);
      if (led_.committed(id) && n == 0 && missing++ == 0) first_missing = id;
      if (!led_.committed(id) && n > 0) ++unmarked;
      if (n > 1) duplicates += n - 1;
    }
    const std::uint64_t redelivered = led_.header().redelivered[g].load();
    const std::string group = "group " + std::to_string(g) + ": ";
    if (missing > result_.copy_kills[g])
      problem(group + std::to_string(missing) + " committed messages never delivered (first id " +
              std::to_string(first_missing) + "; " + std::to_string(result_.copy_kills[g]) +
              " may have died with consumers killed inside try_pop)");
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

  void verify() {
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

  const pattern_plan& plan_;
  const settings& settings_;
  std::mt19937_64& rng_;
  ledger led_;
  std::vector<child> children_;
  std::vector<group_state> groups_;
  std::vector<stall_timer> timers_;  // per child; producers only
  round_result result_;
  std::uint64_t kill_goal_ = 0;
};

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
  total.consumer_gap = std::max(total.consumer_gap, r.consumer_gap);
  total.producer_gap = std::max(total.producer_gap, r.producer_gap);
  for (std::string& p : r.problems) total.problems.push_back(std::move(p));
}

pattern_result run_pattern(const char* kind, pattern_plan (*make_plan)(const std::string&), const settings& s) {
  std::mt19937_64 rng(s.seed);
  pattern_result out;
  const auto start = clock_type::now();
  const bool soaking = s.soak.count() > 0;
  const auto soak_end = soaking ? start + s.soak : clock_type::time_point::max();
  const std::uint64_t goal = soaking ? ~std::uint64_t{0} : s.kills;
  while (out.total.kills < goal && clock_type::now() < soak_end && out.total.problems.empty()) {
    segment_guard seg(std::string("fault-") + kind);
    const pattern_plan plan = make_plan(seg.name());
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

void check_pattern(const char* kind, pattern_plan (*make_plan)(const std::string&)) {
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
          << " redelivered, " << t.duplicates << " duplicates; longest gap: consumers "
          << t.consumer_gap.count() << " ms, producers " << t.producer_gap.count() << " ms; " << r.rounds
          << " rounds in " << r.elapsed.count() << " ms (seed " << s.seed << ", bound " << s.bound.count()
          << " ms)";
  MESSAGE(summary.str());
  const std::string name = kind;
  for (const std::string& p : t.problems) FAIL_CHECK(name << ": " << p);
  if (s.soak.count() == 0 && t.problems.empty()) CHECK_MESSAGE(t.kills >= s.kills, name << ": too few kills");
}

}  // namespace

TEST_SUITE("fault") {

TEST_CASE("fault injection: spsc, random kills of the producer and the consumer") {
  check_pattern("spsc", spsc_plan);
}

TEST_CASE("fault injection: mpmc queue, 2 producers and 2 competing consumers") {
  check_pattern("queue", queue_plan);
}

TEST_CASE("fault injection: pubsub block, 2 publishers and 2 named groups of 2") {
  check_pattern("pubsub", pubsub_plan);
}

}  // TEST_SUITE
}  // namespace shmq::test

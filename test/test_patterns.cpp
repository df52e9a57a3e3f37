// Many-to-many patterns across processes: the MPMC work queue, publish/subscribe under
// both overflow policies, and consumer groups. Every message is stamped with its
// producer and a per-producer sequence number; a tally in an anonymous shared mapping
// counts each (producer, sequence) per receiving group, so loss and duplication show
// exactly, and each receiver checks per-producer FIFO order as it goes.
#include <doctest/doctest.h>

#include <memory>
#include <sys/mman.h>

#include "shmq/mpmc.hpp"
#include "shmq/pubsub.hpp"
#include "test_support.hpp"

namespace shmq::test {
namespace {

constexpr int id_shift = 40;
constexpr std::uint64_t seq_mask = (std::uint64_t{1} << id_shift) - 1;

std::uint64_t stamp_of(std::uint64_t producer, std::uint64_t seq) { return (producer << id_shift) | seq; }

// Delivery counts shared by forked receivers: one per (receiver group, producer, seq).
class tally {
 public:
  tally(std::size_t groups, std::size_t producers, std::size_t per_producer)
      : producers_(producers), per_producer_(per_producer), size_(groups * producers * per_producer) {
    void* p = ::mmap(nullptr, size_ * sizeof(std::atomic<std::uint32_t>), PROT_READ | PROT_WRITE,
                     MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    REQUIRE(p != MAP_FAILED);
    counts_ = static_cast<std::atomic<std::uint32_t>*>(p);  // zero-filled by the kernel
  }
  ~tally() { ::munmap(counts_, size_ * sizeof(std::atomic<std::uint32_t>)); }
  tally(const tally&) = delete;
  tally& operator=(const tally&) = delete;

  // In a receiver: false if the stamp is out of range.
  bool count(std::size_t group, std::uint64_t stamp) noexcept {
    const std::uint64_t producer = stamp >> id_shift, seq = stamp & seq_mask;
    if (producer >= producers_ || seq >= per_producer_) return false;
    counts_[(group * producers_ + producer) * per_producer_ + seq].fetch_add(1, std::memory_order_relaxed);
    return true;
  }
  // In the parent, after every receiver exited.
  std::uint64_t with_count(std::size_t group, std::uint32_t n) const noexcept {
    std::uint64_t k = 0;
    for (std::size_t i = 0; i < producers_ * per_producer_; ++i)
      k += counts_[group * producers_ * per_producer_ + i].load(std::memory_order_relaxed) == n;
    return k;
  }

 private:
  std::size_t producers_, per_producer_, size_;
  std::atomic<std::uint32_t>* counts_;
};

// Receives until closed; checks checksums and per-producer order, tallies every
// message under `group`. Returns 0, or a code saying what went wrong.
template <class Consumer>
int drain(Consumer& consumer, tally& t, std::size_t group, std::size_t producers, std::uint64_t* missed = nullptr) {
  std::vector<std::uint64_t> next(producers, 0);
  for (;;) {
    view v = consumer.read();
    if (v.status() == status::closed) return 0;
    if (!v) return 10;
    if (missed != nullptr) {
      *missed += v.missed();
      // A message reports every miss before it: missed_total() has nothing more yet.
      if constexpr (requires { consumer.missed_total(); })
        if (*missed != consumer.missed_total()) return 14;
    }
    std::uint64_t stamp = 0;
    const bool sound = stamped::check(v.data(), stamp) == stamped::verdict::ok;
    if (!v.intact()) continue;  // overwritten while read: counted as missed on release
    if (!sound) return 11;
    const std::uint64_t producer = stamp >> id_shift, seq = stamp & seq_mask;
    if (producer >= producers || seq < next[producer]) return 12;  // duplicate or reordered
    next[producer] = seq + 1;
    if (!t.count(group, stamp)) return 13;
  }
}

template <class Producer>
int produce(Producer& producer, std::uint64_t id, std::uint64_t count) {
  for (std::uint64_t seq = 0; seq < count; ++seq) {
    loan l = producer.loan(stream_message_size(id, seq, 16, 200, 200));
    if (!l) return 20;
    stamped::fill(l.data(), stamp_of(id, seq));
    l.commit();
  }
  return 0;
}

}  // namespace

TEST_SUITE("patterns") {

TEST_CASE("mpmc: 3 producers and 3 consumers, each message to exactly one consumer") {
  segment_guard seg("mpmc-3x3");
  mpmc_options o;
  o.slots = 64;
  o.max_message_size = 200;
  constexpr std::size_t producers = 3, consumers = 3;
  const std::uint64_t count = env_count("SHMQ_TEST_PATTERN_MESSAGES", 200'000);
  tally t(1, producers, count);
  peer_pipe ready;
  std::vector<std::unique_ptr<child_process>> receivers, senders;
  for (std::size_t i = 0; i < consumers; ++i)
    receivers.push_back(std::make_unique<child_process>([&](child_process&) {
      mpmc_consumer c(seg.name(), o);
      return drain(c, t, 0, producers);
    }));
  for (std::size_t p = 0; p < producers; ++p)
    senders.push_back(std::make_unique<child_process>([&, p](child_process&) {
      mpmc_producer prod(seg.name(), o);
      return produce(prod, p, count);
    }));
  for (auto& s : senders) CHECK(s->wait() == 0);
  mpmc_producer closer(seg.name(), o);  // every producer is done: end the stream
  closer.close();
  for (auto& r : receivers) CHECK(r->wait() == 0);
  CHECK(t.with_count(0, 1) == producers * count);  // each exactly once
}

TEST_CASE("pubsub block: 3 publishers, 3 subscribers and 2 groups; nothing lost") {
  segment_guard seg("pubsub-block");
  pubsub_options o;
  o.slots = 32;
  o.max_message_size = 200;
  constexpr std::size_t publishers = 3;
  const std::uint64_t count = env_count("SHMQ_TEST_PATTERN_MESSAGES", 100'000);
  // Receiver groups: 0-2 private subscribers, 3 = group "a" (3 members), 4 = group "b" (2).
  struct receiver { std::size_t tally_group; std::string group; };
  const std::vector<receiver> plan = {{0, ""}, {1, ""}, {2, ""}, {3, "a"}, {3, "a"}, {3, "a"}, {4, "b"}, {4, "b"}};
  o.max_subscribers = static_cast<std::uint32_t>(plan.size());
  tally t(5, publishers, count);
  std::vector<std::unique_ptr<child_process>> receivers, senders;
  for (const receiver& r : plan) {
    receivers.push_back(std::make_unique<child_process>([&](child_process& self) {
      subscription how;
      how.group = r.group;
      subscriber s(seg.name(), o, how);
      self.notify('s');  // subscribed: publishing may start
      return drain(s, t, r.tally_group, publishers);
    }));
    REQUIRE(receivers.back()->wait_notice() == 's');
  }
  for (std::size_t p = 0; p < publishers; ++p)
    senders.push_back(std::make_unique<child_process>([&, p](child_process&) {
      publisher pub(seg.name(), o);
      return produce(pub, p, count);
    }));
  for (auto& s : senders) CHECK(s->wait() == 0);
  publisher closer(seg.name(), o);
  closer.close();
  for (auto& r : receivers) CHECK(r->wait() == 0);
  for (std::size_t g = 0; g < 5; ++g) {
    CAPTURE(g);
    CHECK(t.with_count(g, 1) == publishers * count);  // every subscriber and group: all, once
  }
}

TEST_CASE("pubsub overwrite: a lapped subscriber is told exactly how many it missed") {
  segment_guard seg("pubsub-overwrite");
  pubsub_options o;
  o.slots = 8;  // small, so subscribers are lapped all the time
  o.max_message_size = 200;
  o.policy = overflow_policy::overwrite;
  constexpr std::size_t publishers = 3, subscribers = 3;
  const std::uint64_t count = env_count("SHMQ_TEST_PATTERN_MESSAGES", 100'000);
  tally t(subscribers + 1, publishers, count);
  // Each subscriber writes its missed count here; the last entry is group "g".
  auto* missed = static_cast<std::atomic<std::uint64_t>*>(
      ::mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0));
  REQUIRE(missed != MAP_FAILED);
  std::vector<std::unique_ptr<child_process>> receivers, senders;
  for (std::size_t i = 0; i < subscribers + 2; ++i) {
    const bool in_group = i >= subscribers;
    const std::size_t slot = in_group ? subscribers : i;
    receivers.push_back(std::make_unique<child_process>([&, in_group, slot](child_process& self) {
      subscription how;
      if (in_group) how.group = "g";
      subscriber s(seg.name(), o, how);
      self.notify('s');
      std::uint64_t seen_missed = 0;
      const int rc = drain(s, t, slot, publishers, &seen_missed);
      // Reported per message == total, but for misses after the last message (a copy
      // torn at the very end): no message came after them to report them on.
      if (seen_missed > s.missed_total()) return 30;
      missed[slot].fetch_add(s.missed_total());
      return rc;
    }));
    REQUIRE(receivers.back()->wait_notice() == 's');
  }
  for (std::size_t p = 0; p < publishers; ++p)
    senders.push_back(std::make_unique<child_process>([&, p](child_process&) {
      publisher pub(seg.name(), o);
      return produce(pub, p, count);
    }));
  for (auto& s : senders) CHECK(s->wait() == 0);
  publisher closer(seg.name(), o);
  closer.close();
  for (auto& r : receivers) CHECK(r->wait() == 0);
  for (std::size_t g = 0; g <= subscribers; ++g) {
    CAPTURE(g);
    const std::uint64_t once = t.with_count(g, 1), never = t.with_count(g, 0);
    CHECK(once + never == publishers * count);  // no duplicates
    CHECK(never == missed[g].load());           // the missed count is exact
  }
  ::munmap(missed, 4096);
}

TEST_CASE("pubsub overwrite: missed() counts the overwritten messages, in one process") {
  segment_guard seg("lapped");
  pubsub_options o;
  o.slots = 4;
  o.max_message_size = 64;
  o.policy = overflow_policy::overwrite;
  publisher pub(seg.name(), o);
  subscriber sub(seg.name(), o);
  for (std::uint64_t i = 0; i < 10; ++i) REQUIRE(pub.try_push(make_message(i, 32)) == status::ok);
  view v = sub.try_read();  // 0..5 were overwritten; 6 is the oldest still there
  REQUIRE(v);
  CHECK(v.missed() == 6);
  CHECK(message_ok(v.data(), 6));
  CHECK(v.intact());
  v.release();
  for (std::uint64_t i = 7; i < 10; ++i) {
    view w = sub.try_read();
    REQUIRE(w);
    CHECK(w.missed() == 0);
    CHECK(message_ok(w.data(), i));
  }
  CHECK(sub.try_read().status() == status::empty);
  CHECK(sub.missed_total() == 6);

  SUBCASE("a view overwritten while held is not intact, and counts as missed") {
    REQUIRE(pub.try_push(make_message(10, 32)) == status::ok);
    view held = sub.try_read();
    REQUIRE(held);
    for (std::uint64_t i = 11; i < 16; ++i) REQUIRE(pub.try_push(make_message(i, 32)) == status::ok);
    CHECK_FALSE(held.intact());
    held.release();
    view next = sub.try_read();
    REQUIRE(next);
    CHECK(message_ok(next.data(), 12));  // 11 was overwritten too; 12..15 are there
    CHECK(next.missed() == 2);           // the torn 10 and the overwritten 11
  }
}

TEST_CASE("pubsub block: a subscriber that leaves no longer holds the publisher back") {
  segment_guard seg("leave");
  pubsub_options o;
  o.slots = 4;
  o.max_message_size = 64;
  publisher pub(seg.name(), o);
  auto slow = std::make_unique<subscriber>(seg.name(), o);
  subscriber fast(seg.name(), o);
  for (std::uint64_t i = 0; i < 4; ++i) {
    REQUIRE(pub.try_push(make_message(i, 32)) == status::ok);
    view v = fast.try_read();
    REQUIRE(v);
    CHECK(message_ok(v.data(), i));
  }
  CHECK(pub.try_push(make_message(4, 32)) == status::full);  // slow has read nothing
  CHECK(pub.push_for(make_message(4, 32), std::chrono::milliseconds(2)) == status::timed_out);
  slow.reset();
  CHECK(pub.try_push(make_message(4, 32)) == status::ok);
  view v = fast.try_read();
  REQUIRE(v);
  CHECK(message_ok(v.data(), 4));
}

TEST_CASE("pubsub: late joiners start at the newest, the oldest, or history messages back") {
  segment_guard seg("late");
  pubsub_options o;
  o.slots = 8;
  o.max_message_size = 64;
  publisher pub(seg.name(), o);
  for (std::uint64_t i = 0; i < 5; ++i) REQUIRE(pub.try_push(make_message(i, 32)) == status::ok);

  subscription oldest, history, newest;
  oldest.start = start_from::oldest;
  history.history = 2;
  subscriber from_oldest(seg.name(), o, oldest), from_history(seg.name(), o, history),
      from_newest(seg.name(), o, newest);
  REQUIRE(pub.try_push(make_message(5, 32)) == status::ok);

  auto first = [](subscriber& s) {
    view v = s.try_read();
    REQUIRE(v);
    for (std::uint64_t i = 0; i < 6; ++i)
      if (message_ok(v.data(), i)) return i;
    return ~std::uint64_t{0};
  };
  CHECK(first(from_oldest) == 0);
  CHECK(first(from_history) == 3);
  CHECK(first(from_newest) == 5);
}

TEST_CASE("pubsub groups: members compete, a group resumes where it left off") {
  segment_guard seg("groups");
  pubsub_options o;
  o.slots = 16;
  o.max_message_size = 64;
  publisher pub(seg.name(), o);
  subscription g;
  g.group = "workers";
  auto a = std::make_unique<subscriber>(seg.name(), o, g);
  auto b = std::make_unique<subscriber>(seg.name(), o, g);
  for (std::uint64_t i = 0; i < 4; ++i) REQUIRE(pub.try_push(make_message(i, 32)) == status::ok);
  {
    view v0 = a->try_read();
    view v1 = b->try_read();
    REQUIRE(v0);
    REQUIRE(v1);
    CHECK(message_ok(v0.data(), 0));
    CHECK(message_ok(v1.data(), 1));
  }
  a.reset();
  b.reset();  // the group is idle now: it keeps its place in the stream
  subscriber c(seg.name(), o, g);
  view v2 = c.try_read();
  REQUIRE(v2);
  CHECK(message_ok(v2.data(), 2));
}

TEST_CASE("limits: one endpoint too many is limit_reached, and leaving frees the place") {
  segment_guard seg("limits");
  auto expect_limit = [](auto&& make) {
    try {
      make();
      FAIL("no error");
    } catch (const shmq::error& e) {
      CHECK(e.code() == errc::limit_reached);
      CHECK(contains(e.what(), "the most it was created for"));
    }
  };
  SUBCASE("mpmc") {
    mpmc_options o;
    o.max_producers = 2;
    o.max_consumers = 1;
    mpmc_producer p1(seg.name(), o), p2(seg.name(), o);
    expect_limit([&] { mpmc_producer p3(seg.name(), o); });
    auto c1 = std::make_unique<mpmc_consumer>(seg.name(), o);
    expect_limit([&] { mpmc_consumer c2(seg.name(), o); });
    c1.reset();
    mpmc_consumer c2(seg.name(), o);
  }
  SUBCASE("pubsub") {
    pubsub_options o;
    o.max_publishers = 1;
    o.max_subscribers = 3;
    o.max_groups = 2;
    publisher p(seg.name(), o);
    expect_limit([&] { publisher p2(seg.name(), o); });
    subscription g;
    g.group = "g";
    subscriber s1(seg.name(), o), s2(seg.name(), o, g);  // two groups: private + "g"
    expect_limit([&] { subscriber s3(seg.name(), o); });  // a third group
    subscriber s3(seg.name(), o, g);                      // a member of "g" is fine
    expect_limit([&] { subscriber s4(seg.name(), o, g); });  // a fourth subscriber
  }
}

TEST_CASE("mpmc: aborted loans are skipped, small buffers leave the message, close drains") {
  segment_guard seg("mpmc-unit");
  mpmc_options o;
  o.slots = 8;
  o.max_message_size = 64;
  mpmc_producer p(seg.name(), o);
  mpmc_consumer c(seg.name(), o);
  CHECK(c.try_read().status() == status::empty);
  CHECK(p.try_loan(65).status() == status::too_large);
  {
    loan l = p.try_loan(16);
    REQUIRE(l);
    CHECK(p.try_loan(16).status() == status::busy);
  }  // aborted
  REQUIRE(p.try_push(make_message(1, 40)) == status::ok);
  std::vector<std::byte> small(8), big(64);
  pop_result r = c.try_pop(small);
  CHECK(r.status == status::too_large);
  CHECK(r.size == 40);
  r = c.try_pop(big);
  CHECK(r.status == status::ok);
  CHECK(message_ok(std::span(big).first(r.size), 1));
  for (std::uint64_t i = 0; i < 8; ++i) REQUIRE(p.try_push(make_message(i, 24)) == status::ok);
  CHECK(p.try_push(make_message(8, 24)) == status::full);
  CHECK(p.loan_for(24, std::chrono::milliseconds(1)).status() == status::timed_out);
  p.close();
  CHECK(p.try_push(make_message(9, 24)) == status::closed);  // nothing after the end
  for (std::uint64_t i = 0; i < 8; ++i) {
    view v = c.read();
    REQUIRE(v);
    CHECK(message_ok(v.data(), i));
  }
  CHECK(c.read().status() == status::closed);
  CHECK(c.read_for(std::chrono::milliseconds(1)).status() == status::closed);
}

TEST_CASE("pattern options are validated and compared") {
  segment_guard seg("pattern-options");
  auto code_of = [](auto&& make) {
    try {
      make();
    } catch (const shmq::error& e) {
      return e.code();
    }
    return std::error_code{};
  };
  mpmc_options bad;
  bad.slots = 3;
  CHECK(code_of([&] { mpmc_producer p(seg.name(), bad); }) == errc::invalid_argument);
  pubsub_options po;
  po.max_groups = 0;
  CHECK(code_of([&] { publisher p(seg.name(), po); }) == errc::invalid_argument);
  po.max_groups = 4;
  publisher p(seg.name(), po);
  pubsub_options other = po;
  other.policy = overflow_policy::overwrite;
  CHECK(code_of([&] { subscriber s(seg.name(), other); }) == errc::options_mismatch);
  CHECK(code_of([&] { mpmc_consumer c(seg.name()); }) == errc::kind_mismatch);
  subscription bad_group;
  bad_group.group = "no spaces";
  CHECK(code_of([&] { subscriber s(seg.name(), po, bad_group); }) == errc::invalid_name);
}

}  // TEST_SUITE
}  // namespace shmq::test

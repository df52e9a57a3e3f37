// The MPMC and pub/sub rings driven by threads over one heap buffer. Separate processes
// map a segment at different addresses, where TSan cannot follow; here it sees every
// access, so these tests are what checks the rings' ordering arguments under TSan.
// (Only the block policy: overwrite readers race with writers by design and validate
// afterwards, which TSan would rightly call a race.)
#include <doctest/doctest.h>

#include <memory>
#include <new>
#include <thread>

#include "mpmc_ring.hpp"
#include "pubsub_ring.hpp"
#include "test_support.hpp"

namespace shmq::test {
namespace {

constexpr int id_shift = 40;

// 128-aligned, zero-filled memory standing in for a segment.
struct arena {
  explicit arena(std::size_t bytes)
      : size(bytes), base(static_cast<std::byte*>(::operator new(bytes, std::align_val_t{128}))) {
    std::memset(base, 0, bytes);
  }
  ~arena() { ::operator delete(base, std::align_val_t{128}); }
  arena(const arena&) = delete;
  arena& operator=(const arena&) = delete;
  std::size_t size;
  std::byte* base;
};

// An MPMC control block, its slots and ticket records, every slot at its first turn.
struct mpmc_arena {
  mpmc_arena(std::uint64_t slots, std::uint64_t max, std::size_t producers, std::size_t consumers)
      : mem(sizeof(detail::mpmc_control) + slots * detail::slot_size_for(max)),
        control(new (mem.base) detail::mpmc_control{}),
        geometry{mem.base + sizeof(detail::mpmc_control), slots, detail::slot_size_for(max), max},
        producers(producers),
        records(producers + consumers) {
    for (std::uint64_t i = 0; i < slots; ++i) geometry.slot(i).turn.store(i);
    for (auto& r : records) r.ticket.store(detail::no_ticket);
  }
  // Producer or consumer `i`. No participant locks here (fd -1): everyone counts as live.
  detail::ticket_table role(bool producer) {
    const std::span<detail::ticket_record> all(records);
    return {-1, 0, producer ? all.first(producers) : all.subspan(producers)};
  }
  detail::mpmc_ring ring(bool producer, std::uint32_t i) {
    return {*control, geometry, producer, role(producer), i};
  }
  detail::ticket_record& record(bool producer, std::size_t i) { return records[producer ? i : producers + i]; }
  arena mem;
  detail::mpmc_control* control;
  detail::slot_geometry geometry;
  std::size_t producers;
  std::vector<detail::ticket_record> records;
};

// Counts deliveries of (producer, seq) per receiving group.
struct delivery_counts {
  delivery_counts(std::size_t groups, std::size_t producers, std::size_t per_producer)
      : producers(producers), per_producer(per_producer), counts(groups * producers * per_producer) {}
  void count(std::size_t group, std::uint64_t stamp) {
    const std::uint64_t p = stamp >> id_shift, seq = stamp & ((std::uint64_t{1} << id_shift) - 1);
    REQUIRE(p < producers);
    REQUIRE(seq < per_producer);
    counts[(group * producers + p) * per_producer + seq].fetch_add(1, std::memory_order_relaxed);
  }
  bool all_once(std::size_t group) const {
    for (std::size_t i = 0; i < producers * per_producer; ++i)
      if (counts[group * producers * per_producer + i].load() != 1) return false;
    return true;
  }
  std::size_t producers, per_producer;
  std::vector<std::atomic<std::uint32_t>> counts;
};

// Checks a received message and its producer's order; returns its stamp.
std::uint64_t check_in_order(std::span<const std::byte> m, std::vector<std::uint64_t>& next) {
  std::uint64_t stamp = 0;
  REQUIRE(stamped::check(m, stamp) == stamped::verdict::ok);
  const std::uint64_t p = stamp >> id_shift, seq = stamp & ((std::uint64_t{1} << id_shift) - 1);
  REQUIRE(p < next.size());
  REQUIRE(seq >= next[p]);
  next[p] = seq + 1;
  return stamp;
}

// A consumer thread: takes, checks (per-producer order) and releases messages until the
// consumers together took `total`, or `failures` is set; false if the ring gave anything
// but ok or empty.
bool drain_ring(detail::mpmc_ring& ring, delivery_counts& counts, std::size_t producers,
                std::atomic<std::uint64_t>& consumed, std::uint64_t total,
                const std::atomic<int>* failures = nullptr) {
  std::vector<std::uint64_t> next(producers, 0);
  while (consumed.load() < total && (failures == nullptr || failures->load() == 0)) {
    std::uint64_t ticket = 0, size = 0;
    const std::byte* payload = nullptr;
    const status s = ring.try_take(ticket, payload, size);
    if (s == status::empty) {
      std::this_thread::yield();
      continue;
    }
    if (s != status::ok) return false;
    counts.count(0, check_in_order({payload, size}, next));
    ring.release(ticket);
    consumed.fetch_add(1);
  }
  return true;
}

}  // namespace

TEST_SUITE("unit") {

TEST_CASE("mpmc ring: 2 producer and 2 consumer threads, each message exactly once") {
  constexpr std::uint64_t slots = 16, max = 128, producers = 2, consumers = 2;
  const std::uint64_t count = env_count("SHMQ_TEST_THREAD_MESSAGES", 100'000);
  mpmc_arena ring_mem(slots, max, producers, consumers);
  const detail::slot_geometry& g = ring_mem.geometry;
  delivery_counts counts(1, producers, count);
  std::atomic<std::uint64_t> consumed{0};

  std::vector<std::thread> threads;
  for (std::uint64_t p = 0; p < producers; ++p)
    threads.emplace_back([&, p] {
      detail::mpmc_ring ring = ring_mem.ring(true, static_cast<std::uint32_t>(p));
      std::uint64_t attempts = 0;
      for (std::uint64_t seq = 0; seq < count;) {
        std::uint64_t ticket = 0;
        const std::size_t size = 16 + seq % (max - 16);
        status s;
        while ((s = ring.try_claim(size, ticket)) == status::full) std::this_thread::yield();
        REQUIRE(s == status::ok);
        if (++attempts % 7 == 0) {  // an aborted loan: consumers must pass over it
          ring.publish(ticket, 0, detail::slot_skip);
          continue;
        }
        stamped::fill({g.payload(ticket), size}, (p << id_shift) | seq);
        ring.publish(ticket, size, 0);
        ++seq;
      }
    });
  for (std::uint64_t c = 0; c < consumers; ++c)
    threads.emplace_back([&, c] {
      detail::mpmc_ring ring = ring_mem.ring(false, static_cast<std::uint32_t>(c));
      REQUIRE(drain_ring(ring, counts, producers, consumed, producers * count));
    });
  for (auto& t : threads) t.join();
  CHECK(counts.all_once(0));
}

// A holder that finds a turn ahead of the position it loaded may have lost its lease a
// moment before, to a participant that then moved the position with the CAS between
// its two loads: that is no corruption. The window is a few instructions wide, so this
// runs the handover many times, on fresh rings, with every role's second participant
// starting while the first streams (the fault suite once caught a consumer reporting
// corrupt there).
TEST_CASE("mpmc ring: leases taken away from running holders, from threads") {
  constexpr std::uint64_t slots = 8, max = 32, per_thread = 200;
  const std::uint64_t rounds = env_count("SHMQ_TEST_LEASE_ROUNDS", 3000);
  for (std::uint64_t round = 0; round < rounds; ++round) {
    mpmc_arena m(slots, max, 2, 2);
    delivery_counts counts(1, 2, per_thread);
    std::atomic<std::uint64_t> consumed{0};
    std::atomic<int> failures{0};
    std::vector<std::thread> threads;
    for (std::uint32_t p = 0; p < 2; ++p)
      threads.emplace_back([&, p] {
        detail::mpmc_ring ring = m.ring(true, p);
        for (std::uint64_t seq = 0; seq < per_thread; ++seq) {
          std::uint64_t ticket = 0;
          status s;
          while ((s = ring.try_claim(16, ticket)) == status::full) {
            if (failures.load() != 0) return;  // the consumers gave up
            std::this_thread::yield();
          }
          if (s != status::ok) {
            failures.fetch_add(1);
            return;
          }
          stamped::fill({m.geometry.payload(ticket), 16}, (std::uint64_t{p} << id_shift) | seq);
          ring.publish(ticket, 16, false);
          // Now and then a pause, so that the consumers poll an empty ring: a holder
          // that finds it empty keeps believing it holds the lease.
          if (seq % 4 == 0)
            for (int spin = 0; spin < 200; ++spin) detail::cpu_relax();
        }
      });
    for (std::uint32_t c = 0; c < 2; ++c)
      threads.emplace_back([&, c] {
        detail::mpmc_ring ring = m.ring(false, c);
        if (!drain_ring(ring, counts, 2, consumed, 2 * per_thread, &failures)) failures.fetch_add(1);
      });
    for (auto& t : threads) t.join();
    REQUIRE(failures.load() == 0);  // no false full/empty verdicts of corrupt
    REQUIRE(counts.all_once(0));
  }
}

// A consumer looks first at the ticket after its own last one, not at dequeue_pos. When
// other consumers moved on, that guess is stale: the slot was released (turn ahead), or
// is still held (turn == guess + 1, and the CAS fails). Either way it must take the next
// free ticket, never a taken one; and a turn ahead of an unmoved position is corruption.
TEST_CASE("mpmc ring: a consumer's stale first guess") {
  mpmc_arena m(4, 64, 1, 2);
  detail::mpmc_ring producer = m.ring(true, 0);
  detail::mpmc_ring a = m.ring(false, 0);
  detail::mpmc_ring b = m.ring(false, 1);
  const auto send = [&](std::uint64_t n) {
    for (std::uint64_t i = 0; i < n; ++i) {
      std::uint64_t t = 0;
      REQUIRE(producer.try_claim(8, t) == status::ok);
      producer.publish(t, 8, false);
    }
  };
  const auto take = [](detail::mpmc_ring& r, std::uint64_t& t) {
    const std::byte* payload = nullptr;
    std::uint64_t size = 0;
    return r.try_take(t, payload, size);
  };
  std::uint64_t t = 0;
  send(3);
  REQUIRE(take(a, t) == status::ok);  // a: ticket 0, next guess 1
  CHECK(t == 0);
  a.release(t);
  REQUIRE(take(b, t) == status::ok);  // b's guess 0 was released: turn ahead of it
  CHECK(t == 1);                      // held by b, unreleased: a's guess 1 fails its CAS
  REQUIRE(take(a, t) == status::ok);
  CHECK(t == 2);
  a.release(t);
  b.release(1);
  CHECK(take(a, t) == status::empty);
  CHECK(take(b, t) == status::empty);  // b's guess 2 is stale: it asks the position (3)

  // Many laps later, b's guess is far behind; the slot it names holds a newer message.
  for (int lap = 0; lap < 5; ++lap) {
    send(3);
    for (int i = 0; i < 3; ++i) {
      REQUIRE(take(a, t) == status::ok);
      a.release(t);
    }
  }
  send(1);
  REQUIRE(take(b, t) == status::ok);
  CHECK(t == 18);
  b.release(t);

  // A turn ahead of where the position says it can be: corrupt, with or without a guess.
  m.geometry.slot(19).turn.store(19 + 2);
  CHECK(take(a, t) == status::corrupt);
  CHECK(take(b, t) == status::corrupt);
}

// A lone producer or consumer holds its role's lease and moves the position with a
// plain store; a second one makes it shared (position_lease.hpp). Tickets stay unique
// and in order across the change, and nobody CASes while a holder is half-way.
TEST_CASE("mpmc ring: position leases") {
  mpmc_arena m(8, 64, 2, 1);
  detail::mpmc_ring p0 = m.ring(true, 0);
  detail::mpmc_ring p1 = m.ring(true, 1);
  detail::mpmc_ring consumer = m.ring(false, 0);
  std::atomic<std::uint32_t>& lease = m.control->producer_lease;
  constexpr std::uint32_t shared = 0xFFFF'FFFFu;
  const auto send = [&](detail::mpmc_ring& r) {
    std::uint64_t t = 0;
    const status s = r.try_claim(8, t);
    if (s == status::ok) r.publish(t, 8, false);
    return s == status::ok ? t : detail::no_ticket;
  };
  const auto receive = [&] {
    std::uint64_t t = 0, size = 0;
    const std::byte* payload = nullptr;
    REQUIRE(consumer.try_take(t, payload, size) == status::ok);
    consumer.release(t);
    return t;
  };

  SUBCASE("held by the lone producer and consumer, then shared") {
    CHECK(send(p0) == 0);
    CHECK(send(p0) == 1);
    CHECK(lease.load() == 1);  // producer 0 holds it
    CHECK(receive() == 0);
    CHECK(m.control->consumer_lease.load() == 1);
    CHECK(send(p1) == 2);  // producer 1 takes it away: shared from now on
    CHECK(lease.load() == shared);
    CHECK(send(p0) == 3);  // producer 0 finds out at its confirm and uses the CAS
    CHECK(send(p1) == 4);
    CHECK(lease.load() == shared);
    for (std::uint64_t t = 1; t <= 4; ++t) CHECK(receive() == t);
    CHECK(m.control->enqueue_pos.load() == 5);
  }

  SUBCASE("a holder half-way through a claim holds the other producer back") {
    CHECK(send(p0) == 0);
    // Producer 0 announced ticket 1 and confirmed: only its plain store is left (H4).
    m.record(true, 0).ticket.store(1);
    CHECK(send(p1) == detail::no_ticket);  // would block: settling
    CHECK(lease.load() == (0x8000'0000u | 1u));
    m.control->enqueue_pos.store(2);  // H4: producer 0 owns ticket 1
    m.record(true, 0).ticket.store(detail::no_ticket);
    CHECK(send(p1) == 2);
    CHECK(lease.load() == shared);
    CHECK(send(p0) == 3);
  }

  SUBCASE("a new participant in the holder's slot takes the lease") {
    CHECK(send(p0) == 0);
    detail::mpmc_ring again = m.ring(true, 0);  // as a process attaching in slot 0 would
    CHECK(send(again) == 1);
    CHECK(lease.load() == 1);
  }

  SUBCASE("a lease word no participant can hold reads as shared") {
    lease.store(0x7777u);
    CHECK(send(p0) == 0);
    CHECK(send(p1) == 1);
    CHECK(lease.load() == 0x7777u);
    lease.store(0x8000'0000u);
    detail::mpmc_ring fresh = m.ring(true, 1);
    CHECK(send(fresh) == 2);
  }
}

TEST_CASE("pubsub ring, block: 2 publisher threads, a private reader and a group of 2") {
  constexpr std::uint64_t slots = 16, max = 128, publishers = 2;
  const std::uint64_t count = env_count("SHMQ_TEST_THREAD_MESSAGES", 100'000);
  const std::uint64_t slot_bytes = detail::slot_size_for(max);
  constexpr std::size_t groups = 2, members = 3;
  arena mem(sizeof(detail::pubsub_control) + groups * sizeof(detail::pubsub_group) +
            members * sizeof(detail::pubsub_member) + slots * slot_bytes);
  auto* control = new (mem.base) detail::pubsub_control{};
  auto* group_table = reinterpret_cast<detail::pubsub_group*>(mem.base + sizeof(detail::pubsub_control));
  auto* member_table = reinterpret_cast<detail::pubsub_member*>(group_table + groups);
  for (std::size_t i = 0; i < groups; ++i) {
    new (&group_table[i]) detail::pubsub_group{};
    group_table[i].state.store(static_cast<std::uint32_t>(detail::group_state::active));
  }
  const std::uint32_t member_group[members] = {0, 1, 1};  // group 0 private, group 1 has two
  for (std::size_t i = 0; i < members; ++i) {
    new (&member_table[i]) detail::pubsub_member{};
    member_table[i].position.store(detail::no_position);
    member_table[i].group.store(member_group[i]);
  }
  const detail::slot_geometry g{reinterpret_cast<std::byte*>(member_table + members), slots, slot_bytes, max};
  const detail::pubsub_tables tables{{group_table, groups}, {member_table, members}};
  delivery_counts counts(groups, publishers, count);
  std::atomic<std::uint64_t> received[groups] = {};
  detail::ticket_record records[publishers];
  for (auto& r : records) r.ticket.store(detail::no_ticket);

  std::vector<std::thread> threads;
  for (std::uint64_t p = 0; p < publishers; ++p)
    threads.emplace_back([&, p] {
      detail::pubsub_ring ring(*control, g, tables, true, &records[p]);
      for (std::uint64_t seq = 0; seq < count; ++seq) {
        std::uint64_t ticket = 0;
        status s;
        while ((s = ring.try_claim(64, ticket)) == status::full) std::this_thread::yield();
        REQUIRE(s == status::ok);
        stamped::fill({g.payload(ticket), 64}, (p << id_shift) | seq);
        ring.publish(ticket, 64, false);
      }
    });
  for (std::size_t m = 0; m < members; ++m)
    threads.emplace_back([&, m] {
      detail::pubsub_ring ring(*control, g, tables, true);
      detail::pubsub_member& me = member_table[m];
      detail::pubsub_group& mine = group_table[me.group.load()];
      std::vector<std::uint64_t> next(publishers, 0);
      while (received[me.group.load()].load() < publishers * count) {
        std::uint64_t ticket = 0, size = 0, missed = 0;
        const std::byte* payload = nullptr;
        bool adopted = false;
        const status s = ring.try_take(mine, me, ticket, payload, size, missed, adopted);
        if (s == status::empty) {
          std::this_thread::yield();
          continue;
        }
        REQUIRE(s == status::ok);
        REQUIRE(missed == 0);
        REQUIRE(!adopted);
        counts.count(me.group.load(), check_in_order({payload, size}, next));
        ring.release(me);
        received[me.group.load()].fetch_add(1);
      }
    });
  for (auto& t : threads) t.join();
  CHECK(counts.all_once(0));
  CHECK(counts.all_once(1));
}

}  // TEST_SUITE
}  // namespace shmq::test

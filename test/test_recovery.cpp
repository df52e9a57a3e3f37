// Recovery from participants killed mid-operation, each at a point the test chooses (the
// child kills itself there): a producer holding a loan, a consumer holding a view. The
// fault suite (test_fault.cpp) kills at random moments instead.
//
// What must hold: nobody stalls behind the dead, nothing committed is lost, and a
// message a dead consumer held comes again, flagged and counted as a redelivery.
#include <doctest/doctest.h>

#include <csignal>
#include <cstring>

#include "shmq/mpmc.hpp"
#include "shmq/pubsub.hpp"
#include "shmq/spsc.hpp"
#include "test_support.hpp"

namespace shmq::test {
namespace {

using namespace std::chrono_literals;

template <class Options>
Options quick_liveness() {
  Options o;
  o.liveness_interval = 5ms;
  if constexpr (!std::is_same_v<Options, channel_options>) {
    o.slots = 4;
    o.max_message_size = 64;
  }
  return o;
}

// Takes a loan and dies before committing it.
template <class Producer, class Options>
int die_holding_loan(const std::string& name, const Options& o) {
  Producer p(name, o);
  loan l = p.loan(64);
  if (!l) return 1;
  ::raise(SIGKILL);
  return 2;
}

template <class Consumer>
void expect(Consumer& c, std::uint64_t seq, bool redelivered) {
  view v = c.read_for(10s);
  REQUIRE(v.status() == status::ok);
  CHECK(message_ok(v.data(), seq));
  CHECK(v.redelivered() == redelivered);
}

// A consumer reads message 0 and dies holding it (or just after releasing it): the next
// consumer to attach gets 0 again, flagged (or not at all), then 1 and 2.
template <class Producer, class Consumer, class Options>
void next_consumer_gets_it_again(const char* channel) {
  segment_guard seg(channel);
  const auto o = quick_liveness<Options>();
  Producer p(seg.name(), o);
  for (std::uint64_t seq = 0; seq < 3; ++seq) REQUIRE(p.push(make_message(seq, 64)) == status::ok);
  bool release_first = false;
  SUBCASE("held") {}
  SUBCASE("released: no redelivery") { release_first = true; }
  child_process dying([&](child_process&) {
    Consumer c(seg.name(), o);
    return die_holding_view(c, 0, release_first);
  });
  CHECK(dying.wait() == 128 + SIGKILL);
  Consumer next(seg.name(), o);
  if (!release_first) expect(next, 0, true);
  expect(next, 1, false);
  expect(next, 2, false);
  CHECK(next.redeliveries() == (release_first ? 0u : 1u));
  CHECK(next.try_read().status() == status::empty);
}

}  // namespace

TEST_SUITE("cross_process") {

TEST_CASE("mpmc: a producer killed between loan and commit does not stall consumers") {
  segment_guard seg("recover-mpmc-loan");
  const auto o = quick_liveness<mpmc_options>();
  mpmc_consumer c(seg.name(), o);
  {
    mpmc_producer p(seg.name(), o);
    REQUIRE(p.push(make_message(0, 64)) == status::ok);
  }
  child_process dying([&](child_process&) { return die_holding_loan<mpmc_producer>(seg.name(), o); });
  CHECK(dying.wait() == 128 + SIGKILL);
  mpmc_producer p(seg.name(), o);  // takes the dead one's slot, so skips its ticket at once
  for (std::uint64_t seq = 1; seq < 12; ++seq) {  // laps the 4 slots: none stays stuck
    REQUIRE(p.push_for(make_message(seq, 64), 10s) == status::ok);
    expect(c, seq - 1, false);
  }
  expect(c, 11, false);
  CHECK(c.redeliveries() == 0);
}

TEST_CASE("mpmc: a consumer waiting behind a dead producer's ticket skips it") {
  segment_guard seg("recover-mpmc-skip");
  const auto o = quick_liveness<mpmc_options>();
  mpmc_producer p(seg.name(), o);  // alive throughout: the dead one's slot stays dead
  mpmc_consumer c(seg.name(), o);
  child_process dying([&](child_process&) { return die_holding_loan<mpmc_producer>(seg.name(), o); });
  CHECK(dying.wait() == 128 + SIGKILL);
  REQUIRE(p.push(make_message(0, 64)) == status::ok);  // behind the dead ticket
  expect(c, 0, false);
}

TEST_CASE("mpmc: a message a killed consumer held goes to a waiting consumer, flagged") {
  segment_guard seg("recover-mpmc-view");
  const auto o = quick_liveness<mpmc_options>();
  mpmc_producer p(seg.name(), o);
  mpmc_consumer waiting(seg.name(), o);
  REQUIRE(p.push(make_message(0, 64)) == status::ok);
  child_process dying([&](child_process&) {
    mpmc_consumer c(seg.name(), o);
    return die_holding_view(c, 0, false);
  });
  CHECK(dying.wait() == 128 + SIGKILL);
  expect(waiting, 0, true);
  CHECK(waiting.redeliveries() == 1);
  REQUIRE(p.push(make_message(1, 64)) == status::ok);
  expect(waiting, 1, false);
  for (std::uint64_t seq = 2; seq < 10; ++seq) {  // the slot came back to the producers
    REQUIRE(p.push_for(make_message(seq, 64), 10s) == status::ok);
    expect(waiting, seq, false);
  }
  CHECK(waiting.redeliveries() == 1);
}

TEST_CASE("mpmc: the consumer that attaches next gets what a killed one held") {
  next_consumer_gets_it_again<mpmc_producer, mpmc_consumer, mpmc_options>("recover-mpmc-next");
}

TEST_CASE("pubsub: a publisher killed between loan and commit does not stall subscribers") {
  segment_guard seg("recover-pubsub-loan");
  const auto o = quick_liveness<pubsub_options>();
  publisher p(seg.name(), o);
  subscriber s(seg.name(), o);
  child_process dying([&](child_process&) { return die_holding_loan<publisher>(seg.name(), o); });
  CHECK(dying.wait() == 128 + SIGKILL);
  for (std::uint64_t seq = 0; seq < 12; ++seq) {  // laps the 4 slots, the dead one's too
    REQUIRE(p.push_for(make_message(seq, 64), 10s) == status::ok);
    expect(s, seq, false);
  }
}

TEST_CASE("pubsub: a message a killed group member held goes to its group again") {
  segment_guard seg("recover-pubsub-view");
  const auto o = quick_liveness<pubsub_options>();
  publisher p(seg.name(), o);
  subscription workers;
  workers.group = "workers";
  auto sibling = std::make_unique<subscriber>(seg.name(), o, workers);
  subscriber other_group(seg.name(), o);  // gets everything once, nothing redelivered
  REQUIRE(p.push(make_message(0, 64)) == status::ok);
  SUBCASE("to a member waiting") {}
  SUBCASE("to the next to join") { sibling.reset(); }  // the group stays, idle
  child_process dying([&](child_process&) {
    subscriber member(seg.name(), o, workers);
    return die_holding_view(member, 0, false);
  });
  CHECK(dying.wait() == 128 + SIGKILL);
  if (!sibling) sibling = std::make_unique<subscriber>(seg.name(), o, workers);
  expect(*sibling, 0, true);
  CHECK(sibling->redeliveries() == 1);
  for (std::uint64_t seq = 1; seq < 10; ++seq) {  // the dead member holds nobody back
    REQUIRE(p.push_for(make_message(seq, 64), 10s) == status::ok);
    expect(*sibling, seq, false);
    expect(other_group, seq - 1, false);
  }
  expect(other_group, 9, false);
  CHECK(other_group.redeliveries() == 0);
}

TEST_CASE("spsc: the next consumer gets again what a killed one held, flagged") {
  next_consumer_gets_it_again<spsc_producer, spsc_consumer, channel_options>("recover-spsc-view");
}

}  // TEST_SUITE

TEST_SUITE("unit") {

TEST_CASE("mpmc: a message kept for a larger buffer outlives its consumer") {
  segment_guard seg("recover-mpmc-kept");
  const auto o = quick_liveness<mpmc_options>();
  mpmc_producer p(seg.name(), o);
  REQUIRE(p.push(make_message(0, 64)) == status::ok);
  {
    mpmc_consumer first(seg.name(), o);
    std::byte small[8];
    const pop_result r = first.try_pop(small);
    CHECK(r.status == status::too_large);
    CHECK(r.size == 64);
  }  // closes without reading it
  mpmc_consumer next(seg.name(), o);
  expect(next, 0, true);
}

TEST_CASE("pubsub block: a group left active and empty by a subscriber killed as it joined holds nobody back") {
  segment_guard seg("recover-pubsub-ghost");
  const auto o = quick_liveness<pubsub_options>();
  publisher p(seg.name(), o);
  {  // what join() leaves if killed after activating a new group, before its member is in
    raw_segment raw(seg.name());
    auto& ghost = *reinterpret_cast<detail::pubsub_group*>(raw.bytes() + raw.header().control_offset +
                                                          sizeof(detail::pubsub_control));
    std::memcpy(ghost.name, "ghost", 6);
    ghost.cursor.store(0);
    ghost.state.store(static_cast<std::uint32_t>(detail::group_state::active));
  }
  for (std::uint64_t seq = 0; seq < 12; ++seq)  // 4 slots: without mending, stuck at 4
    REQUIRE(p.push_for(make_message(seq, 64), 10s) == status::ok);
  subscription ghost;
  ghost.group = "ghost";
  subscriber late(seg.name(), o, ghost);  // the group kept its place: lapped, so it says so
  const view v = late.read_for(10s);
  REQUIRE(v.status() == status::ok);
  CHECK(v.missed() == 8);
  CHECK(message_ok(v.data(), 8));
}

TEST_CASE("pubsub: a message kept for a larger buffer goes to the group when its member leaves") {
  segment_guard seg("recover-pubsub-kept");
  const auto o = quick_liveness<pubsub_options>();
  publisher p(seg.name(), o);
  subscription workers;
  workers.group = "workers";
  subscriber stays(seg.name(), o, workers);
  REQUIRE(p.push(make_message(0, 64)) == status::ok);
  {
    subscriber leaves(seg.name(), o, workers);
    std::byte small[8];
    CHECK(leaves.try_pop(small).status == status::too_large);
  }
  std::byte buffer[64];
  const pop_result r = stays.try_pop(buffer);
  REQUIRE(r.status == status::ok);
  CHECK(r.redelivered);
  CHECK(message_ok({buffer, r.size}, 0));
}

}  // TEST_SUITE
}  // namespace shmq::test

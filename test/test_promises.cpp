// The edges of the delivery promises (docs/delivery.md): what is NOT
// at-least-once, shown as it behaves. A pop() copies and releases before it returns; a
// consumer that only polls mends nothing; a private subscription ends with its
// subscriber; under block, a named group whose members are all dead stops gating
// publishers and keeps its place. The at-least-once side (views held until handled,
// redelivered and flagged) is shown in test_recovery.cpp and the fault suite.
#include <doctest/doctest.h>

#include <csignal>

#include "shmq/mpmc.hpp"
#include "shmq/pubsub.hpp"
#include "test_support.hpp"

namespace shmq::test {
namespace {

using namespace std::chrono_literals;

template <class Options>
Options small_channel() {
  Options o;
  o.liveness_interval = 5ms;
  o.slots = 4;
  o.max_message_size = 64;
  return o;
}

template <class Consumer>
void expect_next(Consumer& c, std::uint64_t seq, bool redelivered) {
  view v = c.read_for(10s);
  REQUIRE(v.status() == status::ok);
  CHECK(message_ok(v.data(), seq));
  CHECK(v.redelivered() == redelivered);
}

// A subscriber (`how`) in a forked child reads message 0, which `pub` publishes once it
// has subscribed, and dies holding it.
void subscriber_dies_holding_first(const std::string& name, const pubsub_options& o, publisher& pub,
                                   const subscription& how) {
  child_process dying([&](child_process& self) {
    subscriber s(name, o, how);
    self.notify('s');
    return die_holding_view(s, 0);
  });
  REQUIRE(dying.wait_notice() == 's');
  REQUIRE(pub.push(make_message(0, 64)) == status::ok);
  CHECK(dying.wait() == 128 + SIGKILL);
}

}  // namespace

TEST_SUITE("cross_process") {

TEST_CASE("promises: a message pop() returned is the caller's; if it dies then, it is lost") {
  segment_guard seg("promise-pop");
  const auto o = small_channel<mpmc_options>();
  mpmc_producer p(seg.name(), o);
  for (std::uint64_t seq = 0; seq < 2; ++seq) REQUIRE(p.push(make_message(seq, 64)) == status::ok);
  child_process dying([&](child_process&) {
    mpmc_consumer c(seg.name(), o);
    std::vector<std::byte> buffer(64);
    const pop_result r = c.pop_for(buffer, 10s);
    if (r.status != status::ok || !message_ok(buffer, 0)) return 1;
    ::raise(SIGKILL);  // message 0 was released inside pop()
    return 2;
  });
  CHECK(dying.wait() == 128 + SIGKILL);
  mpmc_consumer next(seg.name(), o);
  expect_next(next, 1, false);  // 0 is not delivered again
  CHECK(next.read_for(20ms).status() == status::timed_out);
  CHECK(next.redeliveries() == 0);
}

TEST_CASE("promises: a consumer that only polls mends nothing; once it waits, it takes the dead one's message") {
  segment_guard seg("promise-poll");
  const auto o = small_channel<mpmc_options>();
  mpmc_producer p(seg.name(), o);
  mpmc_consumer polling(seg.name(), o);  // attached before the death: attaching mends too
  REQUIRE(p.push(make_message(0, 64)) == status::ok);
  child_process dying([&](child_process&) {
    mpmc_consumer c(seg.name(), o);
    return die_holding_view(c, 0);
  });
  CHECK(dying.wait() == 128 + SIGKILL);
  for (int i = 0; i < 1000; ++i) REQUIRE(polling.try_read().status() == status::empty);
  expect_next(polling, 0, true);  // its first wait runs recovery
  CHECK(polling.redeliveries() == 1);
}

TEST_CASE("promises: a private subscription ends with its subscriber") {
  segment_guard seg("promise-private");
  const auto o = small_channel<pubsub_options>();
  publisher pub(seg.name(), o);
  subscriber_dies_holding_first(seg.name(), o, pub, {});
  // Message 0 had nobody else to go to; a new private subscriber starts at the newest.
  subscriber next(seg.name(), o);
  for (std::uint64_t seq = 1; seq < 10; ++seq) {  // laps the ring: the dead one gates nothing
    REQUIRE(pub.push_for(make_message(seq, 64), 10s) == status::ok);
    expect_next(next, seq, false);
  }
  CHECK(next.redeliveries() == 0);
}

TEST_CASE("promises: block, a named group whose members are all dead keeps its place but gates nobody") {
  segment_guard seg("promise-dead-group");
  const auto o = small_channel<pubsub_options>();
  publisher pub(seg.name(), o);
  subscriber_dies_holding_first(seg.name(), o, pub, {.group = "g"});

  SUBCASE("nothing published since: a new member gets the dead one's message, flagged") {
    REQUIRE(pub.push(make_message(1, 64)) == status::ok);
    subscriber member(seg.name(), o, {.group = "g"});
    expect_next(member, 0, true);
    expect_next(member, 1, false);
  }
  SUBCASE("publishers go on; what they overwrote reaches a new member as missed()") {
    constexpr std::uint64_t published = 10;  // 4 slots: messages 0-5 are overwritten
    for (std::uint64_t seq = 1; seq < published; ++seq)
      REQUIRE(pub.push_for(make_message(seq, 64), 10s) == status::ok);
    subscriber member(seg.name(), o, {.group = "g"});
    std::uint64_t received = 0, missed = 0;
    for (std::uint64_t seq = published - o.slots; seq < published; ++seq) {
      view v = member.read_for(10s);
      REQUIRE(v.status() == status::ok);
      CHECK(message_ok(v.data(), seq));
      missed += v.missed();
      ++received;
    }
    CHECK(member.try_read().status() == status::empty);
    CHECK(missed + received == published);  // each message delivered or counted missed
    CHECK(member.missed_total() == missed);
  }
}

}  // TEST_SUITE
}  // namespace shmq::test

// Waits longer than liveness_interval, on every endpoint kind: a consumer waiting on an
// idle channel, a producer blocked on back-pressure, a subscriber (private and in a
// group) and a publisher gated by a group. A sleeper checks every liveness_interval who
// died; none of those checks may take a live participant, the waiter itself included,
// for dead. After the wait the peer sends more messages than the ring holds, so under
// back-pressure nothing can be lost without showing: every message is stamped
// (sequence number + checksum) and read in order, and `missed` stays 0.
#include <doctest/doctest.h>

#include <chrono>
#include <string>

#include "shmq/mpmc.hpp"
#include "shmq/pubsub.hpp"
#include "test_support.hpp"

namespace shmq::test {
namespace {

using namespace std::chrono_literals;

constexpr std::uint64_t quiet_messages = 1000;  // many laps of the 64-slot rings below
constexpr std::size_t quiet_size = 48;
constexpr auto liveness = 10ms;
constexpr auto long_wait = 20 * liveness;  // the waits under test: many liveness checks

template <class Options>
Options quiet_options() {
  Options o;
  o.liveness_interval = liveness;
  o.spin = 0us;  // sleep on the futex at once: the wait is all liveness checks
  return o;
}

channel_options spsc_quiet() {
  auto o = quiet_options<channel_options>();
  o.capacity = 4096;
  o.max_message_size = 256;
  return o;
}
mpmc_options mpmc_quiet() {
  auto o = quiet_options<mpmc_options>();
  o.slots = 64;
  o.max_message_size = 64;
  return o;
}
pubsub_options pubsub_quiet() {
  auto o = quiet_options<pubsub_options>();
  o.slots = 64;
  o.max_message_size = 64;
  o.policy = overflow_policy::block;
  return o;
}

// Reads messages from..to-1 in order, each intact and with nothing missed; 0, or what
// went wrong as an exit code for a forked reader.
template <class Consumer>
int read_in_order(Consumer& c, std::uint64_t from, std::uint64_t to) {
  for (std::uint64_t seq = from; seq < to; ++seq) {
    view v = c.read_for(10s);
    if (v.status() != status::ok) return 10;
    if (v.missed() != 0) return 11;
    if (!message_ok(v.data(), seq)) return 12;
  }
  return 0;
}

template <class Producer>
int send_range(Producer& p, std::uint64_t from, std::uint64_t to) {
  for (std::uint64_t seq = from; seq < to; ++seq)
    if (p.push_for(make_message(seq, quiet_size), 10s) != status::ok) return 20;
  return 0;
}

// Every participant attached now is alive; `role` among them.
bool all_alive_with(const std::string& name, const std::string& role) {
  bool found = false;
  for (const participant& p : inspect_segment(name).participants) {
    if (!p.alive) return false;
    found |= p.role == role;
  }
  return found;
}

// The consumer (made by `attach`, in this process) waits long_wait on an idle channel,
// is still listed as alive, then reads everything a producer in another process sends.
template <class Producer, class Options, class Attach>
void consumer_waits(const std::string& name, const Options& o, const std::string& role, Attach&& attach) {
  auto consumer = attach();
  REQUIRE(all_alive_with(name, role));
  CHECK(consumer.read_for(long_wait).status() == status::timed_out);
  CHECK(all_alive_with(name, role));  // its own liveness checks did not retire it
  child_process producer([&](child_process&) {
    Producer p(name, o);
    return send_range(p, 0, quiet_messages);
  });
  CHECK(read_in_order(consumer, 0, quiet_messages) == 0);
  CHECK(producer.wait() == 0);
  CHECK(all_alive_with(name, role));
}

// The producer (in this process) fills the ring, waits long_wait on back-pressure from
// a consumer in another process that holds back, then sends the rest while it reads.
template <class Producer, class Options, class Attach>
void producer_waits(const std::string& name, const Options& o, const std::string& role, Attach&& attach) {
  peer_pipe go;
  child_process consumer([&](child_process& self) {
    go.keep_read();
    auto c = attach();
    self.notify('a');
    char word = 0;
    if (!go.receive(word)) return 30;
    return read_in_order(c, 0, quiet_messages);
  });
  go.keep_write();
  REQUIRE(consumer.wait_notice() == 'a');
  Producer p(name, o);
  std::uint64_t seq = 0;
  while (p.try_push(make_message(seq, quiet_size)) == status::ok) ++seq;
  CHECK(seq > 0);
  CHECK(seq < quiet_messages);
  CHECK(p.push_for(make_message(seq, quiet_size), long_wait) == status::timed_out);
  CHECK(all_alive_with(name, role));  // the producer's checks took nobody for dead
  REQUIRE(go.send('r'));
  CHECK(send_range(p, seq, quiet_messages) == 0);
  CHECK(consumer.wait() == 0);
}

}  // namespace

TEST_SUITE("cross_process") {

TEST_CASE("waits longer than liveness_interval: a consumer on an idle channel") {
  SUBCASE("spsc consumer") {
    segment_guard seg("quiet-spsc");
    const auto o = spsc_quiet();
    consumer_waits<spsc_producer>(seg.name(), o, "consumer", [&] { return spsc_consumer(seg.name(), o); });
  }
  SUBCASE("mpmc consumer") {
    segment_guard seg("quiet-mpmc");
    const auto o = mpmc_quiet();
    consumer_waits<mpmc_producer>(seg.name(), o, "consumer", [&] { return mpmc_consumer(seg.name(), o); });
  }
  SUBCASE("private subscriber") {
    segment_guard seg("quiet-private");
    const auto o = pubsub_quiet();
    consumer_waits<publisher>(seg.name(), o, "subscriber", [&] { return subscriber(seg.name(), o); });
  }
  SUBCASE("subscriber in a named group") {
    segment_guard seg("quiet-group");
    const auto o = pubsub_quiet();
    consumer_waits<publisher>(seg.name(), o, "subscriber",
                              [&] { return subscriber(seg.name(), o, {.group = "workers"}); });
  }
  SUBCASE("two subscribers of one group, in one process, both waiting") {
    segment_guard seg("quiet-group-two");
    const auto o = pubsub_quiet();
    subscriber first(seg.name(), o, {.group = "workers"});
    subscriber second(seg.name(), o, {.group = "workers"});
    CHECK(first.read_for(long_wait).status() == status::timed_out);
    CHECK(second.read_for(long_wait).status() == status::timed_out);
    REQUIRE(inspect_segment(seg.name()).participants.size() == 2);
    CHECK(all_alive_with(seg.name(), "subscriber"));
    child_process producer([&](child_process&) {
      publisher p(seg.name(), o);
      return send_range(p, 0, quiet_messages);
    });
    // The group shares the stream: the two together get every message once, in order.
    std::uint64_t seq = 0;
    while (seq < quiet_messages) {
      subscriber& s = seq % 2 == 0 ? first : second;
      view v = s.read_for(10s);
      REQUIRE(v.status() == status::ok);
      CHECK(v.missed() == 0);
      CHECK(message_ok(v.data(), seq));
      ++seq;
    }
    CHECK(producer.wait() == 0);
  }
}

TEST_CASE("waits longer than liveness_interval: a producer blocked on back-pressure") {
  SUBCASE("spsc producer") {
    segment_guard seg("quiet-spsc-full");
    const auto o = spsc_quiet();
    producer_waits<spsc_producer>(seg.name(), o, "consumer", [&] { return spsc_consumer(seg.name(), o); });
  }
  SUBCASE("mpmc producer") {
    segment_guard seg("quiet-mpmc-full");
    const auto o = mpmc_quiet();
    producer_waits<mpmc_producer>(seg.name(), o, "consumer", [&] { return mpmc_consumer(seg.name(), o); });
  }
  SUBCASE("publisher gated by a private subscription") {
    segment_guard seg("quiet-pubsub-full");
    const auto o = pubsub_quiet();
    producer_waits<publisher>(seg.name(), o, "subscriber", [&] { return subscriber(seg.name(), o); });
  }
  SUBCASE("publisher gated by a named group") {
    segment_guard seg("quiet-group-full");
    const auto o = pubsub_quiet();
    producer_waits<publisher>(seg.name(), o, "subscriber", [&] { return subscriber(seg.name(), o, {.group = "slow"}); });
  }
}

}  // TEST_SUITE
}  // namespace shmq::test

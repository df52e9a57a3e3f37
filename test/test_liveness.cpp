// Participants that die: a producer killed (SIGKILL, at a point the test chooses) is
// seen as dead through its file lock, consumers that asked for it get producer_gone
// once they have read everything it committed, and a new producer can take its place.
#include <doctest/doctest.h>

#include <algorithm>
#include <csignal>

#include "shmq/mpmc.hpp"
#include "shmq/pubsub.hpp"
#include "test_support.hpp"

namespace shmq::test {
namespace {

using namespace std::chrono_literals;

// Sends messages 0..count-1, then dies without closing or detaching.
template <class Producer, class Options>
int send_then_die(const std::string& name, const Options& o, std::uint64_t count) {
  Producer p(name, o);
  for (std::uint64_t seq = 0; seq < count; ++seq)
    if (p.push(make_message(seq, 64)) != status::ok) return 1;
  ::raise(SIGKILL);
  return 2;
}

template <class Consumer>
void expect_messages(Consumer& c, std::uint64_t from, std::uint64_t to) {
  for (std::uint64_t seq = from; seq < to; ++seq) {
    view v = c.read_for(10s);
    REQUIRE(v.status() == status::ok);
    CHECK(message_ok(v.data(), seq));
  }
}

template <class Options>
Options reporting() {
  Options o;
  o.when_producer_gone = when_producer_gone::report;
  o.liveness_interval = 10ms;
  return o;
}

}  // namespace

TEST_SUITE("cross_process") {

TEST_CASE("spsc: a killed producer is reported after its messages, and can be replaced") {
  segment_guard seg("gone-spsc");
  auto o = reporting<channel_options>();
  auto c = std::make_unique<spsc_consumer>(seg.name(), o);
  child_process producer([&](child_process&) { return send_then_die<spsc_producer>(seg.name(), o, 5); });
  CHECK(producer.wait() == 128 + SIGKILL);
  expect_messages(*c, 0, 5);  // everything committed is still delivered
  CHECK(c->read().status() == status::producer_gone);
  CHECK(c->read_for(1s).status() == status::producer_gone);
  CHECK(c->try_read().status() == status::empty);  // try_ forms make no liveness syscall

  SUBCASE("a new producer takes the dead one's place and the stream goes on") {
    spsc_producer p(seg.name(), o);
    REQUIRE(p.push(make_message(5, 64)) == status::ok);
    expect_messages(*c, 5, 6);
  }
  SUBCASE("when_producer_gone::wait keeps waiting instead") {
    c.reset();
    auto w = o;
    w.when_producer_gone = when_producer_gone::wait;
    spsc_consumer patient(seg.name(), w);
    CHECK(patient.read_for(50ms).status() == status::timed_out);
  }
}

TEST_CASE("spsc: a producer that detaches cleanly is not reported as gone") {
  segment_guard seg("left-spsc");
  auto o = reporting<channel_options>();
  spsc_consumer c(seg.name(), o);
  { spsc_producer p(seg.name(), o); }
  CHECK(c.read_for(50ms).status() == status::timed_out);
}

TEST_CASE("mpmc: producer_gone only when every producer died") {
  segment_guard seg("gone-mpmc");
  auto o = reporting<mpmc_options>();
  o.slots = 16;
  o.max_message_size = 64;
  mpmc_consumer c(seg.name(), o);
  auto alive = std::make_unique<mpmc_producer>(seg.name(), o);  // slot 0, stays alive
  child_process dying([&](child_process&) { return send_then_die<mpmc_producer>(seg.name(), o, 3); });
  CHECK(dying.wait() == 128 + SIGKILL);
  expect_messages(c, 0, 3);
  CHECK(c.read_for(50ms).status() == status::timed_out);  // one producer is still alive
  alive.reset();  // leaves cleanly; the other one died
  CHECK(c.read().status() == status::producer_gone);
  // A new producer takes the dead one's slot: the channel is no longer abandoned.
  mpmc_producer next(seg.name(), o);
  CHECK(c.read_for(50ms).status() == status::timed_out);
}

TEST_CASE("pubsub: a subscriber learns its publisher died") {
  segment_guard seg("gone-pubsub");
  auto o = reporting<pubsub_options>();
  o.slots = 16;
  o.max_message_size = 64;
  subscriber s(seg.name(), o);
  child_process publisher_process([&](child_process&) { return send_then_die<publisher>(seg.name(), o, 4); });
  CHECK(publisher_process.wait() == 128 + SIGKILL);
  expect_messages(s, 0, 4);
  CHECK(s.read().status() == status::producer_gone);
}

TEST_CASE("pubsub block: a subscriber killed while the publisher waits stops holding it back") {
  segment_guard seg("dead-subscriber");
  pubsub_options o;
  o.slots = 4;
  o.max_message_size = 64;
  o.liveness_interval = 10ms;
  publisher pub(seg.name(), o);
  subscriber live(seg.name(), o);
  peer_pipe go;
  child_process reader([&](child_process& self) {
    go.keep_read();
    subscriber never_reads(seg.name(), o);
    self.notify('s');
    char c = 0;  // wait for the parent's word, then die holding everything back
    go.receive(c);
    ::raise(SIGKILL);
    return 1;
  });
  go.keep_write();
  REQUIRE(reader.wait_notice() == 's');
  for (std::uint64_t seq = 0; seq < 4; ++seq) {
    REQUIRE(pub.try_push(make_message(seq, 32)) == status::ok);
    expect_messages(live, seq, seq + 1);
  }
  CHECK(pub.try_push(make_message(4, 32)) == status::full);  // the other subscriber read nothing
  REQUIRE(go.send('k'));
  CHECK(reader.wait() == 128 + SIGKILL);
  // Waiting, the publisher finds the dead subscriber within liveness_interval and goes on.
  CHECK(pub.push_for(make_message(4, 32), 10s) == status::ok);
  expect_messages(live, 4, 5);
  CHECK(inspect_segment(seg.name()).participants.size() == 2);  // the dead one is gone
}

TEST_CASE("stale segments: listed with their dead participants, and removed") {
  segment_guard dead_one("stale-dead"), live_one("stale-live"), idle_one("stale-idle");
  channel_options o;
  child_process dying([&](child_process&) { return send_then_die<spsc_producer>(dead_one.name(), o, 2); });
  CHECK(dying.wait() == 128 + SIGKILL);
  spsc_producer live(live_one.name(), o);
  { spsc_consumer left(idle_one.name(), o); }  // detached cleanly: idle, not stale

  const segment_info dead = inspect_segment(dead_one.name());
  CHECK(dead.kind == "spsc");
  CHECK(dead.stale);
  REQUIRE(dead.participants.size() == 1);
  CHECK(dead.participants[0].role == "producer");
  CHECK_FALSE(dead.participants[0].alive);

  const segment_info alive = inspect_segment(live_one.name());
  CHECK_FALSE(alive.stale);
  REQUIRE(alive.participants.size() == 1);
  CHECK(alive.participants[0].alive);
  CHECK(alive.participants[0].pid == static_cast<std::uint32_t>(::getpid()));
  CHECK_FALSE(inspect_segment(idle_one.name()).stale);

  bool listed = false;
  for (const segment_info& s : list_segments()) listed |= s.name == dead_one.name() && s.stale;
  CHECK(listed);

  const auto removed = remove_stale_segments();
  CHECK(std::find(removed.begin(), removed.end(), dead_one.name()) != removed.end());
  CHECK_FALSE(segment_exists(dead_one.name()));
  CHECK(segment_exists(live_one.name()));
  CHECK(segment_exists(idle_one.name()));
}

TEST_CASE("open_or_create over a stale segment: recover keeps its messages, replace starts afresh") {
  segment_guard seg("stale-reopen");
  channel_options o;
  child_process dying([&](child_process&) { return send_then_die<spsc_producer>(seg.name(), o, 3); });
  CHECK(dying.wait() == 128 + SIGKILL);
  REQUIRE(inspect_segment(seg.name()).stale);

  SUBCASE("recover (the default)") {
    spsc_consumer c(seg.name(), o);
    expect_messages(c, 0, 3);
  }
  SUBCASE("replace") {
    o.if_stale = stale_segment::replace;
    spsc_consumer c(seg.name(), o);
    CHECK(c.try_read().status() == status::empty);
    CHECK_FALSE(inspect_segment(seg.name()).stale);
  }
}

TEST_CASE("inspect: not a shmq segment is a problem, not a crash") {
  segment_guard seg("inspect-foreign");
  const std::vector<std::byte> junk(4096, std::byte{0x5a});
  write_shm_object(seg.name(), junk);
  const segment_info info = inspect_segment(seg.name());
  CHECK(info.kind.empty());
  CHECK_FALSE(info.stale);
  CHECK(contains(info.problem, "not a shmq segment"));
}

}  // TEST_SUITE
}  // namespace shmq::test

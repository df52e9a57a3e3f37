// Producer and consumer in different processes, forked from the test. Each message is
// stamped and its size is a function of its sequence number, so the consumer catches
// loss, duplication, reordering, truncation and torn reads on its own; it reports
// through its exit status, which the test checks.
//
// Back-pressure and starvation are made certain, not likely, with two pipes between the
// peers (no sleeping, no timing):
//   hold:  the consumer keeps a view of message H and waits for the producer to say it
//          found the ring full after sending H, then checks H is still intact;
//   pause: the producer stops after message P and waits for the consumer to say it
//          found the ring empty after reading P.
// Both then go on with the blocking forms, which must wake each other.
#include <optional>
#include <string>

#include "test_support.hpp"

namespace {

using namespace std::chrono_literals;
using shmq::channel_options;
using shmq::spsc_consumer;
using shmq::spsc_producer;
using shmq::status;
using shmq::test::child_process;
using shmq::test::env_count;
using shmq::test::fill_message;
using shmq::test::make_message;
using shmq::test::peer_pipe;
using shmq::test::segment_guard;
using shmq::test::stream_message_size;

enum class form { in_place, copy, mixed };

// Deliberate mistakes of the producer at message `fault_at`, to show the consumer's
// checks catch each kind of damage they exist for.
enum class fault { none, skip, duplicate, swap, flip_byte, short_commit };

struct stream_plan {
  std::string name;
  channel_options options;
  std::uint64_t count = 0;
  std::uint64_t salt = 0;
  std::size_t typical_max = 1024;  // sizes 16..typical_max, rarely up to the maximum
  form write = form::in_place;
  form read = form::in_place;
  bool consumer_first = true;
  // 0: no handshakes. Otherwise hold at k * stride + stride / 4 and pause at
  // k * stride + 3 * stride / 4. The gap must be larger than a ring full of the
  // smallest messages, so a hold always ends in a full ring before the next pause.
  std::uint64_t stride = 0;
  fault injected = fault::none;
  std::uint64_t fault_at = 0;

  // A hold needs enough messages after it to fill the ring; a pause needs one after it.
  bool is_hold(std::uint64_t seq) const noexcept {
    return stride != 0 && seq % stride == stride / 4 && seq + stride / 2 < count;
  }
  bool is_pause(std::uint64_t seq) const noexcept {
    return stride != 0 && seq % stride == 3 * stride / 4 && seq + 1 < count;
  }
  std::uint64_t holds() const noexcept {
    std::uint64_t n = 0;
    for (std::uint64_t h = stride / 4; stride != 0 && h < count; h += stride) n += is_hold(h);
    return n;
  }
  std::uint64_t pauses() const noexcept {
    std::uint64_t n = 0;
    for (std::uint64_t p = 3 * stride / 4; stride != 0 && p < count; p += stride) n += is_pause(p);
    return n;
  }
  std::size_t size_of(std::uint64_t seq) const noexcept {
    const std::size_t max = options.max_message_size;
    return stream_message_size(salt, seq, 16, typical_max < max ? typical_max : max, max);
  }
};

// Exit codes of the peers.
enum exit_code : int {
  ok = 0,
  send_failed = 2,
  receive_failed = 3,
  bad_message = 4,
  wrong_size = 5,
  wrong_count = 6,
  peer_gone = 7,
  held_view_overwritten = 8,
  no_back_pressure = 9,
};

const char* describe(int rc) {
  switch (rc) {
    case ok: return "ok";
    case send_failed: return "a send failed";
    case receive_failed: return "a receive failed";
    case bad_message: return "a lost, duplicated, reordered or torn message";
    case wrong_size: return "a message of the wrong size";
    case wrong_count: return "closed after the wrong number of messages";
    case peer_gone: return "the peer went away in a handshake";
    case held_view_overwritten: return "a held view was overwritten";
    case no_back_pressure: return "the expected full/empty rings were not seen";
    case 122: return "an exception (see stderr)";
    default: return rc > 128 ? "killed by a signal" : "unexpected exit code";
  }
}

int report(int rc, const char* who, std::uint64_t seq, const std::string& detail) {
  std::fprintf(stderr, "%s (pid %d): %s at message %llu: %s\n", who, static_cast<int>(::getpid()),
               describe(rc), static_cast<unsigned long long>(seq), detail.c_str());
  return rc;
}

status try_send(spsc_producer& p, std::uint64_t seq, std::size_t size, bool in_place,
                std::vector<std::byte>& scratch) {
  if (in_place) {
    shmq::loan l = p.try_loan(size);
    if (!l) return l.status();
    fill_message(l.data(), seq);
    l.commit();
    return status::ok;
  }
  scratch.resize(size);
  fill_message(scratch, seq);
  return p.try_push(scratch);
}

status blocking_send(spsc_producer& p, std::uint64_t seq, std::size_t size, bool in_place,
                     std::vector<std::byte>& scratch) {
  if (in_place) {
    shmq::loan l = p.loan(size);
    if (!l) return l.status();
    fill_message(l.data(), seq);
    l.commit();
    return status::ok;
  }
  scratch.resize(size);
  fill_message(scratch, seq);  // already filled by try_send; cheap enough to redo
  return p.push(scratch);
}

int run_producer(const stream_plan& plan, child_process& self, const peer_pipe& full_pipe,
                 const peer_pipe& empty_pipe) {
  spsc_producer p(plan.name, plan.options);
  bool filling = !plan.consumer_first;  // producer first: fill the ring before the consumer starts
  if (plan.consumer_first) self.notify('R');
  bool hold_pending = false;  // the consumer holds a message and waits for a full ring
  std::uint64_t fulls = 0;
  std::vector<std::byte> scratch;
  for (std::uint64_t i = 0; i < plan.count; ++i) {
    std::uint64_t seq = i;
    if (plan.injected != fault::none && i == plan.fault_at) {
      if (plan.injected == fault::skip) continue;
      if (plan.injected == fault::swap) seq = i + 1;
      if (plan.injected == fault::flip_byte || plan.injected == fault::short_commit) {
        shmq::loan l = p.loan(plan.size_of(i));
        if (!l) return report(send_failed, "producer", i, shmq::to_string(l.status()));
        fill_message(l.data(), i);
        if (plan.injected == fault::flip_byte) l.data()[l.size() - 1] ^= std::byte{0x20};
        l.commit(plan.injected == fault::short_commit ? l.size() - 1 : l.size());
        continue;
      }
    }
    if (plan.injected == fault::swap && i == plan.fault_at + 1) seq = plan.fault_at;
    if (plan.injected == fault::duplicate && i == plan.fault_at + 1) seq = plan.fault_at;
    const std::size_t size = plan.size_of(seq);
    const bool in_place = plan.write == form::in_place || (plan.write == form::mixed && seq % 2 == 0);
    status s = try_send(p, seq, size, in_place, scratch);
    if (s == status::full) {
      ++fulls;
      if (filling) {
        filling = false;
        self.notify('R');
      }
      if (hold_pending) {
        if (!full_pipe.send('F')) return report(peer_gone, "producer", i, "full pipe");
        hold_pending = false;
      }
      s = blocking_send(p, seq, size, in_place, scratch);
    }
    if (s != status::ok) return report(send_failed, "producer", i, shmq::to_string(s));
    if (plan.is_hold(i)) hold_pending = true;
    if (plan.is_pause(i)) {
      char c;
      if (!empty_pipe.receive(c)) return report(peer_gone, "producer", i, "empty pipe");
    }
  }
  if (filling) self.notify('R');  // everything fitted without filling the ring
  p.close();
  if (hold_pending) return report(no_back_pressure, "producer", plan.count, "a hold never saw a full ring");
  if (fulls < plan.holds())
    return report(no_back_pressure, "producer", plan.count,
                  std::to_string(fulls) + " full rings, expected " + std::to_string(plan.holds()));
  return ok;
}

int check_message(const stream_plan& plan, std::span<const std::byte> m, std::uint64_t seq) {
  std::uint64_t got = 0;
  const auto verdict = shmq::stamped::check(m, got);
  if (verdict == shmq::stamped::verdict::too_short)
    return report(wrong_size, "consumer", seq, std::to_string(m.size()) + " bytes: too short for a stamp");
  if (verdict != shmq::stamped::verdict::ok)
    return report(bad_message, "consumer", seq, "checksum mismatch: torn or corrupt");
  if (got != seq)
    return report(bad_message, "consumer", seq,
                  (got < seq ? "duplicate or reordered: got " : "lost messages: got ") +
                      std::to_string(got));
  if (m.size() != plan.size_of(seq))
    return report(wrong_size, "consumer", seq,
                  std::to_string(m.size()) + " bytes, expected " + std::to_string(plan.size_of(seq)));
  return ok;
}

int run_consumer(const stream_plan& plan, child_process& self, const peer_pipe& full_pipe,
                 const peer_pipe& empty_pipe) {
  spsc_consumer c(plan.name, plan.options);
  std::vector<std::byte> buffer(c.max_message_size());
  std::uint64_t empties = 0;
  if (plan.consumer_first) {
    // Nobody has sent anything yet: the first look must find the ring empty.
    shmq::view v = c.try_read();
    if (v.status() != status::empty)
      return report(receive_failed, "consumer", 0, std::string("first look: ") + shmq::to_string(v.status()));
    ++empties;
    self.notify('R');
  }
  bool pause_pending = false;  // the producer stopped and waits for an empty ring
  std::uint64_t seq = 0;
  auto on_empty = [&]() -> bool {
    ++empties;
    if (!pause_pending) return true;
    pause_pending = false;
    return empty_pipe.send('E');
  };
  for (;; ++seq) {
    const bool hold = plan.is_hold(seq);
    const bool in_place = hold || plan.read == form::in_place || (plan.read == form::mixed && seq % 2 == 1);
    if (in_place) {
      shmq::view v = c.try_read();
      if (v.status() == status::empty) {
        if (!on_empty()) return report(peer_gone, "consumer", seq, "empty pipe");
        v = c.read();
      }
      if (v.status() == status::closed) break;
      if (!v) return report(receive_failed, "consumer", seq, shmq::to_string(v.status()));
      if (int rc = check_message(plan, v.data(), seq); rc != ok) return rc;
      if (hold) {
        // Keep the view while the producer fills every byte it may use.
        char ch;
        if (!full_pipe.receive(ch)) return report(peer_gone, "consumer", seq, "full pipe");
        if (int rc = check_message(plan, v.data(), seq); rc != ok)
          return report(held_view_overwritten, "consumer", seq, "after the producer found the ring full");
      }
    } else {
      auto r = c.try_pop(buffer);
      if (r.status == status::empty) {
        if (!on_empty()) return report(peer_gone, "consumer", seq, "empty pipe");
        r = c.pop(buffer);
      }
      if (r.status == status::closed) break;
      if (r.status != status::ok) return report(receive_failed, "consumer", seq, shmq::to_string(r.status));
      if (int rc = check_message(plan, {buffer.data(), r.size}, seq); rc != ok) return rc;
    }
    if (plan.is_pause(seq)) pause_pending = true;
  }
  if (seq != plan.count)
    return report(wrong_count, "consumer", seq, "expected " + std::to_string(plan.count));
  const std::uint64_t expected = plan.pauses() + (plan.consumer_first ? 1 : 0);
  if (pause_pending || empties < expected)
    return report(no_back_pressure, "consumer", seq,
                  std::to_string(empties) + " empty rings, expected " + std::to_string(expected));
  return ok;
}

// Forks the two peers in the plan's order: the second starts only once the first has
// attached (and, producer first, filled the ring), then waits for both.
std::pair<int, int> run_stream_peers(const stream_plan& plan) {
  peer_pipe full_pipe;   // producer -> consumer: "found the ring full after the hold"
  peer_pipe empty_pipe;  // consumer -> producer: "found the ring empty after the pause"
  auto producer_body = [&](child_process& self) {
    full_pipe.keep_write();
    empty_pipe.keep_read();
    return run_producer(plan, self, full_pipe, empty_pipe);
  };
  auto consumer_body = [&](child_process& self) {
    full_pipe.keep_read();
    empty_pipe.keep_write();
    return run_consumer(plan, self, full_pipe, empty_pipe);
  };
  std::optional<child_process> producer;
  std::optional<child_process> consumer;
  if (plan.consumer_first) {
    consumer.emplace(consumer_body);
    REQUIRE_MESSAGE(consumer->wait_notice() == 'R', "consumer failed to attach");
    producer.emplace(producer_body);
  } else {
    producer.emplace(producer_body);
    REQUIRE_MESSAGE(producer->wait_notice() == 'R', "producer failed to attach and fill");
    consumer.emplace(consumer_body);
  }
  // Only the peers hold the pipes now, so a peer that dies gives the other end-of-file.
  full_pipe.close_all();
  empty_pipe.close_all();
  return child_process::wait_both(*producer, *consumer);
}

void run_stream(const stream_plan& plan) {
  // Plain variables, not a structured binding: doctest's INFO captures them in a lambda.
  const std::pair<int, int> rcs = run_stream_peers(plan);
  const int producer_rc = rcs.first;
  const int consumer_rc = rcs.second;
  INFO("producer: " << describe(producer_rc) << " (" << producer_rc << "), consumer: "
                    << describe(consumer_rc) << " (" << consumer_rc << ")");
  CHECK(producer_rc == 0);
  CHECK(consumer_rc == 0);
}

std::uint64_t stream_messages() { return env_count("SHMQ_TEST_MESSAGES", 10'000'000); }

}  // namespace

TEST_SUITE_BEGIN("cross_process");

TEST_CASE("stream_consumer_first_in_place") {
  // The long run: SHMQ_TEST_MESSAGES (10 million by default) stamped messages of 16 to
  // 1024 bytes, now and then up to the 64 KiB maximum, loaned and read in place.
  segment_guard seg("stream_big");
  stream_plan plan;
  plan.name = seg.name();
  plan.count = stream_messages();
  plan.salt = 1;
  plan.write = form::in_place;
  plan.read = form::in_place;
  plan.consumer_first = true;
  plan.stride = 2'000'000;
  MESSAGE("streaming " << plan.count << " messages");
  run_stream(plan);
}

TEST_CASE("stream_producer_first_copies") {
  segment_guard seg("stream_copy");
  stream_plan plan;
  plan.name = seg.name();
  plan.options.capacity = 1u << 16;
  plan.options.max_message_size = 16u << 10;
  plan.count = stream_messages() / 10 + 1;
  plan.salt = 2;
  plan.write = form::copy;
  plan.read = form::copy;
  plan.consumer_first = false;
  plan.stride = 100'000;
  run_stream(plan);
}

TEST_CASE("stream_small_ring_back_pressure") {
  // 4 KiB ring, messages up to its 2040-byte maximum: the producer is stopped by a full
  // ring all the time. spin 0 puts every wait on the futex.
  segment_guard seg("stream_small");
  stream_plan plan;
  plan.name = seg.name();
  plan.options.capacity = 4096;
  plan.options.max_message_size = 2040;
  plan.options.spin = 0ns;
  plan.count = stream_messages() / 50 + 1;
  plan.typical_max = 2040;
  plan.salt = 3;
  plan.write = form::mixed;
  plan.read = form::mixed;
  plan.stride = 4096;
  SUBCASE("consumer first") { plan.consumer_first = true; }
  SUBCASE("producer first") { plan.consumer_first = false; }
  SUBCASE("peers forked from a process that attached before") {
    // Per-process set-up done at attach (such as registering for membarrier) is then
    // inherited through fork() rather than done by the peers themselves.
    segment_guard other("stream_small_parent");
    spsc_consumer parent_endpoint(other.name(), plan.options);
    plan.consumer_first = true;
    run_stream(plan);
    return;
  }
  run_stream(plan);
}

TEST_CASE("stream_mixed_forms_default_spin") {
  segment_guard seg("stream_mixed");
  stream_plan plan;
  plan.name = seg.name();
  plan.options.capacity = 1u << 14;
  plan.options.max_message_size = shmq::detail::max_payload_for(1u << 14);
  plan.count = stream_messages() / 20 + 1;
  plan.typical_max = 512;
  plan.salt = 4;
  plan.write = form::mixed;
  plan.read = form::mixed;
  plan.stride = 50'000;
  SUBCASE("consumer first") { plan.consumer_first = true; }
  SUBCASE("producer first") { plan.consumer_first = false; }
  run_stream(plan);
}

TEST_CASE("stream_checks_catch_injected_faults") {
  // The consumer's checks are what every stream test relies on; show that each kind of
  // damage is caught, by a producer that makes it on purpose.
  MESSAGE("the consumer reports on stderr from this test are expected (injected faults)");
  struct expectation {
    fault injected;
    int consumer_rc;
  };
  const expectation cases[] = {
      {fault::skip, bad_message},      {fault::duplicate, bad_message},
      {fault::swap, bad_message},      {fault::flip_byte, bad_message},
      {fault::short_commit, bad_message},
  };
  for (const auto& e : cases) {
    CAPTURE(static_cast<int>(e.injected));
    segment_guard seg("faults");
    stream_plan plan;
    plan.name = seg.name();
    plan.options.capacity = 1u << 16;
    plan.options.max_message_size = 4096;
    plan.count = 20'000;
    plan.salt = 5;
    plan.injected = e.injected;
    plan.fault_at = 10'000;
    // The producer's status does not matter: done, or blocked on a full ring and killed.
    const int consumer_rc = run_stream_peers(plan).second;
    CHECK(consumer_rc == e.consumer_rc);
  }
}

TEST_CASE("producer_restart_continues_the_stream") {
  // One producer process sends the first half and closes; a second one reopens the
  // channel and sends the rest. The consumer sees one unbroken stream, with a closed
  // in between.
  segment_guard seg("restart");
  channel_options o;
  o.capacity = 1u << 16;
  o.max_message_size = 4096;
  constexpr std::uint64_t half = 20'000;
  auto producer_body = [&](std::uint64_t from) {
    return [&, from](child_process& self) {
      spsc_producer p(seg.name(), o);
      self.notify('R');  // attached: the channel is open again
      for (std::uint64_t seq = from; seq < from + half; ++seq) {
        auto m = make_message(seq, 16 + seq % 200);
        if (p.push(m) != status::ok) return 2;
      }
      p.close();
      return 0;
    };
  };
  spsc_consumer c(seg.name(), o);
  std::vector<std::byte> buffer(4096);
  std::uint64_t seq = 0;
  auto drain_until_closed = [&] {
    for (;;) {
      auto r = c.pop(buffer);
      if (r.status == status::closed) return;
      REQUIRE(r.status == status::ok);
      REQUIRE(r.size == 16 + seq % 200);
      REQUIRE(shmq::test::message_ok({buffer.data(), r.size}, seq));
      ++seq;
    }
  };
  {
    child_process first(producer_body(0));
    REQUIRE(first.wait_notice() == 'R');
    drain_until_closed();
    CHECK(first.wait() == 0);
  }
  CHECK(seq == half);
  {
    child_process second(producer_body(half));
    // Until the new producer has attached, the channel is still closed; draining before
    // that would end at once.
    REQUIRE(second.wait_notice() == 'R');
    drain_until_closed();
    CHECK(second.wait() == 0);
  }
  CHECK(seq == 2 * half);
}

TEST_CASE("consumer_restart_continues_the_stream") {
  // Three consumer processes in turn read a third each; nothing is lost or repeated
  // at the hand-overs.
  segment_guard seg("crestart");
  channel_options o;
  o.capacity = 1u << 16;
  o.max_message_size = 4096;
  constexpr std::uint64_t part = 10'000;
  spsc_producer p(seg.name(), o);
  for (std::uint64_t round = 0; round < 3; ++round) {
    child_process consumer([&](child_process&) {
      spsc_consumer c(seg.name(), o);
      std::vector<std::byte> buffer(4096);
      for (std::uint64_t seq = round * part; seq < (round + 1) * part; ++seq) {
        auto r = c.pop(buffer);
        if (r.status != status::ok) return 3;
        if (!shmq::test::message_ok({buffer.data(), r.size}, seq)) return 4;
      }
      return 0;
    });
    for (std::uint64_t seq = round * part; seq < (round + 1) * part; ++seq) {
      auto m = make_message(seq, 16 + seq % 300);
      REQUIRE(p.push(m) == status::ok);
    }
    CHECK(consumer.wait() == 0);
  }
}

TEST_CASE("producer_killed_with_a_loan_outstanding") {
  // A producer process dies (SIGKILL) in the middle of writing a loaned message. Its
  // bytes were never published: the consumer must never see them, and the next producer
  // takes over the dead one's role and writes over that space.
  segment_guard seg("killed_loan");
  channel_options o;
  o.capacity = 4096;
  o.max_message_size = 2040;
  spsc_consumer c(seg.name(), o);
  SUBCASE("in the middle of the ring") {}
  SUBCASE("right after a padding record") {
    // Move the stream near the ring's end, so the dying producer's claim publishes a
    // padding record before its loan.
    spsc_producer p(seg.name(), o);
    for (std::uint64_t seq = 0; seq < 3; ++seq) {
      REQUIRE(p.try_push(make_message(1000 + seq, 1200)) == status::ok);
      REQUIRE(c.try_read().status() == status::ok);
    }
  }
  child_process dying([&](child_process& self) {
    spsc_producer p(seg.name(), o);
    if (p.push(make_message(0, 100)) != status::ok) return 2;
    shmq::loan l = p.loan(1000);
    if (!l) return 3;
    fill_message(l.data(), 99);
    self.notify('R');
    for (;;) ::pause();  // until killed; pause() waits for a signal, it is not a timer
  });
  REQUIRE(dying.wait_notice() == 'R');
  CHECK(dying.kill_and_wait() == 128 + SIGKILL);

  spsc_producer p(seg.name(), o);
  REQUIRE(p.try_push(make_message(1, 1000)) == status::ok);
  std::vector<std::byte> buffer(2040);
  for (std::uint64_t seq = 0; seq < 2; ++seq) {
    auto r = c.try_pop(buffer);
    REQUIRE(r.status == status::ok);
    CHECK(shmq::test::message_ok({buffer.data(), r.size}, seq));
  }
  CHECK(c.try_pop(buffer).status == status::empty);
}

TEST_CASE("consumer_killed_holding_a_view") {
  // A consumer process dies holding a view: the message was never released, so the
  // next consumer gets it again (at least once), followed by the rest in order.
  segment_guard seg("killed_view");
  channel_options o;
  o.capacity = 4096;
  o.max_message_size = 2040;
  spsc_producer p(seg.name(), o);
  for (std::uint64_t seq = 0; seq < 4; ++seq) REQUIRE(p.try_push(make_message(seq, 300)) == status::ok);
  child_process dying([&](child_process& self) {
    spsc_consumer c(seg.name(), o);
    {
      shmq::view v = c.try_read();
      if (!v || !shmq::test::message_ok(v.data(), 0)) return 2;
    }
    shmq::view held = c.try_read();
    if (!held || !shmq::test::message_ok(held.data(), 1)) return 3;
    self.notify('R');
    for (;;) ::pause();  // until killed
  });
  REQUIRE(dying.wait_notice() == 'R');
  CHECK(dying.kill_and_wait() == 128 + SIGKILL);
  spsc_consumer c(seg.name(), o);
  for (std::uint64_t seq = 1; seq < 4; ++seq) {
    shmq::view v = c.try_read();
    REQUIRE(v.status() == status::ok);
    CHECK(shmq::test::message_ok(v.data(), seq));
  }
  CHECK(c.try_read().status() == status::empty);
}

TEST_CASE("roles_across_processes") {
  segment_guard seg("xroles");
  channel_options o;
  o.capacity = 4096;
  o.max_message_size = 2040;
  peer_pipe release;  // parent -> child: "you may go"
  child_process holder([&](child_process& self) {
    release.keep_read();
    spsc_producer p(seg.name(), o);
    auto m = make_message(0, 32);
    if (p.push(m) != status::ok) return 2;
    self.notify('R');
    char c;
    release.receive(c);  // end-of-file when the parent closes its end or dies
    // Leaves without running the destructor: the slot keeps this (soon dead) pid.
    ::_exit(0);
  });
  release.keep_write();
  REQUIRE(holder.wait_notice() == 'R');
  try {
    spsc_producer p(seg.name(), o);
    FAIL_CHECK("a second producer attached while the first lives");
  } catch (const shmq::error& e) {
    CHECK(e.code() == shmq::errc::role_taken);
    CHECK(shmq::test::contains(e.what(), std::to_string(holder.pid())));
  }
  release.close_all();
  CHECK(holder.wait() == 0);
  // The holder is dead and reaped: its slot is taken over, and its message is there.
  spsc_producer p(seg.name(), o);
  spsc_consumer c(seg.name(), o);
  shmq::view v = c.try_read();
  REQUIRE(v);
  CHECK(shmq::test::message_ok(v.data(), 0));
}

TEST_SUITE_END();

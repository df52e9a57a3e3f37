// The fault harness's children: the producer and consumer loops each forked child
// runs, sending and receiving stamped messages and recording every step in the ledger.
// Kills and SIGSTOPs may land anywhere in them. The only thing a child waits for is the
// end of a quiet period (a producer, on the ledger's futex word); the rest is traffic
// shape: a slow consumer's holds.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <vector>

#include <time.h>
#include <unistd.h>

#include "fault/ledger.hpp"
#include "fault/settings.hpp"
#include "shmq/loan.hpp"
#include "shmq/status.hpp"
#include "test_support.hpp"

namespace shmq::test::fault {

// How long one blocking call lasts before the child looks at the ledger's flags again
// (wait_slice in settings.hpp), and the endpoints' liveness_interval.
struct child_timing {
  milliseconds wait;
  milliseconds liveness;
};
inline child_timing timing_of(const settings& s) { return {wait_slice(s), s.liveness}; }

// The size of message `id`: a function of the id, so a consumer detects truncation.
inline std::size_t message_size(std::uint64_t id, std::size_t max) noexcept {
  return stream_message_size(0xfa17, id, stamped::header_size, max, max);
}

// Holds a loan or a view a little longer for one message in eight: widens the windows
// a kill must hit (between loan and commit; between read and counting, and between
// counting and release). Work, not a wait. `where` picks a different eighth each time.
inline void dawdle(std::uint64_t id, std::uint64_t where) noexcept {
  const std::uint64_t r = stamped::mix(id ^ (where * 0x9e3779b97f4a7c15ull));
  if ((r & 7) != 0) return;
  const auto until = clock_type::now() + std::chrono::microseconds((r >> 3) % 50);
  while (clock_type::now() < until) {
  }
}

// A slow consumer (a start the harness marked slow) holds each view as if it worked on
// it: up to 300 us, and one view in 32 for 1.5 to 4 liveness intervals, so that
// producers wait on back-pressure longer than liveness_interval. Traffic shape: the
// sleep orders nothing.
inline void hold_slowly(std::uint64_t id, milliseconds liveness) noexcept {
  const std::uint64_t r = stamped::mix(id ^ 0x5105c0ffee);
  const auto us = (r & 31) == 0 ? liveness.count() * (1500 + (r >> 4) % 2500) : static_cast<long long>((r >> 4) % 300);
  const timespec pause{static_cast<time_t>(us / 1'000'000), static_cast<long>(us % 1'000'000) * 1000};
  ::nanosleep(&pause, nullptr);
}

// Waits for room as an application would, in slices so that the stop flag is seen. The
// phase tells the harness that the producer is blocked, so it can time how long.
template <class Producer>
loan loan_waiting(Producer& producer, std::size_t size, ledger& led, std::size_t slot, milliseconds wait) {
  loan l = producer.try_loan(size);
  if (l.status() != status::full) return l;
  led.set_phase(slot, phase::blocked);
  do {
    l = producer.loan_for(size, wait);
  } while (l.status() == status::timed_out && !led.stopping());
  led.set_phase(slot, phase::idle);
  return l;
}

template <class Producer>
status push_waiting(Producer& producer, std::span<const std::byte> message, ledger& led, std::size_t slot,
                    milliseconds wait) {
  status s = producer.try_push(message);
  if (s != status::full) return s;
  led.set_phase(slot, phase::blocked);
  do {
    s = producer.push_for(message, wait);
  } while (s == status::timed_out && !led.stopping());
  led.set_phase(slot, phase::idle);
  return s;
}

// Writes message `id` in place: loan, fill, commit.
template <class Producer>
status send_in_place(Producer& producer, std::uint64_t id, std::size_t size, ledger& led, std::size_t slot,
                     milliseconds wait) {
  loan l = loan_waiting(producer, size, led, slot, wait);
  if (!l) return l.status();
  led.set_phase(slot, phase::loaned);
  stamped::fill(l.data(), id);
  dawdle(id, 1);
  l.commit();
  return status::ok;
}

// One message in four goes by push (a copy), the rest in place. During a quiet period
// the producer takes no id.
template <class Make>
int run_producer(ledger& led, std::size_t slot, Make&& make, child_timing timing) {
  auto producer = make();
  led.mark_ready(slot);
  const std::size_t max = producer.max_message_size();
  std::vector<std::byte> buffer(max);
  while (!led.stop_producing()) {
    led.wait_while_quiet(slot, timing.wait);
    if (led.stop_producing()) break;
    const std::uint64_t id = led.take_id();
    if (id >= led.capacity()) return 0;  // the round's ids are used up
    const std::span<std::byte> message = std::span(buffer).first(message_size(id, max));
    status s;
    if (id % 4 == 3) {
      stamped::fill(message, id);
      s = push_waiting(producer, message, led, slot, timing.wait);
    } else {
      s = send_in_place(producer, id, message.size(), led, slot, timing.wait);
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

// The id a message is stamped with (its first bytes), or ~0 if it is too short.
inline std::uint64_t id_of(std::span<const std::byte> data) noexcept {
  std::uint64_t id = ~std::uint64_t{0};
  if (data.size() >= sizeof id) std::memcpy(&id, data.data(), sizeof id);
  return id;
}

// Checks one received message and counts it (and logs it, for a private subscription);
// false (and an error reported) if it is not a message some producer wrote.
inline bool take_delivery(ledger& led, std::size_t slot, std::size_t group, std::span<const std::byte> data,
                          bool redelivered, std::size_t max) {
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
  if (redelivered) led.count_redelivery(group);  // first: see the ledger in test_fault.cpp
  led.deliver(group, id);
  if (led.logged(group) && !led.log(group).delivered(led.incarnation(slot), id, redelivered)) {
    led.report("group %zu: the delivery log is full", group);
    return false;
  }
  dawdle(id, 4 + redelivered);
  return true;
}

// Receives one message in place, holding it while it is checked and counted. 0 when it
// did, or nothing came in time; else an exit code.
template <class Consumer>
int receive_in_place(Consumer& consumer, ledger& led, std::size_t slot, std::size_t group, child_timing timing) {
  view v = consumer.read_for(timing.wait);
  if (v.status() == status::timed_out) return 0;
  if (!v) {
    led.report("group %zu consumer %d: read: %s", group, ::getpid(), to_string(v.status()));
    return 3;
  }
  led.set_phase(slot, phase::holding);
  if (!take_delivery(led, slot, group, v.data(), v.redelivered(), consumer.max_message_size())) return 4;
  if (led.slow(slot)) hold_slowly(id_of(v.data()), timing.liveness);
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
  led.note_copy(slot, id_of(buffer.first(r.size)));
  if (!take_delivery(led, slot, group, buffer.first(r.size), r.redelivered, consumer.max_message_size())) return 4;
  led.set_phase(slot, phase::idle);
  return 0;
}

// Attached: records the id watermark (a private subscription also logs it) before it
// says it is ready.
inline bool note_start(ledger& led, std::size_t slot, std::size_t group) noexcept {
  const std::uint64_t watermark = led.id_watermark();
  led.set_start_id(slot, watermark);
  if (led.logged(group) && !led.log(group).start(led.incarnation(slot), watermark)) {
    led.report("group %zu: the delivery log is full", group);
    return false;
  }
  led.mark_ready(slot);
  return true;
}

// One receive in four copies (pop) when a message is there; the others, and the waits,
// read in place.
template <class Make>
int run_consumer(ledger& led, std::size_t slot, std::size_t group, Make&& make, child_timing timing) {
  auto consumer = make();
  if (!note_start(led, slot, group)) return 5;
  std::vector<std::byte> buffer(consumer.max_message_size());
  for (std::uint64_t n = 0; !led.stopping(); ++n) {
    int rc = n % 4 == 3 ? receive_copy(consumer, buffer, led, slot, group) : 1;
    if (rc == 1) rc = receive_in_place(consumer, led, slot, group, timing);
    if (rc != 0) return rc;
  }
  return 0;
}

}  // namespace shmq::test::fault

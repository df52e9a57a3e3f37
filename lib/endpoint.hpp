// Definitions of basic_producer / basic_consumer (include/shmq/endpoint.hpp), written
// once over what each channel kind's Impl provides. A kind's .cpp includes this file and
// instantiates the templates for its Impl.
//
// Producer Impl:                               Consumer Impl:
//   status try_claim(size, byte*&, ticket&)      status try_peek(const byte*&, size&, ticket&, missed&)
//   bool has_room(size)       (seq_cst loads)    bool has_message()          (seq_cst loads)
//   catch_up_tracker catch_up                    catch_up_tracker catch_up
//   wait_word& space_ready()                     wait_word& data_ready()
//   loan_owner: commit_loan, abort_loan          view_owner: release_view, view_intact
//   bool loan_out, closed_here; waiting;         void keep(ticket); bool view_out; waiting;
//   close(); max_message_size()                  when_gone; producers_died(); max_message_size()
//   sync()                                       sync()
//   recover(); bool broken                       recover(); bool broken, kept, gone_pending
//   unique_ptr<readiness_handle> readiness       unique_ptr<readiness_handle> readiness
//
// slot_producer.hpp and consumer_base.hpp provide most of these for the channel kinds.
#pragma once

#include <algorithm>
#include <cstring>
#include <memory>
#include <utility>

#include "futex.hpp"
#include "readiness/handle.hpp"
#include "shmq/endpoint.hpp"
#include "wait_word.hpp"

namespace shmq::detail {

inline constexpr clock::time_point no_wait = clock::time_point::min();
inline constexpr clock::time_point forever = clock::time_point::max();

inline clock::time_point deadline_after(std::chrono::nanoseconds timeout) noexcept {
  const auto now = clock::now();
  if (timeout > clock::time_point::max() - now) return forever;
  return now + std::chrono::duration_cast<clock::duration>(timeout);
}

struct wait_policy {
  std::chrono::nanoseconds spin;
  std::chrono::milliseconds check_every;  // how often a sleeper calls check()
};

// Which waits start with quiet polls (wait_until). An operation that finds the ring
// full (a producer) or empty (a consumer) right after one that succeeded without waiting
// has caught up with the other side in a stream: looking again at once would pull the
// next slot's cache line from under the process about to use it. One that waited before
// (request/response, a quiet channel) always looks at once: its latency is the point.
struct catch_up_tracker {
  unsigned polls = 0;       // quiet polls for the next wait; retry_until uses them up
  bool streaming = false;   // the last success came without waiting
  bool blocked = false;     // this operation found the ring full / empty already

  void note(status s, status would_block, unsigned catch_up_polls) noexcept {
    if (s == would_block) {
      if (streaming) polls = catch_up_polls;
      streaming = false;
      blocked = true;
    } else if (s == status::ok) {
      streaming = !blocked;
      blocked = false;
    }
  }
};

// The waiting part of retry_until, after a first attempt gave `would_block`: kept out
// of line so that the attempt that succeeds, the common case, is all the caller runs.
template <class Attempt, class Ready, class Check>
[[gnu::noinline]] status wait_then_retry(wait_word& w, wait_policy policy, clock::time_point deadline,
                                         status would_block, unsigned& catch_up, Attempt& attempt,
                                         Ready& ready, Check& check) {
  const clock::time_point spin_until = deadline_after(policy.spin);
  // The checks keep their own schedule, counted from the start of the wait: a wake-up
  // whose attempt then fails (another consumer was first) must not put them off, or a
  // waiter woken often enough would never look for the dead.
  clock::time_point next_check = deadline_after(policy.spin + policy.check_every);
  for (;;) {
    const clock::time_point slice = std::min(deadline, next_check);
    const bool woken = wait_until(w, ready, spin_until, slice, std::exchange(catch_up, 0u));
    if (!woken && slice == deadline) return status::timed_out;
    if (!woken || clock::now() >= next_check) {
      next_check = deadline_after(policy.check_every);
      if (const status c = check(); c != status::ok) {
        const status last = attempt();
        return last == would_block ? c : last;
      }
    }
    if (const status s = attempt(); s != would_block) return s;
  }
}

// Calls attempt() until it gives something other than `would_block`, waiting on `w` for
// ready() in between, up to `deadline` (no_wait: one attempt; forever: no limit). While
// asleep, wakes every policy.check_every to call check(): a status other than ok from
// it ends the wait, after one more attempt. `catch_up`, which attempt() may set, is the
// number of quiet polls the first wait starts with (wait_until); it is used up here.
template <class Attempt, class Ready, class Check>
status retry_until(wait_word& w, wait_policy policy, clock::time_point deadline, status would_block,
                   unsigned& catch_up, Attempt&& attempt, Ready&& ready, Check&& check) {
  const status s = attempt();
  if (s != would_block || deadline == no_wait) {
    catch_up = 0;
    return s;
  }
  return wait_then_retry(w, policy, deadline, would_block, catch_up, attempt, ready, check);
}

// The readiness handle of an endpoint, made on first use.
template <class Impl>
readiness_handle& readiness_of(Impl& impl, wait_word& w) {
  if (!impl.readiness) impl.readiness = std::make_unique<readiness_handle>(w);
  return *impl.readiness;
}
// The handle holds a slot of a wait word in the segment: it goes before the mapping.
template <class Impl>
void drop_readiness(std::unique_ptr<Impl>& impl) noexcept {
  if (impl) impl->readiness.reset();
}

// arm() of every endpoint: drain -> (liveness check when due) -> announce -> re-check, in
// the order of wait_word.hpp. `ready` does its loads with seq_cst (R); `check` returns
// false when it found a verdict the next try_ call reports (a dead producer).
template <class Ready, class Check>
arm_result arm_handle(readiness_handle& h, wait_policy policy, Ready&& ready, Check&& check) {
  const bool ticked = h.drain();
  const clock::time_point now = clock::now();
  if (ticked || now >= h.next_check) {
    h.next_check = now + policy.check_every;
    if (!check()) return arm_result::ready;
  }
  if (ready()) return arm_result::ready;  // no wake needed for what is already there
  const bool fenced = h.announce();       // A, E
  if (ready()) return arm_result::ready;  // R
  // Without the heavy fence a light publisher may miss E: tick often instead, as
  // wait_until sleeps in short slices.
  h.start_tick(fenced ? std::chrono::nanoseconds(policy.check_every) : std::chrono::milliseconds(1));
  return arm_result::armed;
}

// A producer that attaches reopens a closed stream; close() ends it. The close store
// comes after all of the closing producer's commits (program order), and consumers
// acquire it before their last look.
template <class Control>
void reopen_stream(Control& c) noexcept {
  c.closed.store(0, std::memory_order_release);
}
template <class Control>
void close_stream(Control& c) noexcept {
  c.closed.store(1, std::memory_order_seq_cst);
  wake_all(c.data_ready);
}

}  // namespace shmq::detail

namespace shmq {

// ---- producer ----

template <class Impl>
basic_producer<Impl>::basic_producer(std::unique_ptr<Impl> impl) noexcept : impl_(std::move(impl)) {}
template <class Impl>
basic_producer<Impl>::basic_producer(basic_producer&&) noexcept = default;
template <class Impl>
basic_producer<Impl>& basic_producer<Impl>::operator=(basic_producer&& o) noexcept {
  if (this != &o) {
    detail::drop_readiness(impl_);
    impl_ = std::move(o.impl_);
  }
  return *this;
}
template <class Impl>
basic_producer<Impl>::~basic_producer() {
  detail::drop_readiness(impl_);
}

template <class Impl>
shmq::loan basic_producer<Impl>::loan_until(std::size_t size, time_point deadline) {
  Impl& p = *impl_;
  if (p.closed_here) return detail::access::failed_loan(status::closed);
  if (p.loan_out) return detail::access::failed_loan(status::busy);
  std::byte* payload = nullptr;
  std::uint64_t ticket = 0;
  const status s = detail::retry_until(
      p.space_ready(), p.waiting, deadline, status::full, p.catch_up.polls,
      [&] { return p.try_claim(size, payload, ticket); }, [&] { return p.has_room(size); },
      [&] {
        p.recover();  // a dead reader or writer must not hold a waiting producer back
        return status::ok;
      });
  if (s != status::ok) return detail::access::failed_loan(s);
  p.loan_out = true;
  return detail::access::make_loan(&p, ticket, payload, size);
}

template <class Impl>
status basic_producer<Impl>::push_until(std::span<const std::byte> message, time_point deadline) {
  shmq::loan l = loan_until(message.size(), deadline);
  if (!l) return l.status();
  if (!message.empty()) std::memcpy(l.data().data(), message.data(), message.size());
  return l.commit();
}

template <class Impl>
shmq::loan basic_producer<Impl>::try_loan(std::size_t size) { return loan_until(size, detail::no_wait); }
template <class Impl>
shmq::loan basic_producer<Impl>::loan_for(std::size_t size, std::chrono::nanoseconds timeout) {
  return loan_until(size, detail::deadline_after(timeout));
}
template <class Impl>
shmq::loan basic_producer<Impl>::loan(std::size_t size) { return loan_until(size, detail::forever); }
template <class Impl>
status basic_producer<Impl>::try_push(std::span<const std::byte> m) { return push_until(m, detail::no_wait); }
template <class Impl>
status basic_producer<Impl>::push_for(std::span<const std::byte> m, std::chrono::nanoseconds timeout) {
  return push_until(m, detail::deadline_after(timeout));
}
template <class Impl>
status basic_producer<Impl>::push(std::span<const std::byte> m) { return push_until(m, detail::forever); }
template <class Impl>
void basic_producer<Impl>::close() noexcept {
  impl_->closed_here = true;  // this producer is done: later loans give status::closed
  impl_->close();
}
template <class Impl>
status basic_producer<Impl>::sync() { return impl_->sync(); }
template <class Impl>
std::size_t basic_producer<Impl>::max_message_size() const noexcept { return impl_->max_message_size(); }
template <class Impl>
int basic_producer<Impl>::native_handle() {
  return detail::readiness_of(*impl_, impl_->space_ready()).fd();
}
template <class Impl>
arm_result basic_producer<Impl>::arm(std::size_t size) {
  Impl& p = *impl_;
  detail::readiness_handle& h = detail::readiness_of(p, p.space_ready());
  // What try_loan would report at once: closed, busy, corrupt, too_large.
  if (p.closed_here || p.loan_out || p.broken || size > p.max_message_size()) return arm_result::ready;
  return detail::arm_handle(h, p.waiting, [&] { return p.has_room(size); },
                            [&] {
                              p.recover();
                              return true;
                            });
}

// ---- consumer ----

template <class Impl>
basic_consumer<Impl>::basic_consumer(std::unique_ptr<Impl> impl) noexcept : impl_(std::move(impl)) {}
template <class Impl>
basic_consumer<Impl>::basic_consumer(basic_consumer&&) noexcept = default;
template <class Impl>
basic_consumer<Impl>& basic_consumer<Impl>::operator=(basic_consumer&& o) noexcept {
  if (this != &o) {
    detail::drop_readiness(impl_);
    impl_ = std::move(o.impl_);
  }
  return *this;
}
template <class Impl>
basic_consumer<Impl>::~basic_consumer() {
  detail::drop_readiness(impl_);
}

template <class Impl>
view basic_consumer<Impl>::read_until(time_point deadline) {
  Impl& c = *impl_;
  if (c.view_out) return detail::access::failed_view(status::busy);
  const std::byte* payload = nullptr;
  std::uint64_t size = 0, ticket = 0, missed = 0;
  const status s = detail::retry_until(
      c.data_ready(), c.waiting, deadline, status::empty, c.catch_up.polls,
      [&] { return c.try_peek(payload, size, ticket, missed); }, [&] { return c.has_message(); },
      [&] {
        c.recover();  // what dead producers or consumers left stuck, before judging them gone
        return c.when_gone == when_producer_gone::report && c.producers_died() ? status::producer_gone
                                                                               : status::ok;
      });
  if (s != status::ok) return detail::access::failed_view(s);
  c.view_out = true;
  return detail::access::make_view(&c, ticket, payload, size, missed, c.last_redelivered);
}

template <class Impl>
pop_result basic_consumer<Impl>::pop_until(std::span<std::byte> buffer, time_point deadline) {
  std::uint64_t missed = 0;
  for (;;) {
    view v = read_until(deadline);
    missed += v.missed();
    if (!v) return {v.status(), 0, missed};
    if (v.size() > buffer.size()) {
      detail::access::keep(v, *impl_);
      return {status::too_large, v.size(), missed, v.redelivered()};
    }
    if (v.size() != 0) std::memcpy(buffer.data(), v.data().data(), v.size());
    // A copy torn by an overwriting publisher is dropped; release counts it as missed.
    if (v.intact()) return {status::ok, v.size(), missed, v.redelivered()};
  }
}

template <class Impl>
view basic_consumer<Impl>::try_read() { return read_until(detail::no_wait); }
template <class Impl>
view basic_consumer<Impl>::read_for(std::chrono::nanoseconds timeout) {
  return read_until(detail::deadline_after(timeout));
}
template <class Impl>
view basic_consumer<Impl>::read() { return read_until(detail::forever); }
template <class Impl>
pop_result basic_consumer<Impl>::try_pop(std::span<std::byte> b) { return pop_until(b, detail::no_wait); }
template <class Impl>
pop_result basic_consumer<Impl>::pop_for(std::span<std::byte> b, std::chrono::nanoseconds timeout) {
  return pop_until(b, detail::deadline_after(timeout));
}
template <class Impl>
pop_result basic_consumer<Impl>::pop(std::span<std::byte> b) { return pop_until(b, detail::forever); }
template <class Impl>
status basic_consumer<Impl>::sync() { return impl_->sync(); }
template <class Impl>
std::size_t basic_consumer<Impl>::max_message_size() const noexcept { return impl_->max_message_size(); }
template <class Impl>
std::uint64_t basic_consumer<Impl>::redeliveries() const noexcept { return impl_->redeliveries; }
template <class Impl>
int basic_consumer<Impl>::native_handle() {
  return detail::readiness_of(*impl_, impl_->data_ready()).fd();
}
template <class Impl>
arm_result basic_consumer<Impl>::arm() {
  Impl& c = *impl_;
  detail::readiness_handle& h = detail::readiness_of(c, c.data_ready());
  // What try_read would report at once: busy, corrupt, a kept message, a dead producer.
  if (c.view_out || c.broken || c.kept || c.gone_pending) return arm_result::ready;
  return detail::arm_handle(h, c.waiting, [&] { return c.has_message(); },
                            [&] {
                              c.recover();  // as the blocking read's check does
                              c.gone_pending = c.when_gone == when_producer_gone::report && c.producers_died();
                              return !c.gone_pending;
                            });
}

}  // namespace shmq

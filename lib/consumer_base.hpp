// What every consumer Impl (SPSC, MPMC, subscriber) does the same way around its ring:
// end of stream, a message kept for a larger buffer, and corruption that sticks.
//
// Derived provides take(payload, size, ticket, missed) (one try on the ring: ok, empty
// or corrupt), has_record() (wait predicate, seq_cst loads) and control() (with closed).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>

#include "endpoint.hpp"

namespace shmq::detail {

template <class Derived>
struct consumer_base : view_owner {
  wait_policy waiting;
  when_producer_gone when_gone;
  bool view_out = false;
  bool broken = false;  // corrupt once, corrupt for good: the segment is not trusted again
  bool kept = false;    // the last message taken is handed out again (pop into a small buffer)
  bool gone_pending = false;  // arm() found every producer dead: the next empty try says so
  bool redelivering = false;      // take() sets it: the message it took is a redelivery
  bool last_redelivered = false;  // ... for the last message handed out
  std::uint64_t redeliveries = 0;
  catch_up_tracker catch_up;  // take() notes what it found (endpoint.hpp)
  std::uint64_t last_ticket = 0, last_size = 0;
  const std::byte* last_payload = nullptr;
  std::unique_ptr<readiness_handle> readiness;  // event loops: made on first use

  explicit consumer_base(const endpoint_options& o) noexcept
      : waiting{o.spin, o.liveness_interval}, when_gone(o.when_producer_gone) {}

  status try_peek(const std::byte*& payload, std::uint64_t& size, std::uint64_t& ticket,
                  std::uint64_t& missed) noexcept {
    if (kept) {
      kept = false;
      payload = last_payload, size = last_size, ticket = last_ticket;
      return status::ok;
    }
    if (broken) return status::corrupt;
    Derived& self = static_cast<Derived&>(*this);
    redelivering = false;
    status s = self.take(payload, size, ticket, missed);
    // closed is stored after the closing producer's commits: acquiring it makes them
    // visible to the second look.
    if (s == status::empty && self.control().closed.load(std::memory_order_acquire) != 0) {
      s = self.take(payload, size, ticket, missed);
      if (s == status::empty) s = status::closed;
    }
    broken = s == status::corrupt;
    if (s == status::empty && gone_pending) {  // arm()'s verdict, reported once
      gone_pending = false;
      s = status::producer_gone;
    }
    if (s == status::ok) {
      last_payload = payload, last_size = size, last_ticket = ticket;
      last_redelivered = redelivering;
      redeliveries += redelivering;
    }
    return s;
  }
  bool has_message() const noexcept {
    const Derived& self = static_cast<const Derived&>(*this);
    return self.has_record() || self.control().closed.load(std::memory_order_seq_cst) != 0;
  }
  status sync() noexcept { return status::ok; }  // a kind without file backing: nothing to flush
  wait_word& data_ready() noexcept { return static_cast<Derived&>(*this).control().data_ready; }
  void keep(std::uint64_t) noexcept {
    kept = true;
    view_out = false;
  }
};

}  // namespace shmq::detail

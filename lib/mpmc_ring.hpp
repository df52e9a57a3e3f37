// The MPMC queue: a bounded ring of fixed slots after D. Vyukov's algorithm, with
// loans (write in place) and views (read in place).
//
// Tickets are 64-bit and only grow; ticket t uses slot t & (slots - 1). A slot's turn
// word says who may use it next:
//   turn == t              the producer holding ticket t may write it
//   turn == t + 1          it holds ticket t's message (or a skip, for an aborted loan)
//   turn == t + slots      the consumer of ticket t is done: the next lap's producer's turn
//
// Producer: read enqueue_pos p; if slot(p).turn == p, announce p in its ticket record,
//   CAS enqueue_pos p -> p+1 to own ticket p; write the payload in place; commit stores
//   turn = p + 1 (A).
// Consumer: starting from c = the ticket after its last one (a process-local guess),
//   if slot(c).turn == c + 1, announce c, CAS dequeue_pos c -> c+1 to own ticket c; read
//   in place; release stores turn = c + slots (D). A wrong guess fails the turn check
//   or the CAS, and the consumer goes on from dequeue_pos. With one consumer the guess
//   is always right, and no load of dequeue_pos waits behind its last CAS.
// While only one participant of a role takes tickets, it holds that role's position
// lease (position_lease.hpp) and moves the position with a plain store: the same
// steps, the CAS replaced by a confirm and a store.
//
// Ordering: A is a store-release that the consumer's load of turn (C, acquire) pairs
// with, making the payload visible. D is a store-release that the producer's load of
// turn (B, acquire) pairs with: the consumer is done with the bytes. The CASes and the
// lease holder's stores on the positions are release only for the ticket records
// (ticket_records.hpp): a position just picks the slot to look at, the slot's turn word
// carries the data. A and D are publish_store and the wait predicates load turn with
// seq_cst for the sleep/wake protocol of wait_word.hpp.
//
// Crashes (mpmc_recovery.hpp): a ticket whose taker died stays stuck, turn == p for a
// producer's, turn == c + 1 for a consumer's. A recoverer publishes a skip for the first
// and hands the second to a live consumer, who reads it again and releases it.
//
// Checks against a corrupt segment: a turn that is ahead of where it can be while the
// position did not move is corruption, never an endless loop; a stored length over the
// maximum is corruption, never a read past the slot.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "layout.hpp"
#include "position_lease.hpp"
#include "shmq/status.hpp"
#include "ticket_records.hpp"
#include "wait_word.hpp"

namespace shmq::detail {

// A slotted ring's geometry after validation, in process-local memory.
struct slot_geometry {
  std::byte* data;
  std::uint64_t slot_count;
  std::uint64_t slot_size;
  std::uint64_t max_payload;
  std::uint64_t payload_offset = sizeof(slot_header);  // a file channel's slots hold a seal first

  slot_header& slot(std::uint64_t ticket) const noexcept {
    return *reinterpret_cast<slot_header*>(data + (ticket & (slot_count - 1)) * slot_size);
  }
  std::byte* payload(std::uint64_t ticket) const noexcept {
    return data + (ticket & (slot_count - 1)) * slot_size + payload_offset;
  }
};

class mpmc_ring {
 public:
  // `role`: the ticket records of the caller's role (producers or consumers), in which
  // the caller's own is role.records[self].
  mpmc_ring(mpmc_control& control, slot_geometry geometry, bool producer, ticket_table role,
            std::uint32_t self) noexcept
      : control_(&control),
        geometry_(geometry),
        own_(&role.records[self]),
        lease_(producer ? control.producer_lease : control.consumer_lease,
               producer ? control.enqueue_pos : control.dequeue_pos, role, self) {}

  status try_claim(std::uint64_t size, std::uint64_t& ticket) noexcept {
    if (size > geometry_.max_payload) return status::too_large;
    const status s = claim(ticket);
    if (s != status::ok) withdraw_ticket(own_);
    return s;
  }

  // A file channel's seal state of a published slot (slot_file.hpp): its flags.
  static constexpr std::uint32_t seal_state(bool skip) noexcept { return skip ? slot_skip : 0; }

  // skip: an aborted loan; consumers pass over it.
  void publish(std::uint64_t ticket, std::uint64_t size, bool skip) noexcept {
    slot_header& s = geometry_.slot(ticket);
    s.length = static_cast<std::uint32_t>(size);
    s.flags = skip ? slot_skip : 0;
    publish_store(s.turn, ticket + 1);  // A
    wake_sleepers(control_->data_ready);
  }

  // On ok, `ticket` is owned by the caller until release(ticket). Skips are released here.
  status try_take(std::uint64_t& ticket, const std::byte*& payload, std::uint64_t& size) noexcept {
    const status s = take(ticket, payload, size);
    if (s != status::ok) withdraw_ticket(own_);
    return s;
  }

  // A ticket this consumer adopted from a dead one (announced in its record already):
  // ok with the message, or empty if it held a skip (released here).
  status take_adopted(std::uint64_t t, const std::byte*& payload, std::uint64_t& size) noexcept {
    slot_header& s = geometry_.slot(t);
    if (s.turn.load(std::memory_order_acquire) != t + 1) return status::corrupt;  // C
    return read_slot(t, payload, size);
  }

  void release(std::uint64_t ticket) noexcept {
    publish_store(geometry_.slot(ticket).turn, ticket + geometry_.slot_count);  // D
    wake_sleepers(control_->space_ready);
  }

  // Wait predicates (R of the protocol).
  bool has_room() const noexcept {
    const std::uint64_t pos = control_->enqueue_pos.load(std::memory_order_seq_cst);
    return static_cast<std::int64_t>(geometry_.slot(pos).turn.load(std::memory_order_seq_cst) - pos) >= 0;
  }
  bool has_message() const noexcept {
    const std::uint64_t pos = control_->dequeue_pos.load(std::memory_order_seq_cst);
    return static_cast<std::int64_t>(geometry_.slot(pos).turn.load(std::memory_order_seq_cst) -
                                     (pos + 1)) >= 0;
  }

 private:
  status claim(std::uint64_t& ticket) noexcept {
    return take_ticket(control_->enqueue_pos, 0, status::full, ticket,
                       [this](std::uint64_t& t) { return claim_shared(t); });
  }

  // A ticket of this participant's role: by plain store while it holds the lease, else
  // by `shared` (the CAS). Ticket t is ready for the role when its slot's turn is
  // t + offset: 0 for a producer (B), 1 for a consumer (C).
  template <class Shared>
  status take_ticket(std::atomic<std::uint64_t>& position, std::uint64_t offset, status would_block,
                     std::uint64_t& ticket, Shared&& shared) noexcept {
    for (;;) {
      const position_lease::state state = lease_.acquire();
      if (state == position_lease::state::settling) return would_block;
      if (state == position_lease::state::shared) return shared(ticket);
      // Only the holder moves the position, while it still holds the lease: another
      // participant may have taken the lease since this one last confirmed, and moved
      // the position with the CAS between the two loads below.
      const std::uint64_t pos = position.load(std::memory_order_relaxed);
      const std::uint64_t turn = geometry_.slot(pos).turn.load(std::memory_order_acquire);  // B or C
      const auto diff = static_cast<std::int64_t>(turn - (pos + offset));
      if (diff < 0) return would_block;
      // A turn ahead of the position: someone else moved it (the lease is gone), or the
      // segment is corrupt. The shared path loads the position again and tells the two
      // apart; it takes a ticket by CAS, which is sound whoever holds the lease.
      if (diff > 0) return shared(ticket);
      announce_ticket(own_, pos);
      if (lease_.confirm()) {
        lease_.store_position(pos + 1);
        ticket = pos;
        return status::ok;
      }
    }
  }

  status claim_shared(std::uint64_t& ticket) noexcept {
    std::uint64_t pos = control_->enqueue_pos.load(std::memory_order_relaxed);
    for (;;) {
      const std::uint64_t turn = geometry_.slot(pos).turn.load(std::memory_order_acquire);  // B
      const auto diff = static_cast<std::int64_t>(turn - pos);
      if (diff == 0) {
        announce_ticket(own_, pos);
        // release: orders the announcement before the CAS (ticket_records.hpp).
        if (control_->enqueue_pos.compare_exchange_weak(pos, pos + 1, std::memory_order_release,
                                                        std::memory_order_relaxed)) {
          ticket = pos;
          return status::ok;
        }
      } else if (diff < 0) {
        return status::full;  // last lap's message is still unread
      } else {
        // Another producer took ticket pos (it moved enqueue_pos before writing turn).
        const std::uint64_t now = control_->enqueue_pos.load(std::memory_order_relaxed);
        if (now == pos) return status::corrupt;
        pos = now;
      }
    }
  }

  // A message, or empty / corrupt; skips are released and passed over.
  status take(std::uint64_t& ticket, const std::byte*& payload, std::uint64_t& size) noexcept {
    for (;;) {
      if (const status s = take_ticket(ticket); s != status::ok) return s;
      if (const status s = read_slot(ticket, payload, size); s != status::empty) return s;
    }
  }

  // Takes the next ticket whose message (or skip) is there.
  status take_ticket(std::uint64_t& ticket) noexcept {
    const status s = take_ticket(control_->dequeue_pos, 1, status::empty, ticket,
                                 [this](std::uint64_t& t) { return take_ticket_shared(t); });
    if (s == status::ok) next_take_ = ticket + 1;
    return s;
  }

  status take_ticket_shared(std::uint64_t& ticket) noexcept {
    std::uint64_t pos = next_take_;
    for (;;) {
      const std::uint64_t turn = geometry_.slot(pos).turn.load(std::memory_order_acquire);  // C
      if (turn == pos + 1) {
        announce_ticket(own_, pos);
        // release: orders the announcement before the CAS (ticket_records.hpp). A failed
        // CAS (a stale guess, or another consumer was first) loads the position into pos.
        if (!control_->dequeue_pos.compare_exchange_weak(pos, pos + 1, std::memory_order_release,
                                                         std::memory_order_relaxed))
          continue;
        ticket = pos;
        return status::ok;
      }
      // Empty, or the guess is stale: ask the position. If it did not move, a turn ahead
      // of it is corruption (C acquired the release of the consumer that took pos, whose
      // CAS moved the position before it).
      const std::uint64_t now = control_->dequeue_pos.load(std::memory_order_relaxed);
      if (now == pos)
        return static_cast<std::int64_t>(turn - (pos + 1)) < 0 ? status::empty : status::corrupt;
      pos = next_take_ = now;
    }
  }

  // The message of owned ticket t; a skip is released at once and gives empty.
  status read_slot(std::uint64_t t, const std::byte*& payload, std::uint64_t& size) noexcept {
    const slot_header& s = geometry_.slot(t);
    const std::uint64_t length = s.length;
    if (s.flags == slot_skip) {
      release(t);
      return status::empty;
    }
    if (length > geometry_.max_payload) return status::corrupt;
    payload = geometry_.payload(t);
    size = length;
    return status::ok;
  }

  mpmc_control* control_;
  slot_geometry geometry_;
  ticket_record* own_;
  position_lease lease_;
  std::uint64_t next_take_ = 0;  // where a shared take looks first: process-local, a guess
};

}  // namespace shmq::detail

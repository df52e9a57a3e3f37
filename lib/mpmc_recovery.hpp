// Crash recovery for the MPMC queue (mpmc_ring.hpp): tickets whose takers died.
//
// - A producer that died between taking ticket p and committing it leaves
//   slot(p).turn == p forever: consumers stop at p and producers a lap later. A skip is
//   published in its place, as an aborted loan would have.
// - A consumer that died between taking ticket c and releasing it leaves
//   slot(c).turn == c + 1 forever: the message would be lost and producers stop a lap
//   later. A live consumer adopts c: it announces c in its own record, reads the message
//   again (a counted redelivery) and releases it.
//
// Whoever waits runs this every liveness_interval: consumers on an empty queue (a stuck
// ticket of either kind leaves them one), producers on a full one (producer tickets
// only; only a consumer can take a message). First a scan without syscalls for a
// record whose ticket is stuck; only then the recovery lock and the liveness checks,
// in the order ticket_records.hpp argues: position, records, turn.
#pragma once

#include <cstdint>

#include "mpmc_ring.hpp"
#include "ticket_records.hpp"

namespace shmq::detail {

struct mpmc_tables {
  ticket_table producers;
  ticket_table consumers;
  std::uint64_t recovery_lock;
};

// Ticket t < position is stuck if its turn is still t + offset: 0 for a producer's
// ticket (not committed), 1 for a consumer's (not released).
inline auto stuck_at(const slot_geometry& g, std::uint64_t position, std::uint64_t offset) noexcept {
  return [&g, position, offset](std::uint64_t t) {
    return t < position && g.slot(t).turn.load(std::memory_order_acquire) == t + offset;
  };
}

class mpmc_recovery {
 public:
  mpmc_recovery(mpmc_control& control, slot_geometry geometry, mpmc_tables tables) noexcept
      : control_(&control), geometry_(geometry), tables_(tables) {}

  // Publishes skips for dead producers' tickets.
  void skip_dead_claims(mpmc_ring& ring) const noexcept {
    skip_dead_tickets(
        tables_.producers, tables_.recovery_lock,
        [this] { return stuck_at(geometry_, control_->enqueue_pos.load(std::memory_order_acquire), 0); },
        [&ring](std::uint64_t t) { ring.publish(t, 0, true); });
  }

  // Skips dead producers' tickets, then adopts a dead consumer's ticket into consumer
  // record `own` (whose consumer must hold no message): the adopted ticket, or
  // no_ticket. Its own record comes first: a consumer that took over a dead one's
  // record must not overwrite the ticket in it.
  std::uint64_t recover(mpmc_ring& ring, std::size_t own) const noexcept {
    skip_dead_claims(ring);
    if (!any_stuck(tables_.consumers, stuck_at(geometry_, control_->dequeue_pos.load(std::memory_order_acquire), 1)))
      return no_ticket;
    const lock_guard lock(tables_.consumers.fd, tables_.recovery_lock);
    const std::uint64_t deq = control_->dequeue_pos.load(std::memory_order_acquire);
    const std::uint64_t t = dead_ticket(tables_.consumers, stuck_at(geometry_, deq, 1), own);
    if (t != no_ticket) announce_ticket(&tables_.consumers.records[own], t);
    return t;
  }

 private:
  mpmc_control* control_;
  slot_geometry geometry_;
  mpmc_tables tables_;
};

}  // namespace shmq::detail

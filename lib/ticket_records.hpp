// The ticket records of one role (MPMC producers, MPMC consumers, pub/sub publishers):
// what each participant is working on, and whether the one that took a ticket is alive.
//
// A taker stores its record (release) before the release CAS on the shared position
// that takes the ticket, and keeps it until it has finished with the ticket. A
// recoverer loads the position (acquire) first: seeing it past t, it synchronizes with
// that CAS (later CASes on the position continue its release sequence), so a live
// taker's record then reads t, or a later ticket stored (release) after the taker
// finished t, which the recoverer sees in the slot's turn that it loads next (acquire).
// So "no live record holds t, the slot is still stuck at t" means t's taker is dead.
// Recoverers serialize on a file lock (registry.hpp); the dead cannot race them.
#pragma once

#include <atomic>
#include <cstdint>
#include <span>

#include "layout.hpp"
#include "registry.hpp"

namespace shmq::detail {

struct ticket_table {
  int fd;
  std::uint64_t first_lock;  // participant lock of records[0]; records[i] uses first_lock + i
  std::span<ticket_record> records;

  // Does a live participant hold ticket t?
  bool live_holder(std::uint64_t t) const noexcept {
    for (std::size_t i = 0; i < records.size(); ++i)
      if (records[i].ticket.load(std::memory_order_acquire) == t && held_elsewhere(fd, first_lock + i))
        return true;
    return false;
  }
  // Is records[i]'s participant dead or gone (nobody else holds its lock)? The caller's
  // own record, whose lock it holds, also counts: it is never stuck on its own ticket.
  bool not_live(std::size_t i) const noexcept { return !held_elsewhere(fd, first_lock + i); }
};

// Is some record's ticket stuck? stuck(t) says if ticket t's slot still waits for its
// taker (t below the position loaded before). No syscalls: a cheap look before the lock.
template <class Stuck>
bool any_stuck(const ticket_table& table, Stuck&& stuck) noexcept {
  for (const ticket_record& r : table.records)
    if (stuck(r.ticket.load(std::memory_order_acquire))) return true;
  return false;
}

// A stuck ticket whose taker is dead, or no_ticket; records[first] is looked at first.
// Call under the recovery lock, with stuck() based on a position loaded before.
template <class Stuck>
std::uint64_t dead_ticket(const ticket_table& table, Stuck&& stuck, std::size_t first = 0) noexcept {
  const std::size_t n = table.records.size();
  for (std::size_t k = 0; k < n; ++k) {
    const std::size_t i = (first + k) % n;
    const std::uint64_t t = table.records[i].ticket.load(std::memory_order_acquire);
    if (!stuck(t) || !table.not_live(i) || table.live_holder(t)) continue;
    if (stuck(t)) return t;  // still stuck after the record scan: its taker is dead
  }
  return no_ticket;
}

// Publishes skip(t) for every stuck ticket whose taker is dead, under file lock
// `recovery_lock`. stuck_now() gives stuck() for a position loaded at the call. Each skip
// frees one record's ticket, so a hostile segment cannot make this spin.
template <class StuckNow, class Skip>
void skip_dead_tickets(const ticket_table& table, std::uint64_t recovery_lock, StuckNow&& stuck_now,
                       Skip&& skip) noexcept {
  if (!any_stuck(table, stuck_now())) return;
  const lock_guard lock(table.fd, recovery_lock);
  for (std::size_t n = 0; n < table.records.size(); ++n) {
    const std::uint64_t t = dead_ticket(table, stuck_now());
    if (t == no_ticket) return;
    skip(t);
  }
}

// Stores the ticket a participant is about to take; see the ordering note above.
inline void announce_ticket(ticket_record* r, std::uint64_t t) noexcept {
  r->ticket.store(t, std::memory_order_release);
}
// After a failed attempt: a record left pointing at a ticket someone else took would
// make that one look alive after it died.
inline void withdraw_ticket(ticket_record* r) noexcept {
  r->ticket.store(no_ticket, std::memory_order_release);
}

}  // namespace shmq::detail

// The publish/subscribe ring: fixed slots, any number of publishers, and groups of
// subscribers. Every group sees every sequence; inside a group, members compete for
// them. A private subscription is a group of one.
//
// A slot's turn word is ((seq + 1) << 2) | state, state = committed, writing or skip
// (an aborted loan). 0 means never written.
//
// Publisher, for sequence p = claim_pos:
//   1. The slot's previous lap (p - slots) must be done (committed or skip) by its
//      publisher: a slow publisher a lap behind is waited for, never overwritten.
//   2. Policy block: p < gate + slots, gate being the slowest active group cursor or
//      member position (refreshed only when the cached gate says full).
//   3. Announce p in its ticket record, CAS claim_pos p -> p+1 (release, for the record:
//      ticket_records.hpp), then mark the slot writing (exchange, acq_rel: the payload
//      writes cannot move before it), write in place, store turn = committed(p) (A).
// Subscriber, member of group g:
//   1. c = g.cursor; or, first, the group's orphan: a sequence a dead member held, taken
//      by storing position = o, then CAS orphan o+1 -> 0 (a counted redelivery).
//   2. Load slot(c).turn (C). committed(c): store position = c, then CAS g.cursor
//      c -> c+1 to own c (the gate covers c through the cursor until the CAS, through
//      the position after it; a reaper finds it there if the member dies). skip(c):
//      CAS past it. Older or writing(c): empty. Newer: the group was lapped (overwrite
//      policy, or while the group had no member): jump to the oldest sequence still
//      there, claim_pos - slots, and report the jump as missed messages.
//   3. Read in place. Under overwrite, and for an orphan, intact() re-reads turn after
//      the reads (a seqlock): changed means the bytes were overwritten and must be
//      dropped.
//   4. Release: position = none (D), waking publishers that wait on the gate.
//
// Ordering: A (store-release) pairs with C (acquire load): the payload is visible. The
// member stores position = c before its acq_rel CAS of g.cursor; the gate scan loads
// cursors (acquire) before positions, so a scan that sees the cursor past c also sees
// position = c, and one that does not still counts c through the cursor. An empty poll
// stores nothing.
// Orphans (set by pubsub.cpp's reaper under the table lock: orphan first, then the
// dead member's position cleared) are scanned before and after the positions: a scan
// whose position load misses the dead member's c sees the orphan on its second look;
// one whose first look misses an adopted orphan (the CAS to 0 came first) sees the
// adopter's position = c, stored before that CAS (acq_rel).
// A and D are publish_store and wait predicates load with seq_cst for the sleep/wake
// protocol of wait_word.hpp.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <span>

#include "layout.hpp"
#include "mpmc_ring.hpp"  // slot_geometry
#include "shmq/status.hpp"
#include "ticket_records.hpp"
#include "wait_word.hpp"

namespace shmq::detail {

inline constexpr std::uint64_t turn_committed = 0, turn_writing = 1, turn_skip = 2;

constexpr std::uint64_t make_turn(std::uint64_t seq, std::uint64_t state) noexcept {
  return ((seq + 1) << 2) | state;
}

struct pubsub_tables {
  std::span<pubsub_group> groups;
  std::span<pubsub_member> members;
};

// The tables after the control block at `control` (layout.hpp), sizes checked by the caller.
inline pubsub_tables pubsub_tables_at(std::byte* control, std::uint32_t groups, std::uint32_t members) noexcept {
  auto* g = reinterpret_cast<pubsub_group*>(control + sizeof(pubsub_control));
  auto* m = reinterpret_cast<pubsub_member*>(g + groups);
  return {{g, groups}, {m, members}};
}

class pubsub_ring {
 public:
  // `own`: a publisher's ticket record (nullptr for a subscriber). `durable_gate`: a
  // flushing file channel under block, whose publishers also wait for control.durable_gate.
  pubsub_ring(pubsub_control& control, slot_geometry geometry, pubsub_tables tables, bool block,
              ticket_record* own = nullptr, bool durable_gate = false) noexcept
      : control_(&control), geometry_(geometry), tables_(tables), block_(block), own_(own),
        durable_gate_(durable_gate) {}

  // ---- publisher side ----

  status try_claim(std::uint64_t size, std::uint64_t& ticket) noexcept {
    if (size > geometry_.max_payload) return status::too_large;
    const status s = claim(ticket);
    if (s != status::ok) withdraw_ticket(own_);
    return s;
  }

  // Is ticket t < `claimed` (claim_pos loaded before) taken but not finished?
  bool unfinished(std::uint64_t t, std::uint64_t claimed) const noexcept {
    if (t >= claimed) return false;
    const std::uint64_t turn = geometry_.slot(t).turn.load(std::memory_order_acquire);
    return (turn >> 2) < t + 1 || turn == make_turn(t, turn_writing);
  }

 private:
  status claim(std::uint64_t& ticket) noexcept {
    std::uint64_t pos = control_->claim_pos.load(std::memory_order_relaxed);
    for (;;) {
      const status s = slot_free(pos, std::memory_order_acquire);  // B
      if (s == status::busy) {  // another publisher took pos already
        const std::uint64_t now = control_->claim_pos.load(std::memory_order_relaxed);
        if (now == pos) return status::corrupt;
        pos = now;
        continue;
      }
      if (s != status::ok) return s;
      if (block_ && pos >= gate_cache_ + geometry_.slot_count) {
        gate_cache_ = gate(std::memory_order_acquire);
        // Acquire: pairs with the release store after the checkpoint's flush.
        if (durable_gate_) gate_cache_ = std::min(gate_cache_, control_->durable_gate.load(std::memory_order_acquire));
        if (pos >= gate_cache_ + geometry_.slot_count) return status::full;
      }
      announce_ticket(own_, pos);
      if (control_->claim_pos.compare_exchange_weak(pos, pos + 1, std::memory_order_release,
                                                    std::memory_order_relaxed)) {
        geometry_.slot(pos).turn.exchange(make_turn(pos, turn_writing), std::memory_order_acq_rel);
        ticket = pos;
        return status::ok;
      }
    }
  }

 public:

  // A file channel's seal state of a published slot (slot_file.hpp): its turn's state.
  static constexpr std::uint32_t seal_state(bool skip) noexcept {
    return static_cast<std::uint32_t>(skip ? turn_skip : turn_committed);
  }

  void publish(std::uint64_t ticket, std::uint64_t size, bool skip) noexcept {
    slot_header& s = geometry_.slot(ticket);
    s.length = static_cast<std::uint32_t>(size);
    publish_store(s.turn, make_turn(ticket, skip ? turn_skip : turn_committed));  // A
    wake_sleepers(control_->data_ready);
    wake_sleepers(control_->space_ready);  // a publisher a lap ahead may wait for this slot
  }

  // By the live gate only: a publisher full by the durable gate alone writes the
  // checkpoint itself (pubsub.cpp, make_room), it does not wait for one.
  bool has_room() const noexcept {
    const std::uint64_t pos = control_->claim_pos.load(std::memory_order_seq_cst);
    if (slot_free(pos, std::memory_order_seq_cst) == status::full) return false;
    return !block_ || pos < gate(std::memory_order_seq_cst) + geometry_.slot_count;
  }
  // Is the next sequence held back by the durable gate alone (the live gate and the
  // slot's previous lap would let it be taken)?
  bool durable_gate_only() const noexcept {
    if (!durable_gate_) return false;
    const std::uint64_t pos = control_->claim_pos.load(std::memory_order_acquire);
    const std::uint64_t n = geometry_.slot_count;
    const std::uint64_t durable = control_->durable_gate.load(std::memory_order_acquire);
    return slot_free(pos, std::memory_order_acquire) == status::ok && durable != no_position && pos >= durable + n &&
           pos < gate(std::memory_order_acquire) + n;
  }

  // ---- subscriber side ----

  // On ok, `ticket` is this member's until release(). `missed` grows by the sequences
  // the group jumped over after being lapped.
  // `adopted` is set when the message is a dead member's orphan.
  status try_take(pubsub_group& g, pubsub_member& m, std::uint64_t& ticket, const std::byte*& payload,
                  std::uint64_t& size, std::uint64_t& missed, bool& adopted) noexcept {
    if (g.orphan.load(std::memory_order_acquire) != 0) {
      const status s = take_orphan(g, m, ticket, payload, size, missed);
      if (s != status::empty) {
        adopted = s == status::ok;
        return s;
      }
    }
    std::uint64_t c = g.cursor.load(std::memory_order_acquire);
    bool marked = false;  // position holds a sequence this call has not claimed
    for (;;) {
      slot_header& s = geometry_.slot(c);
      const std::uint64_t turn = s.turn.load(std::memory_order_acquire);  // C
      const std::uint64_t seq_plus_1 = turn >> 2;
      if (seq_plus_1 < c + 1 || turn == make_turn(c, turn_writing)) {
        if (marked) release(m);  // a stale position must not hold publishers back
        return status::empty;
      }
      if (seq_plus_1 == c + 1) {
        const bool skip = (turn & 3) == turn_skip;
        // Publish position = c before the CAS that claims c: its release half orders
        // this store first for a gate scan that sees the cursor past c, and a reaper
        // finds c here if this member dies holding it.
        m.position.store(c, std::memory_order_relaxed);
        marked = true;
        if (!g.cursor.compare_exchange_strong(c, c + 1, std::memory_order_acq_rel)) continue;
        if (skip) {
          ++c;
          continue;
        }
        const std::uint64_t length = s.length;
        if ((turn & 3) != turn_committed || length > geometry_.max_payload) return status::corrupt;
        ticket = c;
        payload = geometry_.payload(c);
        size = length;
        return status::ok;
      }
      // Lapped: slot(c) holds a later sequence, so claim_pos is past c + slots.
      const std::uint64_t claimed = control_->claim_pos.load(std::memory_order_acquire);
      if (claimed <= c + geometry_.slot_count) return status::corrupt;
      const std::uint64_t oldest = claimed - geometry_.slot_count;
      if (g.cursor.compare_exchange_strong(c, oldest, std::memory_order_acq_rel)) {
        missed += oldest - c;
        c = oldest;
      }
    }
  }

  // Seqlock check after reading ticket's payload in place.
  bool intact(std::uint64_t ticket) const noexcept {
#if defined(__SANITIZE_THREAD__)
    // TSan does not model fences; a seq_cst load is at least as strong here.
    return geometry_.slot(ticket).turn.load(std::memory_order_seq_cst) == make_turn(ticket, turn_committed);
#else
    std::atomic_thread_fence(std::memory_order_acquire);  // the payload reads stay before the load
    return geometry_.slot(ticket).turn.load(std::memory_order_relaxed) == make_turn(ticket, turn_committed);
#endif
  }

  void release(pubsub_member& m) noexcept {
    if (m.position.load(std::memory_order_relaxed) == no_position) return;
    if (!block_) {  // nobody waits on positions: only a reaper reads them
      m.position.store(no_position, std::memory_order_relaxed);
      return;
    }
    publish_store(m.position, no_position);  // D
    wake_sleepers(control_->space_ready);
  }

  bool has_message(const pubsub_group& g) const noexcept {
    if (g.orphan.load(std::memory_order_seq_cst) != 0) return true;
    const std::uint64_t c = g.cursor.load(std::memory_order_seq_cst);
    const std::uint64_t turn = geometry_.slot(c).turn.load(std::memory_order_seq_cst);
    return (turn >> 2) > c + 1 || ((turn >> 2) == c + 1 && (turn & 3) != turn_writing);
  }

  // Slowest sequence still needed by an active group: publishers may fill up to it + slots.
  std::uint64_t gate(std::memory_order order) const noexcept {
    std::uint64_t g = control_->claim_pos.load(order);
    for (const pubsub_group& group : tables_.groups)
      if (group.state.load(order) == static_cast<std::uint32_t>(group_state::active))
        g = std::min(g, group.cursor.load(order));
    g = std::min(g, oldest_orphan(order));  // before and after the positions, see the top
    for (const pubsub_member& m : tables_.members) g = std::min(g, m.position.load(order));
    return std::min(g, oldest_orphan(order));
  }

 private:
  std::uint64_t oldest_orphan(std::memory_order order) const noexcept {
    std::uint64_t g = no_position;
    for (const pubsub_group& group : tables_.groups)
      if (const std::uint64_t o = group.orphan.load(order);
          o != 0 && group.state.load(order) == static_cast<std::uint32_t>(group_state::active))
        g = std::min(g, o - 1);
    return g;
  }

  // Takes the group's orphan: ok with it, empty if none was there to take (or it was a
  // skip, or overwritten: counted in `missed`).
  status take_orphan(pubsub_group& g, pubsub_member& m, std::uint64_t& ticket, const std::byte*& payload,
                     std::uint64_t& size, std::uint64_t& missed) noexcept {
    std::uint64_t o = g.orphan.load(std::memory_order_acquire);
    if (o == 0) return status::empty;
    const std::uint64_t c = o - 1;
    m.position.store(c, std::memory_order_relaxed);  // before the CAS, as for the cursor
    if (!g.orphan.compare_exchange_strong(o, 0, std::memory_order_acq_rel)) {
      release(m);
      return status::empty;
    }
    const std::uint64_t turn = geometry_.slot(c).turn.load(std::memory_order_acquire);  // C
    const std::uint64_t length = geometry_.slot(c).length;
    if (turn == make_turn(c, turn_committed) && length <= geometry_.max_payload) {
      ticket = c;
      payload = geometry_.payload(c);
      size = length;
      return status::ok;
    }
    if ((turn >> 2) > c + 1) ++missed;  // overwritten since its reader died
    release(m);
    return status::empty;
  }

  // ok: slot(pos)'s previous lap is done; busy: someone already took pos; full: the
  // previous lap's publisher is still writing.
  status slot_free(std::uint64_t pos, std::memory_order order) const noexcept {
    const std::uint64_t turn = geometry_.slot(pos).turn.load(order);
    const std::uint64_t n = geometry_.slot_count;
    if (pos < n) return turn == 0 ? status::ok : status::busy;
    const std::uint64_t prev_plus_1 = pos + 1 - n;
    if ((turn >> 2) > prev_plus_1) return status::busy;
    if ((turn >> 2) == prev_plus_1 && (turn & 3) != turn_writing) return status::ok;
    return status::full;
  }

  pubsub_control* control_;
  slot_geometry geometry_;
  pubsub_tables tables_;
  bool block_;
  ticket_record* own_;
  bool durable_gate_;
  std::uint64_t gate_cache_ = 0;
};

}  // namespace shmq::detail

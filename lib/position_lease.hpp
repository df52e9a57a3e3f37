// A lease on one of the MPMC positions (enqueue_pos for producers, dequeue_pos for
// consumers): while a single participant of the role takes tickets, it holds the lease
// and moves the position with a plain store instead of a CAS. A CAS is a locked
// instruction that waits for every store before it to leave the store buffer, the last
// message's included; the plain store does not, which is what keeps a lone producer
// and a lone consumer near the SPSC ring's speed.
//
// The lease word (mpmc_control) holds:
//   0                    free: the first participant to take a ticket gets it
//   k + 1                participant k (index in the role) holds it
//   settling_bit | k + 1 participant k lost it; wait until k is not half-way through a take
//   shared               everyone uses the CAS, for the life of the segment
// Transitions: free -> k; k -> settling(k) when another participant wants a ticket;
// settling(k) -> j if k's participant is gone (dead, or detached: its lock is free),
// else -> shared. A process that finds its own participant slot holding the lease
// takes it: the one before it there is gone. Anything else in the word (corruption)
// reads as shared.
//
// Holder (every ticket):          Taker of the lease (rare):
//   H1: announce t in its record     T1: CAS the word away from k      (seq_cst)
//   H2: light fence                  T2: heavy fence (membarrier)
//   H3: load the word == k + 1 ?     T3: load k's record and the position (seq_cst);
//   H4: store position = t + 1           wait while record == position and k is live
// This is the Dekker pattern of fence.hpp. Either H3 sees T1, and the holder goes over
// to the CAS, or T3 sees H1 (and T3 then waits for H4, which the holder will run). With
// light fences H2 is only a compiler fence, made whole by T2's membarrier; without, H2
// and T2 are seq_cst fences. So no one CASes the position while a holder's plain store
// may still land on it. The release of H4 carries H1 to whoever acquires the position
// (ticket_records.hpp), as the CAS did.
//
// A holder that stops between H1 and H4 (SIGSTOP) holds a taker back until it resumes
// or dies; the taker gives up after a bounded spin and reports that it would block.
#pragma once

#include <atomic>
#include <cstdint>

#include "fence.hpp"
#include "ticket_records.hpp"
#include "wait_word.hpp"

namespace shmq::detail {

class position_lease {
 public:
  enum class state {
    held,      // move the position with hold() / plain stores
    shared,    // move it with a CAS
    settling,  // a former holder may be half-way through a take: would block, try again
  };

  // `self`: the caller's index in `role`, whose records are the role's ticket records.
  position_lease(std::atomic<std::uint32_t>& word, std::atomic<std::uint64_t>& position,
                 ticket_table role, std::uint32_t self) noexcept
      : word_(&word), position_(&position), role_(role), self_(self) {}

  // Where the caller stands before taking a ticket.
  state acquire() noexcept {
    if (held_) return state::held;
    if (shared_) return state::shared;
    return resolve();
  }

  // H2, H3: after announcing ticket t in the caller's record. True: the caller still
  // holds the lease and must now store_position(t + 1); false: take t with the CAS.
  bool confirm() noexcept {
    light_side_fence();  // H2
    // H3: relaxed; H2 (or the taker's membarrier) orders it after H1.
    if (word_->load(std::memory_order_relaxed) == self_ + 1) return true;
    held_ = false;
    return false;
  }

  // H4. Release: publishes the announcement before it (ticket_records.hpp).
  void store_position(std::uint64_t next) noexcept { position_->store(next, std::memory_order_release); }

 private:
  static constexpr std::uint32_t free_word = 0;
  static constexpr std::uint32_t settling_bit = 0x8000'0000u;
  static constexpr std::uint32_t shared_word = 0xFFFF'FFFFu;
  static constexpr unsigned settle_spins = 1u << 14;  // then report would-block

  // H2: a compiler fence where takers' membarrier reaches this process, else a full one.
  static void light_side_fence() noexcept {
    if (light_fences.load(std::memory_order_relaxed))
      std::atomic_signal_fence(std::memory_order_seq_cst);
    else
      std::atomic_thread_fence(std::memory_order_seq_cst);
  }

  [[gnu::noinline, gnu::cold]] state resolve() noexcept {
    // acquire: pairs with the seq_cst CAS that set shared after settling (below).
    std::uint32_t w = word_->load(std::memory_order_acquire);
    for (;;) {
      if (w == free_word) {
        // Nobody took a ticket in this role yet: no position store can be pending.
        if (word_->compare_exchange_weak(w, self_ + 1, std::memory_order_seq_cst)) return hold();
        continue;
      }
      const bool settling = w != shared_word && (w & settling_bit) != 0;
      const std::uint32_t k = (w & ~settling_bit) - 1;
      if (w == shared_word || k >= role_.records.size()) {
        shared_ = true;
        return state::shared;
      }
      if (!settling) {
        // This process holds participant slot k: the one that held the lease before
        // it here is gone and cannot store any more.
        if (k == self_) return hold();
        // T1, seq_cst: one side of the Dekker pattern with H3.
        if (!word_->compare_exchange_weak(w, w | settling_bit, std::memory_order_seq_cst)) continue;
        w |= settling_bit;
      }
      // T2, T3: wait until k cannot store the position any more; then whoever gets here
      // first moves the word on. The acquire side of the wait: seeing k's plain store
      // of the position (acquire) orders it before the CAS below and everything after.
      if (!settled(k)) return state::settling;
      // k == self_: someone live took the lease from this participant.
      const std::uint32_t next = k != self_ && role_.not_live(k) ? self_ + 1 : shared_word;
      // seq_cst (release): whoever acquires `shared` or `self` from it sees k's last
      // position store, which settled() acquired.
      if (word_->compare_exchange_strong(w, next, std::memory_order_seq_cst)) {
        if (next == self_ + 1) return hold();
        shared_ = true;
        return state::shared;
      }
    }
  }

  state hold() noexcept {
    held_ = true;
    return state::held;
  }

  // Is participant k, which held the lease, past any take it started while holding it?
  bool settled(std::uint32_t k) noexcept {
    if (k == self_) return true;  // the caller's own slot: not half-way through anything
    std::atomic_thread_fence(std::memory_order_seq_cst);
    if (!heavy_fence()) return false;  // no barrier could be forced: try again later
    for (unsigned i = 1; i <= settle_spins; ++i) {
      const std::uint64_t announced = role_.records[k].ticket.load(std::memory_order_seq_cst);  // T3
      if (announced != position_->load(std::memory_order_seq_cst)) return true;
      if ((i & 63u) == 0) {
        if (role_.not_live(k)) return true;  // died half-way: it stores nothing more
        yield_cpu();
      }
      cpu_relax();
    }
    return false;
  }

  std::atomic<std::uint32_t>* word_;
  std::atomic<std::uint64_t>* position_;
  ticket_table role_;
  std::uint32_t self_;
  bool held_ = false;    // process-local: what this participant last learned
  bool shared_ = false;  // shared is for good
};

}  // namespace shmq::detail

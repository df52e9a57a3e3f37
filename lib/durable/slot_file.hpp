// What a file-backed slotted channel (MPMC queue, pub/sub) adds to its ring, which it
// uses unchanged, mapped MAP_SHARED from the file: slot seals, flushes of slots, and an
// endpoint's flush schedule. docs/durability.md, "Slotted channels", has the argument.
//
// A slot is written by one producer (its ticket's taker), then released; when the level
// flushes, each slot is whole pages of its own (file_slot_size_for). So a flush of one
// slot promises only that slot's pages, and no later write to another slot can tear
// them: unlike the SPSC ring, no padding and no durable head are needed.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>

#include "../mpmc_ring.hpp"  // slot_geometry
#include "../segment.hpp"
#include "durable/file_ring.hpp"  // file_policy
#include "shmq/status.hpp"

namespace shmq::detail {

// The geometry of a file channel's slots (payload after the seal).
slot_geometry file_slot_geometry(std::byte* data, std::uint64_t slots, std::uint64_t max_message,
                                 bool whole_pages) noexcept;

// Writes ticket t's seal: the CRC32C of (t, length, state) and the payload's `length`
// bytes. Call before the store that publishes the slot.
void seal_slot(const slot_geometry& g, std::uint64_t t, std::uint32_t length, std::uint32_t state) noexcept;

// What slot `index` holds by its seal, trusting nothing: ok only if the stored length is
// possible, the ticket maps to this slot (and is not absurdly large) and the CRC checks out.
struct sealed_slot {
  bool ok = false;
  std::uint64_t ticket = 0;
  std::uint32_t length = 0;
  std::uint32_t state = 0;
};
sealed_slot read_seal(const slot_geometry& g, std::uint64_t index) noexcept;
// Clears slot `index`'s seal (a slot the recovery gives back to producers).
void clear_seal(const slot_geometry& g, std::uint64_t index) noexcept;

// Flushes the pages of the slots of tickets [from, to) (all of them if that is a lap or
// more). 0 or an errno.
int flush_slots(const segment& seg, const slot_geometry& g, std::uint64_t from, std::uint64_t to) noexcept;

// An endpoint's flushing of the slots it touches: a producer's after it sealed and
// published them, an MPMC consumer's after it released them (the turn word is in the
// slot's first page). per_commit: on the caller's thread, at once; group_commit: every
// group_messages touches, or at the first one group_interval after the last flush, on a
// background thread (flush_thread.hpp) started by the first touch; none: never. A failed
// flush poisons the endpoint (io_error from then on) and, through `poisoned`, the
// channel for later attachers in this boot. Default-constructed (/dev/shm): does nothing.
class slot_durability {
 public:
  slot_durability() noexcept;
  slot_durability(const segment& seg, const slot_geometry& g, std::atomic<std::uint32_t>& poisoned);
  slot_durability(slot_durability&&) noexcept;
  slot_durability& operator=(slot_durability&&) noexcept;
  ~slot_durability();  // waits for a background flush asked for

  bool poisoned() const noexcept;
  // Another flush of this endpoint's (a checkpoint) failed with `e`: poisoned from now on.
  status fail(int e) noexcept;
  status state() const noexcept { return poisoned() ? status::io_error : status::ok; }
  shmq::durability level() const noexcept;
  // Ticket t was just published (sealed first) or released by this endpoint.
  status touched(std::uint64_t t) noexcept;
  // Returns once every slot touched before is on stable storage (group commit, and
  // per_commit, which has nothing left; none: at once).
  status sync() noexcept;

 private:
  struct state_t;
  std::unique_ptr<state_t> s_;
};

}  // namespace shmq::detail

// What a file-backed SPSC channel adds to the ring of lib/spsc_ring.hpp (which it uses
// unchanged, mapped MAP_SHARED from the file): record seals, when to flush, consumer
// checkpoints, and the recovery after a reboot. docs/durability.md has the argument.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "../layout.hpp"
#include "../registry.hpp"
#include "../segment.hpp"
#include "shmq/durability.hpp"

namespace shmq::detail {

// Locks on a file channel's descriptor (registry.hpp), past every participant slot:
// attaching (the recovery) and writing a checkpoint each happen under one.
inline constexpr std::uint64_t attach_lock = creator_lock + 1;
inline constexpr std::uint64_t checkpoint_lock = creator_lock + 2;

struct file_policy {
  shmq::durability level = durability::none;
  std::uint64_t group_messages = 1;
  std::chrono::nanoseconds group_interval{0};
  bool flushes() const noexcept { return level != durability::none; }
};
file_policy file_policy_of(const segment_header& h) noexcept;

// Seals every message record published in [from, to): the CRC32C over position, length
// (seal included, as in the commit word) and the caller's bytes, and position's high half
// (the commit word's tag holds the low half). The producer seals lazily, a page of
// records at a time and always before a flush (docs/durability.md, "Seals"); sealing a
// record again writes the same bytes. Returns where it stopped: the first record
// starting at or past `to` (or the first that is not a whole record).
std::uint64_t seal_records(const ring_geometry& g, std::uint64_t from, std::uint64_t to) noexcept;
bool seal_intact(const ring_geometry& g, std::uint64_t position, std::uint64_t length) noexcept;

// Flushes the ring bytes of positions [from, to) and the commit word at `to` (cleared
// for the next record). 0 or an errno.
int flush_ring(const segment& seg, const ring_geometry& g, std::uint64_t from, std::uint64_t to) noexcept;

// The ring pages of positions [from, to), made writable again after their flush
// (prefault_writable): the producer's next lap over them takes no write fault.
void prefault_ring(const ring_geometry& g, std::uint64_t from, std::uint64_t to) noexcept;

// Writes `head` into the older checkpoint slot under checkpoint_lock and, with `flush`,
// flushes it; then (only once it is on stable storage) raises control.durable_head to
// it. 0 or an errno.
int write_checkpoint(const segment& seg, spsc_control& control, std::uint64_t head, const std::string& boot,
                     bool flush) noexcept;

// Run by the first endpoint to attach (none alive), under attach_lock, before the control
// block is read. If the newest checkpoint was written in another boot, the machine went
// down with the file open: rebuild the control block from the header and the checkpoint,
// keep the records from its head that check out, drop the rest of the ring (zeroed, so
// that nothing of a dropped tail comes back later), mark what is left redelivered, and
// write a checkpoint of this boot. Returns whether it did; throws shmq::error (corrupt:
// no valid checkpoint; io_failed: the flush of the result failed).
bool recover_after_reboot(const segment& seg, const file_policy& policy);

}  // namespace shmq::detail

// A file-backed MPMC queue (docs/durability.md, "Slotted channels"): its file layout and
// the recovery after a reboot. The ring (mpmc_ring.hpp) is used unchanged; seals and
// flushes are slot_file.hpp's.
#pragma once

#include <cstdint>

#include "../layout.hpp"
#include "../segment.hpp"
#include "durable/checkpoint.hpp"
#include "durable/file_ring.hpp"

namespace shmq::detail {

// Limits of the queue as a file's header keeps them (file_limits).
struct mpmc_file_limits {
  std::uint64_t slots, max_message;
  std::uint32_t producers, consumers;
};

// The file's checkpoints: a boot record only (MPMC keeps its state in the slots).
inline checkpoint_area mpmc_checkpoints(const segment_header& h, const mpmc_file_limits& l) noexcept {
  return slotted_checkpoints(h, mpmc_control_size(l.producers, l.consumers), 0);
}

// At creation: the limits into the header, an initial boot record (unflushed: the
// creator syncs the whole file).
void init_mpmc_file(segment& seg, const mpmc_file_limits& l);

// Run by the first endpoint to attach (none alive), under attach_lock, before the control
// block is read. If the boot record is from another boot (or torn), the machine went
// down with the file open: rebuild the control block from the header, keep every slot
// whose seal checks out and that holds an unreleased message of the newest lap, turn
// the rest of that lap into skips, give the other slots back to producers, flag what is
// kept redelivered, flush it all and write a boot record of this boot. Returns whether
// it did; throws shmq::error (corrupt: impossible limits in the header; io_failed: a
// flush failed).
bool recover_mpmc_after_reboot(const segment& seg);

}  // namespace shmq::detail

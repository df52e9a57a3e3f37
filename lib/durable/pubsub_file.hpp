// A file-backed publish/subscribe channel (docs/durability.md, "Pub/sub in a file"): its
// file layout, the named groups' checkpoints, and the recovery after a reboot. The ring
// (pubsub_ring.hpp) is used unchanged; seals and slot flushes are slot_file.hpp's.
//
// A named group's durable position is its floor: the lowest sequence that none of its
// members has released (its cursor, its members' positions, its orphan). Each checkpoint
// holds every named group's floor (pubsub_group_checkpoint, one entry per group index);
// a floor never goes below the newest checkpoint's for the same group. Private
// subscriptions are not kept: they end with their subscriber.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "../layout.hpp"
#include "../pubsub_ring.hpp"
#include "../segment.hpp"
#include "durable/checkpoint.hpp"
#include "durable/file_ring.hpp"
#include "shmq/status.hpp"

namespace shmq::detail {

// Limits of the channel as a file's header keeps them (file_slots, file_max_message,
// file_limits = publishers, subscribers, groups, policy).
struct pubsub_file_limits {
  std::uint64_t slots, max_message;
  std::uint32_t publishers, subscribers, groups, policy;
};

inline std::uint64_t pubsub_checkpoint_payload(std::uint32_t groups) noexcept {
  return std::uint64_t{groups} * sizeof(pubsub_group_checkpoint);
}
inline std::uint64_t pubsub_file_control_size(const pubsub_file_limits& l) noexcept {
  return slotted_file_control_size(pubsub_control_size(l.publishers, l.subscribers, l.groups),
                                   pubsub_checkpoint_payload(l.groups));
}
inline checkpoint_area pubsub_checkpoints(const segment_header& h, const pubsub_file_limits& l) noexcept {
  return slotted_checkpoints(h, pubsub_control_size(l.publishers, l.subscribers, l.groups),
                             pubsub_checkpoint_payload(l.groups));
}

// What a checkpoint needs of an attached channel.
struct pubsub_file_view {
  const segment* seg;
  pubsub_control* control;
  pubsub_tables tables;
  pubsub_file_limits limits;
};

// The limits in a file's header, checked (errc::corrupt if impossible).
pubsub_file_limits pubsub_limits_of(const segment& seg);

// At creation: the limits into the header, durable_gate none, an initial checkpoint
// (unflushed: the creator syncs the whole file).
void init_pubsub_file(segment& seg, const pubsub_file_limits& l);

// Writes a checkpoint of every named group's floor under checkpoint_lock; with `flush`,
// flushes it and only then sets control.durable_gate (block policy) to the lowest floor
// of the groups it found active. 0 or an errno.
int write_group_checkpoint(const pubsub_file_view& f, bool flush) noexcept;

// Run by the first endpoint to attach (none alive), under attach_lock, before the control
// block is read. If the newest checkpoint is from another boot (or none is valid), the
// machine went down with the file open: keep every slot whose seal checks out and that
// holds a committed message of the newest lap, turn the rest of that lap into sealed
// skips, rebuild the control block from the header and the named groups (idle, each at
// its floor) from the checkpoint, flag what is kept redelivered, flush it all and write a
// checkpoint of this boot. Returns whether it did; throws shmq::error (corrupt:
// impossible limits or floors; io_failed: a flush failed).
bool recover_pubsub_after_reboot(const segment& seg);

// A subscriber's checkpoints of its group's releases: per_commit, a flushed checkpoint
// before release returns; group_commit, one on a background thread every group_messages
// releases (or a quarter ring), or at the first release group_interval after the last,
// and sync() waits for one covering every release before it; none, an unflushed one at
// close. A failed flush poisons the subscriber and, through control.poisoned, the channel.
// Default-constructed (/dev/shm): does nothing.
class group_checkpoints {
 public:
  group_checkpoints() noexcept;
  explicit group_checkpoints(const pubsub_file_view& f);
  group_checkpoints(group_checkpoints&&) noexcept;
  group_checkpoints& operator=(group_checkpoints&&) noexcept;
  ~group_checkpoints();

  bool poisoned() const noexcept;
  // After joining a named group: at a flushing level, a flushed checkpoint that holds it
  // (throws errc::io_failed).
  void joined();
  status released() noexcept;
  status sync() noexcept;
  // After leaving: the last checkpoint (unflushed under none).
  void closed() noexcept;

 private:
  struct state_t;
  std::unique_ptr<state_t> s_;
};

}  // namespace shmq::detail

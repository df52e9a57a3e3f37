// The producer side of the slotted rings, MPMC queue and pub/sub alike: claim a ticket,
// write the payload in place, publish a message or, for an aborted loan, a skip that
// readers pass over (the ticket is taken, so its slot must still be filled).
//
// Ring provides try_claim(size, ticket), publish(ticket, size, skip), has_room() and
// seal_state(skip) (a file channel's seal, slot_file.hpp). Attached provides seg,
// control (closed, data_ready, space_ready, poisoned) and geometry (payload(ticket),
// max_payload), and may provide make_room(ring, durable) (room a checkpoint can make);
// recover_dead(const Attached&, Ring&) skips what dead
// producers left half-written and frees what dead readers hold.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>

#include "durable/slot_file.hpp"
#include "endpoint.hpp"
#include "registry.hpp"

namespace shmq::detail {

// A participant slot taken with claim_slot: its lock and its pid word.
struct claimed_slot {
  std::uint64_t lock;
  std::atomic<std::uint32_t>* pid;
};

template <class Attached, class Ring>
struct slot_producer : loan_owner {
  Attached channel;
  Ring ring;
  claimed_slot registration;
  wait_policy waiting;
  bool loan_out = false;
  bool closed_here = false;
  bool broken = false;
  catch_up_tracker catch_up;
  std::unique_ptr<readiness_handle> readiness;  // event loops: made on first use
  slot_durability durable;  // a file channel's flushing of its commits (lib/durable/)
  // About 1.5 µs of pauses on the machine of the README's figures.
  static constexpr unsigned catch_up_polls = 64;

  slot_producer(Attached a, Ring r, claimed_slot slot, const endpoint_options& o)
      : channel(std::move(a)), ring(r), registration(slot), waiting{o.spin, o.liveness_interval} {
    if (channel.seg.file_backed()) durable = slot_durability(channel.seg, channel.geometry, channel.control->poisoned);
    recover();  // first: this slot's record may hold a dead producer's ticket
    reopen_stream(*channel.control);
  }
  ~slot_producer() {
    (void)durable.sync();
    release_slot(channel.seg.fd(), registration.lock, *registration.pid);
  }
  slot_producer(const slot_producer&) = delete;
  slot_producer& operator=(const slot_producer&) = delete;

  status try_claim(std::uint64_t size, std::byte*& payload, std::uint64_t& ticket) noexcept {
    if (broken) return status::corrupt;
    if (durable.poisoned()) return status::io_error;
    status s = ring.try_claim(size, ticket);
    // A pub/sub file channel full by its durable gate alone: its checkpoint moves it.
    if constexpr (requires { channel.make_room(ring, durable); })
      if (s == status::full) {
        if (channel.make_room(ring, durable)) s = ring.try_claim(size, ticket);
        if (s == status::full && durable.poisoned()) return status::io_error;  // its checkpoint failed
      }
    // Writing back to back into a full ring, this producer is right behind the slowest
    // reader: taking each slot the moment it frees keeps the two on the same cache
    // lines, and each ticket CAS then waits for a line the reader holds.
    catch_up.note(s, status::full, catch_up_polls);
    broken = s == status::corrupt;
    if (s == status::ok) payload = channel.geometry.payload(ticket);
    return s;
  }
  bool has_room(std::uint64_t) const noexcept { return ring.has_room(); }
  wait_word& space_ready() noexcept { return channel.control->space_ready; }
  // A file channel's slot is sealed before it is published: a reader (or the recovery
  // after a reboot) never sees it published without its seal.
  status commit_loan(std::uint64_t ticket, std::size_t used) noexcept override {
    if (channel.seg.file_backed()) seal_slot(channel.geometry, ticket, static_cast<std::uint32_t>(used), Ring::seal_state(false));
    ring.publish(ticket, used, false);
    loan_out = false;
    return durable.touched(ticket);
  }
  status sync() noexcept { return durable.sync(); }
  // A skip needs no flush: a slot found unsealed after a reboot becomes one.
  void abort_loan(std::uint64_t ticket) noexcept override {
    if (channel.seg.file_backed()) seal_slot(channel.geometry, ticket, 0, Ring::seal_state(true));
    ring.publish(ticket, 0, true);
    loan_out = false;
  }
  void close() noexcept {
    close_stream(*channel.control);
    (void)durable.sync();  // a failure poisons it
  }
  // Called every liveness_interval while waiting for room (found by argument-dependent
  // lookup next to Attached).
  void recover() noexcept { recover_dead(channel, ring); }
  std::size_t max_message_size() const noexcept { return channel.geometry.max_payload; }
};

}  // namespace shmq::detail

// The shared-memory layout, version layout_version below. Everything here is read by
// other processes, so: offsets and sizes only (no pointers), lock-free atomics only,
// fixed-width fields, and every field checked by the reader before use (see segment.cpp
// and spsc_ring.hpp). File-backed channels (lib/durable/) lay the same parts out in
// whole pages: see file_control_offset below.
//
//   0        segment_header   (256 B)
//   256      (padding to 128) control block of the channel kind (spsc_control: 4992 B,
//            most of it the two wait words' tables of readiness handles)
//   data_offset               ring bytes, data_size = capacity, 128-aligned
#pragma once

#include <atomic>
#include <bit>
#include <cstddef>
#include <cstdint>

#include "shmq/detail/record_ring.hpp"
#include "wait_word.hpp"

namespace shmq::detail {

inline constexpr std::uint64_t segment_magic = 0x3147455351'4d4853ull;  // "SHMQSEG1" LE
inline constexpr std::uint32_t layout_version = 8;  // 5: readiness handle tables in wait_word; 6: file-backed channels;
                                                    // 7: wait_word::fenced_publishers; 8: file-backed MPMC and pub/sub
inline constexpr std::uint64_t max_segment_size = 1ull << 31;  // a 1 GiB ring and its tables
inline constexpr std::uint32_t state_initializing = 0;
inline constexpr std::uint32_t state_ready = 0x59444552u;  // "REDY": not a value zeroed or
                                                           // random memory is likely to hold
enum class channel_kind : std::uint32_t {
  any = 0,  // never stored: what an inspector opens a segment as
  spsc = 1,
  mpmc = 2,
  pubsub = 3,
};

struct segment_header {
  std::uint64_t magic;
  std::uint32_t layout_version;
  std::uint32_t header_size;
  std::uint64_t abi_fingerprint;
  std::uint64_t total_size;
  std::uint32_t kind;  // channel_kind
  std::uint32_t creator_pid;
  std::uint64_t control_offset;
  std::uint64_t control_size;
  std::uint64_t data_offset;
  std::uint64_t data_size;
  std::uint64_t registry_offset;  // reserved for the participant registry; 0 = none
  std::uint64_t registry_size;
  // Written last by the creator (release), read first by openers (acquire).
  std::atomic<std::uint32_t> state;
  // File-backed channels (lib/durable/, docs/durability.md); all 0 in /dev/shm.
  std::uint32_t durability;         // shmq::durability
  std::uint64_t file_format;        // file_format_v1: records carry a CRC32C prefix
  std::uint64_t group_messages;     // group commit: flush every this many messages
  std::uint64_t group_interval_ns;  // ... or this long after the last flush
  std::uint64_t file_max_message;   // the control block's max_message_size, kept here too
  // Slotted file channels (MPMC, pub/sub): what the recovery after a reboot rebuilds the
  // control block from. file_limits: producers, consumers (MPMC); publishers,
  // subscribers, groups, overflow policy (pub/sub).
  std::uint64_t file_slots;
  std::uint32_t file_limits[4];
  std::uint64_t reserved[13];
};
static_assert(sizeof(segment_header) == 256);
static_assert(offsetof(segment_header, state) == 88);
static_assert(offsetof(segment_header, file_max_message) == 120);
static_assert(offsetof(segment_header, file_limits) == 136);
inline constexpr std::uint64_t file_format_v1 = 0x31454c4946'514d48ull;  // "HMQFILE1" LE


// A consumer position on stable storage, written by a flush into the older of the two
// slots (a torn write leaves the other), checked by CRC32C.
struct file_checkpoint {
  std::uint64_t sequence;  // the newer valid slot wins
  std::uint64_t head;      // the consumer's position when it was written
  char boot_id[40];        // the boot it was written in (/proc/sys/kernel/random/boot_id)
  std::uint32_t crc;       // CRC32C of the bytes before it
  std::uint32_t payload_crc;  // CRC32C of the kind's bytes after it (pub/sub: group cursors)
};
static_assert(sizeof(file_checkpoint) == 64);
static_assert(offsetof(file_checkpoint, crc) == 56);

// Control block of an SPSC record ring. Each hot index has its own 128-byte pair of
// cache lines, so the adjacent-line prefetcher does not drag the other side's line.
struct spsc_control {
  alignas(128) std::atomic<std::uint64_t> tail;  // producer: end of the last commit
  alignas(128) std::atomic<std::uint64_t> head;  // consumer: start of the oldest unreleased
  // consumer: head when it took a message. Equal to head at attach: the last consumer
  // died holding that message, so the next one gets it again as a redelivery.
  std::atomic<std::uint64_t> reading;
  alignas(128) wait_word data_ready;             // the consumer sleeps here when empty
  alignas(128) wait_word space_ready;            // the producer sleeps here when full
  alignas(128) std::uint64_t capacity;           // ring bytes, power of two
  std::uint64_t max_message_size;
  std::atomic<std::uint32_t> closed;        // 1 after producer close(), until a producer attaches
  std::atomic<std::uint32_t> producer_pid;  // 0 = no producer attached
  std::atomic<std::uint32_t> consumer_pid;  // 0 = no consumer attached
  std::uint32_t reserved0;
  // Messages handed out again, for shmq stat: touched only on a redelivery, never per message.
  std::atomic<std::uint64_t> redelivered;
  // Durable file channels only (lib/durable/). A head the consumer knows is on stable
  // storage: the producer reuses ring bytes only below it + capacity, so a head read
  // back after a power loss never points at bytes a newer lap overwrote.
  std::atomic<std::uint64_t> durable_head;
  // Set by the recovery after a reboot: every message before it may have been handed
  // out before the power went, so each is flagged redelivered.
  std::atomic<std::uint64_t> redeliver_until;
  std::atomic<std::uint32_t> poisoned;  // an errno: a flush failed (page cache only)
  std::uint32_t reserved1;
  std::uint64_t reserved[7];
};
static_assert(offsetof(spsc_control, tail) == 0);
static_assert(offsetof(spsc_control, head) == 128);
static_assert(offsetof(spsc_control, reading) == 136);
static_assert(offsetof(spsc_control, data_ready) == 256);
static_assert(offsetof(spsc_control, space_ready) == 256 + sizeof(wait_word));
static_assert(offsetof(spsc_control, capacity) == 256 + 2 * sizeof(wait_word));
static_assert(offsetof(spsc_control, redelivered) == offsetof(spsc_control, capacity) + 32);
static_assert(sizeof(spsc_control) == offsetof(spsc_control, capacity) + 128);
static_assert(offsetof(spsc_control, durable_head) == offsetof(spsc_control, capacity) + 40);
static_assert(offsetof(spsc_control, poisoned) == offsetof(spsc_control, capacity) + 56);

// A file channel's layout keeps every part that changes out of the pages of every part
// that must survive a torn write: after a power loss any 512-byte sector of a page
// written since the last flush may hold old, new or garbage bytes (docs/durability.md).
//   0       segment_header, alone in its page, written only before the file is ready
//   4096    control block (spsc_control), rebuilt by the recovery after a reboot, in
//           whole pages of its own (two: it holds the wait words' readiness tables)
//   12288   checkpoint slot 0, its own page
//   16384   checkpoint slot 1, its own page
//   20480   ring bytes (file_page in record_ring.hpp is the same 4096)
inline constexpr std::uint64_t file_slot_stride = 4096;
inline constexpr std::uint64_t file_control_offset = 4096;
inline constexpr std::uint64_t file_checkpoint_offset =  // from the control block
    (sizeof(spsc_control) + file_slot_stride - 1) / file_slot_stride * file_slot_stride;
inline constexpr std::uint64_t file_control_size = file_checkpoint_offset + 2 * file_slot_stride;
static_assert(file_slot_stride == file_page);

static_assert(std::atomic<std::uint64_t>::is_always_lock_free);
static_assert(std::atomic<std::uint32_t>::is_always_lock_free);
static_assert(std::atomic_ref<std::uint64_t>::is_always_lock_free);

// Records in the ring: the format is in shmq/detail/record_ring.hpp, which the
// public SPSC endpoints inline.
inline constexpr std::uint64_t min_capacity = 4096;
inline constexpr std::uint64_t max_capacity = 1ull << 30;

// Largest payload a ring of `capacity` bytes can take: a record, the padding before it
// at the wrap (at most one record less 8 bytes), and the 8-byte gap always kept free
// must fit.
constexpr std::uint64_t max_payload_for(std::uint64_t capacity) noexcept {
  return capacity / 2 - record_header_size;
}
static_assert((record_size(max_payload_for(min_capacity)) - record_alignment) +
                  record_size(max_payload_for(min_capacity)) + record_header_size <=
              min_capacity);

// ---- Slotted rings (MPMC queue, publish/subscribe) ----
//
// A slot is a 16-byte header and max_message_size payload bytes, rounded up to 64 (in a
// file channel a 16-byte slot_seal comes between the two: file_slot_size_for).
//   0       8        12      16
//   | turn  | length | flags | payload ...
// `turn` says whose turn the slot is (see mpmc_ring.hpp and pubsub_ring.hpp); it is the
// only field written by one side and read by the other without another handshake.
struct slot_header {
  std::atomic<std::uint64_t> turn;
  std::uint32_t length;
  std::uint32_t flags;  // slot_skip: an aborted loan, no message
};
static_assert(sizeof(slot_header) == 16);
inline constexpr std::uint32_t slot_skip = 1;

// In a file channel a slot's header is followed by its seal, and the payload comes
// after both (slot_geometry::payload_offset). The seal is written before the turn store
// that publishes the slot (lib/durable/slot_file.hpp); the recovery after a reboot
// keeps a slot only if its seal checks out. Header and seal share the slot's first
// 512-byte sector, so a torn write leaves both old, both new or both garbage.
struct slot_seal {
  std::uint64_t ticket;  // the ticket (MPMC) or sequence (pub/sub) the slot holds
  std::uint32_t crc;     // CRC32C of ticket, length, state and the payload's bytes
  std::uint32_t state;   // the kind's: slot_skip (MPMC flags), turn state (pub/sub)
};
static_assert(sizeof(slot_seal) == 16);
inline constexpr std::uint64_t slot_alignment = 64;
inline constexpr std::uint64_t max_slots = 1ull << 24;
inline constexpr std::uint64_t max_slot_bytes = 1ull << 30;  // slots * slot size
inline constexpr std::uint32_t max_endpoints = 1024;         // per role and channel

inline constexpr std::uint64_t no_ticket = ~std::uint64_t{0};

// The ticket a producer (MPMC, pub/sub) or an MPMC consumer is working on, one record
// per participant slot, each on its own cache-line pair. Stored before the position CAS
// that takes the ticket, so whoever finds the ticket's slot stuck can tell whether its
// taker is alive (ticket_records.hpp). Left in place afterwards: a stale ticket never matches
// a stuck slot again, because turns only grow.
struct ticket_record {
  alignas(128) std::atomic<std::uint64_t> ticket;  // no_ticket: none
  std::uint64_t reserved[15];
};
static_assert(sizeof(ticket_record) == 128);

constexpr std::uint64_t slot_size_for(std::uint64_t max_message) noexcept {
  return (sizeof(slot_header) + max_message + slot_alignment - 1) & ~(slot_alignment - 1);
}

// A slotted file channel (MPMC, pub/sub) lays out, after the header page: the kind's
// control block in whole pages; two checkpoint slots of whole pages each (a
// file_checkpoint, then the kind's bytes: none for MPMC, the named groups' cursors for
// pub/sub); then the slots. When the level flushes, each slot is whole pages of its own,
// so that no write to one slot touches a page of another (docs/durability.md).
constexpr std::uint64_t file_pages(std::uint64_t bytes) noexcept {
  return (bytes + file_page - 1) / file_page * file_page;
}
constexpr std::uint64_t slotted_checkpoint_stride(std::uint64_t payload) noexcept {
  return file_pages(sizeof(file_checkpoint) + payload);
}
constexpr std::uint64_t slotted_file_control_size(std::uint64_t control, std::uint64_t payload) noexcept {
  return file_pages(control) + 2 * slotted_checkpoint_stride(payload);
}
constexpr std::uint64_t file_slot_size_for(std::uint64_t max_message, bool whole_pages) noexcept {
  const std::uint64_t bytes = sizeof(slot_header) + sizeof(slot_seal) + max_message;
  return whole_pages ? file_pages(bytes) : (bytes + slot_alignment - 1) & ~(slot_alignment - 1);
}

// Control block of an MPMC queue, followed by max_producers + max_consumers pid words
// (padded to 128 bytes) and as many ticket records, producers first.
struct mpmc_control {
  alignas(128) std::atomic<std::uint64_t> enqueue_pos;  // next ticket for a producer
  alignas(128) std::atomic<std::uint64_t> dequeue_pos;  // next ticket for a consumer
  alignas(128) wait_word data_ready;                    // consumers sleep here when empty
  alignas(128) wait_word space_ready;                   // producers sleep here when full
  alignas(128) std::uint64_t slot_count;                // power of two
  std::uint64_t slot_size;
  std::uint64_t max_message_size;
  std::uint32_t max_producers;
  std::uint32_t max_consumers;
  std::atomic<std::uint32_t> closed;
  std::atomic<std::uint32_t> producer_lease;  // who moves enqueue_pos (position_lease.hpp)
  std::atomic<std::uint32_t> consumer_lease;  // who moves dequeue_pos
  std::uint32_t reserved0;
  // Messages handed out again (adopted from dead consumers), for shmq stat: touched
  // only on a redelivery, never per message.
  std::atomic<std::uint64_t> redelivered;
  // Durable file channels only (lib/durable/), as in spsc_control: tickets before
  // redeliver_until are flagged redelivered (the recovery after a reboot sets it);
  // poisoned holds the errno of a failed flush (page cache only).
  std::atomic<std::uint64_t> redeliver_until;
  std::atomic<std::uint32_t> poisoned;
  std::uint32_t reserved1;
  std::uint64_t reserved[7];
};
static_assert(offsetof(mpmc_control, dequeue_pos) == 128);
static_assert(offsetof(mpmc_control, consumer_lease) == offsetof(mpmc_control, slot_count) + 40);
static_assert(offsetof(mpmc_control, slot_count) == 256 + 2 * sizeof(wait_word));
static_assert(offsetof(mpmc_control, redelivered) == offsetof(mpmc_control, slot_count) + 48);
static_assert(sizeof(mpmc_control) == offsetof(mpmc_control, slot_count) + 128);

constexpr std::uint64_t pid_words_size(std::uint64_t count) noexcept {
  return (4 * count + 127) & ~std::uint64_t{127};
}
constexpr std::uint64_t mpmc_control_size(std::uint64_t producers, std::uint64_t consumers) noexcept {
  return sizeof(mpmc_control) + pid_words_size(producers + consumers) +
         (producers + consumers) * sizeof(ticket_record);
}

// Control block of a publish/subscribe channel, followed by max_groups pubsub_group,
// max_subscribers pubsub_member, max_publishers pid words (padded to 128 bytes) and
// max_publishers ticket records.
struct pubsub_control {
  alignas(128) std::atomic<std::uint64_t> claim_pos;  // next sequence a publisher takes
  alignas(128) wait_word data_ready;                  // subscribers sleep here
  alignas(128) wait_word space_ready;                 // publishers sleep here
  alignas(128) std::uint64_t slot_count;              // power of two
  std::uint64_t slot_size;
  std::uint64_t max_message_size;
  std::uint32_t policy;  // shmq::overflow_policy
  std::uint32_t max_publishers;
  std::uint32_t max_subscribers;
  std::uint32_t max_groups;
  std::atomic<std::uint32_t> closed;
  std::uint32_t reserved1;  // (groups and members change under a file lock, registry.hpp)
  // For shmq stat, over every subscriber: orphans handed out again, and messages lost to
  // overwriting. Touched only on those rare paths, never per message.
  std::atomic<std::uint64_t> redelivered;
  std::atomic<std::uint64_t> missed;
  // Durable file channels only, as in mpmc_control.
  std::atomic<std::uint64_t> redeliver_until;
  std::atomic<std::uint32_t> poisoned;
  std::uint32_t reserved2;
  // A flushing file channel under block: the lowest floor of the named groups that were
  // active in the last checkpoint known to be on stable storage (no_position: none).
  // Publishers take sequence p only below it + slot_count, besides the live gate, so a
  // floor read back after a power loss never points at a slot a newer lap overwrote.
  std::atomic<std::uint64_t> durable_gate;
  std::uint64_t reserved[5];
};
static_assert(offsetof(pubsub_control, slot_count) == 128 + 2 * sizeof(wait_word));
static_assert(offsetof(pubsub_control, redelivered) == offsetof(pubsub_control, slot_count) + 48);
static_assert(sizeof(pubsub_control) == offsetof(pubsub_control, slot_count) + 128);
static_assert(offsetof(pubsub_control, durable_gate) == offsetof(pubsub_control, slot_count) + 80);

inline constexpr std::size_t group_name_size = 48;  // 47 characters and a NUL
enum class group_state : std::uint32_t { free = 0, active = 1, idle = 2 };

// A group hands each sequence to one of its members (a private subscription is a group
// of one). cursor only moves forward, by CAS. The other fields change under the table
// lock (a file lock, see registry.hpp).
struct pubsub_group {
  alignas(128) std::atomic<std::uint64_t> cursor;  // next sequence the group hands out
  std::atomic<std::uint32_t> state;                // group_state
  std::uint32_t members;
  char name[group_name_size];  // empty: private
  // A sequence + 1 that a member died holding, for the next member to take again; 0 =
  // none. Set under the table lock, taken by CAS.
  std::atomic<std::uint64_t> orphan;
  std::uint64_t reserved[7];
};
static_assert(offsetof(pubsub_group, orphan) == 64);
static_assert(sizeof(pubsub_group) == 128);

inline constexpr std::uint64_t no_position = ~std::uint64_t{0};

struct pubsub_member {
  alignas(128) std::atomic<std::uint64_t> position;  // sequence being read, or no_position
  std::atomic<std::uint32_t> pid;                    // 0 = free
  std::atomic<std::uint32_t> group;                  // index into the group table (table lock)
  std::uint64_t reserved[14];
};
static_assert(sizeof(pubsub_member) == 128);

// A pub/sub file's checkpoint payload: one entry per group index, all named groups in
// every checkpoint (an empty name: a free or private slot, not kept across a reboot).
struct pubsub_group_checkpoint {
  char name[48];          // group_name_size, NUL-terminated
  std::uint64_t floor;    // the lowest sequence not released by any of its members
  std::uint32_t state;    // group_state when written (active: it gated publishers)
  std::uint32_t reserved;
};
static_assert(sizeof(pubsub_group_checkpoint) == 64);

constexpr std::uint64_t pubsub_control_size(std::uint64_t publishers, std::uint64_t subscribers,
                                            std::uint64_t groups) noexcept {
  return sizeof(pubsub_control) + groups * sizeof(pubsub_group) + subscribers * sizeof(pubsub_member) +
         pid_words_size(publishers) + publishers * sizeof(ticket_record);
}

// Changes whenever a struct above changes shape, so a process built from other sources
// is refused even if someone forgot to bump layout_version.
constexpr std::uint64_t abi_fingerprint() noexcept {
  constexpr std::uint64_t facts[] = {
      layout_version,
      sizeof(segment_header), offsetof(segment_header, total_size),
      offsetof(segment_header, control_offset), offsetof(segment_header, data_offset),
      offsetof(segment_header, registry_offset), offsetof(segment_header, state),
      sizeof(spsc_control), alignof(spsc_control), offsetof(spsc_control, head),
      offsetof(spsc_control, data_ready), offsetof(spsc_control, space_ready),
      offsetof(spsc_control, capacity), offsetof(spsc_control, closed),
      offsetof(spsc_control, producer_pid), sizeof(wait_word), offsetof(wait_word, armed),
      offsetof(wait_word, keys), record_header_size,
      sizeof(slot_header), offsetof(slot_header, length), slot_alignment, sizeof(mpmc_control),
      offsetof(mpmc_control, slot_count), offsetof(mpmc_control, closed),
      offsetof(mpmc_control, producer_lease), offsetof(mpmc_control, consumer_lease),
      sizeof(pubsub_control), offsetof(pubsub_control, slot_count), offsetof(pubsub_control, closed),
      sizeof(pubsub_group), offsetof(pubsub_group, name), offsetof(pubsub_group, orphan),
      sizeof(pubsub_member), sizeof(ticket_record), offsetof(spsc_control, reading),
      offsetof(pubsub_member, group), offsetof(spsc_control, redelivered),
      offsetof(mpmc_control, redelivered), offsetof(pubsub_control, redelivered),
      offsetof(pubsub_control, missed), offsetof(segment_header, durability),
      offsetof(segment_header, file_format), offsetof(segment_header, file_max_message),
      sizeof(file_checkpoint), file_control_size, file_page,
      offsetof(spsc_control, durable_head), offsetof(spsc_control, redeliver_until),
      offsetof(spsc_control, poisoned), offsetof(segment_header, file_slots),
      offsetof(mpmc_control, redeliver_until), offsetof(mpmc_control, poisoned),
      offsetof(pubsub_control, redeliver_until), offsetof(pubsub_control, poisoned),
      sizeof(slot_seal), offsetof(file_checkpoint, payload_crc),
      offsetof(pubsub_control, durable_gate), sizeof(pubsub_group_checkpoint),
      offsetof(pubsub_group_checkpoint, floor),
      record_alignment, padding_flag, committed_flag, sizeof(void*),
      std::endian::native == std::endian::little};
  std::uint64_t h = 0xcbf29ce484222325ull;  // FNV-1a over the facts
  for (std::uint64_t f : facts)
    for (int i = 0; i < 8; ++i) h = (h ^ ((f >> (8 * i)) & 0xff)) * 0x100000001b3ull;
  return h;
}

}  // namespace shmq::detail

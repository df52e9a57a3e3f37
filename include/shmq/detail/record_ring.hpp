// The SPSC ring's record format, and the state its two ends keep, shared by the library
// (lib/spsc_ring.hpp) and the fast paths that spsc.hpp inlines into callers.
//
// A loan that fits in the room the producer already knows of, or a read that finds a
// whole message at head, costs a few loads and stores inline. Everything else (waiting,
// the padding at the wrap, a record the checks below refuse, end of stream, recovery)
// falls through to the library, which decides; the fast paths only ever say "yes" for
// what the library would also accept. Not part of the API: it may change with the layout.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "shmq/loan.hpp"

namespace shmq::detail {

// Record in the ring: one 8-byte commit word, then the payload, padded to 8 bytes.
//
//   63                 32 31 30 29               0
//  +---------------------+--+--+-----------------+
//  |   tag = pos / 8     |P |C |  length         |   P = padding record, C = committed
//  +---------------------+--+--+-----------------+
//  |  payload (length bytes, then 0-7 pad bytes)  |
//
// A record is there only if C is set and the tag matches its position: the word the
// producer clears ahead of itself (0) never matches, whatever the position, and a word
// left from an earlier lap has another tag. length is the payload size; for a padding
// record, the bytes from its position to the end of the ring, or (a file-backed channel's
// producer after a flush, lib/durable/) to the next file_page boundary.
inline constexpr std::uint64_t record_header_size = 8;
inline constexpr std::uint64_t record_alignment = 8;
inline constexpr std::uint64_t padding_flag = 1ull << 31;
inline constexpr std::uint64_t committed_flag = 1ull << 30;
inline constexpr std::uint64_t length_mask = committed_flag - 1;

constexpr std::uint64_t record_size(std::uint64_t payload) noexcept {
  return (record_header_size + payload + record_alignment - 1) & ~(record_alignment - 1);
}
constexpr std::uint32_t record_tag(std::uint64_t position) noexcept {
  return static_cast<std::uint32_t>(position / record_alignment);
}
constexpr std::uint64_t commit_word(std::uint64_t position, std::uint64_t length,
                                    bool padding) noexcept {
  return (std::uint64_t{record_tag(position)} << 32) | (padding ? padding_flag : 0) |
         committed_flag | length;
}
// Does `word` hold a committed record for `position`?
constexpr bool record_at(std::uint64_t word, std::uint64_t position) noexcept {
  return static_cast<std::uint32_t>(word >> 32) == record_tag(position) && (word & committed_flag) != 0;
}
static_assert(!record_at(0, 0) && !record_at(0, std::uint64_t{1} << 35));

// In a file-backed channel (lib/durable/) every message record's payload starts with an
// 8-byte seal: the CRC32C of the record and the high half of its position, written at
// commit and checked when the file is opened. The caller's bytes follow it.
inline constexpr std::uint64_t file_seal_size = 8;
// A flush in a file-backed channel ends at a page boundary (padding to it): no later
// write changes a page that holds bytes whose durability was promised.
inline constexpr std::uint64_t file_page = 4096;

// A ring's geometry after validation, held in process-local memory: never re-read
// from the segment.
struct ring_geometry {
  std::byte* data;
  std::uint64_t capacity;
  std::uint64_t max_payload;
};

inline std::atomic_ref<std::uint64_t> commit_word_at(const ring_geometry& g,
                                                     std::uint64_t position) noexcept {
  return std::atomic_ref<std::uint64_t>(
      *reinterpret_cast<std::uint64_t*>(g.data + (position & (g.capacity - 1))));
}

// The padding a record of `record` bytes at `tail` needs first: the rest of the ring
// if the record does not fit before its end, else none.
constexpr std::uint64_t padding_for(std::uint64_t capacity, std::uint64_t tail, std::uint64_t record) noexcept {
  const std::uint64_t contiguous = capacity - (tail & (capacity - 1));
  return contiguous < record ? contiguous : 0;
}
// The room a record of `record` bytes at `tail` takes: its padding, itself, and the next
// record's commit word, which stays outside the consumer's part (lib/spsc_ring.hpp).
constexpr std::uint64_t room_needed(std::uint64_t capacity, std::uint64_t tail, std::uint64_t record) noexcept {
  return padding_for(capacity, tail, record) + record + record_header_size;
}

// What a reader finds in the commit word `word` at `position`: no record yet, a padding
// record that ends at the ring's end, a message whose length fits the maximum and the
// ring's end, or something no producer writes.
enum class record_kind { none, message, padding, bad };
constexpr record_kind classify(std::uint64_t word, std::uint64_t position, std::uint64_t capacity,
                               std::uint64_t max_payload) noexcept {
  if (!record_at(word, position)) return record_kind::none;
  const std::uint64_t offset = position & (capacity - 1);
  const std::uint64_t length = word & length_mask;
  if ((word & padding_flag) != 0)
    return offset != 0 && (length == capacity - offset || (length < file_page && (offset + length) % file_page == 0))
               ? record_kind::padding
               : record_kind::bad;
  return length <= max_payload && record_size(length) <= capacity - offset ? record_kind::message
                                                                           : record_kind::bad;
}

// The producer's end. `fast`: the library allows an inline loan now (no loan out, not
// closed, not broken).
struct record_writer {
  ring_geometry ring;
  std::uint64_t tail;        // where the next record goes
  std::uint64_t head_cache;  // the consumer's head as last read
  loan_owner* owner = nullptr;
  bool fast = false;
  bool loan_out = false;
  std::uint32_t seal = 0;     // file_seal_size in a file-backed channel, else 0
  std::uint32_t reserve = 0;  // file_page in a flushing file channel: room kept for a page pad

  // A loan for `size` bytes if it fits before the ring's end in the room known;
  // otherwise an empty loan, and the library must be asked.
  shmq::loan try_fast_loan(std::size_t size) noexcept {
    if (!fast || size > ring.max_payload - seal) return {};
    const std::uint64_t record = record_size(size + seal);
    if (padding_for(ring.capacity, tail, record) != 0 ||
        room_needed(ring.capacity, tail, record) + reserve > ring.capacity - (tail - head_cache))
      return {};
    fast = false;
    loan_out = true;
    return access::make_loan(owner, 0, ring.data + (tail & (ring.capacity - 1)) + record_header_size + seal,
                             size);
  }
};

// The consumer's end. `fast`: the library allows an inline read now (no view out,
// nothing kept or to be flagged as a redelivery, not broken).
struct record_reader {
  ring_geometry ring;
  std::uint64_t head;   // start of the oldest record not released
  std::uint64_t taken;  // record bytes of the view out
  std::atomic<std::uint64_t>* reading = nullptr;
  view_owner* owner = nullptr;
  bool fast = false;
  bool view_out = false;
  std::uint32_t seal = 0;  // file_seal_size in a file-backed channel, else 0

  // The message at head if a whole one is there; otherwise an empty view, and the
  // library must be asked (it also reports what is wrong, if anything is).
  shmq::view try_fast_read() noexcept {
    if (!fast) return {};
    // acquire: pairs with the producer's release of this word; the payload is visible.
    const std::uint64_t word = commit_word_at(ring, head).load(std::memory_order_acquire);
    if (classify(word, head, ring.capacity, ring.max_payload) != record_kind::message) return {};
    const std::uint64_t offset = head & (ring.capacity - 1);
    const std::uint64_t length = word & length_mask;
    if (length < seal) return {};
    fast = false;
    view_out = true;
    taken = record_size(length);
    reading->store(head, std::memory_order_relaxed);  // see lib/spsc_ring.hpp, consumer step 3
    return access::make_view(owner, head, ring.data + offset + record_header_size + seal, length - seal, 0,
                             false);
  }
};

}  // namespace shmq::detail

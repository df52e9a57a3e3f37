// The SPSC record ring: variable-size records, written and read in place.
//
// Positions are 64-bit byte counts that only grow; a position's offset in the ring is
// position & (capacity - 1). The producer owns [tail, head + capacity), the consumer owns
// [head, tail). Each side keeps its own position locally and a cached copy of the other's.
//
// Producer, to write n bytes (record r = record_size(n)):
//   1. If r does not fit before the end of the ring, the rest of the ring becomes a
//      padding record (published at once) and the record goes at offset 0.
//   2. Room check: padding + r + 8 <= capacity - (tail - head). The extra 8 bytes keep
//      the next record's commit word outside the consumer's part, see 4. A loan that
//      needs no padding and fits the head last read is granted inline (record_writer).
//   3. The caller writes the payload in place.
//   4. Commit: zero the commit word of the *next* record (so the consumer never takes a
//      stale word from an earlier lap for a record), then store this record's commit
//      word (A). tail is also stored, for attach-time checks and restarts only.
// Consumer:
//   1. Load the commit word at head (C). No committed record for head's position (see
//      record_at in shmq/detail/record_ring.hpp) means empty.
//   2. Check length against the maximum and the ring's end: a record that does not fit
//      is corruption, reported, never followed. A whole message passes the same checks
//      inline (record_reader); anything else comes here.
//   3. Note head in `reading` (relaxed: only a consumer attaching after this one died
//      reads it, and the kernel's release of the dead one's lock orders that), hand
//      out the payload in place; release stores head + r (D).
//
// Ordering: A is a store-release, C a load-acquire: C seeing A makes the payload and
// the zeroed next word visible. D is a store-release, the producer's head load (B) an
// acquire: B seeing D means the consumer is done with those bytes. A and D are
// publish_store and the wait predicates load with seq_cst, because they take part in
// the sleep/wake protocol of wait_word.hpp.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "layout.hpp"
#include "shmq/status.hpp"
#include "wait_word.hpp"

namespace shmq::detail {

// Positions read from the segment must describe a ring state this code could produce.
inline bool positions_valid(std::uint64_t head, std::uint64_t tail, std::uint64_t capacity) noexcept {
  return head <= tail && tail - head <= capacity && head % record_alignment == 0 &&
         tail % record_alignment == 0;
}

class spsc_ring_producer {
 public:
  // `room_head` is the head the room check trusts: control.head, or in a durable file
  // channel control.durable_head (lib/durable/file_ring.hpp), so that no byte is reused
  // before the release that freed it is on stable storage.
  spsc_ring_producer(spsc_control& control, ring_geometry geometry, std::uint64_t tail,
                     std::atomic<std::uint64_t>& room_head) noexcept
      : control_(&control), room_head_(&room_head),
        w_{geometry, tail, room_head.load(std::memory_order_acquire)} {}

  // Reserves room for `size` payload bytes; on ok, `payload` points at them.
  status try_claim(std::uint64_t size, std::byte*& payload) noexcept {
    const ring_geometry& g = w_.ring;
    if (size > g.max_payload) return status::too_large;
    const std::uint64_t record = record_size(size);
    const std::uint64_t padding = padding_for(g.capacity, w_.tail, record);
    const std::uint64_t need = room_needed(g.capacity, w_.tail, record) + w_.reserve;
    if (need > g.capacity - (w_.tail - w_.head_cache)) {
      const std::uint64_t head = room_head_->load(std::memory_order_acquire);  // B
      if (!positions_valid(head, w_.tail, g.capacity)) return status::corrupt;
      w_.head_cache = head;
      if (need > g.capacity - (w_.tail - w_.head_cache)) return status::full;
    }
    if (padding != 0) {
      // The record after the padding starts at offset 0; clear its stale word first.
      commit_word_at(g, w_.tail + padding).store(0, std::memory_order_relaxed);
      // Publishes the padding (and the cleared word). seq_cst + wake: the consumer may
      // be asleep on exactly this word.
      publish_store(commit_word_at(g, w_.tail), commit_word(w_.tail, padding, true));
      w_.tail += padding;
      control_->tail.store(w_.tail, std::memory_order_release);
      wake_sleepers(control_->data_ready);
    }
    payload = g.data + (w_.tail & (g.capacity - 1)) + record_header_size;
    return status::ok;
  }

  // Publishes the claimed record with `size` payload bytes (at most the claimed size).
  void publish(std::uint64_t size) noexcept {
    const std::uint64_t next = w_.tail + record_size(size);
    commit_word_at(w_.ring, next).store(0, std::memory_order_relaxed);
    publish_store(commit_word_at(w_.ring, w_.tail), commit_word(w_.tail, size, false));  // A
    w_.tail = next;
    control_->tail.store(w_.tail, std::memory_order_release);
    wake_sleepers(control_->data_ready);
  }

  // Wait predicate (R of the protocol): would try_claim(size) find room now?
  bool has_room(std::uint64_t size) const noexcept {
    const std::uint64_t capacity = w_.ring.capacity, tail = w_.tail;
    const std::uint64_t head = control_->head.load(std::memory_order_seq_cst);
    if (!positions_valid(head, tail, capacity)) return true;  // let try_claim report it
    return room_needed(capacity, tail, record_size(size)) + w_.reserve <= capacity - (tail - head);
  }

  // A file channel's flush: pads the ring to the next multiple of `boundary`, in the room
  // the claims' reserve kept (so it always fits), and publishes the padding like the one
  // at the ring's end.
  void pad_to(std::uint64_t boundary) noexcept {
    const std::uint64_t part = w_.tail % boundary;
    if (part == 0) return;
    const std::uint64_t padding = boundary - part;
    commit_word_at(w_.ring, w_.tail + padding).store(0, std::memory_order_relaxed);
    publish_store(commit_word_at(w_.ring, w_.tail), commit_word(w_.tail, padding, true));  // as A
    w_.tail += padding;
    control_->tail.store(w_.tail, std::memory_order_release);
    wake_sleepers(control_->data_ready);
  }

  std::uint64_t tail() const noexcept { return w_.tail; }
  // The state the inline fast path (shmq/detail/record_ring.hpp) shares.
  record_writer& writer() noexcept { return w_; }

 private:
  spsc_control* control_;
  std::atomic<std::uint64_t>* room_head_;
  record_writer w_;
};

class spsc_ring_consumer {
 public:
  spsc_ring_consumer(spsc_control& control, ring_geometry geometry, std::uint64_t head) noexcept
      : control_(&control), r_{geometry, head, 0, &control.reading} {}

  // On ok, the oldest record's payload; it stays valid until release().
  status try_peek(const std::byte*& payload, std::uint64_t& size) noexcept {
    const ring_geometry& g = r_.ring;
    for (;;) {
      const std::uint64_t offset = r_.head & (g.capacity - 1);
      const std::uint64_t word = commit_word_at(g, r_.head).load(std::memory_order_acquire);  // C
      const std::uint64_t length = word & length_mask;
      switch (classify(word, r_.head, g.capacity, g.max_payload)) {
        case record_kind::none: return status::empty;
        case record_kind::bad: return status::corrupt;
        case record_kind::padding: advance(length); continue;
        case record_kind::message: break;
      }
      payload = g.data + offset + record_header_size;
      size = length;
      r_.taken = record_size(length);
      r_.reading->store(r_.head, std::memory_order_relaxed);
      return status::ok;
    }
  }

  // Hands the record from the last successful try_peek (or fast read) back to the producer.
  void release() noexcept { advance(r_.taken); }

  // Wait predicate (R of the protocol): is there a record at head?
  bool has_record() const noexcept {
    const std::uint64_t word = commit_word_at(r_.ring, r_.head).load(std::memory_order_seq_cst);
    return record_at(word, r_.head);
  }

  std::uint64_t head() const noexcept { return r_.head; }
  // The state the inline fast path (shmq/detail/record_ring.hpp) shares.
  record_reader& reader() noexcept { return r_; }

 private:
  void advance(std::uint64_t bytes) noexcept {
    r_.head += bytes;
    publish_store(control_->head, r_.head);  // D
    wake_sleepers(control_->space_ready);
  }

  spsc_control* control_;
  record_reader r_;
};

}  // namespace shmq::detail

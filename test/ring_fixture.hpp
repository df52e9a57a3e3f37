// An SPSC ring over process-local memory, for tests of the ring algorithm itself: the
// control block and the data area are plain heap allocations (128-aligned, zero-filled,
// as a new segment is), so a test can start at any position and read any byte, and
// ASan sees a read or write past the ring's end.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>

#include "layout.hpp"
#include "spsc_ring.hpp"

namespace shmq::test {

struct heap_ring {
  heap_ring(std::uint64_t capacity_bytes, std::uint64_t max_payload_bytes, std::uint64_t start = 0)
      : capacity(capacity_bytes),
        max_payload(max_payload_bytes),
        control(new detail::spsc_control{}),
        data(static_cast<std::byte*>(std::aligned_alloc(128, capacity_bytes))) {
    std::memset(data.get(), 0, capacity);
    control->capacity = capacity;
    control->max_message_size = max_payload;
    control->head.store(start);
    control->tail.store(start);
  }

  detail::ring_geometry geometry() const noexcept { return {data.get(), capacity, max_payload}; }

  // Endpoints start from the positions stored in the control block, as attach does.
  detail::spsc_ring_producer producer() {
    return {*control, geometry(), control->tail.load(), control->head};
  }
  detail::spsc_ring_consumer consumer() { return {*control, geometry(), control->head.load()}; }

  std::uint64_t word_at(std::uint64_t position) const noexcept {
    std::uint64_t w;
    std::memcpy(&w, data.get() + (position & (capacity - 1)), 8);
    return w;
  }
  void set_word(std::uint64_t position, std::uint64_t w) noexcept {
    std::memcpy(data.get() + (position & (capacity - 1)), &w, 8);
  }

  struct free_deleter {
    void operator()(std::byte* p) const noexcept { std::free(p); }
  };

  std::uint64_t capacity;
  std::uint64_t max_payload;
  std::unique_ptr<detail::spsc_control> control;
  std::unique_ptr<std::byte, free_deleter> data;
};

// What the ring's room rule says (spsc_ring.hpp, producer step 2), computed
// independently of the code under test.
struct ring_model {
  std::uint64_t capacity;
  std::uint64_t head;
  std::uint64_t tail;

  std::uint64_t padding_for(std::uint64_t size) const noexcept {
    const std::uint64_t contiguous = capacity - (tail & (capacity - 1));
    return contiguous < detail::record_size(size) ? contiguous : 0;
  }
  bool fits(std::uint64_t size) const noexcept {
    return padding_for(size) + detail::record_size(size) + detail::record_header_size <=
           capacity - (tail - head);
  }
};

}  // namespace shmq::test

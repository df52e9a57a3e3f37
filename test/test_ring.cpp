// The ring algorithm on its own, deterministic and single-threaded: positions are set
// directly so that every offset of the wrap, every full and empty boundary, and the
// padding record are reached on purpose rather than by luck.
#include <deque>
#include <random>
#include <set>

#include "ring_fixture.hpp"
#include "test_support.hpp"

namespace {

using namespace shmq::detail;
using shmq::status;
using shmq::test::fill_message;
using shmq::test::heap_ring;
using shmq::test::message_ok;
using shmq::test::ring_model;

// Fails the current check and returns false from the enclosing function: the loops
// below run millions of steps, and one readable failure beats a million repeated ones.
#define RING_EXPECT(cond, ...)                                              \
  do {                                                                      \
    if (!(cond)) {                                                          \
      FAIL_CHECK("expected " #cond ": " << __VA_ARGS__);                    \
      return false;                                                         \
    }                                                                       \
  } while (false)

struct in_flight {
  std::uint64_t seq;
  std::uint64_t size;
  std::uint64_t position;  // where its record starts, after any padding before it
};

// Claims and publishes one message of `size`, checking the claim against the model:
// status, payload address, padding record, commit word, new tail. Returns false on a
// mismatch; `published` tells whether the message went in.
bool push_one(heap_ring& r, spsc_ring_producer& p, ring_model& m, std::uint64_t size,
              std::uint64_t seq, std::deque<in_flight>& queue, bool& published) {
  published = false;
  const bool fits = m.fits(size);
  const std::uint64_t padding = m.padding_for(size);
  std::byte* payload = nullptr;
  const status s = p.try_claim(size, payload);
  RING_EXPECT(s == (fits ? status::ok : status::full),
              "size " << size << " at tail " << m.tail << " head " << m.head << " gave "
                      << shmq::to_string(s));
  if (!fits) return true;
  const std::uint64_t at = m.tail + padding;
  RING_EXPECT(payload == r.data.get() + (at & (r.capacity - 1)) + record_header_size,
              "payload of size " << size << " at tail " << m.tail);
  RING_EXPECT(payload + size <= r.data.get() + r.capacity, "payload runs past the ring");
  if (padding != 0) {
    // The padding is published by the claim itself, before the payload is written.
    RING_EXPECT(r.word_at(m.tail) == commit_word(m.tail, padding, true),
                "padding word at " << m.tail);
    RING_EXPECT((at & (r.capacity - 1)) == 0, "record after padding not at offset 0");
  }
  fill_message({payload, size}, seq);
  p.publish(size);
  RING_EXPECT(r.word_at(at) == commit_word(at, size, false), "commit word at " << at);
  m.tail = at + record_size(size);
  RING_EXPECT(p.tail() == m.tail, "producer tail " << p.tail() << " != " << m.tail);
  RING_EXPECT(r.control->tail.load() == m.tail, "stored tail");
  // The word after the record was cleared, so the consumer stops there.
  RING_EXPECT(!record_at(r.word_at(m.tail), m.tail),
              "stale commit word after the record at " << m.tail);
  queue.push_back({seq, size, at});
  published = true;
  return true;
}

// Peeks and releases the oldest message, checking it is `expected`, in place, intact.
bool pop_one(heap_ring& r, spsc_ring_consumer& c, ring_model& m, const in_flight& expected) {
  const std::byte* payload = nullptr;
  std::uint64_t size = 0;
  const status s = c.try_peek(payload, size);
  RING_EXPECT(s == status::ok, "peek of seq " << expected.seq << " gave " << shmq::to_string(s));
  RING_EXPECT(size == expected.size, "size " << size << " for seq " << expected.seq);
  RING_EXPECT(payload == r.data.get() + (expected.position & (r.capacity - 1)) + record_header_size,
              "payload address of seq " << expected.seq);
  RING_EXPECT(payload + size <= r.data.get() + r.capacity, "payload runs past the ring");
  RING_EXPECT(message_ok({payload, size}, expected.seq), "bytes of seq " << expected.seq);
  // Peeking skips a padding record at once: head is already at the record.
  RING_EXPECT(c.head() == expected.position, "head " << c.head() << " before release");
  c.release();
  m.head = expected.position + record_size(expected.size);
  RING_EXPECT(c.head() == m.head, "head " << c.head() << " after release");
  RING_EXPECT(r.control->head.load() == m.head, "stored head");
  return true;
}

bool expect_empty(spsc_ring_consumer& c) {
  const std::byte* payload = nullptr;
  std::uint64_t size = 0;
  const status s = c.try_peek(payload, size);
  RING_EXPECT(s == status::empty, "peek of an empty ring gave " << shmq::to_string(s));
  RING_EXPECT(!c.has_record(), "has_record on an empty ring");
  return true;
}

// From head = tail = start: fill with messages of `size` until the ring says full (and
// the model agrees it is), drain, and do it again `rounds` times, so the records cross
// the ring's end at whatever offset `start` puts them.
bool fill_and_drain(std::uint64_t capacity, std::uint64_t max_payload, std::uint64_t start,
                    std::uint64_t size, int rounds) {
  heap_ring r(capacity, max_payload, start);
  auto p = r.producer();
  auto c = r.consumer();
  ring_model m{capacity, start, start};
  std::deque<in_flight> queue;
  std::uint64_t seq = 0;
  if (!expect_empty(c)) return false;
  for (int round = 0; round < rounds; ++round) {
    for (;;) {
      bool published = false;
      if (!push_one(r, p, m, size, seq, queue, published)) return false;
      if (!published) break;
      ++seq;
      RING_EXPECT(queue.size() <= capacity / 8, "more records than the ring can hold");
    }
    RING_EXPECT(!queue.empty(), "an empty ring refused size " << size << " at " << m.tail);
    RING_EXPECT(!p.has_room(size), "has_room disagrees with a full try_claim");
    while (!queue.empty()) {
      if (!pop_one(r, c, m, queue.front())) return false;
      queue.pop_front();
    }
    if (!expect_empty(c)) return false;
    RING_EXPECT(p.has_room(size), "has_room false on a drained ring");
  }
  return true;
}

}  // namespace

TEST_SUITE_BEGIN("unit");

TEST_CASE("ring_wrap_at_every_offset") {
  constexpr std::uint64_t capacity = 4096;
  constexpr std::uint64_t max = max_payload_for(capacity);  // 2040
  // Start positions in the first lap and in a far lap (positions are 64-bit and only
  // grow; the offset is the same, the tags are not).
  for (std::uint64_t lap : {std::uint64_t{0}, std::uint64_t{1} << 20}) {
    for (std::uint64_t offset = 0; offset < capacity; offset += 8) {
      const std::uint64_t start = lap * capacity + offset;
      const std::uint64_t contiguous = capacity - offset;
      std::set<std::uint64_t> sizes = {0, 1, 7, 8, 9, 15, 16, 17, 100, 1000, max - 1, max};
      // Sizes whose record ends exactly at the ring's end, and one byte past it.
      for (std::uint64_t s : {contiguous - 8, contiguous - 7, contiguous - 1, contiguous})
        if (s <= max) sizes.insert(s);
      for (std::uint64_t size : sizes) {
        CAPTURE(start);
        CAPTURE(size);
        if (!fill_and_drain(capacity, max, start, size, 3)) return;
      }
    }
  }
}

TEST_CASE("ring_max_message_fits_an_empty_ring_at_any_offset") {
  // The promise behind max_payload_for: an empty ring always takes the largest message,
  // however much padding the wrap costs.
  for (std::uint64_t capacity : {4096ull, 8192ull, 65536ull}) {
    const std::uint64_t max = max_payload_for(capacity);
    for (std::uint64_t offset = 0; offset < capacity; offset += 8) {
      heap_ring r(capacity, max, offset);
      auto p = r.producer();
      std::byte* payload = nullptr;
      const status s = p.try_claim(max, payload);
      if (s != status::ok) {
        FAIL_CHECK("capacity " << capacity << " offset " << offset << ": " << shmq::to_string(s));
        return;
      }
    }
  }
}

TEST_CASE("ring_full_and_empty_boundaries") {
  constexpr std::uint64_t capacity = 4096;
  heap_ring r(capacity, max_payload_for(capacity));
  auto p = r.producer();
  auto c = r.consumer();
  std::byte* payload = nullptr;
  const std::byte* in = nullptr;
  std::uint64_t size = 0;

  CHECK(c.try_peek(in, size) == status::empty);
  CHECK_FALSE(c.has_record());

  // 2048 bytes used; 2048 free. A record needs its size plus the 8-byte gap, so 2032
  // bytes of payload (record 2040) is the most that fits, and 2033 (record 2048) is not.
  REQUIRE(p.try_claim(2040, payload) == status::ok);
  fill_message({payload, 2040}, 0);
  p.publish(2040);
  CHECK(p.has_room(2032));
  CHECK_FALSE(p.has_room(2033));
  CHECK(p.try_claim(2033, payload) == status::full);
  REQUIRE(p.try_claim(2032, payload) == status::ok);
  fill_message({payload, 2032}, 1);
  p.publish(2032);

  // 8 bytes left: that is only the gap, so even an empty message is refused.
  CHECK(p.try_claim(0, payload) == status::full);
  CHECK_FALSE(p.has_room(0));
  CHECK(r.control->tail.load() == 4088);

  // Releasing the first record frees its 2048 bytes; the producer sees them only by
  // reloading head (its cached copy is stale), which try_claim does on a miss.
  REQUIRE(c.try_peek(in, size) == status::ok);
  CHECK(size == 2040);
  CHECK(message_ok({in, size}, 0));
  c.release();
  CHECK(p.has_room(0));
  // At offset 4088 only 8 bytes remain before the end: a 16-byte record needs padding
  // of 8, then 16, then the gap: 32 <= 2056.
  REQUIRE(p.try_claim(8, payload) == status::ok);
  CHECK(payload == r.data.get() + record_header_size);  // after the padding, at offset 0
  fill_message({payload, 8}, 2);
  p.publish(8);

  REQUIRE(c.try_peek(in, size) == status::ok);
  CHECK(size == 2032);
  CHECK(message_ok({in, size}, 1));
  c.release();
  REQUIRE(c.try_peek(in, size) == status::ok);  // skips the padding record
  CHECK(size == 8);
  CHECK(message_ok({in, size}, 2));
  CHECK(in == r.data.get() + record_header_size);
  c.release();
  CHECK(c.head() == 4096 + 16);
  CHECK(c.try_peek(in, size) == status::empty);
}

TEST_CASE("ring_too_large") {
  heap_ring r(4096, 100);
  auto p = r.producer();
  std::byte* payload = nullptr;
  CHECK(p.try_claim(101, payload) == status::too_large);
  CHECK(p.try_claim(4096, payload) == status::too_large);
  CHECK(p.try_claim(100, payload) == status::ok);
}

TEST_CASE("ring_abandoned_claim_is_never_seen") {
  heap_ring r(4096, 2040);
  auto p = r.producer();
  auto c = r.consumer();
  const std::byte* in = nullptr;
  std::uint64_t size = 0;

  SUBCASE("in the middle of the ring") {
    std::byte* first = nullptr;
    REQUIRE(p.try_claim(64, first) == status::ok);
    fill_message({first, 64}, 99);  // written, never published
    CHECK(c.try_peek(in, size) == status::empty);
    std::byte* second = nullptr;
    REQUIRE(p.try_claim(32, second) == status::ok);
    CHECK(second == first);  // the same space is claimed again
    fill_message({second, 32}, 0);
    p.publish(32);
    REQUIRE(c.try_peek(in, size) == status::ok);
    CHECK(size == 32);
    CHECK(message_ok({in, size}, 0));
  }
  SUBCASE("after a padding record") {
    heap_ring near_end(4096, 2040, 4096 - 16);
    auto pe = near_end.producer();
    auto ce = near_end.consumer();
    std::byte* first = nullptr;
    REQUIRE(pe.try_claim(100, first) == status::ok);
    CHECK(first == near_end.data.get() + record_header_size);
    // The padding went out with the claim; the consumer skips it and finds nothing.
    CHECK(ce.try_peek(in, size) == status::empty);
    CHECK(ce.head() == 4096);
    std::byte* second = nullptr;
    REQUIRE(pe.try_claim(100, second) == status::ok);
    CHECK(second == first);
    fill_message({second, 100}, 0);
    pe.publish(100);
    REQUIRE(ce.try_peek(in, size) == status::ok);
    CHECK(message_ok({in, size}, 0));
  }
}

TEST_CASE("ring_publish_fewer_bytes_than_claimed") {
  heap_ring r(4096, 2040);
  auto p = r.producer();
  auto c = r.consumer();
  std::byte* payload = nullptr;
  REQUIRE(p.try_claim(1000, payload) == status::ok);
  fill_message({payload, 40}, 0);
  p.publish(40);
  CHECK(p.tail() == record_size(40));
  REQUIRE(p.try_claim(16, payload) == status::ok);
  fill_message({payload, 16}, 1);
  p.publish(16);
  const std::byte* in = nullptr;
  std::uint64_t size = 0;
  REQUIRE(c.try_peek(in, size) == status::ok);
  CHECK(size == 40);
  CHECK(message_ok({in, size}, 0));
  c.release();
  REQUIRE(c.try_peek(in, size) == status::ok);
  CHECK(size == 16);
  CHECK(message_ok({in, size}, 1));
  c.release();
  CHECK(c.try_peek(in, size) == status::empty);
}

TEST_CASE("ring_refill_after_drain_for_many_laps") {
  // Random sizes and random batch lengths, so records cross the end at offsets the
  // exhaustive test's fixed sizes do not produce, for 200 laps.
  constexpr std::uint64_t capacity = 8192;
  const std::uint64_t max = max_payload_for(capacity);
  heap_ring r(capacity, max);
  auto p = r.producer();
  auto c = r.consumer();
  ring_model m{capacity, 0, 0};
  std::deque<in_flight> queue;
  std::mt19937_64 rng(12345);
  std::uint64_t seq = 0;
  std::uint64_t full_seen = 0;
  while (m.head < 200 * capacity) {
    const std::uint64_t batch = 1 + rng() % 40;
    for (std::uint64_t i = 0; i < batch; ++i) {
      const std::uint64_t size = (rng() % 8 == 0) ? rng() % (max + 1) : rng() % 200;
      bool published = false;
      if (!push_one(r, p, m, size, seq, queue, published)) return;
      if (!published) {
        ++full_seen;
        break;
      }
      ++seq;
    }
    const std::uint64_t drain = rng() % 3 == 0 ? queue.size() : rng() % (queue.size() + 1);
    for (std::uint64_t i = 0; i < drain; ++i) {
      if (!pop_one(r, c, m, queue.front())) return;
      queue.pop_front();
    }
    if (queue.empty() && !expect_empty(c)) return;
  }
  CHECK(full_seen > 0);  // the batches did reach back-pressure
  CHECK(seq > 1000);
}

// Tags are 32 bits of position / 8, so they wrap every 2^35 bytes (32 GiB) of stream,
// and at that position the tag is 0, as in the word the producer clears ahead of
// itself. (Until the committed flag, a consumer caught up there took that cleared word
// for an empty message.) Positions are set directly rather than by streaming 32 GiB.
TEST_CASE("ring_tag_wrap_after_32_gib") {
  constexpr std::uint64_t capacity = 4096;
  const std::uint64_t wrap = std::uint64_t{1} << 35;
  REQUIRE(record_tag(wrap) == 0);

  SUBCASE("an empty ring around the wrap position is empty") {
    for (std::uint64_t start : {wrap - 8, wrap, wrap + 8, 2 * wrap, 3 * wrap - 8}) {
      CAPTURE(start);
      heap_ring r(capacity, 2040, start);
      auto c = r.consumer();
      if (!expect_empty(c)) return;
    }
  }
  SUBCASE("a stream of empty messages through the wrap position") {
    // Records of 8 bytes put a record boundary on every position, so the consumer is
    // caught up (head == tail) at each position around the wrap.
    heap_ring r(capacity, 2040, wrap - 64);
    auto p = r.producer();
    auto c = r.consumer();
    ring_model m{capacity, wrap - 64, wrap - 64};
    std::deque<in_flight> queue;
    for (std::uint64_t seq = 0; seq < 32; ++seq) {
      bool published = false;
      if (!push_one(r, p, m, 0, seq, queue, published)) return;
      REQUIRE(published);
      if (!pop_one(r, c, m, queue.front())) return;
      queue.pop_front();
      CAPTURE(c.head());
      if (!expect_empty(c)) return;
    }
  }
  SUBCASE("full fill and drain rounds across the wrap") {
    for (std::uint64_t size : {0, 9, 100, 2040})
      for (std::uint64_t start : {wrap - 2048, wrap - 8, wrap})
        if (!fill_and_drain(capacity, 2040, start, size, 3)) return;
  }
}

TEST_SUITE_END();

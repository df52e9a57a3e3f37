#include "durable/file_ring.hpp"

#include <algorithm>
#include <cstring>
#include <new>

#include "../channel_checks.hpp"
#include "../registry.hpp"
#include "durable/checkpoint.hpp"
#include "durable/crc32c.hpp"
#include "durable/flush.hpp"

namespace shmq::detail {

namespace {

std::uint32_t record_crc(const ring_geometry& g, std::uint64_t position, std::uint64_t length) noexcept {
  const std::byte* record = g.data + (position & (g.capacity - 1));
  const std::uint64_t facts[2] = {position, length};
  const std::uint32_t crc = crc32c(0, facts, sizeof facts);
  return crc32c(crc, record + record_header_size + file_seal_size, length - file_seal_size);
}

std::byte* seal_at(const ring_geometry& g, std::uint64_t position) noexcept {
  return g.data + (position & (g.capacity - 1)) + record_header_size;
}

// Records from `head` whose seals check out, up to the first that does not.
std::uint64_t valid_end(const ring_geometry& g, std::uint64_t head) noexcept {
  std::uint64_t pos = head;
  for (std::uint64_t steps = 0; steps < g.capacity / record_alignment; ++steps) {
    const std::uint64_t word = commit_word_at(g, pos).load(std::memory_order_relaxed);
    const std::uint64_t length = word & length_mask;
    std::uint64_t next = 0;
    switch (classify(word, pos, g.capacity, g.max_payload)) {
      case record_kind::none:
      case record_kind::bad: return pos;
      case record_kind::padding: next = pos + length; break;
      case record_kind::message:
        if (length < file_seal_size || !seal_intact(g, pos, length)) return pos;
        next = pos + record_size(length);
        break;
    }
    // The next record's commit word stays outside what is kept (room_needed).
    if (next - head > g.capacity - record_header_size) return pos;
    pos = next;
  }
  return pos;
}

void raise_to(std::atomic<std::uint64_t>& word, std::uint64_t value) noexcept {
  // relaxed CAS loop: durable_head only grows; the producer's acquire load of it orders
  // nothing but the value (the checkpoint's flush completed before this store).
  std::uint64_t seen = word.load(std::memory_order_relaxed);
  while (seen < value && !word.compare_exchange_weak(seen, value, std::memory_order_release,
                                                     std::memory_order_relaxed)) {
  }
}

}  // namespace

file_policy file_policy_of(const segment_header& h) noexcept {
  return {static_cast<shmq::durability>(h.durability), std::max<std::uint64_t>(1, h.group_messages),
          std::chrono::nanoseconds(static_cast<std::int64_t>(h.group_interval_ns))};
}

std::uint64_t seal_records(const ring_geometry& g, std::uint64_t from, std::uint64_t to) noexcept {
  constexpr std::size_t batch = 24;
  crc_job jobs[batch];
  std::size_t n = 0;
  const auto seal_batch = [&] {
    crc32c_each(jobs, n);
    for (std::size_t i = 0; i < n; ++i) {
      const std::uint32_t words[2] = {jobs[i].crc, static_cast<std::uint32_t>(jobs[i].facts[0] >> 32)};
      std::memcpy(seal_at(g, jobs[i].facts[0]), words, sizeof words);
    }
    n = 0;
  };
  std::uint64_t pos = from;
  while (pos < to) {
    // relaxed: the producer's own commit words (it published them, nobody else writes them).
    const std::uint64_t word = commit_word_at(g, pos).load(std::memory_order_relaxed);
    const std::uint64_t length = word & length_mask;
    const record_kind kind = classify(word, pos, g.capacity, g.max_payload);
    if (kind == record_kind::padding) {
      pos += length;
      continue;
    }
    if (kind != record_kind::message || length < file_seal_size) break;
    jobs[n++] = {{pos, length}, seal_at(g, pos) + file_seal_size, length - file_seal_size, 0};
    if (n == batch) seal_batch();
    pos += record_size(length);
  }
  seal_batch();
  return pos;
}

bool seal_intact(const ring_geometry& g, std::uint64_t position, std::uint64_t length) noexcept {
  std::uint32_t words[2];
  std::memcpy(words, seal_at(g, position), sizeof words);
  return words[1] == static_cast<std::uint32_t>(position >> 32) && words[0] == record_crc(g, position, length);
}

int flush_ring(const segment& seg, const ring_geometry& g, std::uint64_t from, std::uint64_t to) noexcept {
  std::byte* base = seg.at(0);
  const std::uint64_t data = static_cast<std::uint64_t>(g.data - base);
  std::uint64_t length = std::min(to + record_header_size - from, g.capacity);
  const std::uint64_t offset = from & (g.capacity - 1);
  const std::uint64_t first = std::min(length, g.capacity - offset);
  if (int e = flush_pages(seg.fd(), base, seg.size(), data + offset, first); e != 0) return e;
  if (length > first) return flush_pages(seg.fd(), base, seg.size(), data, length - first);
  return 0;
}

void prefault_ring(const ring_geometry& g, std::uint64_t from, std::uint64_t to) noexcept {
  // Whole pages of the ring only; the ring's start and capacity are page multiples.
  const std::uint64_t start = from & ~(file_page - 1), length = std::min(to - start, g.capacity);
  const std::uint64_t offset = start & (g.capacity - 1), first = std::min(length, g.capacity - offset);
  prefault_writable(g.data + offset, (first + file_page - 1) & ~(file_page - 1));
  if (length > first) prefault_writable(g.data, (length - first + file_page - 1) & ~(file_page - 1));
}

int write_checkpoint(const segment& seg, spsc_control& control, std::uint64_t head, const std::string& boot,
                     bool flush) noexcept {
  checkpoint_writer writer(seg, spsc_checkpoints(seg.header()));
  // Heads only grow: a consumer's background flush may come after the producer's own
  // checkpoint of a later head (full ring), and bytes below that one may be reused
  // already. A head past the live one does not come from this channel: not taken.
  if (const file_checkpoint* newest = writer.newest(); newest != nullptr) {
    const std::uint64_t previous = newest->head;
    if (previous > head && previous <= control.head.load(std::memory_order_acquire)) head = previous;
  }
  if (const int e = writer.write(head, boot, {}, flush); e != 0) return e;
  if (flush) raise_to(control.durable_head, head);
  return 0;
}

bool recover_after_reboot(const segment& seg, const file_policy& policy) {
  const std::string boot = boot_id();
  const segment_header& h = seg.header();
  const file_checkpoint* newest = newest_checkpoint(seg, spsc_checkpoints(h));
  if (newest == nullptr || newest->head % record_alignment != 0)
    fail_channel(errc::corrupt, seg.name(), "neither checkpoint of its file checks out");
  const file_checkpoint& cp = *newest;
  if (boot == cp.boot_id) return false;  // no reboot since: the page cache holds it all

  // The control block may hold torn sectors: rebuilt from what the header says.
  const std::uint64_t cap = h.data_size, max = h.file_max_message;
  if (cap < min_capacity || cap > max_capacity || (cap & (cap - 1)) != 0 ||
      max + file_seal_size > max_payload_for(cap))
    fail_channel(errc::corrupt, seg.name(), "header holds an impossible capacity or message size");
  const ring_geometry g{seg.at(h.data_offset), cap, max + file_seal_size};
  const std::uint64_t head = cp.head;
  const std::uint64_t tail = valid_end(g, head);
  // Zero the rest of the ring: a record of the tail dropped now must never reappear
  // behind a later record that happens to end where it starts.
  const std::uint64_t rest = cap - (tail - head), offset = tail & (cap - 1);
  const std::uint64_t first = std::min(rest, cap - offset);
  std::memset(g.data + offset, 0, first);
  std::memset(g.data, 0, rest - first);

  auto* c = new (seg.at(h.control_offset)) spsc_control{};
  c->capacity = cap;
  c->max_message_size = max;
  c->head.store(head, std::memory_order_relaxed);  // published by the attach lock's release
  c->tail.store(tail, std::memory_order_relaxed);
  c->reading.store(no_position, std::memory_order_relaxed);
  c->durable_head.store(head, std::memory_order_relaxed);
  c->redeliver_until.store(tail, std::memory_order_relaxed);  // any of them may have been read
  if (policy.flushes()) {
    const int e = flush_pages(seg.fd(), seg.at(0), seg.size(), h.control_offset, seg.size() - h.control_offset);
    if (e != 0)
      fail_channel(errc::io_failed, seg.name(), std::string("flushing its recovered state: ") + std::strerror(e));
  }
  if (const int e = write_checkpoint(seg, *c, head, boot, policy.flushes()); e != 0)
    fail_channel(errc::io_failed, seg.name(), std::string("flushing its checkpoint: ") + std::strerror(e));
  return true;
}

}  // namespace shmq::detail

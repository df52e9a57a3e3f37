// MPMC endpoints: attach (create or open, validate), participant slots, and the Impl
// hooks that endpoint.hpp builds the public operations on.
#include "shmq/mpmc.hpp"

#include <algorithm>
#include <new>
#include <span>
#include <string>
#include <utility>

#include "channel_checks.hpp"
#include "consumer_base.hpp"
#include "durable/mpmc_file.hpp"
#include "durable/slot_file.hpp"
#include "endpoint.hpp"
#include "inspect.hpp"
#include "mpmc_recovery.hpp"
#include "mpmc_ring.hpp"
#include "registry.hpp"
#include "segment.hpp"
#include "slot_producer.hpp"

namespace shmq::detail {

namespace {

struct attached {
  segment seg;
  mpmc_control* control;
  slot_geometry geometry;
  std::span<std::atomic<std::uint32_t>> producers;
  std::span<std::atomic<std::uint32_t>> consumers;
  std::span<ticket_record> records;  // producers', then consumers'; index = participant lock
  // A file channel's attach lock, held until the endpoint has claimed its slot: the first
  // one to attach recovers the file, and nobody else may look before it is done.
  std::unique_ptr<lock_guard> attaching;

  ticket_table producer_table() const noexcept { return {seg.fd(), 0, records.first(producers.size())}; }
  ticket_table consumer_table() const noexcept {
    return {seg.fd(), producers.size(), records.subspan(producers.size(), consumers.size())};
  }
  mpmc_recovery recovery() const noexcept {
    return {*control, geometry, {producer_table(), consumer_table(), producers.size() + consumers.size()}};
  }
  // Participant lock `lock` (claim below) as a producer's or a consumer's ring.
  mpmc_ring ring(bool producer, std::uint64_t lock) const noexcept {
    const ticket_table role = producer ? producer_table() : consumer_table();
    return {*control, geometry, producer, role, static_cast<std::uint32_t>(lock - role.first_lock)};
  }
};

attached attach(std::string_view name, const mpmc_options& o) {
  const bool file = !o.file.path.empty();
  const bool pages = file && o.file.durability != durability::none;  // whole-page slots
  if (o.open != open_mode::open) {
    check_slot_options(name, o.slots, o.max_message_size, o.max_producers, o.max_consumers);
    if (file) {
      check_file_options(name, o.file);
      if (file_slot_size_for(o.max_message_size, pages) > max_slot_bytes / o.slots)
        fail_channel(errc::invalid_argument, name, "slots * the file channel's slot size is over 1 GiB");
    }
  }
  const std::uint64_t slot_size = file ? file_slot_size_for(o.max_message_size, pages) : slot_size_for(o.max_message_size);
  const std::uint64_t tables = mpmc_control_size(o.max_producers, o.max_consumers);
  auto [seg, created] = attach_segment(
      name, channel_kind::mpmc, {file ? slotted_file_control_size(tables, 0) : tables, o.slots * slot_size}, o,
      [&](segment& s) {
        auto* c = new (s.at(s.header().control_offset)) mpmc_control{};
        c->slot_count = o.slots;
        c->slot_size = slot_size;
        c->max_message_size = o.max_message_size;
        c->max_producers = o.max_producers;
        c->max_consumers = o.max_consumers;
        const slot_geometry g{s.at(s.header().data_offset), o.slots, slot_size, o.max_message_size};
        // Ticket i starts as the producer's turn; mark_ready() publishes these stores.
        for (std::uint64_t i = 0; i < o.slots; ++i) g.slot(i).turn.store(i, std::memory_order_relaxed);
        auto* records = reinterpret_cast<ticket_record*>(
            s.at(s.header().control_offset + sizeof(mpmc_control) + pid_words_size(o.max_producers + o.max_consumers)));
        for (std::uint32_t i = 0; i < o.max_producers + o.max_consumers; ++i)
          new (&records[i]) ticket_record{{no_ticket}, {}};
        if (file) init_mpmc_file(s, {o.slots, o.max_message_size, o.max_producers, o.max_consumers});
      });

  const segment_header& h = seg.header();
  std::unique_ptr<lock_guard> attaching;
  if (file) {
    // The first to attach (no participant alive) recovers a file left by a reboot.
    attaching = std::make_unique<lock_guard>(seg.fd(), attach_lock);
    const std::uint64_t participants = std::min<std::uint64_t>(2 * max_endpoints, h.file_limits[0] + std::uint64_t{h.file_limits[1]});
    bool alive = false;
    for (std::uint64_t i = 0; i < participants && !alive; ++i) alive = held_elsewhere(seg.fd(), i);
    if (!alive) recover_mpmc_after_reboot(seg);
  }
  if (h.control_size < sizeof(mpmc_control))
    fail_channel(errc::corrupt, name, "control block too small");
  auto* c = reinterpret_cast<mpmc_control*>(seg.at(h.control_offset));
  note_publisher_fences(c->data_ready);  // before this process can publish anything
  note_publisher_fences(c->space_ready);
  const std::uint64_t slots = c->slot_count, slot_bytes = c->slot_size, max = c->max_message_size;
  const std::uint32_t max_p = c->max_producers, max_c = c->max_consumers;
  const bool file_pages = file && file_policy_of(h).flushes();
  const std::uint64_t control_size = file ? slotted_file_control_size(mpmc_control_size(max_p, max_c), 0)
                                          : mpmc_control_size(max_p, max_c);
  if (!slot_fields_valid(slots, slot_bytes, max, h.data_size, file, file_pages) || max_p < 1 ||
      max_p > max_endpoints || max_c < 1 || max_c > max_endpoints || h.control_size != control_size ||
      (file && (slots != h.file_slots || max != h.file_max_message || max_p != h.file_limits[0] ||
                max_c != h.file_limits[1])))
    fail_channel(errc::corrupt, name, "control block holds impossible sizes or limits");
  if (file && c->poisoned.load(std::memory_order_relaxed) != 0)
    fail_channel(errc::io_failed, name,
                 std::string("a flush of its file failed (") +
                     std::strerror(static_cast<int>(c->poisoned.load(std::memory_order_relaxed))) +
                     "): what it holds is not known to be durable; remove it or reboot");
  if (!created && o.open == open_mode::open_or_create) {
    check_same(name, "slots", slots, o.slots);
    check_same(name, "max_message_size", max, o.max_message_size);
    check_same(name, "max_producers", max_p, o.max_producers);
    check_same(name, "max_consumers", max_c, o.max_consumers);
  }
  const std::uint64_t enq = c->enqueue_pos.load(std::memory_order_acquire);
  const std::uint64_t deq = c->dequeue_pos.load(std::memory_order_acquire);
  if (deq > enq || enq - deq > slots)
    fail_channel(errc::corrupt, name,
                 "control block positions out of range (enqueue " + std::to_string(enq) +
                     ", dequeue " + std::to_string(deq) + ")");
  auto* pids = reinterpret_cast<std::atomic<std::uint32_t>*>(seg.at(h.control_offset + sizeof(mpmc_control)));
  auto* records = reinterpret_cast<ticket_record*>(
      seg.at(h.control_offset + sizeof(mpmc_control) + pid_words_size(max_p + max_c)));
  const slot_geometry g = file ? file_slot_geometry(seg.at(h.data_offset), slots, max, file_pages)
                               : slot_geometry{seg.at(h.data_offset), slots, slot_bytes, max};
  return attached{std::move(seg), c,        g, {pids, max_p}, {pids + max_p, max_c}, {records, max_p + max_c},
                  std::move(attaching)};
}

// Participant locks (registry.hpp): producers from 0, consumers after them.
claimed_slot claim(const attached& a, bool producer, std::string_view name) {
  const auto table = producer ? a.producers : a.consumers;
  const std::uint64_t first = producer ? 0 : a.producers.size();
  const int i = claim_slot(a.seg.fd(), first, table);
  if (i < 0)
    fail_channel(errc::limit_reached, name,
                 "already has " + std::to_string(table.size()) + " live " +
                     (producer ? "producers" : "consumers") + ", the most it was created for");
  return {first + static_cast<std::uint64_t>(i), &table[static_cast<std::size_t>(i)]};
}

// A producer that died mid-loan stops a waiting producer a lap later; only consumers
// can take a dead consumer's message (they do when the queue runs dry for them).
void recover_dead(const attached& a, mpmc_ring& ring) noexcept { a.recovery().skip_dead_claims(ring); }

}  // namespace

struct mpmc_producer_impl final : slot_producer<attached, mpmc_ring> {
  using slot_producer::slot_producer;
};

struct mpmc_consumer_impl final : consumer_base<mpmc_consumer_impl> {
  attached channel;
  claimed_slot registration;
  mpmc_ring ring;

  std::uint64_t adopted = no_ticket;  // a dead consumer's ticket, handed out next
  // A file channel recovered after a reboot: every ticket before it may have been handed
  // out before the power went, so each is flagged redelivered.
  std::uint64_t redeliver_until = 0;
  slot_durability durable;  // a file channel's flushing of its releases (lib/durable/)
  static constexpr unsigned catch_up_polls = 16;  // about 370 ns of pauses here

  mpmc_consumer_impl(attached a, std::string_view name, const endpoint_options& o)
      : consumer_base(o),
        channel(std::move(a)),
        registration(claim(channel, false, name)),
        ring(channel.ring(false, registration.lock)) {
    if (channel.seg.file_backed()) {
      durable = slot_durability(channel.seg, channel.geometry, channel.control->poisoned);
      redeliver_until = channel.control->redeliver_until.load(std::memory_order_relaxed);
    }
    channel.attaching.reset();  // claimed: the next endpoint may attach
    recover();  // the consumer that attaches next gets what a dead one held
  }
  // A message taken but not handed out whole (kept for a larger buffer, or adopted) stays
  // in this consumer's ticket record: once the lock is dropped, another consumer adopts
  // it as it would a dead one's.
  ~mpmc_consumer_impl() {
    (void)durable.sync();
    release_slot(channel.seg.fd(), registration.lock, *registration.pid);
  }

  status take(const std::byte*& payload, std::uint64_t& size, std::uint64_t& ticket, std::uint64_t&) noexcept {
    if (durable.poisoned()) return status::io_error;
    const status s = take_ticket(payload, size, ticket);
    if (s == status::ok && ticket < redeliver_until && !redelivering) {
      redelivering = true;
      channel.control->redelivered.fetch_add(1, std::memory_order_relaxed);
    }
    return s;
  }
  status take_ticket(const std::byte*& payload, std::uint64_t& size, std::uint64_t& ticket) noexcept {
    if (const std::uint64_t t = std::exchange(adopted, no_ticket); t != no_ticket) {
      const status s = ring.take_adopted(t, payload, size);
      if (s != status::empty) {
        ticket = t;
        redelivering = s == status::ok;
        if (redelivering) channel.control->redelivered.fetch_add(1, std::memory_order_relaxed);
        return s;
      }
    }
    const status s = ring.try_take(ticket, payload, size);
    // Reading back to back, this consumer has caught up with the producers: polling the
    // next slot's turn at once pulls its line from under the producer about to publish
    // there, whose next ticket CAS then waits for it.
    catch_up.note(s, status::empty, catch_up_polls);
    return s;
  }
  // Called while waiting on an empty queue, with no message out.
  void recover() noexcept {
    if (adopted == no_ticket)
      adopted = channel.recovery().recover(ring, registration.lock - channel.producers.size());
  }
  bool has_record() const noexcept { return adopted != no_ticket || ring.has_message(); }
  mpmc_control& control() const noexcept { return *channel.control; }
  bool producers_died() const noexcept { return all_died(channel.seg.fd(), 0, channel.producers); }
  void release_view(std::uint64_t ticket) noexcept override {
    ring.release(ticket);
    view_out = false;
    (void)durable.touched(ticket);  // a failure poisons it: take() says io_error from then on
  }
  status sync() noexcept { return durable.sync(); }
  bool view_intact(std::uint64_t) const noexcept override { return true; }
  std::size_t max_message_size() const noexcept { return channel.geometry.max_payload; }
};

channel_stats mpmc_stats(std::string_view name) {
  mpmc_options o;
  o.open = open_mode::open;
  o.open_timeout = std::chrono::milliseconds(0);
  const attached a = attach(name, o);
  channel_stats s;
  s.unit = "messages";
  s.capacity = a.geometry.slot_count;
  s.max_message_size = a.geometry.max_payload;
  // Dequeue first: enqueue_pos, read after it, cannot be behind it.
  const std::uint64_t deq = a.control->dequeue_pos.load(std::memory_order_acquire);
  const std::uint64_t enq = a.control->enqueue_pos.load(std::memory_order_acquire);
  if (deq > enq) fail_channel(errc::corrupt, name, "dequeue position ahead of the enqueue position");
  s.write_position = s.committed = enq;
  s.read_position = s.delivered = deq;
  s.fill = std::min(enq - deq, s.capacity);
  s.closed = a.control->closed.load(std::memory_order_acquire) != 0;
  s.redelivered = a.control->redelivered.load(std::memory_order_relaxed);
  for (const bool producer : {true, false}) {
    const auto table = producer ? a.producers : a.consumers;
    const std::uint64_t first = producer ? 0 : a.producers.size();
    for (std::size_t i = 0; i < table.size(); ++i)
      if (const std::uint32_t p = table[i].load(std::memory_order_acquire); p != 0)
        s.participants.push_back({producer ? "producer" : "consumer", p, held_elsewhere(a.seg.fd(), first + i)});
  }
  return s;
}

}  // namespace shmq::detail

namespace shmq {

template class basic_producer<detail::mpmc_producer_impl>;
template class basic_consumer<detail::mpmc_consumer_impl>;

mpmc_producer::mpmc_producer(std::string_view name, const mpmc_options& options)
    : basic_producer([&] {
        auto a = detail::attach(name, options);
        const auto slot = detail::claim(a, true, name);
        const detail::mpmc_ring ring = a.ring(true, slot.lock);
        a.attaching.reset();  // claimed: the next endpoint may attach
        return std::make_unique<detail::mpmc_producer_impl>(std::move(a), ring, slot, options);
      }()) {}
std::size_t mpmc_producer::slots() const noexcept { return impl_->channel.geometry.slot_count; }

mpmc_consumer::mpmc_consumer(std::string_view name, const mpmc_options& options)
    : basic_consumer(std::make_unique<detail::mpmc_consumer_impl>(detail::attach(name, options), name,
                                                                  options)) {}
std::size_t mpmc_consumer::slots() const noexcept { return impl_->channel.geometry.slot_count; }

}  // namespace shmq

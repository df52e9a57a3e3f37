// SPSC endpoints: attach (create or open, validate), the role claim, and the Impl
// hooks that endpoint.hpp builds the public operations on.
#include "shmq/spsc.hpp"

#include <algorithm>
#include <new>
#include <string>

#include "channel_checks.hpp"
#include "consumer_base.hpp"
#include "endpoint.hpp"
#include "inspect.hpp"
#include "registry.hpp"
#include "segment.hpp"
#include "spsc_ring.hpp"

namespace shmq::detail {

namespace {

void check_options(std::string_view name, const channel_options& o) {
  const std::uint64_t cap = o.capacity;
  if (cap < min_capacity || cap > max_capacity || (cap & (cap - 1)) != 0)
    fail_channel(errc::invalid_argument, name,
         "capacity " + std::to_string(cap) + " is not a power of two from 4 KiB to 1 GiB");
  if (o.max_message_size > max_payload_for(cap))
    fail_channel(errc::invalid_argument, name,
         "max_message_size " + std::to_string(o.max_message_size) + " is over " +
             std::to_string(max_payload_for(cap)) + ", the most a " + std::to_string(cap) +
             "-byte ring can hold");
}

struct attached {
  segment seg;
  spsc_control* control;
  ring_geometry geometry;
  std::uint64_t tail;  // recovered: where the next record goes
};

// The stored tail is a hint: a producer stores it just after publishing, so one that
// died in between leaves committed records past it (and the consumer may have read
// them). Walk the records from it to find where they really end.
std::uint64_t recover_tail(const ring_geometry& g, std::uint64_t tail, std::uint64_t head) noexcept {
  for (std::uint64_t steps = 0; steps < g.capacity / record_alignment; ++steps) {
    const std::uint64_t word = commit_word_at(g, tail).load(std::memory_order_acquire);
    if (!record_at(word, tail)) break;
    const std::uint64_t length = word & length_mask;
    const std::uint64_t step = (word & padding_flag) ? length : record_size(length);
    const std::uint64_t next = tail + step;
    if (step == 0 || step % record_alignment != 0 || (next > head && next - head > g.capacity)) break;
    tail = next;
  }
  return tail;
}

// Creates or opens the channel and checks its control block; everything after uses
// the local copies made here, never the segment's fields again.
attached attach(std::string_view name, const channel_options& o) {
  if (o.open != open_mode::open) check_options(name, o);
  auto [seg, created] = attach_segment(
      name, channel_kind::spsc, {sizeof(spsc_control), o.capacity}, o, [&](segment& s) {
        auto* c = new (s.at(s.header().control_offset)) spsc_control{};
        c->reading.store(no_position, std::memory_order_relaxed);  // published by mark_ready
        c->capacity = o.capacity;
        c->max_message_size = o.max_message_size;
      });
  const segment_header& h = seg.header();
  if (h.control_size != sizeof(spsc_control))
    fail_channel(errc::corrupt, name, "control block has the wrong size");
  auto* c = reinterpret_cast<spsc_control*>(seg.at(h.control_offset));
  const std::uint64_t cap = c->capacity;
  const std::uint64_t max = c->max_message_size;
  if (cap < min_capacity || cap > max_capacity || (cap & (cap - 1)) != 0 || cap != h.data_size ||
      max > max_payload_for(cap))
    fail_channel(errc::corrupt, name, "control block holds an impossible capacity or message size");
  if (!created && o.open == open_mode::open_or_create) {
    check_same(name, "capacity", cap, o.capacity);
    check_same(name, "max_message_size", max, o.max_message_size);
  }
  const ring_geometry geometry{seg.at(h.data_offset), cap, max};
  const std::uint64_t head = c->head.load(std::memory_order_acquire);
  const std::uint64_t stored = c->tail.load(std::memory_order_acquire);
  const bool aligned = head % record_alignment == 0 && stored % record_alignment == 0;
  const std::uint64_t tail = aligned && !(stored > head && stored - head > cap)
                                 ? recover_tail(geometry, stored, head)
                                 : stored;
  if (!positions_valid(head, tail, cap))
    fail_channel(errc::corrupt, name,
                 "control block positions out of range (head " + std::to_string(head) + ", tail " +
                     std::to_string(stored) + ")");
  return attached{std::move(seg), c, geometry, tail};
}

// Participant lock of each role (registry.hpp).
constexpr std::uint64_t producer_lock = 0, consumer_lock = 1;

void claim_role(const attached& a, std::uint64_t lock, std::atomic<std::uint32_t>& slot,
                std::string_view name, const char* role) {
  if (claim_slot(a.seg.fd(), lock, {&slot, 1}) < 0)
    fail_channel(errc::role_taken, name,
         std::string("already has a live ") + role + " (pid " +
             std::to_string(slot.load(std::memory_order_relaxed)) + ")");
}

}  // namespace

struct spsc_producer_impl final : loan_owner {
  attached channel;
  spsc_ring_producer ring;
  wait_policy waiting;
  bool& loan_out;  // shared with the inline fast path
  bool closed_here = false;
  bool broken = false;
  catch_up_tracker catch_up;  // unused: a full SPSC ring gains nothing from it (measured)
  std::unique_ptr<readiness_handle> readiness;  // event loops: made on first use

  spsc_producer_impl(attached a, const endpoint_options& o)
      : channel(std::move(a)),
        ring(*channel.control, channel.geometry, channel.tail,
             channel.control->head.load(std::memory_order_acquire)),
        waiting{o.spin, o.liveness_interval},
        loan_out(ring.writer().loan_out) {
    channel.control->tail.store(ring.tail(), std::memory_order_release);
    reopen_stream(*channel.control);
    ring.writer().owner = this;
    allow_fast();
  }
  ~spsc_producer_impl() { release_slot(channel.seg.fd(), producer_lock, channel.control->producer_pid); }

  // The inline loan (record_writer) is allowed while nothing else needs the library.
  void allow_fast() noexcept { ring.writer().fast = !loan_out && !closed_here && !broken; }

  status try_claim(std::uint64_t size, std::byte*& payload, std::uint64_t&) noexcept {
    if (broken) return status::corrupt;
    const status s = ring.try_claim(size, payload);
    broken = s == status::corrupt;
    if (s == status::ok)
      ring.writer().fast = false;  // until the loan is committed or aborted
    else
      allow_fast();
    return s;
  }
  bool has_room(std::uint64_t size) const noexcept { return ring.has_room(size); }
  wait_word& space_ready() noexcept { return channel.control->space_ready; }
  void commit_loan(std::uint64_t, std::size_t used) noexcept override {
    ring.publish(used);
    loan_out = false;
    allow_fast();
  }
  // Nothing was published: the claimed bytes are simply claimed again next time.
  void abort_loan(std::uint64_t) noexcept override {
    loan_out = false;
    allow_fast();
  }
  void close() noexcept {
    ring.writer().fast = false;
    close_stream(*channel.control);
  }
  // The one consumer's unread messages must survive it: nothing to free.
  void recover() noexcept {}
  std::size_t max_message_size() const noexcept { return channel.geometry.max_payload; }
};

struct spsc_consumer_impl final : consumer_base<spsc_consumer_impl> {
  attached channel;
  spsc_ring_consumer ring;
  // The last consumer died holding the record here: handing it out again is a redelivery.
  std::uint64_t redeliver_at;
  static constexpr unsigned catch_up_polls = 16;  // about 370 ns of pauses here

  spsc_consumer_impl(attached a, const endpoint_options& o)
      : consumer_base(o),
        channel(std::move(a)),
        ring(*channel.control, channel.geometry, channel.control->head.load(std::memory_order_acquire)),
        redeliver_at(channel.control->reading.load(std::memory_order_relaxed) == ring.head() ? ring.head()
                                                                                            : no_position) {
    ring.reader().owner = this;
    allow_fast();
  }
  ~spsc_consumer_impl() {
    channel.control->reading.store(no_position, std::memory_order_relaxed);  // a clean exit
    release_slot(channel.seg.fd(), consumer_lock, channel.control->consumer_pid);
  }

  // The inline read (record_reader) is allowed while nothing else needs the library.
  void allow_fast() noexcept {
    record_reader& r = ring.reader();
    r.fast = !r.view_out && !view_out && !kept && !broken && redeliver_at == no_position;
  }

  status take(const std::byte*& payload, std::uint64_t& size, std::uint64_t&, std::uint64_t&) noexcept {
    if (ring.reader().view_out) return status::busy;  // an inline read's view is out
    const status s = ring.try_peek(payload, size);
    if (s == status::ok && redeliver_at != no_position) {
      redelivering = ring.head() == redeliver_at;
      redeliver_at = no_position;
      if (redelivering) channel.control->redelivered.fetch_add(1, std::memory_order_relaxed);
    }
    // Caught up with the producer in a stream: polling the commit word at once would
    // pull the line the producer is writing from under it, a message at a time.
    catch_up.note(s, status::empty, catch_up_polls);
    if (s == status::ok || s == status::corrupt)
      ring.reader().fast = false;  // until the view is released; for good once corrupt
    else
      allow_fast();
    return s;
  }
  bool has_record() const noexcept { return ring.has_record(); }
  void recover() noexcept {}
  spsc_control& control() const noexcept { return *channel.control; }
  bool producers_died() const noexcept {
    return holder_died(channel.seg.fd(), producer_lock, channel.control->producer_pid);
  }
  void release_view(std::uint64_t) noexcept override {
    if (ring.reader().view_out) catch_up.streaming = true;  // an inline read: it did not wait
    ring.release();
    view_out = false;
    ring.reader().view_out = false;
    allow_fast();
  }
  void keep(std::uint64_t ticket) noexcept {
    consumer_base::keep(ticket);
    ring.reader().fast = false;
  }
  bool view_intact(std::uint64_t) const noexcept override { return true; }
  std::size_t max_message_size() const noexcept { return channel.geometry.max_payload; }
};

channel_stats spsc_stats(std::string_view name) {
  channel_options o;
  o.open = open_mode::open;
  o.open_timeout = std::chrono::milliseconds(0);
  const attached a = attach(name, o);
  channel_stats s;
  s.unit = "bytes";
  s.capacity = a.geometry.capacity;
  s.max_message_size = a.geometry.max_payload;
  // attach checked head against this tail; a consumer may have moved on since.
  const std::uint64_t head = std::min(a.control->head.load(std::memory_order_acquire), a.tail);
  s.write_position = s.committed = a.tail;
  s.read_position = s.delivered = head;
  s.fill = a.tail - head;
  s.closed = a.control->closed.load(std::memory_order_acquire) != 0;
  s.redelivered = a.control->redelivered.load(std::memory_order_relaxed);
  for (auto [role, lock, pid] : {std::tuple{"producer", producer_lock, &a.control->producer_pid},
                                 std::tuple{"consumer", consumer_lock, &a.control->consumer_pid}}) {
    const std::uint32_t p = pid->load(std::memory_order_acquire);
    if (p != 0) s.participants.push_back({role, p, held_elsewhere(a.seg.fd(), lock)});
  }
  return s;
}

}  // namespace shmq::detail

namespace shmq {

template class basic_producer<detail::spsc_producer_impl>;
template class basic_consumer<detail::spsc_consumer_impl>;

spsc_producer::spsc_producer(std::string_view name, const channel_options& options)
    : basic_producer([&] {
        auto a = detail::attach(name, options);
        detail::claim_role(a, detail::producer_lock, a.control->producer_pid, name, "producer");
        return std::make_unique<detail::spsc_producer_impl>(std::move(a), options);
      }()),
      writer_(&impl_->ring.writer()) {}

std::size_t spsc_producer::capacity() const noexcept { return impl_->channel.geometry.capacity; }

spsc_consumer::spsc_consumer(std::string_view name, const channel_options& options)
    : basic_consumer([&] {
        auto a = detail::attach(name, options);
        detail::claim_role(a, detail::consumer_lock, a.control->consumer_pid, name, "consumer");
        return std::make_unique<detail::spsc_consumer_impl>(std::move(a), options);
      }()),
      reader_(&impl_->ring.reader()) {}

std::size_t spsc_consumer::capacity() const noexcept { return impl_->channel.geometry.capacity; }

}  // namespace shmq

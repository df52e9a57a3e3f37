// SPSC endpoints: attach (create or open, validate), the role claim, and the Impl
// hooks that endpoint.hpp builds the public operations on.
#include "shmq/spsc.hpp"

#include <algorithm>
#include <cstring>
#include <memory>
#include <new>
#include <string>

#include "channel_checks.hpp"
#include "consumer_base.hpp"
#include "durable/file_endpoint.hpp"
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
  if (o.file.path.empty()) return;
  if (o.max_message_size + file_seal_size + file_page > max_payload_for(cap))
    fail_channel(errc::invalid_argument, name,
                 "max_message_size " + std::to_string(o.max_message_size) + " leaves no room for the " +
                     std::to_string(file_seal_size) + "-byte seal and the " + std::to_string(file_page) +
                     "-byte flush padding of a file channel");
  check_file_options(name, o.file);
}

// Participant lock of each role (registry.hpp).
constexpr std::uint64_t producer_lock = 0, consumer_lock = 1;

struct attached {
  segment seg;
  spsc_control* control;
  ring_geometry geometry;
  std::uint64_t tail;  // recovered: where the next record goes
  std::uint32_t seal;  // file_seal_size in a file channel
  // A file channel's attach lock, held until the endpoint has claimed its role: the
  // first one to attach recovers the file, and nobody else may look before it is done.
  std::unique_ptr<lock_guard> attaching;
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
  const bool file = !o.file.path.empty();
  const std::uint64_t control_size = file ? file_control_size : sizeof(spsc_control);
  auto [seg, created] = attach_segment(
      name, channel_kind::spsc, {control_size, o.capacity}, o, [&](segment& s) {
        auto* c = new (s.at(s.header().control_offset)) spsc_control{};
        c->reading.store(no_position, std::memory_order_relaxed);  // published by mark_ready
        c->capacity = o.capacity;
        c->max_message_size = o.max_message_size;
        if (!file) return;
        s.header().file_max_message = o.max_message_size;
        write_checkpoint(s, *c, 0, boot_id(), false);  // made durable with the whole file
      });
  const segment_header& h = seg.header();
  if (h.control_size != control_size) fail_channel(errc::corrupt, name, "control block has the wrong size");
  std::unique_ptr<lock_guard> attaching;
  if (file) {
    attaching = std::make_unique<lock_guard>(seg.fd(), attach_lock);
    if (!held_elsewhere(seg.fd(), producer_lock) && !held_elsewhere(seg.fd(), consumer_lock))
      recover_after_reboot(seg, file_policy_of(h));
  }
  auto* c = reinterpret_cast<spsc_control*>(seg.at(h.control_offset));
  note_publisher_fences(c->data_ready);  // before this process can publish anything
  note_publisher_fences(c->space_ready);
  const std::uint64_t seal = file ? file_seal_size : 0;
  const std::uint64_t cap = c->capacity;
  const std::uint64_t max = c->max_message_size;
  if (cap < min_capacity || cap > max_capacity || (cap & (cap - 1)) != 0 || cap != h.data_size ||
      max + seal > max_payload_for(cap) || (file && max != h.file_max_message))
    fail_channel(errc::corrupt, name, "control block holds an impossible capacity or message size");
  if (file && c->poisoned.load(std::memory_order_relaxed) != 0)
    fail_channel(errc::io_failed, name,
                 std::string("a flush of its file failed (") +
                     std::strerror(static_cast<int>(c->poisoned.load(std::memory_order_relaxed))) +
                     "): what it holds is not known to be durable; remove it or reboot");
  if (!created && o.open == open_mode::open_or_create) {
    check_same(name, "capacity", cap, o.capacity);
    check_same(name, "max_message_size", max, o.max_message_size);
  }
  const ring_geometry geometry{seg.at(h.data_offset), cap, max + seal};
  // A file channel's durable head (the room check's and the sealing's start,
  // lib/durable/file_ring.hpp) never passes head, and both only grow: read it first.
  const std::uint64_t durable = file ? c->durable_head.load(std::memory_order_acquire) : 0;
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
  if (durable % record_alignment != 0 || durable > head)
    fail_channel(errc::corrupt, name,
                 "control block's durable head out of range (" + std::to_string(durable) + ", head " +
                     std::to_string(head) + ")");
  return attached{std::move(seg), c, geometry, tail, static_cast<std::uint32_t>(seal), std::move(attaching)};
}

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
  // A full ring: the consumer is a whole ring behind, so the producer's next message
  // waits behind that backlog anyway. Polling the head at once would pull the line the
  // consumer is releasing from under it, a message at a time, and slow a consumer that is
  // slower already (shmq_spsc_throughput_asio/64 went from 8.8 to 17.4 M msg/s with the
  // quiet polls, the blocking consumer's stream from 79 to 97 M): the first polls only
  // pause, and the consumer frees a batch meanwhile.
  catch_up_tracker catch_up;
  static constexpr unsigned catch_up_polls = 64;
  file_endpoint durable;      // a file channel's flushing (lib/durable/)
  std::uint64_t sealed = 0;   // a file channel's records before this position are sealed
  std::unique_ptr<readiness_handle> readiness;  // event loops: made on first use

  spsc_producer_impl(attached a, const endpoint_options& o)
      : channel(std::move(a)),
        ring(*channel.control, channel.geometry, channel.tail, room_head(channel)),
        waiting{o.spin, o.liveness_interval},
        loan_out(ring.writer().loan_out) {
    channel.control->tail.store(ring.tail(), std::memory_order_release);
    reopen_stream(*channel.control);
    ring.writer().owner = this;
    ring.writer().seal = channel.seal;
    if (channel.seg.file_backed() && file_policy_of(channel.seg.header()).flushes())
      ring.writer().reserve = static_cast<std::uint32_t>(file_page);  // room for sync()'s padding
    // From the head: a dead producer's records not yet flushed are flushed with ours.
    if (channel.seg.file_backed()) {
      durable = file_endpoint(channel.seg, *channel.control, channel.geometry, file_endpoint::role::producer,
                              channel.control->head.load(std::memory_order_acquire));
      seal_published();  // a dead producer may have left records unsealed
      // The first write to each page of a new file costs a fault several times dearer
      // than a later one (blocks preallocated but not yet written): taken here, once,
      // rather than on the first lap of commits.
      prefault_writable(channel.geometry.data, channel.geometry.capacity);
    }
    allow_fast();
    channel.attaching.reset();  // set up: the next endpoint may attach
  }
  ~spsc_producer_impl() {
    (void)sync();
    release_slot(channel.seg.fd(), producer_lock, channel.control->producer_pid);
  }
  static std::atomic<std::uint64_t>& room_head(attached& a) noexcept {
    return a.seg.file_backed() && file_policy_of(a.seg.header()).flushes() ? a.control->durable_head : a.control->head;
  }

  // The inline loan (record_writer) is allowed while nothing else needs the library.
  void allow_fast() noexcept { ring.writer().fast = !loan_out && !closed_here && !broken && !durable.poisoned(); }

  status try_claim(std::uint64_t size, std::byte*& payload, std::uint64_t&) noexcept {
    if (broken) return status::corrupt;
    if (durable.poisoned()) return status::io_error;
    status s = ring.try_claim(size + channel.seal, payload);
    if (s == status::full && durable.checkpoint_released()) s = ring.try_claim(size + channel.seal, payload);
    if (s == status::full && durable.poisoned()) s = status::io_error;
    broken = s == status::corrupt;
    if (s == status::full) catch_up.polls = catch_up_polls;
    if (s == status::ok) {
      payload += channel.seal;
      ring.writer().fast = false;  // until the loan is committed or aborted
    } else {
      allow_fast();
    }
    return s;
  }
  bool has_room(std::uint64_t size) const noexcept { return ring.has_room(size); }
  wait_word& space_ready() noexcept { return channel.control->space_ready; }
  status commit_loan(std::uint64_t, std::size_t used) noexcept override {
    ring.publish(used + channel.seal);
    loan_out = false;
    // A record is sealed when it is about to be flushed (docs/durability.md, "Seals"):
    // under none the commit writes only the record, as in /dev/shm.
    status s = durable.state();
    if (durable.due(ring.tail())) {
      if (durable.level() == durability::per_commit) {
        s = sync();
      } else {
        seal_published();  // group commit: the background thread flushes them
        s = durable.persist(ring.tail(), false);
      }
    }
    allow_fast();
    return s;
  }
  // The flush ends at a page boundary: later records never touch a page it promised.
  // Under none, nothing is promised, but sealed records survive a clean shutdown.
  status sync() noexcept {
    if (durable.poisoned()) return status::io_error;
    if (durable.flushes()) ring.pad_to(file_page);
    seal_published();
    const status s = durable.persist(ring.tail(), true);
    allow_fast();  // a failure poisons: no inline loan after it
    return s;
  }
  // Seals the records not sealed yet. Those below the room head may have been reused;
  // none from it on has (and recovery after a reboot starts at a checkpoint at or past
  // the durable head).
  void seal_published() noexcept {
    if (channel.seal == 0) return;
    // acquire: pairs with the release that raised the durable head (write_checkpoint),
    // or the consumer's release of head (none); only the value matters here.
    const std::uint64_t from = std::max(sealed, room_head(channel).load(std::memory_order_acquire));
    sealed = seal_records(channel.geometry, from, ring.tail());
  }
  // Nothing was published: the claimed bytes are simply claimed again next time.
  void abort_loan(std::uint64_t) noexcept override {
    loan_out = false;
    allow_fast();
  }
  void close() noexcept {
    ring.writer().fast = false;
    close_stream(*channel.control);
    (void)sync();  // a failure poisons it
  }
  // The one consumer's unread messages must survive it: nothing to free.
  void recover() noexcept {}
  std::size_t max_message_size() const noexcept { return channel.geometry.max_payload - channel.seal; }
};

struct spsc_consumer_impl final : consumer_base<spsc_consumer_impl> {
  attached channel;
  spsc_ring_consumer ring;
  // The last consumer died holding the record here: handing it out again is a redelivery.
  std::uint64_t redeliver_at;
  // A file channel recovered after a reboot: every message before this position may have
  // been handed out before the power went, so each is flagged.
  std::uint64_t redeliver_until = 0;
  file_endpoint durable;  // a file channel's flushing (lib/durable/)
  static constexpr unsigned catch_up_polls = 16;  // about 370 ns of pauses here

  spsc_consumer_impl(attached a, const endpoint_options& o)
      : consumer_base(o),
        channel(std::move(a)),
        ring(*channel.control, channel.geometry, channel.control->head.load(std::memory_order_acquire)),
        redeliver_at(channel.control->reading.load(std::memory_order_relaxed) == ring.head() ? ring.head()
                                                                                            : no_position) {
    ring.reader().owner = this;
    ring.reader().seal = channel.seal;
    if (channel.seg.file_backed()) {
      map_read_only(channel.geometry.data, channel.geometry.capacity);  // a consumer never writes it
      durable = file_endpoint(channel.seg, *channel.control, channel.geometry, file_endpoint::role::consumer,
                              ring.head());
      redeliver_until = channel.control->redeliver_until.load(std::memory_order_relaxed);
    }
    allow_fast();
    channel.attaching.reset();  // set up: the next endpoint may attach
  }
  ~spsc_consumer_impl() {
    (void)durable.persist(ring.head(), true);
    channel.control->reading.store(no_position, std::memory_order_relaxed);  // a clean exit
    release_slot(channel.seg.fd(), consumer_lock, channel.control->consumer_pid);
  }

  // The inline read (record_reader) is allowed while nothing else needs the library.
  void allow_fast() noexcept {
    record_reader& r = ring.reader();
    r.fast = !r.view_out && !view_out && !kept && !broken && redeliver_at == no_position &&
             ring.head() >= redeliver_until && !durable.poisoned();
  }

  status take(const std::byte*& payload, std::uint64_t& size, std::uint64_t&, std::uint64_t&) noexcept {
    if (ring.reader().view_out) return status::busy;  // an inline read's view is out
    if (durable.poisoned()) return status::io_error;
    status s = ring.try_peek(payload, size);
    if (s == status::ok && channel.seal != 0) {
      if (size < channel.seal) {
        s = status::corrupt;  // no producer writes a message record without its seal
      } else {
        payload += channel.seal;
        size -= channel.seal;
      }
    }
    if (s == status::ok && redeliver_at != no_position) {
      redelivering = ring.head() == redeliver_at;
      redeliver_at = no_position;
      if (redelivering) channel.control->redelivered.fetch_add(1, std::memory_order_relaxed);
    }
    if (s == status::ok && ring.head() < redeliver_until) {
      if (!redelivering) channel.control->redelivered.fetch_add(1, std::memory_order_relaxed);
      redelivering = true;
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
    if (durable.due(ring.head())) (void)durable.persist(ring.head(), false);  // a failure poisons it
    allow_fast();
  }
  status sync() noexcept {
    const status s = durable.persist(ring.head(), true);
    allow_fast();  // a failure poisons: no inline read after it
    return s;
  }
  void keep(std::uint64_t ticket) noexcept {
    consumer_base::keep(ticket);
    ring.reader().fast = false;
  }
  bool view_intact(std::uint64_t) const noexcept override { return true; }
  std::size_t max_message_size() const noexcept { return channel.geometry.max_payload - channel.seal; }
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

// Public SPSC endpoints: attach (create or open, validate), role claims, and the
// three waiting forms of every operation on top of spsc_ring.hpp.
#include "shmq/spsc.hpp"

#include <cerrno>
#include <csignal>
#include <cstring>
#include <new>
#include <unistd.h>
#include <utility>

#include "segment.hpp"
#include "spsc_ring.hpp"

namespace shmq::detail {

namespace {

[[noreturn]] void fail(errc e, std::string_view name, const std::string& what) {
  throw error(e, "shmq channel '" + std::string(name) + "': " + what);
}

void check_options(std::string_view name, const channel_options& o) {
  const std::uint64_t cap = o.capacity;
  if (cap < min_capacity || cap > max_capacity || (cap & (cap - 1)) != 0)
    fail(errc::invalid_argument, name,
         "capacity " + std::to_string(cap) + " is not a power of two from 4 KiB to 1 GiB");
  if (o.max_message_size > max_payload_for(cap))
    fail(errc::invalid_argument, name,
         "max_message_size " + std::to_string(o.max_message_size) + " is over " +
             std::to_string(max_payload_for(cap)) + ", the most a " + std::to_string(cap) +
             "-byte ring can hold");
}

struct attached {
  segment seg;
  spsc_control* control;
  ring_geometry geometry;
};

segment create_channel(std::string_view name, const channel_options& o) {
  segment seg = segment::create(name, channel_kind::spsc, {sizeof(spsc_control), o.capacity}, o.mode);
  auto* c = new (seg.at(seg.header().control_offset)) spsc_control{};
  c->capacity = o.capacity;
  c->max_message_size = o.max_message_size;
  seg.mark_ready();
  return seg;
}

// Checks the control block of an opened segment; everything after uses local copies.
attached validate(segment seg, std::string_view name, const channel_options& o, bool created) {
  const segment_header& h = seg.header();
  if (h.control_size != sizeof(spsc_control))
    fail(errc::corrupt, name, "control block has the wrong size");
  auto* c = reinterpret_cast<spsc_control*>(seg.at(h.control_offset));
  const std::uint64_t cap = c->capacity;
  const std::uint64_t max = c->max_message_size;
  if (cap < min_capacity || cap > max_capacity || (cap & (cap - 1)) != 0 || cap != h.data_size ||
      max > max_payload_for(cap))
    fail(errc::corrupt, name, "control block holds an impossible capacity or message size");
  if (!created && o.open == open_mode::open_or_create &&
      (cap != o.capacity || max != o.max_message_size))
    fail(errc::options_mismatch, name,
         "exists with capacity " + std::to_string(cap) + " and max_message_size " +
             std::to_string(max) + ", not " + std::to_string(o.capacity) + " and " +
             std::to_string(o.max_message_size) + " (open it with open_mode::open, or remove it)");
  const std::uint64_t head = c->head.load(std::memory_order_acquire);
  const std::uint64_t tail = c->tail.load(std::memory_order_acquire);
  if (!positions_valid(head, tail, cap))
    fail(errc::corrupt, name,
         "control block positions out of range (head " + std::to_string(head) + ", tail " +
             std::to_string(tail) + ")");
  ring_geometry g{seg.at(h.data_offset), cap, max};
  return attached{std::move(seg), c, g};
}

attached attach(std::string_view name, const channel_options& o) {
  if (o.open != open_mode::open) check_options(name, o);
  if (o.open != open_mode::open) {
    try {
      return validate(create_channel(name, o), name, o, true);
    } catch (const error& e) {
      if (o.open == open_mode::create || e.code() != errc::already_exists) throw;
    }
  }
  return validate(segment::open(name, channel_kind::spsc, o.open_timeout), name, o, false);
}

bool process_alive(std::uint32_t pid) noexcept {
  return ::kill(static_cast<pid_t>(pid), 0) == 0 || errno != ESRCH;
}

// One producer and one consumer per channel: the slot holds the owner's pid. A slot
// left by a dead process is taken over. (Pid reuse can fool this; see the README.)
void claim_role(std::atomic<std::uint32_t>& slot, std::string_view name, const char* role) {
  const auto self = static_cast<std::uint32_t>(::getpid());
  std::uint32_t seen = 0;
  while (!slot.compare_exchange_strong(seen, self, std::memory_order_acq_rel)) {
    if (seen == self)
      fail(errc::role_taken, name, std::string("this process already has its ") + role);
    if (process_alive(seen))
      fail(errc::role_taken, name,
           std::string("already has a ") + role + " (pid " + std::to_string(seen) + ")");
  }
}

void release_role(std::atomic<std::uint32_t>& slot) noexcept {
  auto self = static_cast<std::uint32_t>(::getpid());
  slot.compare_exchange_strong(self, 0, std::memory_order_acq_rel);
}

clock::time_point deadline_after(std::chrono::nanoseconds timeout) noexcept {
  const auto now = clock::now();
  if (timeout > clock::time_point::max() - now) return clock::time_point::max();
  return now + std::chrono::duration_cast<clock::duration>(timeout);
}

// A producer that died after publishing a record but before storing tail leaves
// committed records past tail; skip them so the next producer does not overwrite them.
std::uint64_t recover_tail(const attached& a) noexcept {
  std::uint64_t tail = a.control->tail.load(std::memory_order_acquire);
  const std::uint64_t head = a.control->head.load(std::memory_order_acquire);
  for (;;) {
    const std::uint64_t word = commit_word_at(a.geometry, tail).load(std::memory_order_acquire);
    if (static_cast<std::uint32_t>(word >> 32) != record_tag(tail)) return tail;
    const std::uint64_t length = word & length_mask;
    const std::uint64_t step = (word & padding_flag) ? length : record_size(length);
    if (step == 0 || step % record_alignment != 0 || tail + step - head > a.geometry.capacity)
      return tail;
    tail += step;
  }
}

}  // namespace

struct spsc_producer_impl {
  attached channel;
  spsc_ring_producer ring;
  std::chrono::nanoseconds spin;
  std::string name;
  bool loan_out = false;
  bool broken = false;

  spsc_producer_impl(attached a, std::string_view n, std::chrono::nanoseconds s)
      : channel(std::move(a)),
        ring(*channel.control, channel.geometry, recover_tail(channel),
             channel.control->head.load(std::memory_order_acquire)),
        spin(s),
        name(n) {
    channel.control->tail.store(ring.tail(), std::memory_order_release);
    channel.control->closed.store(0, std::memory_order_release);  // reopen the stream
  }
  ~spsc_producer_impl() { release_role(channel.control->producer_pid); }

  status claim(std::uint64_t size, std::byte*& payload, clock::time_point deadline) {
    if (broken) return status::corrupt;
    if (loan_out) return status::busy;
    clock::time_point spin_until{};
    for (;;) {
      status s = ring.try_claim(size, payload);
      if (s == status::corrupt) broken = true;
      if (s == status::ok) loan_out = true;
      if (s != status::full || deadline == clock::time_point::min()) return s;
      if (spin_until == clock::time_point{}) spin_until = deadline_after(spin);
      if (!wait_until(channel.control->space_ready, [&] { return ring.has_room(size); },
                      spin_until, deadline))
        return status::timed_out;
    }
  }
  void commit(std::uint64_t size) noexcept {
    ring.publish(size);
    loan_out = false;
  }
};

struct spsc_consumer_impl {
  attached channel;
  spsc_ring_consumer ring;
  std::chrono::nanoseconds spin;
  bool view_out = false;
  bool broken = false;

  spsc_consumer_impl(attached a, std::chrono::nanoseconds s)
      : channel(std::move(a)),
        ring(*channel.control, channel.geometry,
             channel.control->head.load(std::memory_order_acquire)),
        spin(s) {}
  ~spsc_consumer_impl() { release_role(channel.control->consumer_pid); }

  status try_peek(const std::byte*& payload, std::uint64_t& size) noexcept {
    status s = ring.try_peek(payload, size);
    if (s == status::corrupt) broken = true;
    if (s != status::empty) return s;
    // The close store comes after the producer's last commit: acquiring it makes that
    // commit visible to the second look.
    if (channel.control->closed.load(std::memory_order_acquire) == 0) return s;
    s = ring.try_peek(payload, size);
    if (s == status::corrupt) broken = true;
    return s == status::empty ? status::closed : s;
  }

  status peek(const std::byte*& payload, std::uint64_t& size, clock::time_point deadline) {
    if (broken) return status::corrupt;
    if (view_out) return status::busy;
    clock::time_point spin_until{};
    for (;;) {
      status s = try_peek(payload, size);
      if (s == status::ok) view_out = true;
      if (s != status::empty || deadline == clock::time_point::min()) return s;
      if (spin_until == clock::time_point{}) spin_until = deadline_after(spin);
      auto ready = [&] {
        return ring.has_record() || channel.control->closed.load(std::memory_order_seq_cst) != 0;
      };
      if (!wait_until(channel.control->data_ready, ready, spin_until, deadline))
        return status::timed_out;
    }
  }
  void release() noexcept {
    ring.release();
    view_out = false;
  }
};

namespace {
constexpr auto no_wait = clock::time_point::min();
constexpr auto forever = clock::time_point::max();
}  // namespace

}  // namespace shmq::detail

namespace shmq {

using detail::clock;
using detail::deadline_after;
using detail::forever;
using detail::no_wait;

// ---- loan ----

loan::loan(loan&& o) noexcept
    : owner_(std::exchange(o.owner_, nullptr)),
      data_(o.data_),
      size_(o.size_),
      status_(std::exchange(o.status_, status::empty)) {}

loan& loan::operator=(loan&& o) noexcept {
  if (this != &o) {
    abort();
    owner_ = std::exchange(o.owner_, nullptr);
    data_ = o.data_;
    size_ = o.size_;
    status_ = std::exchange(o.status_, status::empty);
  }
  return *this;
}

loan::~loan() { abort(); }

void loan::commit(std::size_t used) noexcept {
  if (owner_ == nullptr) return;
  owner_->commit(used < size_ ? used : size_);
  owner_ = nullptr;
  status_ = status::empty;
}

void loan::abort() noexcept {
  // Nothing was published: the claimed bytes are simply claimed again next time.
  if (owner_ != nullptr) owner_->loan_out = false;
  owner_ = nullptr;
  status_ = status::empty;
}

// ---- view ----

view::view(view&& o) noexcept
    : owner_(std::exchange(o.owner_, nullptr)),
      data_(o.data_),
      size_(o.size_),
      status_(std::exchange(o.status_, status::empty)) {}

view& view::operator=(view&& o) noexcept {
  if (this != &o) {
    release();
    owner_ = std::exchange(o.owner_, nullptr);
    data_ = o.data_;
    size_ = o.size_;
    status_ = std::exchange(o.status_, status::empty);
  }
  return *this;
}

view::~view() { release(); }

void view::release() noexcept {
  if (owner_ != nullptr) owner_->release();
  owner_ = nullptr;
  status_ = status::empty;
}

// ---- producer ----

spsc_producer::spsc_producer(std::string_view name, const channel_options& options) {
  auto a = detail::attach(name, options);
  detail::claim_role(a.control->producer_pid, name, "producer");
  impl_ = std::make_unique<detail::spsc_producer_impl>(std::move(a), name, options.spin);
}
spsc_producer::spsc_producer(spsc_producer&&) noexcept = default;
spsc_producer& spsc_producer::operator=(spsc_producer&&) noexcept = default;
spsc_producer::~spsc_producer() = default;

shmq::loan spsc_producer::loan_until(std::size_t size, time_point deadline) {
  std::byte* payload = nullptr;
  status s = impl_->claim(size, payload, deadline);
  if (s != status::ok) return shmq::loan(s);
  return shmq::loan(impl_.get(), payload, size);
}

status spsc_producer::push_until(std::span<const std::byte> m, time_point deadline) {
  std::byte* payload = nullptr;
  status s = impl_->claim(m.size(), payload, deadline);
  if (s != status::ok) return s;
  if (!m.empty()) std::memcpy(payload, m.data(), m.size());
  impl_->commit(m.size());
  return status::ok;
}

shmq::loan spsc_producer::try_loan(std::size_t size) { return loan_until(size, no_wait); }
shmq::loan spsc_producer::loan_for(std::size_t size, std::chrono::nanoseconds timeout) {
  return loan_until(size, deadline_after(timeout));
}
shmq::loan spsc_producer::loan(std::size_t size) { return loan_until(size, forever); }

status spsc_producer::try_push(std::span<const std::byte> m) { return push_until(m, no_wait); }
status spsc_producer::push_for(std::span<const std::byte> m, std::chrono::nanoseconds timeout) {
  return push_until(m, deadline_after(timeout));
}
status spsc_producer::push(std::span<const std::byte> m) { return push_until(m, forever); }

void spsc_producer::close() noexcept {
  // After every commit of this producer (program order); the consumer acquires it.
  impl_->channel.control->closed.store(1, std::memory_order_seq_cst);
  detail::wake_all(impl_->channel.control->data_ready);
}

std::size_t spsc_producer::max_message_size() const noexcept { return impl_->channel.geometry.max_payload; }
std::size_t spsc_producer::capacity() const noexcept { return impl_->channel.geometry.capacity; }

// ---- consumer ----

spsc_consumer::spsc_consumer(std::string_view name, const channel_options& options) {
  auto a = detail::attach(name, options);
  detail::claim_role(a.control->consumer_pid, name, "consumer");
  impl_ = std::make_unique<detail::spsc_consumer_impl>(std::move(a), options.spin);
}
spsc_consumer::spsc_consumer(spsc_consumer&&) noexcept = default;
spsc_consumer& spsc_consumer::operator=(spsc_consumer&&) noexcept = default;
spsc_consumer::~spsc_consumer() = default;

view spsc_consumer::read_until(time_point deadline) {
  const std::byte* payload = nullptr;
  std::uint64_t size = 0;
  status s = impl_->peek(payload, size, deadline);
  if (s != status::ok) return view(s);
  return view(impl_.get(), payload, size);
}

pop_result spsc_consumer::pop_until(std::span<std::byte> buffer, time_point deadline) {
  const std::byte* payload = nullptr;
  std::uint64_t size = 0;
  status s = impl_->peek(payload, size, deadline);
  if (s != status::ok) return {s, 0};
  if (size > buffer.size()) {
    impl_->view_out = false;  // leave it in place for a larger buffer
    return {status::too_large, size};
  }
  if (size != 0) std::memcpy(buffer.data(), payload, size);
  impl_->release();
  return {status::ok, size};
}

view spsc_consumer::try_read() { return read_until(no_wait); }
view spsc_consumer::read_for(std::chrono::nanoseconds timeout) {
  return read_until(deadline_after(timeout));
}
view spsc_consumer::read() { return read_until(forever); }

pop_result spsc_consumer::try_pop(std::span<std::byte> b) { return pop_until(b, no_wait); }
pop_result spsc_consumer::pop_for(std::span<std::byte> b, std::chrono::nanoseconds timeout) {
  return pop_until(b, deadline_after(timeout));
}
pop_result spsc_consumer::pop(std::span<std::byte> b) { return pop_until(b, forever); }

std::size_t spsc_consumer::max_message_size() const noexcept { return impl_->channel.geometry.max_payload; }
std::size_t spsc_consumer::capacity() const noexcept { return impl_->channel.geometry.capacity; }

}  // namespace shmq

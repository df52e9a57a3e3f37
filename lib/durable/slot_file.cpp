#include "durable/slot_file.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <exception>
#include <mutex>

#include "durable/crc32c.hpp"
#include "durable/flush.hpp"
#include "durable/flush_thread.hpp"
#include "durable/mapped_file.hpp"

namespace shmq::detail {

namespace {

constexpr std::uint64_t max_sealed_ticket = std::uint64_t{1} << 62;  // far from any overflow

slot_seal& seal_of(const slot_geometry& g, std::uint64_t t) noexcept {
  return *reinterpret_cast<slot_seal*>(reinterpret_cast<std::byte*>(&g.slot(t)) + sizeof(slot_header));
}

std::uint32_t slot_crc(const slot_geometry& g, std::uint64_t t, std::uint32_t length, std::uint32_t state) noexcept {
  const std::uint64_t facts[2] = {t, (std::uint64_t{length} << 32) | state};
  return crc32c(crc32c(0, facts, sizeof facts), g.payload(t), length);
}

}  // namespace

slot_geometry file_slot_geometry(std::byte* data, std::uint64_t slots, std::uint64_t max_message,
                                 bool whole_pages) noexcept {
  return {data, slots, file_slot_size_for(max_message, whole_pages), max_message,
          sizeof(slot_header) + sizeof(slot_seal)};
}

void seal_slot(const slot_geometry& g, std::uint64_t t, std::uint32_t length, std::uint32_t state) noexcept {
  seal_of(g, t) = {t, slot_crc(g, t, length, state), state};
}

sealed_slot read_seal(const slot_geometry& g, std::uint64_t index) noexcept {
  const slot_seal seal = seal_of(g, index);
  const std::uint32_t length = g.slot(index).length;
  if (length > g.max_payload || seal.ticket >= max_sealed_ticket || (seal.ticket & (g.slot_count - 1)) != index)
    return {};
  if (seal.crc != slot_crc(g, seal.ticket, length, seal.state)) return {};
  return {true, seal.ticket, length, seal.state};
}

void clear_seal(const slot_geometry& g, std::uint64_t index) noexcept { seal_of(g, index) = {}; }

int flush_slots(const segment& seg, const slot_geometry& g, std::uint64_t from, std::uint64_t to) noexcept {
  std::byte* base = seg.at(0);
  const auto data = static_cast<std::uint64_t>(g.data - base);
  if (to <= from) return 0;
  const std::uint64_t count = std::min(to - from, g.slot_count);
  const std::uint64_t first = from & (g.slot_count - 1);
  const std::uint64_t before_wrap = std::min(count, g.slot_count - first);
  if (const int e = flush_pages(seg.fd(), base, seg.size(), data + first * g.slot_size, before_wrap * g.slot_size))
    return e;
  if (count > before_wrap) return flush_pages(seg.fd(), base, seg.size(), data, (count - before_wrap) * g.slot_size);
  return 0;
}

namespace {

// The pages of the slots of tickets [from, to), made writable again after their flush
// (writeback write-protects them): the endpoint's next write to each takes no fault on
// its own thread. Whole-page slots only.
void prefault_slots(const slot_geometry& g, std::uint64_t from, std::uint64_t to) noexcept {
  const std::uint64_t count = std::min(to - from, g.slot_count);
  const std::uint64_t first = from & (g.slot_count - 1);
  const std::uint64_t before_wrap = std::min(count, g.slot_count - first);
  prefault_writable(g.data + first * g.slot_size, before_wrap * g.slot_size);
  if (count > before_wrap) prefault_writable(g.data, (count - before_wrap) * g.slot_size);
}

}  // namespace

// ---- slot_durability ----

struct slot_durability::state_t {
  const segment* seg;
  slot_geometry geometry;
  std::atomic<std::uint32_t>* channel_poison;
  file_policy policy;
  int error = 0;  // this endpoint's, on its own thread
  // Group commit: the tickets touched since the last ask, on the endpoint's thread ...
  std::uint64_t lo = no_ticket, hi = 0, pending = 0;
  // ... and those asked for, handed to the background thread under `asked_mutex`.
  std::mutex asked_mutex;
  std::uint64_t asked_lo = no_ticket, asked_hi = 0;
  std::uint64_t generation = 0;  // of asks: the flush thread's target
  std::unique_ptr<flush_thread> background;

  status poison(int e) noexcept {
    error = e;
    channel_poison->store(static_cast<std::uint32_t>(e), std::memory_order_relaxed);  // page cache only
    return status::io_error;
  }
  bool poisoned() const noexcept { return error != 0 || (background && background->error() != 0); }

  // The flush thread's work: every slot asked for up to now. Its failure poisons the
  // channel for later attachers too.
  int flush_asked() noexcept {
    std::uint64_t from, to;
    {
      std::lock_guard<std::mutex> lock(asked_mutex);
      from = std::exchange(asked_lo, no_ticket);
      to = std::exchange(asked_hi, 0);
    }
    if (from == no_ticket) return 0;
    const int e = flush_slots(*seg, geometry, from, to + 1);
    if (e != 0) channel_poison->store(static_cast<std::uint32_t>(e), std::memory_order_relaxed);
    else if (geometry.slot_size % file_page == 0) prefault_slots(geometry, from, to + 1);
    return e;
  }
  // Hands the tickets touched so far to the flush thread; the generation to wait for.
  std::uint64_t ask() noexcept {
    if (lo != no_ticket) {
      std::lock_guard<std::mutex> lock(asked_mutex);
      asked_lo = std::min(asked_lo, lo);
      asked_hi = std::max(asked_hi, hi);
    }
    lo = no_ticket, hi = 0, pending = 0;
    return ++generation;
  }
  flush_thread* thread() noexcept {
    if (!background && error == 0) {
      try {
        background = std::make_unique<flush_thread>([this](std::uint64_t) { return flush_asked(); },
                                                    policy.group_interval, 0);
      } catch (const std::exception&) {
        poison(EAGAIN);  // nothing can be made durable: never taken for durable
      }
    }
    return background.get();
  }
};

slot_durability::slot_durability() noexcept = default;
slot_durability::slot_durability(slot_durability&&) noexcept = default;
slot_durability& slot_durability::operator=(slot_durability&&) noexcept = default;
slot_durability::~slot_durability() = default;  // ~flush_thread finishes what was asked

slot_durability::slot_durability(const segment& seg, const slot_geometry& g, std::atomic<std::uint32_t>& poisoned)
    : s_(std::make_unique<state_t>()) {
  s_->seg = &seg;
  s_->geometry = g;
  s_->channel_poison = &poisoned;
  s_->policy = file_policy_of(seg.header());
}

bool slot_durability::poisoned() const noexcept { return s_ && s_->poisoned(); }

status slot_durability::fail(int e) noexcept { return s_ ? s_->poison(e) : status::io_error; }

shmq::durability slot_durability::level() const noexcept { return s_ ? s_->policy.level : durability::none; }

status slot_durability::touched(std::uint64_t t) noexcept {
  if (!s_ || s_->policy.level == durability::none) return state();
  state_t& s = *s_;
  if (s.poisoned()) return status::io_error;
  if (s.policy.level == durability::per_commit) {
    if (const int e = flush_slots(*s.seg, s.geometry, t, t + 1); e != 0) return s.poison(e);
    return status::ok;
  }
  s.lo = std::min(s.lo, t);
  s.hi = std::max(s.hi, t);
  flush_thread* b = s.background.get();
  if (++s.pending >= s.policy.group_messages || (b != nullptr && b->interval_elapsed()) || b == nullptr) {
    b = s.thread();
    if (b == nullptr) return status::io_error;
    b->request(s.ask());
  }
  return state();
}

status slot_durability::sync() noexcept {
  if (!s_ || s_->policy.level != durability::group_commit) return state();
  state_t& s = *s_;
  if (s.poisoned()) return status::io_error;
  flush_thread* b = s.thread();
  if (b == nullptr) return status::io_error;
  if (const int e = b->wait(s.ask()); e != 0) return s.poison(e);
  return state();
}

}  // namespace shmq::detail

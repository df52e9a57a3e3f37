// One SPSC endpoint's side of a file-backed channel: its flush schedule, what it has
// flushed, and the poison a failed flush leaves (status::io_error from then on: the
// kernel reports a writeback error once, so nothing after it may be taken as durable).
// On /dev/shm, `policy` is durability::none and nothing here does anything.
#pragma once

#include <cstdint>
#include <string>

#include "durable/file_ring.hpp"
#include "durable/flush.hpp"

namespace shmq::detail {

class file_endpoint {
 public:
  file_endpoint() = default;
  file_endpoint(const segment& seg, spsc_control& control, std::uint64_t flushed_from)
      : seg_(&seg), control_(&control), policy_(file_policy_of(seg.header())), boot_(boot_id()),
        flushed_(flushed_from) {}

  bool flushes() const noexcept { return policy_.flushes(); }
  bool poisoned() const noexcept { return error_ != 0; }

  // After a commit or a release: must it be flushed now?
  bool due() noexcept { return schedule_.due(policy_); }
  status state() const noexcept { return error_ != 0 ? status::io_error : status::ok; }

  // Producer: `tail` is the end of the last commit, padded to a file_page boundary.
  status flush_records(const ring_geometry& g, std::uint64_t tail) noexcept {
    if (error_ != 0) return status::io_error;
    if (!flushes()) return status::ok;  // none: sync() promises nothing
    if (tail != flushed_)
      if (const int e = flush_ring(*seg_, g, flushed_, tail); e != 0) return poison(e);
    flushed_ = tail;
    schedule_.flushed();
    return status::ok;
  }
  // Producer: the ring is full by the durable head, but the consumer released more
  // since; make that release durable (a checkpoint) so its bytes can be reused. True if
  // the durable head moved.
  bool checkpoint_released() noexcept {
    if (error_ != 0 || !flushes()) return false;
    const std::uint64_t head = control_->head.load(std::memory_order_acquire);
    if (head <= control_->durable_head.load(std::memory_order_acquire)) return false;
    if (const int e = write_checkpoint(*seg_, *control_, head, boot_, true); e != 0) {
      poison(e);
      return false;
    }
    return true;
  }

  // Consumer: `head` is its position after a release.
  status flush_head(std::uint64_t head) noexcept {
    if (error_ != 0) return status::io_error;
    if (!flushes()) return status::ok;
    if (const int e = write_checkpoint(*seg_, *control_, head, boot_, true); e != 0) return poison(e);
    schedule_.flushed();
    return status::ok;
  }

 private:
  status poison(int e) noexcept {
    error_ = e;
    // Page cache only: for tools and later attachers in this boot (attach refuses it).
    control_->poisoned.store(static_cast<std::uint32_t>(e), std::memory_order_relaxed);
    return status::io_error;
  }

  const segment* seg_ = nullptr;
  spsc_control* control_ = nullptr;
  file_policy policy_{};
  std::string boot_;
  std::uint64_t flushed_ = 0;
  flush_schedule schedule_;
  int error_ = 0;
};

}  // namespace shmq::detail

#include "durable/file_endpoint.hpp"

#include <cerrno>
#include <exception>

namespace shmq::detail {

file_endpoint::file_endpoint(const segment& seg, spsc_control& control, const ring_geometry& g, role r,
                             std::uint64_t from)
    : seg_(&seg), control_(&control), policy_(file_policy_of(seg.header())), boot_(boot_id()), asked_(from) {
  if (r == role::consumer) room_step_ = g.capacity / 4;
  const bool flush = policy_.flushes();
  std::function<int(std::uint64_t)> work;
  if (r == role::producer) {
    work = [s = &seg, g, flushed = from, flush](std::uint64_t tail) mutable {
      if (!flush || tail == flushed) return 0;
      const int e = flush_ring(*s, g, flushed, tail);
      if (e == 0) flushed = tail;
      return e;
    };
  } else {
    work = [s = &seg, c = &control, boot = boot_, flush](std::uint64_t head) {
      return write_checkpoint(*s, *c, head, boot, flush);
    };
  }
  if (policy_.level != durability::group_commit) {
    work_ = std::move(work);
    return;
  }
  // The background thread's failure poisons the channel for later attachers too. After
  // a producer's flush it makes the flushed pages writable again, off the producer's
  // thread (the write faults would otherwise be the producer's).
  work_ = [work = std::move(work), c = &control, g, r, last = from](std::uint64_t position) mutable {
    const int e = work(position);
    if (e != 0) c->poisoned.store(static_cast<std::uint32_t>(e), std::memory_order_relaxed);
    if (e == 0 && r == role::producer) prefault_ring(g, last, position);
    last = position;
    return e;
  };
}

flush_thread* file_endpoint::background() noexcept {
  if (!background_ && error_ == 0) {
    try {
      background_ = std::make_unique<flush_thread>(std::move(work_), policy_.group_interval, asked_);
    } catch (const std::exception&) {
      poison(EAGAIN);  // nothing can be made durable: never taken for durable
    }
  }
  return background_.get();
}

status file_endpoint::persist(std::uint64_t position, bool wait) noexcept {
  if (seg_ == nullptr) return status::ok;  // /dev/shm
  if (error_ != 0) return status::io_error;
  pending_ = 0;
  asked_ = position;
  if (policy_.level == durability::group_commit) {
    flush_thread* b = background();
    if (b == nullptr) return status::io_error;
    if (wait) {
      if (const int e = b->wait(position); e != 0) return poison(e);
    } else {
      b->request(position);
    }
    return state();
  }
  if (const int e = work_(position); e != 0) return poison(e);
  return status::ok;
}

bool file_endpoint::checkpoint_released() noexcept {
  if (poisoned() || !flushes()) return false;
  const std::uint64_t head = control_->head.load(std::memory_order_acquire);
  if (head <= control_->durable_head.load(std::memory_order_acquire)) return false;
  if (const int e = write_checkpoint(*seg_, *control_, head, boot_, true); e != 0) {
    poison(e);
    return false;
  }
  return true;
}

status file_endpoint::poison(int e) noexcept {
  error_ = e;
  // Page cache only: for tools and later attachers in this boot (attach refuses it).
  control_->poisoned.store(static_cast<std::uint32_t>(e), std::memory_order_relaxed);
  return status::io_error;
}

}  // namespace shmq::detail

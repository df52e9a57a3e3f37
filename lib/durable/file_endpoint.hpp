// One SPSC endpoint's side of a file-backed channel: its flush schedule, how it makes
// its position durable (a producer's records, a consumer's checkpoint), and the poison a
// failed flush leaves (status::io_error from then on: the kernel reports a writeback
// error once, so nothing after it may be taken as durable). Under group commit the
// flushes run on a background thread (flush_thread.hpp); under per_commit on the
// caller's. On /dev/shm, `policy` is durability::none and nothing here does anything.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "durable/file_ring.hpp"
#include "durable/flush.hpp"
#include "durable/flush_thread.hpp"

namespace shmq::detail {

class file_endpoint {
 public:
  enum class role { producer, consumer };

  file_endpoint() = default;
  // A producer's records from `from` on are not known to be flushed; a consumer's
  // position is `from`.
  file_endpoint(const segment& seg, spsc_control& control, const ring_geometry& g, role r, std::uint64_t from);

  bool flushes() const noexcept { return policy_.flushes(); }
  shmq::durability level() const noexcept { return policy_.level; }
  bool poisoned() const noexcept { return error_ != 0 || (background_ && background_->error() != 0); }
  status state() const noexcept { return poisoned() ? status::io_error : status::ok; }

  // After a commit or a release: should the position be made durable now? Every time
  // under per_commit; under group_commit at the group_messages-th since the last time,
  // or at the first after the background thread saw group_interval pass.
  // A consumer also asks every quarter ring it releases: the producer reuses bytes only
  // once their release is durable, and must not wait for a whole group to find room.
  bool due(std::uint64_t position) noexcept {
    if (policy_.level != durability::group_commit) return policy_.level == durability::per_commit;
    const flush_thread* b = background_ ? background_.get() : background();
    return ++pending_ >= policy_.group_messages || (b != nullptr && b->interval_elapsed()) ||
           position - asked_ >= room_step_;
  }
  // Makes `position` durable (a producer's tail, its records before it sealed; a
  // consumer's head): with `wait`, before returning (sync(), per_commit); without, soon
  // (group commit's background flush). Under none: a consumer's checkpoint is written,
  // unflushed, so that a clean shutdown keeps the position; nothing else.
  status persist(std::uint64_t position, bool wait) noexcept;

  // Producer: the ring is full by the durable head, but the consumer released more
  // since; make that release durable (a checkpoint) so its bytes can be reused. True if
  // the durable head moved.
  bool checkpoint_released() noexcept;

 private:
  status poison(int e) noexcept;
  // Started by the endpoint's first commit or release (or sync()), on its thread: the
  // flush thread inherits that thread's CPU affinity, and a flush's TLB shoot-down of the
  // endpoint's own mapping stays on that CPU when it is pinned. Null (and the endpoint
  // poisoned) if no thread could be started.
  flush_thread* background() noexcept;

  const segment* seg_ = nullptr;
  spsc_control* control_ = nullptr;
  file_policy policy_{};
  std::string boot_;
  std::uint64_t pending_ = 0;
  std::uint64_t asked_ = 0;                   // the position last made (or asked to be) durable
  std::uint64_t room_step_ = ~std::uint64_t{0};  // a consumer's: a quarter of the ring
  std::function<int(std::uint64_t)> work_;    // per_commit, none: run on the caller's thread
  std::unique_ptr<flush_thread> background_;  // group_commit, once started: runs work_
  int error_ = 0;
};

}  // namespace shmq::detail

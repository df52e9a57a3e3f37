// A readiness handle: what an endpoint hands an event loop to wait on (native_handle(),
// include/shmq/readiness.hpp). Three descriptors:
//
//   epoll   the one the loop watches; it holds the two below, so one descriptor is
//           readable when either is
//   socket  an abstract Unix datagram socket (wake_address.hpp); wakers send it a byte
//   timer   a timerfd for the liveness tick: an armed endpoint still runs its checks for
//           dead peers every liveness_interval, with nobody spinning
//
// The handle owns slot `slot` of its wait word's table (wait_word.hpp) from creation to
// destruction, and must be destroyed while the segment is still mapped.
#pragma once

#include <chrono>
#include <cstdint>

#include "../futex.hpp"
#include "../wait_word.hpp"

namespace shmq::detail {

class readiness_handle {
 public:
  // Throws shmq::error: errc::system_error when a descriptor cannot be made (EMFILE),
  // errc::limit_reached when the wait word's table is full of live handles.
  explicit readiness_handle(wait_word& w);
  ~readiness_handle();
  readiness_handle(const readiness_handle&) = delete;
  readiness_handle& operator=(const readiness_handle&) = delete;

  int fd() const noexcept { return epoll_fd_; }

  // Empties the wake socket and the timer, so that the loop's descriptor is readable
  // again only after something new. True if the liveness tick had fired.
  bool drain() noexcept;
  // Sets this handle's armed bit (A) then bit 1 of the word (E), then the heavy fence;
  // the caller re-checks next (R). Returns what heavy_fence() returned.
  bool announce() noexcept;
  // Starts the liveness tick unless it is running already.
  void start_tick(std::chrono::nanoseconds after) noexcept;

  clock::time_point next_check{};  // when the endpoint's liveness check is due again

 private:
  wait_word* word_;
  std::size_t slot_ = max_handles;
  std::uint64_t key_ = 0;
  int epoll_fd_ = -1, socket_fd_ = -1, timer_fd_ = -1;
  bool ticking_ = false;

  void claim_slot();
  void close_all() noexcept;
};

}  // namespace shmq::detail

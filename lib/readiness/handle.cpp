#include "handle.hpp"

#include <cerrno>
#include <cstring>
#include <string>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <unistd.h>
#include <utility>

#include "../fence.hpp"
#include "shmq/status.hpp"
#include "wake_address.hpp"

namespace shmq::detail {

namespace {

[[noreturn]] void fail_os(const char* doing) {
  const int e = errno;
  std::string what = std::string("shmq: cannot make a readiness handle: ") + doing + ": " + std::strerror(e);
  if (e == EMFILE || e == ENFILE)
    what += " (each readiness handle needs 3 descriptors and the process has run out; raise the limit"
            " with ulimit -n, or close endpoints)";
  throw shmq::error(errc::system_error, what);
}

std::uint64_t random_key() {
  for (;;) {
    std::uint64_t key = 0;
    if (::getrandom(&key, sizeof key, 0) != sizeof key) {
      if (errno == EINTR) continue;
      fail_os("getrandom");
    }
    if (key != 0) return key;
  }
}

}  // namespace

readiness_handle::readiness_handle(wait_word& w) : word_(&w) {
  try {
    socket_fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (socket_fd_ < 0) fail_os("socket");
    for (int attempt = 0;; ++attempt) {
      key_ = random_key();
      const wake_address a = wake_address_of(key_);
      if (::bind(socket_fd_, reinterpret_cast<const sockaddr*>(&a.addr), a.length) == 0) break;
      if (errno != EADDRINUSE || attempt == 8) fail_os("bind");
    }
    timer_fd_ = ::timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
    if (timer_fd_ < 0) fail_os("timerfd_create");
    epoll_fd_ = ::epoll_create1(EPOLL_CLOEXEC);
    if (epoll_fd_ < 0) fail_os("epoll_create1");
    epoll_event ev{};
    ev.events = EPOLLIN;
    if (::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, socket_fd_, &ev) != 0) fail_os("epoll_ctl");
    if (::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, timer_fd_, &ev) != 0) fail_os("epoll_ctl");
    claim_slot();  // last: the socket is bound, so no waker ever finds the key unbound
  } catch (...) {
    close_all();
    throw;
  }
}

void readiness_handle::claim_slot() {
  for (int round = 0; round < 2; ++round) {
    for (std::size_t i = 0; i < max_handles; ++i) {
      std::uint64_t expected = 0;
      // Publishes the key (release) before any waker can see this slot's armed bit.
      if (word_->keys[i].compare_exchange_strong(expected, key_, std::memory_order_acq_rel)) {
        slot_ = i;
        return;
      }
    }
    // Full: take back the slots of handles whose process died without closing them.
    for (std::size_t i = 0; i < max_handles; ++i) {
      std::uint64_t key = word_->keys[i].load(std::memory_order_acquire);
      if (key != 0 && !send_wake(key)) word_->keys[i].compare_exchange_strong(key, 0, std::memory_order_acq_rel);
    }
  }
  throw shmq::error(errc::limit_reached, "shmq: cannot make a readiness handle: the channel already has " +
                                             std::to_string(max_handles) +
                                             " live readiness handles waiting in this direction");
}

readiness_handle::~readiness_handle() {
  if (slot_ < max_handles) {
    word_->armed[slot_ / 64].fetch_and(~(std::uint64_t{1} << (slot_ % 64)), std::memory_order_relaxed);
    std::uint64_t expected = key_;
    word_->keys[slot_].compare_exchange_strong(expected, 0, std::memory_order_release);
  }
  close_all();
}

void readiness_handle::close_all() noexcept {
  for (int* fd : {&epoll_fd_, &timer_fd_, &socket_fd_})
    if (*fd >= 0) ::close(std::exchange(*fd, -1));
}

bool readiness_handle::drain() noexcept {
  // One call takes every queued wake (more than a batch only after a burst of wakers).
  constexpr unsigned batch = 16;
  char bytes[batch];
  iovec iov[batch];
  mmsghdr messages[batch]{};
  for (unsigned i = 0; i < batch; ++i) {
    iov[i] = {&bytes[i], 1};
    messages[i].msg_hdr.msg_iov = &iov[i];
    messages[i].msg_hdr.msg_iovlen = 1;
  }
  int n;
  do n = ::recvmmsg(socket_fd_, messages, batch, MSG_DONTWAIT, nullptr);
  while (n == static_cast<int>(batch) || (n < 0 && errno == EINTR));
  // The timer is read only once it is due: this handle set it, so it knows when.
  if (!ticking_ || clock::now() < tick_due_) return false;
  std::uint64_t expirations = 0;
  if (::read(timer_fd_, &expirations, sizeof expirations) != sizeof expirations) return false;
  ticking_ = false;
  return true;
}

bool readiness_handle::announce() noexcept {
  word_->armed[slot_ / 64].fetch_or(std::uint64_t{1} << (slot_ % 64), std::memory_order_seq_cst);  // A
  word_->word.fetch_or(handle_armed, std::memory_order_seq_cst);                                   // E
  // Publishers with light fences set light_publishers (seq_cst) before their first
  // publish. Seen 0 here, after E, such a publisher's setting comes after E in the single
  // order of seq_cst operations, and so does its F, which therefore sees E. Every other
  // publisher stores seq_cst, which the plain Dekker argument of wait_word.hpp covers.
  // Light publishers: the first handle to arm on this word asks them all to fence
  // (fenced_publishers) and runs one membarrier (it interrupts every CPU running a shmq
  // process: tens of microseconds on a virtual machine), after which no arm needs one.
  if (fenced_publishers_settled(*word_)) return true;
  std::uint32_t asked = 0;
  word_->fenced_publishers.compare_exchange_strong(asked, publishers_fence_asked, std::memory_order_seq_cst);
  if (!heavy_fence()) return false;
  // release: a waiter that reads 2 (acquire) comes after this membarrier returned.
  std::uint32_t expected = publishers_fence_asked;
  word_->fenced_publishers.compare_exchange_strong(expected, publishers_fence_settled, std::memory_order_release,
                                                   std::memory_order_relaxed);
  return true;
}

void readiness_handle::start_tick(std::chrono::nanoseconds after) noexcept {
  if (ticking_) return;
  if (after <= std::chrono::nanoseconds::zero()) after = std::chrono::nanoseconds(1);
  itimerspec spec{};
  spec.it_value.tv_sec = static_cast<time_t>(after.count() / 1'000'000'000);
  spec.it_value.tv_nsec = static_cast<long>(after.count() % 1'000'000'000);
  tick_due_ = clock::now() + std::chrono::duration_cast<clock::duration>(after);
  ticking_ = ::timerfd_settime(timer_fd_, 0, &spec, nullptr) == 0;
}

}  // namespace shmq::detail

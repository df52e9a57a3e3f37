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

constexpr std::uint32_t wake_tag = 0, tick_tag = 1;

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
    ev.data.u32 = wake_tag;
    if (::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, socket_fd_, &ev) != 0) fail_os("epoll_ctl");
    ev.data.u32 = tick_tag;
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
  epoll_event ev[2];
  int n;
  do n = ::epoll_wait(epoll_fd_, ev, 2, 0);
  while (n < 0 && errno == EINTR);
  bool ticked = false;
  for (int i = 0; i < n; ++i) {
    if (ev[i].data.u32 == wake_tag) {
      char buffer[16];
      while (::recv(socket_fd_, buffer, sizeof buffer, MSG_DONTWAIT) >= 0 || errno == EINTR) {
      }
    } else {
      std::uint64_t expirations = 0;
      if (::read(timer_fd_, &expirations, sizeof expirations) == sizeof expirations) ticked = true;
    }
  }
  if (ticked) ticking_ = false;
  return ticked;
}

bool readiness_handle::announce() noexcept {
  word_->armed[slot_ / 64].fetch_or(std::uint64_t{1} << (slot_ % 64), std::memory_order_seq_cst);  // A
  word_->word.fetch_or(handle_armed, std::memory_order_seq_cst);                                   // E
  return heavy_fence();
}

void readiness_handle::start_tick(std::chrono::nanoseconds after) noexcept {
  if (ticking_) return;
  if (after <= std::chrono::nanoseconds::zero()) after = std::chrono::nanoseconds(1);
  itimerspec spec{};
  spec.it_value.tv_sec = static_cast<time_t>(after.count() / 1'000'000'000);
  spec.it_value.tv_nsec = static_cast<long>(after.count() % 1'000'000'000);
  ticking_ = ::timerfd_settime(timer_fd_, 0, &spec, nullptr) == 0;
}

}  // namespace shmq::detail

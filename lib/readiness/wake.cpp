// The waker's side of readiness handles: a datagram to every handle that armed itself.
#include <cerrno>
#include <sys/socket.h>
#include <unistd.h>

#include "../wait_word.hpp"
#include "wake_address.hpp"

namespace shmq::detail {

namespace {

// One unbound datagram socket per process sends every wake. If it cannot be made
// (no descriptor left), wakes are lost, and armed handles learn of the change at their
// next liveness tick instead: late, but never stuck.
int sender() noexcept {
  static const int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  return fd;
}

}  // namespace

bool send_wake(std::uint64_t key) noexcept {
  const int fd = sender();
  if (fd < 0) return true;
  const wake_address a = wake_address_of(key);
  const char byte = 0;
  for (;;) {
    if (::sendto(fd, &byte, 1, MSG_DONTWAIT | MSG_NOSIGNAL, reinterpret_cast<const sockaddr*>(&a.addr),
                 a.length) >= 0)
      return true;
    if (errno == EINTR) continue;
    // EAGAIN: its queue is full of earlier wakes, so it is readable already.
    return errno != ECONNREFUSED && errno != ENOENT;
  }
}

void wake_handles(wait_word& w) noexcept {
  for (std::size_t j = 0; j < max_handles / 64; ++j) {
    // Takes the announcements. The handle set its bit (A) before setting bit 1 of the
    // word (E), and the caller's CAS or fetch_add on the word read E or a later value of
    // its modification order, so A happens before these loads and they see A or a later
    // value: the bit, or its absence because another waker took it after A and sends
    // this wake itself. The plain load spares empty words the read-for-ownership.
    if (w.armed[j].load(std::memory_order_seq_cst) == 0) continue;
    std::uint64_t bits = w.armed[j].exchange(0, std::memory_order_seq_cst);
    while (bits != 0) {
      const std::size_t slot = j * 64 + static_cast<std::size_t>(__builtin_ctzll(bits));
      bits &= bits - 1;
      // keys[slot] was stored (release) before the handle ever set its armed bit.
      const std::uint64_t key = w.keys[slot].load(std::memory_order_acquire);
      // A dead handle's slot goes back to the table, unless someone took it since.
      if (key != 0 && !send_wake(key)) {
        std::uint64_t expected = key;
        w.keys[slot].compare_exchange_strong(expected, 0, std::memory_order_acq_rel);
      }
    }
  }
}

}  // namespace shmq::detail

#include "registry.hpp"

#include <cerrno>
#include <fcntl.h>
#include <unistd.h>

namespace shmq::detail {

namespace {

struct flock byte_lock(short type, std::uint64_t index) noexcept {
  struct flock l {};
  l.l_type = type;
  l.l_whence = SEEK_SET;
  l.l_start = static_cast<off_t>(participant_lock_base + index);
  l.l_len = 1;
  l.l_pid = 0;  // required for OFD locks
  return l;
}

int lock_call(int fd, int cmd, struct flock& l) noexcept {
  int rc;
  while ((rc = ::fcntl(fd, cmd, &l)) == -1 && errno == EINTR) {
  }
  return rc;
}

}  // namespace

bool hold_lock(int fd, std::uint64_t index) noexcept {
  struct flock l = byte_lock(F_WRLCK, index);
  return lock_call(fd, F_OFD_SETLK, l) == 0;
}

void wait_lock(int fd, std::uint64_t index) noexcept {
  struct flock l = byte_lock(F_WRLCK, index);
  lock_call(fd, F_OFD_SETLKW, l);
}

void drop_lock(int fd, std::uint64_t index) noexcept {
  struct flock l = byte_lock(F_UNLCK, index);
  lock_call(fd, F_OFD_SETLK, l);
}

bool held_elsewhere(int fd, std::uint64_t index) noexcept {
  struct flock l = byte_lock(F_WRLCK, index);
  if (lock_call(fd, F_OFD_GETLK, l) != 0) return true;  // cannot tell: assume alive
  return l.l_type != F_UNLCK;
}

int claim_slot(int fd, std::uint64_t first_lock, std::span<std::atomic<std::uint32_t>> pids) noexcept {
  const auto self = static_cast<std::uint32_t>(::getpid());
  for (std::size_t i = 0; i < pids.size(); ++i) {
    if (!hold_lock(fd, first_lock + i)) continue;
    // Ours now; a pid left in it was a dead holder's. release: the slot's state, set up
    // by the caller afterwards, is published with later stores, and readers of the pid
    // only use it to report and to tell a clean exit (0) from a death.
    pids[i].store(self, std::memory_order_release);
    return static_cast<int>(i);
  }
  return -1;
}

void release_slot(int fd, std::uint64_t lock, std::atomic<std::uint32_t>& pid) noexcept {
  pid.store(0, std::memory_order_release);
  drop_lock(fd, lock);
}

bool holder_died(int fd, std::uint64_t lock, const std::atomic<std::uint32_t>& pid) noexcept {
  return pid.load(std::memory_order_acquire) != 0 && !held_elsewhere(fd, lock);
}

bool all_died(int fd, std::uint64_t first_lock, std::span<std::atomic<std::uint32_t>> pids) noexcept {
  bool died = false;
  for (std::size_t i = 0; i < pids.size(); ++i) {
    if (pids[i].load(std::memory_order_acquire) == 0) continue;
    if (held_elsewhere(fd, first_lock + i)) return false;
    died = true;
  }
  return died;
}

}  // namespace shmq::detail

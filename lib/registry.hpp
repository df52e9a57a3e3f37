// Who is attached, and who is alive.
//
// Each endpoint holds participant slot i of its channel: a pid word in the control block
// (for people and tools to read) and, what counts, an open-file-description write lock
// on byte participant_lock_base + i of the segment's file (F_OFD_SETLK). The kernel drops
// the lock when the holder's last descriptor closes, which a killed process's always
// does, so a slot whose lock anyone can take is free or was held by a dead process, and
// pid reuse cannot make a dead holder look alive. A process that forks keeps the lock
// shared with its child until both have closed the descriptor (exec closes it).
#pragma once

#include <atomic>
#include <cstdint>
#include <span>

namespace shmq::detail {

// Far past the end of any segment: the locks never cover bytes that are read.
inline constexpr std::uint64_t participant_lock_base = std::uint64_t{1} << 40;

// Held by a segment's creator until the segment is ready: an opener that finds it
// initializing and this lock free knows the creator died half-way. Past every
// participant slot index.
inline constexpr std::uint64_t creator_lock = std::uint64_t{1} << 20;

// Takes the lock of slot `index` without waiting; true if this descriptor now holds it.
bool hold_lock(int fd, std::uint64_t index) noexcept;
// Waits for the lock of slot `index` (for short critical sections, e.g. table changes).
void wait_lock(int fd, std::uint64_t index) noexcept;
void drop_lock(int fd, std::uint64_t index) noexcept;
// Holds lock `index` for a scope, waiting for it first: serializes short table changes
// and recoveries across processes. The kernel drops it if the holder dies.
class lock_guard {
 public:
  lock_guard(int fd, std::uint64_t index) noexcept : fd_(fd), index_(index) { wait_lock(fd, index); }
  ~lock_guard() { drop_lock(fd_, index_); }
  lock_guard(const lock_guard&) = delete;
  lock_guard& operator=(const lock_guard&) = delete;

 private:
  int fd_;
  std::uint64_t index_;
};

// True if another descriptor (another endpoint, here or in another process) holds it.
// Never ask it about a lock held through `fd` itself: an OFD lock does not conflict with
// its own open file description, so the answer is false, as for a dead holder (and
// hold_lock on it succeeds). Every liveness check skips the caller's own slot.
bool held_elsewhere(int fd, std::uint64_t index) noexcept;

// Claims the first free or dead slot of `pids`, whose locks are first_lock, first_lock+1,
// ...: takes the lock, then writes our pid. Index of the slot, or -1 if all are alive.
int claim_slot(int fd, std::uint64_t first_lock, std::span<std::atomic<std::uint32_t>> pids) noexcept;
// Clears the pid first, then drops the lock: a live-but-leaving holder never looks dead.
void release_slot(int fd, std::uint64_t lock, std::atomic<std::uint32_t>& pid) noexcept;

// A slot whose pid is set but whose lock nobody holds belonged to a process that died
// without detaching.
bool holder_died(int fd, std::uint64_t lock, const std::atomic<std::uint32_t>& pid) noexcept;

// Some holder of `pids` (locks first_lock, ...) died and none is alive.
bool all_died(int fd, std::uint64_t first_lock, std::span<std::atomic<std::uint32_t>> pids) noexcept;

}  // namespace shmq::detail

// The fault harness's ledger: one shared mapping, made before forking, in which the
// children record ids taken, commits, deliveries, redeliveries, where each child is in
// its loop, the quiet flag producers stop at, private subscribers' delivery logs, and the
// first error; the harness reads it to watch progress and to check the round
// (test_fault.cpp describes what is counted and why).
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdarg>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>

#include <linux/futex.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <doctest/doctest.h>

#include "fault/private_log.hpp"

namespace shmq::test::fault {

inline constexpr std::size_t max_groups = 4;
inline constexpr std::size_t max_children = 8;

// Where a child is in its loop: the harness reads it to time blocked producers, and
// after a kill to count what the kill interrupted. `quiet`: a producer stopped at the
// quiet flag.
enum class phase : std::uint32_t { idle, blocked, loaned, holding, copying, copied, quiet };
inline constexpr std::size_t phases = 7;

struct alignas(64) child_flags {  // a cache line each: children write them all the time
  std::atomic<std::uint32_t> ready;  // the child attached its endpoint
  std::atomic<phase> at;
  std::atomic<std::uint64_t> commits;  // per producer, over its restarts
  std::atomic<std::uint64_t> copied;   // the id a consumer in phase::copied holds
  // Set by the parent before it forks the child (fork orders them before the child's
  // reads): which start of this slot the child is, and whether it consumes slowly.
  std::atomic<std::uint32_t> incarnation;
  std::atomic<std::uint32_t> slow;
  std::atomic<std::uint64_t> start_id;  // a consumer's id_watermark() after it attached
};

struct ledger_header {
  std::atomic<std::uint64_t> next_id;
  std::atomic<std::uint64_t> committed_total;
  std::atomic<std::uint32_t> stop_producing;  // take no new ids
  std::atomic<std::uint32_t> stop;            // everyone leaves
  std::atomic<std::uint32_t> quiet;           // a futex word: 1 while producers pause
  child_flags children[max_children];
  std::atomic<std::uint64_t> deliveries[max_groups];  // duplicates included
  std::atomic<std::uint64_t> redelivered[max_groups];
  std::atomic<std::uint64_t> errors;
  std::atomic<std::uint32_t> error_claimed;
  char error_text[512];  // the first error a child reported
};

// Shared by the harness and every child it forks: an anonymous MAP_SHARED mapping made
// before forking, so the parent reads what a killed child wrote.
class ledger {
 public:
  // Groups whose bit is set in `logged` (private subscriptions) also keep a delivery log.
  ledger(std::uint64_t capacity, std::size_t groups, unsigned logged = 0) : capacity_(capacity), logged_(logged) {
    REQUIRE(capacity <= private_log::max_ids);
    const std::size_t logs = static_cast<std::size_t>(__builtin_popcount(logged));
    const std::size_t log_bytes = private_log::bytes_for(capacity);
    bytes_ = sizeof(ledger_header) + logs * log_bytes +
             capacity * (1 + groups * sizeof(std::atomic<std::uint16_t>));
    void* p = ::mmap(nullptr, bytes_, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    REQUIRE(p != MAP_FAILED);
    header_ = static_cast<ledger_header*>(p);  // zero-filled by the kernel
    auto* next = reinterpret_cast<std::byte*>(header_ + 1);
    for (std::size_t g = 0; g < max_groups; ++g)
      if ((logged >> g & 1) != 0) {
        logs_[g] = private_log(next, capacity);
        next += log_bytes;
      }
    delivered_ = reinterpret_cast<std::atomic<std::uint16_t>*>(next);
    committed_ = reinterpret_cast<std::atomic<std::uint8_t>*>(next + capacity * groups * 2);
  }
  ~ledger() { ::munmap(header_, bytes_); }
  ledger(const ledger&) = delete;
  ledger& operator=(const ledger&) = delete;

  std::uint64_t capacity() const noexcept { return capacity_; }
  ledger_header& header() const noexcept { return *header_; }

  // ---- in children ----
  // acq_rel: the private subscriber's id_watermark() (release, after it subscribed)
  // and a producer's take_id (acquire, before it claims a ticket) are RMWs of the same
  // word, so a producer whose id is at or past the watermark claims after the
  // subscription exists (see private_log.hpp).
  std::uint64_t take_id() noexcept { return header_->next_id.fetch_add(1, std::memory_order_acq_rel); }
  std::uint64_t id_watermark() noexcept { return header_->next_id.fetch_add(0, std::memory_order_acq_rel); }
  // Records which producer slot committed `id` (slot + 1; 0: not committed).
  void mark_committed(std::size_t slot, std::uint64_t id) noexcept {
    committed_[id].store(static_cast<std::uint8_t>(slot + 1), std::memory_order_relaxed);
    header_->committed_total.fetch_add(1, std::memory_order_relaxed);
    header_->children[slot].commits.fetch_add(1, std::memory_order_relaxed);
  }
  void set_phase(std::size_t slot, phase p) noexcept { header_->children[slot].at.store(p, std::memory_order_release); }
  // A consumer holds a copy of message `id` that it has not counted yet.
  void note_copy(std::size_t slot, std::uint64_t id) noexcept {
    header_->children[slot].copied.store(id, std::memory_order_relaxed);
    set_phase(slot, phase::copied);
  }
  void count_redelivery(std::size_t g) noexcept { header_->redelivered[g].fetch_add(1, std::memory_order_relaxed); }
  void deliver(std::size_t g, std::uint64_t id) noexcept {
    delivered_[g * capacity_ + id].fetch_add(1, std::memory_order_relaxed);
    header_->deliveries[g].fetch_add(1, std::memory_order_relaxed);
  }
  // The release store publishes the start_id stored before it.
  void mark_ready(std::size_t slot) noexcept { header_->children[slot].ready.store(1, std::memory_order_release); }
  void set_start_id(std::size_t slot, std::uint64_t id) noexcept {
    header_->children[slot].start_id.store(id, std::memory_order_relaxed);
  }
  std::uint32_t incarnation(std::size_t slot) const noexcept {
    return header_->children[slot].incarnation.load(std::memory_order_relaxed);
  }
  bool slow(std::size_t slot) const noexcept { return header_->children[slot].slow.load(std::memory_order_relaxed) != 0; }
  bool logged(std::size_t g) const noexcept { return (logged_ >> g & 1) != 0; }
  private_log& log(std::size_t g) noexcept { return logs_[g]; }
  const private_log& log(std::size_t g) const noexcept { return logs_[g]; }
  // A producer stops here while the parent keeps the channel quiet. The wait is a
  // handshake, not a sleep: FUTEX_WAIT returns when end_quiet() clears the word (or
  // after `slice`, to look at the stop flag).
  void wait_while_quiet(std::size_t slot, std::chrono::milliseconds slice) noexcept {
    if (!quiet()) return;
    set_phase(slot, phase::quiet);
    const timespec ts{slice.count() / 1000, (slice.count() % 1000) * 1'000'000};
    while (quiet() && !stopping())
      ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&header_->quiet), FUTEX_WAIT, 1, &ts, nullptr, 0);
    set_phase(slot, phase::idle);
  }
  bool stop_producing() const noexcept { return header_->stop_producing.load(std::memory_order_acquire) != 0; }
  bool stopping() const noexcept { return header_->stop.load(std::memory_order_acquire) != 0; }
  // acquire: pairs with the parent's release stores in begin_quiet / end_quiet.
  bool quiet() const noexcept { return header_->quiet.load(std::memory_order_acquire) != 0; }

  // Counts an error; the first one's text is kept for the report.
  void report(const char* format, ...) noexcept __attribute__((format(printf, 2, 3))) {
    header_->errors.fetch_add(1, std::memory_order_relaxed);
    if (header_->error_claimed.exchange(1) != 0) return;
    va_list args;
    va_start(args, format);
    std::vsnprintf(header_->error_text, sizeof header_->error_text, format, args);
    va_end(args);
  }

  // ---- in the parent ----
  bool ready(std::size_t slot) const noexcept {
    return header_->children[slot].ready.load(std::memory_order_acquire) != 0;
  }
  // Before (re)starting the child of `slot`: a killed one may have left its flags set.
  void clear_flags(std::size_t slot, std::uint32_t incarnation, bool slow) noexcept {
    child_flags& c = header_->children[slot];
    c.ready.store(0, std::memory_order_release);
    c.at.store(phase::idle, std::memory_order_release);
    c.incarnation.store(incarnation, std::memory_order_relaxed);
    c.slow.store(slow ? 1 : 0, std::memory_order_relaxed);
  }
  void begin_quiet() noexcept { header_->quiet.store(1, std::memory_order_release); }
  void end_quiet() noexcept {
    header_->quiet.store(0, std::memory_order_release);
    ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&header_->quiet), FUTEX_WAKE, max_children, nullptr,
              nullptr, 0);
  }
  // After ready(slot) (acquire) returned true.
  std::uint64_t start_id(std::size_t slot) const noexcept {
    return header_->children[slot].start_id.load(std::memory_order_relaxed);
  }
  phase phase_of(std::size_t slot) const noexcept { return header_->children[slot].at.load(std::memory_order_acquire); }
  std::uint64_t copied(std::size_t slot) const noexcept {
    return header_->children[slot].copied.load(std::memory_order_relaxed);
  }
  std::uint64_t commits(std::size_t slot) const noexcept {
    return header_->children[slot].commits.load(std::memory_order_relaxed);
  }
  bool committed(std::uint64_t id) const noexcept { return committed_[id].load(std::memory_order_relaxed) != 0; }
  // The producer slot that committed `id`, or -1.
  int committer(std::uint64_t id) const noexcept { return committed_[id].load(std::memory_order_relaxed) - 1; }
  std::uint32_t delivered(std::size_t g, std::uint64_t id) const noexcept {
    return delivered_[g * capacity_ + id].load(std::memory_order_relaxed);
  }
  // Ids handed out so far that fit the ledger.
  std::uint64_t end() const noexcept {
    return std::min(header_->next_id.load(std::memory_order_relaxed), capacity_);
  }
  std::string error_text() const { return header_->error_claimed.load() != 0 ? header_->error_text : ""; }

 private:
  std::uint64_t capacity_;
  unsigned logged_;
  private_log logs_[max_groups];
  std::size_t bytes_ = 0;
  ledger_header* header_ = nullptr;
  std::atomic<std::uint16_t>* delivered_ = nullptr;
  std::atomic<std::uint8_t>* committed_ = nullptr;
};

}  // namespace shmq::test::fault

// The fault harness's ledger: one shared mapping, made before forking, in which the
// children record ids taken, commits, deliveries, redeliveries, where each child is in
// its loop, and the first error; the harness reads it to watch progress and to check
// the round (test_fault.cpp describes what is counted and why).
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdarg>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>

#include <sys/mman.h>

#include <doctest/doctest.h>

namespace shmq::test::fault {

inline constexpr std::size_t max_groups = 2;
inline constexpr std::size_t max_children = 8;

// Where a child is in its loop: the harness reads it to time blocked producers, and
// after a kill to count what the kill interrupted.
enum class phase : std::uint32_t { idle, blocked, loaned, holding, copying, copied };
inline constexpr std::size_t phases = 6;

struct alignas(64) child_flags {  // a cache line each: children write them all the time
  std::atomic<std::uint32_t> ready;  // the child attached its endpoint
  std::atomic<phase> at;
  std::atomic<std::uint64_t> commits;  // per producer, over its restarts
  std::atomic<std::uint64_t> copied;   // the id a consumer in phase::copied holds
};

struct ledger_header {
  std::atomic<std::uint64_t> next_id;
  std::atomic<std::uint64_t> committed_total;
  std::atomic<std::uint32_t> stop_producing;  // take no new ids
  std::atomic<std::uint32_t> stop;            // everyone leaves
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
  ledger(std::uint64_t capacity, std::size_t groups) : capacity_(capacity) {
    bytes_ = sizeof(ledger_header) + capacity * (1 + groups * sizeof(std::atomic<std::uint16_t>));
    void* p = ::mmap(nullptr, bytes_, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    REQUIRE(p != MAP_FAILED);
    header_ = static_cast<ledger_header*>(p);  // zero-filled by the kernel
    auto* counts = reinterpret_cast<std::byte*>(header_ + 1);
    delivered_ = reinterpret_cast<std::atomic<std::uint16_t>*>(counts);
    committed_ = reinterpret_cast<std::atomic<std::uint8_t>*>(counts + capacity * groups * 2);
  }
  ~ledger() { ::munmap(header_, bytes_); }
  ledger(const ledger&) = delete;
  ledger& operator=(const ledger&) = delete;

  std::uint64_t capacity() const noexcept { return capacity_; }
  ledger_header& header() const noexcept { return *header_; }

  // ---- in children ----
  std::uint64_t take_id() noexcept { return header_->next_id.fetch_add(1, std::memory_order_relaxed); }
  void mark_committed(std::size_t slot, std::uint64_t id) noexcept {
    committed_[id].store(1, std::memory_order_relaxed);
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
  void mark_ready(std::size_t slot) noexcept { header_->children[slot].ready.store(1, std::memory_order_release); }
  bool stop_producing() const noexcept { return header_->stop_producing.load(std::memory_order_acquire) != 0; }
  bool stopping() const noexcept { return header_->stop.load(std::memory_order_acquire) != 0; }

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
  void clear_flags(std::size_t slot) noexcept {
    header_->children[slot].ready.store(0, std::memory_order_release);
    header_->children[slot].at.store(phase::idle, std::memory_order_release);
  }
  phase phase_of(std::size_t slot) const noexcept { return header_->children[slot].at.load(std::memory_order_acquire); }
  std::uint64_t copied(std::size_t slot) const noexcept {
    return header_->children[slot].copied.load(std::memory_order_relaxed);
  }
  std::uint64_t commits(std::size_t slot) const noexcept {
    return header_->children[slot].commits.load(std::memory_order_relaxed);
  }
  bool committed(std::uint64_t id) const noexcept { return committed_[id].load(std::memory_order_relaxed) != 0; }
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
  std::size_t bytes_ = 0;
  ledger_header* header_ = nullptr;
  std::atomic<std::uint16_t>* delivered_ = nullptr;
  std::atomic<std::uint8_t>* committed_ = nullptr;
};

}  // namespace shmq::test::fault

// What the fault harness watches progress with, sampling the ledger from the parent:
// how long something went without progress while progress was due (stall_timer), and
// how many committed messages a group has not received yet (backlog_watch).
#pragma once

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "fault/ledger.hpp"
#include "fault/settings.hpp"

namespace shmq::test::fault {

// How long something went without progress while progress was due. Sampling, not
// synchronization: the children never wait for the parent. While `excused` (some
// participant is SIGSTOPped: whatever it holds may hold anyone back) the clock stands
// still; it neither runs nor starts again, so a stall on either side of a pause adds up.
class stall_timer {
 public:
  // True when this sample starts a stall: no progress for longer than `bound`.
  bool update(std::uint64_t progress, bool due, bool excused, clock_type::time_point now, milliseconds bound) {
    const auto step = now - last_sample_;
    last_sample_ = now;
    if (progress != last_ || !due) {
      last_ = progress;
      gap_ = {};
      flagged_ = false;
      return false;
    }
    if (!excused) gap_ += step;
    max_gap_ = std::max(max_gap_, gap_);
    if (gap_ <= bound || flagged_) return false;
    flagged_ = true;
    return true;
  }
  milliseconds max_gap() const { return std::chrono::duration_cast<milliseconds>(max_gap_); }

 private:
  std::uint64_t last_ = ~std::uint64_t{0};
  clock_type::time_point last_sample_{};
  clock_type::duration gap_{}, max_gap_{};
  bool flagged_ = false;
};

// Counts the committed messages a group has not received yet. Every id below the
// frontier is delivered or set aside: waiting, a hole (never committed) or in flight
// (not marked committed yet). Set-aside ids are looked at again on each sample; they
// are few (about the ring's slots, plus one per kill).
class backlog_watch {
 public:
  backlog_watch() = default;
  // Ids below `from` are not this watch's concern (taken before a private subscription).
  explicit backlog_watch(std::uint64_t from) : frontier_(from) {}
  std::uint64_t pending(const ledger& led, std::size_t g) {
    for (const std::uint64_t end = led.end(); frontier_ < end; ++frontier_)
      if (led.delivered(g, frontier_) == 0) set_aside_.push_back(frontier_);
    std::uint64_t n = 0;
    std::erase_if(set_aside_, [&](std::uint64_t id) {
      if (led.delivered(g, id) != 0) return true;
      n += led.committed(id);
      return false;
    });
    return n;
  }

 private:
  std::uint64_t frontier_ = 0;
  std::vector<std::uint64_t> set_aside_;
};

}  // namespace shmq::test::fault

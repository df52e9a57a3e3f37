// A private subscription's delivery log, and what the fault harness checks with it.
//
// A private subscription ends with its subscriber: a replacement is a new subscription
// that starts after the newest message, and what was published while no subscription
// of its own existed is not promised to it. So a per-group count of deliveries cannot
// judge it; each incarnation (one start of the child) is judged on its own. The child
// logs, in the order it received them, a start entry (its id watermark W: an id taken
// at or after W was claimed after the subscription existed, see ledger::take_id) and
// then each delivery. Per producer slot p, ids grow in the order p claims its tickets,
// and a subscription receives in ticket order, so for each incarnation:
//   - p's ids arrive in increasing order; an id that arrives again is flagged
//     redelivered (anything else is an unflagged duplicate, or out of order);
//   - nothing p committed is missing between min(W, first id from p) and the last id
//     from p: everything in between was claimed after the subscription existed and
//     before a message it received;
//   - the last incarnation, alive to the end, also misses nothing p committed after
//     that (or, if it received nothing from p, at or after W).
// Messages delivered but never marked committed (a producer killed between commit and
// marking) have no known producer; they are counted with the group's other deliveries.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace shmq::test::fault {

// One writer at a time (incarnations of a slot are forked one after the other): the
// child stores the entry, then publishes it with the release store of the count; the
// parent acquires the count before it reads the entries.
class private_log {
 public:
  static constexpr std::uint64_t max_ids = (std::uint64_t{1} << 32) - 1;
  static constexpr std::uint64_t max_starts = 1 << 16;  // incarnations' start entries
  static std::size_t bytes_for(std::uint64_t ids) { return 64 + (ids + max_starts) * sizeof(std::uint64_t); }

  private_log() = default;
  private_log(std::byte* at, std::uint64_t ids)
      : count_(reinterpret_cast<std::atomic<std::uint64_t>*>(at)),
        entries_(reinterpret_cast<std::atomic<std::uint64_t>*>(at + 64)), capacity_(ids + max_starts) {}

  // ---- in the child ----
  bool start(std::uint32_t incarnation, std::uint64_t watermark) noexcept {
    return append(kind_start, incarnation, std::min(watermark, max_ids));
  }
  bool delivered(std::uint32_t incarnation, std::uint64_t id, bool redelivered) noexcept {
    return append(redelivered ? kind_redelivered : kind_delivery, incarnation, id);
  }

  // ---- in the parent ----
  struct verdict {
    std::uint64_t incarnations = 0, deliveries = 0, duplicates = 0;
    std::vector<std::string> problems;
  };
  // `end`: ids taken; committer(id): the producer slot that committed it, or -1;
  // `last`: the incarnation alive at the end.
  verdict check(std::uint64_t end, const std::function<int(std::uint64_t)>& committer, std::uint32_t last) const;

 private:
  static constexpr std::uint64_t kind_delivery = 0, kind_redelivered = 1, kind_start = 2;
  static std::uint64_t kind(std::uint64_t e) noexcept { return e >> 62; }
  static std::uint32_t incarnation(std::uint64_t e) noexcept { return static_cast<std::uint32_t>(e >> 32) & 0x3fffffff; }
  static std::uint64_t value(std::uint64_t e) noexcept { return e & 0xffffffff; }

  bool append(std::uint64_t k, std::uint32_t incarnation, std::uint64_t v) noexcept {
    const std::uint64_t n = count_->load(std::memory_order_relaxed);
    if (n >= capacity_) return false;
    entries_[n].store(k << 62 | std::uint64_t{incarnation & 0x3fffffff} << 32 | v, std::memory_order_relaxed);
    count_->store(n + 1, std::memory_order_release);
    return true;
  }

  std::atomic<std::uint64_t>* count_ = nullptr;
  std::atomic<std::uint64_t>* entries_ = nullptr;
  std::uint64_t capacity_ = 0;
};

namespace private_check {

// Ids in increasing order: those one producer committed, or those one incarnation
// received from it.
using ids = std::vector<std::uint64_t>;

inline bool holds(const ids& s, std::uint64_t id) { return std::binary_search(s.begin(), s.end(), id); }
inline std::uint64_t count_in(const ids& s, std::uint64_t lo, std::uint64_t hi) {
  return static_cast<std::uint64_t>(std::upper_bound(s.begin(), s.end(), hi) - std::lower_bound(s.begin(), s.end(), lo));
}

// Committed ids in [lo, hi] that `got` lacks; the first of them in `first`.
inline std::uint64_t missing(const ids& committed, const ids& got, std::uint64_t lo, std::uint64_t hi,
                             std::uint64_t& first) {
  const std::uint64_t required = count_in(committed, lo, hi);
  if (required <= count_in(got, lo, hi)) return 0;
  const auto from = std::lower_bound(committed.begin(), committed.end(), lo);
  const auto to = std::upper_bound(from, committed.end(), hi);
  for (auto it = from; it != to; ++it)
    if (!holds(got, *it)) {
      first = *it;
      break;
    }
  return required - count_in(got, lo, hi);
}

}  // namespace private_check

inline private_log::verdict private_log::check(std::uint64_t end, const std::function<int(std::uint64_t)>& committer,
                                               std::uint32_t last) const {
  using private_check::ids;
  std::vector<ids> committed;  // per producer slot
  for (std::uint64_t id = 0; id < end; ++id)
    if (const int p = committer(id); p >= 0) {
      if (committed.size() <= static_cast<std::size_t>(p)) committed.resize(p + 1);
      committed[p].push_back(id);
    }
  verdict out;
  const std::uint64_t n = count_->load(std::memory_order_acquire);
  std::uint64_t i = 0;
  while (i < n) {
    const std::uint64_t s = entries_[i++].load(std::memory_order_relaxed);
    if (kind(s) != kind_start) {
      out.problems.push_back("log entry " + std::to_string(i - 1) + " is not an incarnation's start");
      return out;
    }
    const std::uint32_t inc = incarnation(s);
    const std::uint64_t watermark = value(s);
    const std::string who = "incarnation " + std::to_string(inc) + " (subscribed at id " + std::to_string(watermark) + ")";
    ++out.incarnations;
    std::vector<ids> from(committed.size());
    for (; i < n; ++i) {
      const std::uint64_t e = entries_[i].load(std::memory_order_relaxed);
      if (kind(e) == kind_start) break;
      ++out.deliveries;
      const std::uint64_t id = value(e);
      const int p = id < end ? committer(id) : -1;
      if (p < 0) continue;
      ids& got = from[static_cast<std::size_t>(p)];
      if (got.empty() || id > got.back()) {
        got.push_back(id);
        continue;
      }
      const bool again = private_check::holds(got, id);
      if (again && kind(e) == kind_redelivered) {
        ++out.duplicates;
        continue;
      }
      const std::string what = again ? " delivered again, not flagged redelivered"
                                     : " out of order, after id " + std::to_string(got.back());
      out.problems.push_back(who + ": id " + std::to_string(id) + " from producer slot " + std::to_string(p) + what);
    }
    const bool alive_at_end = inc == last && i == n;
    for (std::size_t p = 0; p < committed.size(); ++p) {
      const ids& got = from[p];
      if (got.empty() && !alive_at_end) continue;
      const std::uint64_t lo = got.empty() ? watermark : std::min(watermark, got.front());
      const std::uint64_t hi = alive_at_end ? end : got.back();
      std::uint64_t first = 0;
      if (const std::uint64_t m = private_check::missing(committed[p], got, lo, hi, first); m > 0)
        out.problems.push_back(who + ": " + std::to_string(m) + " of producer slot " + std::to_string(p) +
                               "'s committed messages in ids " + std::to_string(lo) + ".." + std::to_string(hi) +
                               " never delivered (first id " + std::to_string(first) + ")" +
                               (alive_at_end ? ", alive to the end" : ""));
    }
  }
  return out;
}

}  // namespace shmq::test::fault

// What the test sink does with attempt `attempt` of push `id`: answer 200, answer 503,
// or drop the connection without an answer, and whether to answer slowly. Decided by a
// hash of (seed, id, attempt) alone, so a run can predict, push by push, which ones fail
// all R attempts and must end in the dead-letter queue (test/push/run_push_test.py
// computes the same function).
#pragma once

#include <cstdint>

#include "stamped_message.hpp"

namespace shmq::push {

enum class answer { ok, server_error, drop };

struct fault_plan {
  std::uint64_t seed = 1;
  std::uint32_t fail_ppm = 0;  // parts per million answered 503
  std::uint32_t drop_ppm = 0;  // parts per million dropped after the request was read
  std::uint32_t slow_ppm = 0;  // parts per million answered after slow_ms

  std::uint64_t hash(std::uint64_t id, std::uint64_t attempt) const noexcept {
    return stamped::mix(stamped::mix(id ^ seed) + attempt);
  }
  answer decide(std::uint64_t id, std::uint64_t attempt) const noexcept {
    const std::uint64_t u = hash(id, attempt) % 1'000'000;
    if (u < fail_ppm) return answer::server_error;
    if (u < std::uint64_t{fail_ppm} + drop_ppm) return answer::drop;
    return answer::ok;
  }
  bool slow(std::uint64_t id, std::uint64_t attempt) const noexcept {
    return stamped::mix(hash(id, attempt)) % 1'000'000 < slow_ppm;
  }
};

}  // namespace shmq::push

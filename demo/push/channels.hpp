// The two channels of the push gateway and their shape, which every process must
// agree on (open_or_create compares them): the work queue producers fill and workers
// drain, and the dead-letter queue workers fill with what failed R times.
#pragma once

#include <cstdlib>
#include <string>

#include "shmq/mpmc.hpp"

namespace shmq::push {

inline constexpr std::size_t max_record = 1024;  // header, path and body

// Every worker holds one view per request in flight (one view per consumer endpoint),
// so the queue allows many consumers: workers x K, plus the places of killed workers
// until their messages are adopted.
inline mpmc_options queue_options() {
  mpmc_options o;
  o.slots = 4096;
  o.max_message_size = max_record;
  o.max_producers = 64;
  o.max_consumers = 1024;
  o.liveness_interval = std::chrono::milliseconds(50);
  return o;
}

// A dead letter is the original record behind a small header: attempts made, the last
// HTTP status (0: connection error or timeout), and why it was given up.
inline mpmc_options dead_letter_options() {
  mpmc_options o;
  o.slots = 1024;
  o.max_message_size = max_record + 64;
  o.max_producers = 1024;
  o.max_consumers = 16;
  o.liveness_interval = std::chrono::milliseconds(50);
  return o;
}

inline std::string dead_letter_name(const std::string& queue) { return queue + ".dead"; }

}  // namespace shmq::push

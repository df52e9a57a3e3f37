// How an endpoint attaches to a channel: options shared by every channel kind.
#pragma once

#include <chrono>

#include "shmq/durability.hpp"

namespace shmq {

enum class open_mode {
  create,          // fail with errc::already_exists if the name is taken
  open,            // fail with errc::not_found if there is no such segment
  open_or_create,  // whichever is needed; the usual choice
};

// What a waiting consumer does when the channel's producers died without closing it
// (killed, crashed): keep waiting for a new producer, or return status::producer_gone
// once everything they committed has been read. Waiting calls check at least every
// liveness_interval; try_ calls never check (no syscall on that path).
enum class when_producer_gone { wait, report };

// What open_or_create does when the name holds a stale segment (some participant died
// without detaching and none is alive, see shmq::inspect_segment):
//   recover  open it as it is: committed messages are kept, dead participants' places
//            are taken over, a dead producer's half-written record is skipped;
//   replace  remove it and create a fresh, empty channel.
// Replace is meant for a process that restarts alone; two doing it at once may race.
enum class stale_segment { recover, replace };

struct endpoint_options {
  unsigned mode = 0600;  // permission bits of a segment this endpoint creates
  long group = -1;       // group id to give a segment this endpoint creates; -1: the creator's
  open_mode open = open_mode::open_or_create;
  stale_segment if_stale = stale_segment::recover;
  std::chrono::milliseconds open_timeout{1000};  // wait for a creator that is mid-setup
  std::chrono::nanoseconds spin{std::chrono::microseconds(50)};  // spin before sleeping
  shmq::when_producer_gone when_producer_gone = when_producer_gone::wait;
  std::chrono::milliseconds liveness_interval{100};  // how often a sleeper checks
  file_options file;  // a file-backed channel instead of /dev/shm (shmq/durability.hpp)
};

}  // namespace shmq

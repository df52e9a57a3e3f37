// How an endpoint attaches to a channel: options shared by every channel kind.
#pragma once

#include <chrono>

namespace shmq {

enum class open_mode {
  create,          // fail with errc::already_exists if the name is taken
  open,            // fail with errc::not_found if there is no such segment
  open_or_create,  // whichever is needed; the usual choice
};

struct endpoint_options {
  unsigned mode = 0600;  // permission bits of a segment this endpoint creates
  open_mode open = open_mode::open_or_create;
  std::chrono::milliseconds open_timeout{1000};  // wait for a creator that is mid-setup
  std::chrono::nanoseconds spin{std::chrono::microseconds(50)};  // spin before sleeping
};

}  // namespace shmq

// A snapshot of each channel kind, for shmq::read_channel_stats (channel_stats.cpp) and
// shmq::inspect_segment (inspect.cpp). Each opens the channel as it is (open_mode::open,
// no waiting) and validates it the way an endpoint would; the kind-neutral fields (name,
// kind, segment size) are the caller's.
#pragma once

#include <string_view>

#include "shmq/channel_stats.hpp"

namespace shmq::detail {

channel_stats spsc_stats(std::string_view name);
channel_stats mpmc_stats(std::string_view name);
channel_stats pubsub_stats(std::string_view name);

}  // namespace shmq::detail

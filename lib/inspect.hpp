// Participant listings of each channel kind, for shmq::inspect_segment (inspect.cpp).
// Each opens the channel as it is (open_mode::open, no waiting) and validates it the
// way an endpoint would.
#pragma once

#include <string_view>
#include <vector>

#include "shmq/segment.hpp"

namespace shmq::detail {

std::vector<participant> spsc_participants(std::string_view name);
std::vector<participant> mpmc_participants(std::string_view name);
std::vector<participant> pubsub_participants(std::string_view name);

}  // namespace shmq::detail

// shmq::read_channel_stats: which kind the segment holds (its header, validated), then
// that kind's snapshot (inspect.hpp).
#include "shmq/channel_stats.hpp"

#include <chrono>

#include "inspect.hpp"
#include "segment.hpp"

namespace shmq {

channel_stats read_channel_stats(std::string_view name) {
  const auto [kind, size] = [&] {
    const detail::segment seg = detail::segment::open(name, detail::channel_kind::any, std::chrono::milliseconds(0));
    return std::pair{static_cast<detail::channel_kind>(seg.header().kind), seg.size()};
  }();
  channel_stats s;
  switch (kind) {
    case detail::channel_kind::spsc:
      s = detail::spsc_stats(name);
      s.kind = "spsc";
      break;
    case detail::channel_kind::mpmc:
      s = detail::mpmc_stats(name);
      s.kind = "mpmc";
      break;
    case detail::channel_kind::pubsub:
      s = detail::pubsub_stats(name);
      s.kind = "pubsub";
      break;
    case detail::channel_kind::any:  // segment::open refuses it
      throw error(errc::corrupt, "shmq segment '" + std::string(name) + "': no channel kind");
  }
  s.name = std::string(name);
  s.segment_size = size;
  return s;
}

}  // namespace shmq

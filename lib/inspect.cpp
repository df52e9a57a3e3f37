// Inspection of segments: which kind, who is attached, who died. A segment is stale when
// some participant died without detaching and none is alive (liveness: registry.hpp).
#include "inspect.hpp"

#include <algorithm>
#include <chrono>
#include <dirent.h>
#include <memory>

#include "segment.hpp"
#include "shmq/status.hpp"

namespace shmq {

namespace {

constexpr std::string_view prefix = "shmq.";

std::vector<participant> participants_of(detail::channel_kind kind, std::string_view name) {
  switch (kind) {
    case detail::channel_kind::spsc: return detail::spsc_participants(name);
    case detail::channel_kind::mpmc: return detail::mpmc_participants(name);
    case detail::channel_kind::pubsub: return detail::pubsub_participants(name);
    case detail::channel_kind::any: break;
  }
  return {};
}

const char* kind_name(detail::channel_kind kind) {
  switch (kind) {
    case detail::channel_kind::spsc: return "spsc";
    case detail::channel_kind::mpmc: return "mpmc";
    case detail::channel_kind::pubsub: return "pubsub";
    case detail::channel_kind::any: break;
  }
  return "";
}

}  // namespace

segment_info inspect_segment(std::string_view name) {
  detail::os_name(name);  // throws invalid_name
  segment_info info;
  info.name = std::string(name);
  try {
    const auto kind = [&] {
      const detail::segment seg = detail::segment::open(name, detail::channel_kind::any, std::chrono::milliseconds(0));
      info.size = seg.size();
      return static_cast<detail::channel_kind>(seg.header().kind);
    }();
    info.kind = kind_name(kind);
    info.participants = participants_of(kind, name);
  } catch (const error& e) {
    if (e.code() == errc::not_found || e.code() == errc::invalid_name) throw;
    info.problem = e.what();
    info.abandoned = info.stale = e.code() == errc::abandoned;
    return info;
  }
  const auto alive = [](const participant& p) { return p.alive; };
  info.stale = !info.participants.empty() && std::none_of(info.participants.begin(), info.participants.end(), alive);
  return info;
}

std::vector<segment_info> list_segments() {
  std::vector<std::string> names;
  if (const std::unique_ptr<DIR, int (*)(DIR*)> dir(::opendir("/dev/shm"), ::closedir); dir) {
    while (const dirent* e = ::readdir(dir.get())) {
      const std::string_view file = e->d_name;
      if (file.substr(0, prefix.size()) == prefix && valid_name(file.substr(prefix.size())))
        names.emplace_back(file.substr(prefix.size()));
    }
  }
  std::sort(names.begin(), names.end());
  std::vector<segment_info> out;
  for (const std::string& n : names) {
    try {
      out.push_back(inspect_segment(n));
    } catch (const error&) {
      // removed while we looked
    }
  }
  return out;
}

std::vector<std::string> remove_stale_segments() {
  std::vector<std::string> removed;
  for (const segment_info& s : list_segments())
    if (s.stale && remove_segment(s.name)) removed.push_back(s.name);
  return removed;
}

}  // namespace shmq

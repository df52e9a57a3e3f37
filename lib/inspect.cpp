// Inspection of segments: which kind, who is attached, who died. A segment is stale when
// some participant died without detaching and none is alive (liveness: registry.hpp).
#include <algorithm>
#include <dirent.h>
#include <memory>
#include <utility>

#include "segment.hpp"
#include "shmq/channel_stats.hpp"
#include "shmq/status.hpp"

namespace shmq {

namespace {

constexpr std::string_view prefix = "shmq.";

}  // namespace

segment_info inspect_segment(std::string_view name) {
  detail::os_name(name);  // throws invalid_name
  segment_info info;
  info.name = std::string(name);
  try {
    channel_stats s = read_channel_stats(name);
    info.kind = std::move(s.kind);
    info.size = s.segment_size;
    info.participants = std::move(s.participants);
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

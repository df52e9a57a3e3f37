// Named shared-memory segments: naming rules and removal.
// A segment is created by the first endpoint that attaches (see spsc.hpp).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace shmq {

// A name is 1 to 200 characters from [A-Za-z0-9._-], not starting with '.'.
// The segment lives at /dev/shm/shmq.<name>.
bool valid_name(std::string_view name) noexcept;

// Removes the segment's name. Processes that have it mapped keep working on the old
// memory; the next attach creates a fresh one. Returns false if there was none.
// Throws shmq::error(invalid_name) for a bad name.
bool remove_segment(std::string_view name);

// True if a segment of that name exists (whatever it holds).
bool segment_exists(std::string_view name);

// ---- Inspection: who is attached, and which segments only the dead use ----

struct participant {
  std::string role;   // "producer", "consumer", "publisher", "subscriber"
  std::uint32_t pid;  // as it registered (informative: liveness comes from a file lock)
  bool alive;         // false: it died without detaching
};

struct segment_info {
  std::string name;  // without the "shmq." prefix
  std::string kind;  // "spsc", "mpmc", "pubsub"; empty if unreadable
  std::uint64_t size = 0;
  std::vector<participant> participants;  // attached now, or dead without detaching
  bool stale = false;  // some participant died and none is alive, or `abandoned`
  bool abandoned = false;  // its creator died setting it up
  std::string problem;  // why it could not be read (not shmq, corrupt, not ready, ...)
};

// One segment. Throws shmq::error (invalid_name, not_found) only; other problems are
// reported in segment_info::problem.
segment_info inspect_segment(std::string_view name);

// Every /dev/shm/shmq.* segment, sorted by name.
std::vector<segment_info> list_segments();

// Removes every stale segment; returns their names. A segment that nobody uses but no
// one died in (its messages wait for a consumer) is not stale and stays.
std::vector<std::string> remove_stale_segments();

}  // namespace shmq

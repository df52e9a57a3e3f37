// Named shared-memory segments: naming rules and removal.
// A segment is created by the first endpoint that attaches (see spsc.hpp).
#pragma once

#include <string>
#include <string_view>

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

}  // namespace shmq

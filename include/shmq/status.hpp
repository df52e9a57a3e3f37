// Results and errors shared by every shmq type.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <system_error>

namespace shmq {

// Outcome of a data operation (loan, push, read, pop). Never thrown.
enum class status : std::uint8_t {
  ok,         // done
  empty,      // try_ form: nothing to read yet
  full,       // try_ form: no room to write yet (back-pressure)
  timed_out,  // _for form: the deadline passed first
  closed,     // the producer closed the stream and everything has been read
  producer_gone,  // every producer died without closing, and everything has been read
                  // (only with when_producer_gone::report; see options.hpp)
  too_large,  // the message is over the channel's maximum, or the caller's buffer is too small
  busy,       // this endpoint already has a loan or a view outstanding
  corrupt,    // the segment holds something impossible; the endpoint stops trusting it
  io_error,   // a file-backed channel's flush to stable storage failed: nothing committed or
              // released since the last good flush is known to be durable (for good)
};

const char* to_string(status s) noexcept;

// Why a segment or endpoint could not be created or attached. Thrown as shmq::error.
enum class errc {
  not_found = 1,      // no segment of that name
  already_exists,     // create-only, and the name is taken
  permission_denied,  // the segment's mode does not let this user in
  invalid_name,       // see valid_name()
  invalid_argument,   // bad options (capacity, message size, ...)
  not_shmq,           // the object is not a shmq segment
  version_mismatch,   // a shmq segment of another layout version
  abi_mismatch,       // same version, but built with another struct layout
  kind_mismatch,      // e.g. an SPSC endpoint on another kind of channel
  options_mismatch,   // exists with another capacity or maximum message size
  truncated,          // the object is smaller than its header says
  corrupt,            // header or control block out of range
  not_ready,          // its creator did not finish setting it up in time
  role_taken,         // the channel already has a live producer (or consumer)
  limit_reached,      // as many producers, consumers or groups as the channel allows
  system_error,       // an unexpected OS error; the message has details
  abandoned,          // its creator died while setting it up: nothing was ever sent through it
  io_failed,          // a file channel whose flush to stable storage failed (poisoned)
};

const std::error_category& error_category() noexcept;
std::error_code make_error_code(errc e) noexcept;

// Thrown by constructors and segment calls. code() compares equal to shmq::errc values.
class error : public std::system_error {
 public:
  error(errc e, const std::string& what) : std::system_error(make_error_code(e), what) {}
};

}  // namespace shmq

template <>
struct std::is_error_code_enum<shmq::errc> : std::true_type {};

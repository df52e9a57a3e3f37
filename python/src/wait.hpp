// Blocking calls from Python: the GIL is released while waiting, and the wait goes in
// slices so that a signal (Ctrl-C) is seen within one slice: after each, the GIL is
// taken back and PyErr_CheckSignals() runs the handlers (KeyboardInterrupt propagates).
#pragma once

#include <algorithm>
#include <chrono>
#include <cmath>
#include <optional>

#include <pybind11/pybind11.h>

#include "shmq/loan.hpp"
#include "shmq/status.hpp"

namespace shmq::python {

inline constexpr std::chrono::milliseconds wait_slice{50};

inline status status_of(const view& v) noexcept { return v.status(); }
inline status status_of(const loan& l) noexcept { return l.status(); }
inline status status_of(status s) noexcept { return s; }

// None: wait as long as it takes; else seconds >= 0.
inline std::optional<std::chrono::steady_clock::time_point> deadline_of(const std::optional<double>& timeout) {
  if (!timeout) return std::nullopt;
  if (!std::isfinite(*timeout) || *timeout < 0) throw pybind11::value_error("timeout must be None or seconds >= 0");
  return std::chrono::steady_clock::now() +
         std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::duration<double>(*timeout));
}

// Calls wait_for(slice) with the GIL released until it gives something other than
// timed_out or the deadline passes. wait_for returns a type with status().
template <class WaitFor>
auto wait_sliced(const std::optional<std::chrono::steady_clock::time_point>& deadline, WaitFor wait_for) {
  for (;;) {
    auto slice = std::chrono::nanoseconds(wait_slice);
    if (deadline) slice = std::clamp(std::chrono::nanoseconds(*deadline - std::chrono::steady_clock::now()),
                                     std::chrono::nanoseconds(0), slice);
    auto r = [&] {
      pybind11::gil_scoped_release nogil;
      return wait_for(slice);
    }();
    if (status_of(r) != status::timed_out) return r;
    if (PyErr_CheckSignals() != 0) throw pybind11::error_already_set();
    if (deadline && std::chrono::steady_clock::now() >= *deadline) return r;
  }
}

}  // namespace shmq::python

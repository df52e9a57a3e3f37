// shmq errors in Python: shmq::error (errc) and the statuses a call cannot return as a
// value (closed, timed_out, busy, ...) are raised as the shmq.Error subclasses defined in
// shmq/_errors.py, with the C++ what() message.
#pragma once

#include <exception>
#include <string>

#include <pybind11/pybind11.h>

#include "shmq/status.hpp"

namespace shmq::python {

// Thrown by the binding for a status other than ok; the translator raises it in Python.
struct status_error {
  shmq::status status;
  std::string what;
};

[[noreturn]] void throw_status(shmq::status s, const char* doing);

// Raises ValueError: the endpoint was detached, or the message or loan was released.
[[noreturn]] void throw_closed_object(const char* what);

// Sets the Python error for a C++ exception (a pybind11 error, shmq::error, status_error,
// anything else as RuntimeError): for calls bound without pybind11's dispatcher.
void set_python_error(std::exception_ptr p) noexcept;

void register_errors(pybind11::module_& m);

}  // namespace shmq::python

// shmq.Message (a received view) and shmq.Loan (a writable message in the ring), both
// with the buffer protocol: memoryview(msg), bytes(msg), numpy.frombuffer(msg) read the
// ring in place; memoryview(loan) writes it in place.
//
// Exports are counted. A memoryview holds a reference to the object it came from, so the
// object (and the ring memory under it) lives as long as any export. release(), commit()
// and abort() while an export exists raise BufferError, as mmap.close() does: the ring
// memory is never handed back while Python can still reach it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>

#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "core.hpp"
#include "shmq/loan.hpp"

namespace shmq::python {

class message {
 public:
  message(std::shared_ptr<endpoint_core> core, shmq::view v) noexcept;
  ~message();
  message(const message&) = delete;
  message& operator=(const message&) = delete;

  bool released() const noexcept { return !view_; }
  void release();  // BufferError while exported; a released message stays released
  const shmq::view& view() const;  // ValueError once released
  int exports = 0;

 private:
  std::shared_ptr<endpoint_core> core_;  // declared first: outlives view_
  shmq::view view_;
};

class loan_object {
 public:
  loan_object(std::shared_ptr<endpoint_core> core, shmq::loan l) noexcept;
  ~loan_object();  // an unfinished loan is aborted
  loan_object(const loan_object&) = delete;
  loan_object& operator=(const loan_object&) = delete;

  bool finished() const noexcept { return !loan_; }
  void commit(std::optional<std::size_t> used);
  void abort();
  const shmq::loan& loan() const;
  int exports = 0;

 private:
  void finish();
  std::shared_ptr<endpoint_core> core_;
  shmq::loan loan_;
};

// A Python Message owning a new message(core, v), made without pybind11's type lookup.
pybind11::object new_message(std::shared_ptr<endpoint_core> core, shmq::view v);

// Releases what `core` has outstanding before its endpoint goes (BufferError if exported).
void drop_outstanding(endpoint_core& core);

void bind_message(pybind11::module_& m);

}  // namespace shmq::python

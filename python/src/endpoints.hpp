// The Python classes of the six endpoint kinds, from two templates: every consumer
// (SpscConsumer, MpmcConsumer, Subscriber) and every producer (SpscProducer,
// MpmcProducer, Publisher) has the same calls, as in C++ (shmq/endpoint.hpp).
//
//   consumer: iteration (ends at end of stream), detach(), with-block
//   producer: try_loan(n) -> Loan | None     loan(n, timeout=None) -> Loan
//             close() (end of stream), detach(), with-block
//
// The per-message calls (try_read, read, next, try_receive, receive, try_send, send)
// are in fast_calls.hpp, bound without pybind11's dispatcher.
//
// A consumer has one message out at a time: asking for the next one releases the
// previous (the caller is done with it), unless it is still exported (BusyError).
#pragma once

#include <cstring>
#include <memory>
#include <optional>
#include <string>

#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "core.hpp"
#include "errors.hpp"
#include "message.hpp"
#include "shmq/readiness.hpp"
#include "wait.hpp"

namespace shmq::python {

template <class E>
struct core_of : endpoint_core {
  std::optional<E> endpoint;
  std::string name;
  E& get() {
    if (!endpoint) throw_closed_object("operation on a detached shmq endpoint");
    return *endpoint;
  }
  void detach() {
    if (!endpoint) return;
    if (in_call) throw status_error{status::busy, "detach: endpoint in use by another thread: busy"};
    drop_outstanding(*this);
    endpoint.reset();
  }
};

// A bytes-like argument, held for one call (PyBUF_SIMPLE: no shape vectors).
class byte_buffer {
 public:
  explicit byte_buffer(pybind11::handle obj) {
    if (PyObject_GetBuffer(obj.ptr(), &buf_, PyBUF_SIMPLE) != 0) throw pybind11::error_already_set();
  }
  ~byte_buffer() { PyBuffer_Release(&buf_); }
  byte_buffer(const byte_buffer&) = delete;
  byte_buffer& operator=(const byte_buffer&) = delete;
  std::span<const std::byte> bytes() const noexcept {
    return {static_cast<const std::byte*>(buf_.buf), static_cast<std::size_t>(buf_.len)};
  }

 private:
  Py_buffer buf_;
};

// ---- consumers ----

template <class C>
using consumer_ptr = std::shared_ptr<core_of<C>>;

// Releases the consumer's previous message: asking for the next one means it is done.
template <class C>
void release_previous(core_of<C>& core) {
  if (core.held_message == nullptr) return;
  if (core.held_message->exports > 0)
    throw status_error{status::busy,
                       "the previous message of this consumer is still exported (a memoryview or array of it "
                       "exists): release it first: busy"};
  core.held_message->release();
}

// A view that is not ok: None for `empty`; raises for the rest.
inline void check_view(const shmq::view& v, const char* doing) {
  if (!v && v.status() != status::empty) throw_status(v.status(), doing);
}

template <class C>
shmq::view take_view(core_of<C>& core, const std::optional<double>& timeout, const char* doing) {
  C& c = core.get();
  call_guard guard(core);
  release_previous(core);
  shmq::view v = c.try_read();
  if (!v && v.status() == status::empty) {
    const auto deadline = deadline_of(timeout);
    v = wait_sliced(deadline, [&](std::chrono::nanoseconds slice) { return c.read_for(slice); });
  }
  if (!v) throw_status(v.status(), doing);
  return v;
}

template <class C>
pybind11::object to_message(const consumer_ptr<C>& core, shmq::view v) {
  return new_message(core, std::move(v));
}

template <class C, class Class>
void bind_consumer_calls(Class& cls) {
  namespace py = pybind11;
  using ptr = consumer_ptr<C>;
  cls.def("__iter__", [](py::object self) { return self; })
      .def("native_handle", [](const ptr& self) {
        call_guard guard(*self);  // made on first use: not while another thread waits
        return self->get().native_handle();
      },
           "the readiness descriptor (watch it for reading; never read, write or close it)")
      .def("arm", [](const ptr& self) {
        call_guard guard(*self);
        return self->get().arm() == arm_result::armed;
      },
           "True: armed, wait until native_handle() is readable; False: try now")
      .def("sync", [](const ptr& self) { sync_endpoint(*self, "sync"); },
           "a file channel: returns once every release before it is on stable storage "
           "(StorageError if a flush failed); a /dev/shm channel: at once")
      .def_property_readonly("max_message_size", [](const ptr& self) { return self->get().max_message_size(); })
      .def_property_readonly("redeliveries", [](const ptr& self) { return self->get().redeliveries(); });
}

// sync() of either kind: waits for the disk without the GIL.
template <class Core>
void sync_endpoint(Core& core, const char* doing) {
  call_guard guard(core);
  status s;
  {
    pybind11::gil_scoped_release nogil;
    s = core.get().sync();
  }
  if (s != status::ok) throw_status(s, doing);
}

// ---- producers ----

template <class P>
using producer_ptr = std::shared_ptr<core_of<P>>;

template <class P>
void check_no_loan(core_of<P>& core, const char* doing) {
  if (core.held_loan != nullptr)
    throw status_error{status::busy, std::string(doing) + ": this producer has a loan outstanding: busy"};
}

template <class P, class Class>
void bind_producer_calls(Class& cls) {
  namespace py = pybind11;
  using ptr = producer_ptr<P>;
  cls.def("try_loan", [](const ptr& self, std::size_t size) -> py::object {
       P& p = self->get();
       check_no_loan(*self, "try_loan");
       call_guard guard(*self);
       shmq::loan l = p.try_loan(size);
       if (!l && l.status() == status::full) return py::none();
       if (!l) throw_status(l.status(), "try_loan");
       return py::cast(std::make_unique<loan_object>(self, std::move(l)));
     }, py::arg("size"), "room for `size` bytes in place, or None while the ring is full")
      .def("loan", [](const ptr& self, std::size_t size, std::optional<double> timeout) {
        P& p = self->get();
        check_no_loan(*self, "loan");
        call_guard guard(*self);
        shmq::loan l = p.try_loan(size);
        if (!l && l.status() == status::full)
          l = wait_sliced(deadline_of(timeout), [&](std::chrono::nanoseconds s) { return p.loan_for(size, s); });
        if (!l) throw_status(l.status(), "loan");
        return py::cast(std::make_unique<loan_object>(self, std::move(l)));
      }, py::arg("size"), py::arg("timeout") = py::none(),
         "room for `size` bytes in place; waits up to `timeout` seconds while the ring is full")
      .def("native_handle", [](const ptr& self) {
        call_guard guard(*self);  // made on first use: not while another thread waits
        return self->get().native_handle();
      },
           "the readiness descriptor (watch it for reading; never read, write or close it)")
      .def("arm", [](const ptr& self, std::size_t size) {
        call_guard guard(*self);
        return self->get().arm(size) == arm_result::armed;
      },
           py::arg("size"), "True: armed, wait until native_handle() is readable; False: try now")
      .def("close", [](const ptr& self) {
        call_guard guard(*self);
        self->get().close();
      },
           "ends the stream: consumers read what is left, then get ClosedError / end of iteration")
      .def("sync", [](const ptr& self) { sync_endpoint(*self, "sync"); },
           "a file channel: returns once every message committed before it is on stable storage "
           "(StorageError if a flush failed); a /dev/shm channel: at once")
      .def_property_readonly("max_message_size", [](const ptr& self) { return self->get().max_message_size(); });
}

// What both kinds have: name, detach(), the with-block.
template <class E, class Class>
void bind_lifetime(Class& cls) {
  namespace py = pybind11;
  using ptr = std::shared_ptr<core_of<E>>;
  cls.def("detach", [](const ptr& self) { self->detach(); },
          "leaves the channel; an outstanding message is released, a loan aborted")
      .def_property_readonly("detached", [](const ptr& self) { return !self->endpoint; })
      .def_property_readonly("name", [](const ptr& self) { return self->name; })
      .def("__enter__", [](py::object self) { return self; })
      .def("__exit__", [](const ptr& self, py::object, py::object, py::object) {
        self->detach();
        return false;
      });
}

}  // namespace shmq::python

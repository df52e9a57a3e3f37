// The per-message calls of a stream, bound as plain CPython methods (METH_FASTCALL)
// instead of through pybind11's dispatcher, which costs more than the call itself: a
// function_call record on the heap and a type lookup (a hash of the type's name) for
// `self` on every call. Here `self` is checked by CPython's method descriptor (it is an
// instance of the class, or the call raises TypeError) and its core is read straight
// from pybind11's instance record.
//
//   consumers: try_read() -> Message | None   read(timeout=None) -> Message   __next__
//              try_receive() -> bytes | None   receive(timeout=None) -> bytes
//              _spin_receive() -> bytes | None _spin_read() -> Message | None
//   producers: try_send(data) -> bool          send(data, timeout=None)
//              _spin_send(data) -> bool
//
// The _spin_ calls are for asyncio (aio.py): they try for up to the endpoint's `spin`
// option with the GIL released before the event loop arms, as a blocking call spins
// before it sleeps on the futex.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string_view>

#include <pybind11/pybind11.h>

#include "endpoints.hpp"
#include "errors.hpp"

namespace shmq::python::fast {

// The core of `self`; TypeError for an object whose __init__ never ran.
template <class E>
const std::shared_ptr<core_of<E>>& core_ptr(PyObject* self) {
  auto vh = reinterpret_cast<pybind11::detail::instance*>(self)->get_value_and_holder();
  if (!vh.holder_constructed()) throw pybind11::type_error("the shmq endpoint was not initialised");
  return vh.template holder<std::shared_ptr<core_of<E>>>();
}

// Runs `body`, turning a C++ exception into the Python error (nullptr returned).
template <class Body>
PyObject* guarded(Body body) noexcept {
  try {
    return body();
  } catch (...) {
    set_python_error(std::current_exception());
    return nullptr;
  }
}

// The optional `timeout` of a call with `fixed` positional parameters before it.
inline std::optional<double> timeout_arg(PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames,
                                         Py_ssize_t fixed, const char* name) {
  const Py_ssize_t nkw = kwnames ? PyTuple_GET_SIZE(kwnames) : 0;
  if (nargs < fixed || nargs + nkw > fixed + 1)
    throw pybind11::type_error(std::string(name) + "() takes " + std::to_string(fixed) +
                               " argument(s) and an optional timeout");
  PyObject* t = nargs > fixed ? args[fixed] : nullptr;
  if (nkw == 1) {
    const char* key = PyUnicode_AsUTF8(PyTuple_GET_ITEM(kwnames, 0));
    if (key == nullptr) throw pybind11::error_already_set();
    if (std::string_view(key) != "timeout")
      throw pybind11::type_error(std::string(name) + "() got an unexpected keyword argument");
    t = args[nargs];
  }
  if (t == nullptr || t == Py_None) return std::nullopt;
  const double s = PyFloat_AsDouble(t);
  if (s == -1.0 && PyErr_Occurred()) throw pybind11::error_already_set();
  return s;
}

inline void pause() noexcept {  // a spin-wait hint to the CPU
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

// Calls `attempt` (returning a view, a loan or a status) until it gives something other
// than would_block, for up to `spin`, with the GIL released.
template <class Attempt>
auto spin_for(std::chrono::nanoseconds spin, status would_block, Attempt attempt) {
  auto r = attempt();
  if (status_of(r) != would_block || spin.count() <= 0) return r;
  pybind11::gil_scoped_release nogil;
  const auto until = std::chrono::steady_clock::now() + spin;
  for (unsigned i = 1;; ++i) {
    r = attempt();
    if (status_of(r) != would_block) return r;
    if ((i & 15u) == 0 && std::chrono::steady_clock::now() >= until) return r;
    pause();
  }
}

inline PyObject* bytes_of(const shmq::view& v) {
  return PyBytes_FromStringAndSize(reinterpret_cast<const char*>(v.data().data()),
                                   static_cast<Py_ssize_t>(v.size()));
}

template <class C>
struct consumer_calls {
  static PyObject* try_receive(PyObject* self, PyObject*) {
    return guarded([&]() -> PyObject* {
      auto& core = *core_ptr<C>(self);
      C& c = core.get();
      call_guard guard(core);  // BusyError while another thread waits in a call
      release_previous(core);
      const shmq::view v = c.try_read();
      check_view(v, "try_receive");
      return v ? bytes_of(v) : pybind11::none().release().ptr();
    });
  }
  static PyObject* try_read(PyObject* self, PyObject*) {
    return guarded([&]() -> PyObject* {
      const auto& core = core_ptr<C>(self);
      C& c = core->get();
      call_guard guard(*core);  // BusyError while another thread waits in a call
      release_previous(*core);
      shmq::view v = c.try_read();
      check_view(v, "try_read");
      return v ? to_message(core, std::move(v)).release().ptr() : pybind11::none().release().ptr();
    });
  }
  static PyObject* read(PyObject* self, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
    return guarded([&] {
      const auto timeout = timeout_arg(args, nargs, kwnames, 0, "read");
      const auto& core = core_ptr<C>(self);
      return to_message(core, take_view(*core, timeout, "read")).release().ptr();
    });
  }
  static PyObject* next(PyObject* self, PyObject*) {  // the end of the stream ends the iteration
    return guarded([&]() -> PyObject* {
      const auto& core = core_ptr<C>(self);
      shmq::view v = take_or_end(*core);
      if (!v) {
        PyErr_SetNone(PyExc_StopIteration);
        return nullptr;
      }
      return to_message(core, std::move(v)).release().ptr();
    });
  }
  // The next view, waiting as long as it takes; an empty one at the end of the stream.
  static shmq::view take_or_end(core_of<C>& core) {
    try {
      return take_view(core, std::nullopt, "read");
    } catch (const status_error& e) {
      if (e.status == status::closed) return {};
      throw;
    }
  }
  static PyObject* receive(PyObject* self, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
    return guarded([&] {
      const auto timeout = timeout_arg(args, nargs, kwnames, 0, "receive");
      return bytes_of(take_view(*core_ptr<C>(self), timeout, "receive"));
    });
  }
  static shmq::view spin_view(core_of<C>& core, const char* doing) {
    C& c = core.get();
    call_guard guard(core);
    release_previous(core);
    shmq::view v = spin_for(core.spin, status::empty, [&] { return c.try_read(); });
    check_view(v, doing);
    return v;
  }
  static PyObject* spin_receive(PyObject* self, PyObject*) {
    return guarded([&]() -> PyObject* {
      const shmq::view v = spin_view(*core_ptr<C>(self), "receive");
      return v ? bytes_of(v) : pybind11::none().release().ptr();
    });
  }
  static PyObject* spin_read(PyObject* self, PyObject*) {
    return guarded([&]() -> PyObject* {
      const auto& core = core_ptr<C>(self);
      shmq::view v = spin_view(*core, "read");
      return v ? to_message(core, std::move(v)).release().ptr() : pybind11::none().release().ptr();
    });
  }
};

template <class P>
struct producer_calls {
  static status push(core_of<P>& core, PyObject* data, bool spin, const char* doing) {
    P& p = core.get();
    check_no_loan(core, doing);
    byte_buffer b(data);
    call_guard guard(core);
    if (!spin) return p.try_push(b.bytes());
    return spin_for(core.spin, status::full, [&] { return p.try_push(b.bytes()); });
  }
  static PyObject* sent(status s, const char* doing) {
    if (s == status::full) Py_RETURN_FALSE;
    if (s != status::ok) throw_status(s, doing);
    Py_RETURN_TRUE;
  }
  static PyObject* try_send(PyObject* self, PyObject* data) {
    return guarded([&] { return sent(push(*core_ptr<P>(self), data, false, "try_send"), "try_send"); });
  }
  static PyObject* spin_send(PyObject* self, PyObject* data) {
    return guarded([&] { return sent(push(*core_ptr<P>(self), data, true, "send"), "send"); });
  }
  static PyObject* send(PyObject* self, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
    return guarded([&]() -> PyObject* {
      const auto timeout = timeout_arg(args, nargs, kwnames, 1, "send");
      auto& core = *core_ptr<P>(self);
      P& p = core.get();
      check_no_loan(core, "send");
      byte_buffer b(args[0]);
      call_guard guard(core);
      status s = p.try_push(b.bytes());
      if (s == status::full)
        s = wait_sliced(deadline_of(timeout), [&](std::chrono::nanoseconds sl) { return p.push_for(b.bytes(), sl); });
      if (s != status::ok) throw_status(s, "send");
      Py_RETURN_NONE;
    });
  }
};

// Puts `defs` (static storage, ended by a null entry) on the class as methods.
inline void add_methods(pybind11::handle cls, PyMethodDef* defs) {
  for (PyMethodDef* d = defs; d->ml_name != nullptr; ++d) {
    PyObject* m = PyDescr_NewMethod(reinterpret_cast<PyTypeObject*>(cls.ptr()), d);
    if (m == nullptr) throw pybind11::error_already_set();
    pybind11::setattr(cls, d->ml_name, pybind11::reinterpret_steal<pybind11::object>(m));
  }
}

template <class C>
void bind_consumer(pybind11::handle cls) {
  using k = consumer_calls<C>;
  static PyMethodDef defs[] = {
      {"try_read", k::try_read, METH_NOARGS, "the next message in place, or None if there is none yet"},
      {"read", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(k::read)), METH_FASTCALL | METH_KEYWORDS,
       "read(timeout=None): the next message in place; waits up to `timeout` s"},
      {"__next__", k::next, METH_NOARGS, "the next message in place; the end of the stream ends the iteration"},
      {"try_receive", k::try_receive, METH_NOARGS, "a copy of the next message, or None if there is none yet"},
      {"receive", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(k::receive)),
       METH_FASTCALL | METH_KEYWORDS, "receive(timeout=None): a copy of the next message; waits up to `timeout` s"},
      {"_spin_receive", k::spin_receive, METH_NOARGS, "try_receive() for up to the `spin` option (asyncio)"},
      {"_spin_read", k::spin_read, METH_NOARGS, "try_read() for up to the `spin` option (asyncio)"},
      {nullptr, nullptr, 0, nullptr}};
  add_methods(cls, defs);
}

template <class P>
void bind_producer(pybind11::handle cls) {
  using k = producer_calls<P>;
  static PyMethodDef defs[] = {
      {"try_send", k::try_send, METH_O, "try_send(data): copies `data` in; False while the ring is full"},
      {"send", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(k::send)), METH_FASTCALL | METH_KEYWORDS,
       "send(data, timeout=None): copies `data` in; waits up to `timeout` s while the ring is full"},
      {"_spin_send", k::spin_send, METH_O, "try_send(data) for up to the `spin` option (asyncio)"},
      {nullptr, nullptr, 0, nullptr}};
  add_methods(cls, defs);
}

}  // namespace shmq::python::fast

#include "errors.hpp"

#include <exception>

namespace py = pybind11;

namespace shmq::python {

namespace {
// Looked up once, at import; leaked on purpose: the translator may run late in
// interpreter shutdown, after module globals are cleared.
py::object* by_errc = nullptr;
py::object* by_status = nullptr;

void raise(const py::object& table, int key, const std::string& what) {
  py::object cls = table[py::int_(key)];
  PyErr_SetString(cls.ptr(), what.c_str());
}
}  // namespace

void throw_status(shmq::status s, const char* doing) {
  throw status_error{s, std::string(doing) + ": " + shmq::to_string(s)};
}

void throw_closed_object(const char* what) { throw py::value_error(what); }

void set_python_error(std::exception_ptr p) noexcept {
  try {
    std::rethrow_exception(p);
  } catch (py::error_already_set& e) {
    e.restore();
  } catch (const py::builtin_exception& e) {
    e.set_error();
  } catch (const shmq::error& e) {
    raise(*by_errc, e.code().value(), e.what());
  } catch (const status_error& e) {
    raise(*by_status, static_cast<int>(e.status), e.what);
  } catch (const std::bad_alloc&) {
    PyErr_NoMemory();
  } catch (const std::exception& e) {
    PyErr_SetString(PyExc_RuntimeError, e.what());
  } catch (...) {
    PyErr_SetString(PyExc_RuntimeError, "unknown C++ exception");
  }
}

void register_errors(py::module_& m) {
  py::module_ errors = py::module_::import("shmq._errors");
  by_errc = new py::object(errors.attr("BY_ERRC"));
  by_status = new py::object(errors.attr("BY_STATUS"));
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const shmq::error& e) {
      raise(*by_errc, e.code().value(), e.what());
    } catch (const status_error& e) {
      raise(*by_status, static_cast<int>(e.status), e.what);
    }
  });
  m.def("_status_name", [](int s) { return shmq::to_string(static_cast<shmq::status>(s)); });
}

}  // namespace shmq::python

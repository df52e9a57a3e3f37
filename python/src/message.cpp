#include "message.hpp"

#include <cstring>
#include <string>
#include <utility>

#include "errors.hpp"

namespace py = pybind11;

namespace shmq::python {

call_guard::call_guard(endpoint_core& core) : core_(core) {
  if (core.in_call) throw status_error{status::busy, "endpoint in use by another thread: busy"};
  core.in_call = true;
}

// ---- message ----

message::message(std::shared_ptr<endpoint_core> core, shmq::view v) noexcept
    : core_(std::move(core)), view_(std::move(v)) {
  core_->held_message = this;
}

message::~message() {
  view_.release();
  if (core_ && core_->held_message == this) core_->held_message = nullptr;
}

void message::release() {
  if (!view_) return;
  if (exports > 0)
    throw py::buffer_error("cannot release a message while " + std::to_string(exports) +
                           " buffer export(s) (memoryview, numpy array) exist");
  view_.release();
  if (core_->held_message == this) core_->held_message = nullptr;
  core_.reset();
}

const shmq::view& message::view() const {
  if (!view_) throw_closed_object("the message was released");
  return view_;
}

// ---- loan ----

loan_object::loan_object(std::shared_ptr<endpoint_core> core, shmq::loan l) noexcept
    : core_(std::move(core)), loan_(std::move(l)) {
  core_->held_loan = this;
}

loan_object::~loan_object() {
  loan_.abort();
  if (core_ && core_->held_loan == this) core_->held_loan = nullptr;
}

void loan_object::finish() {
  if (core_->held_loan == this) core_->held_loan = nullptr;
  core_.reset();
}

void loan_object::commit(std::optional<std::size_t> used) {
  if (!loan_) throw_closed_object("the loan was already committed or aborted");
  if (exports > 0)
    throw py::buffer_error("cannot commit a loan while " + std::to_string(exports) +
                           " buffer export(s) (memoryview, numpy array) exist");
  if (used && *used > loan_.size())
    throw py::value_error("commit(used=" + std::to_string(*used) + ") is over the loan's " +
                          std::to_string(loan_.size()) + " bytes");
  loan_.commit(used.value_or(loan_.size()));
  finish();
}

void loan_object::abort() {
  if (!loan_) return;
  if (exports > 0)
    throw py::buffer_error("cannot abort a loan while " + std::to_string(exports) +
                           " buffer export(s) exist");
  loan_.abort();
  finish();
}

const shmq::loan& loan_object::loan() const {
  if (!loan_) throw_closed_object("the loan was already committed or aborted");
  return loan_;
}

namespace {
// Looked up once, when the module binds Message.
const py::detail::type_info* message_type = nullptr;
}  // namespace

py::object new_message(std::shared_ptr<endpoint_core> core, shmq::view v) {
  auto m = std::make_unique<message>(std::move(core), std::move(v));
  py::handle h = py::detail::type_caster_generic::cast(m.get(), py::return_value_policy::take_ownership, {},
                                                       message_type, nullptr, nullptr, nullptr);
  if (!h) throw py::error_already_set();
  m.release();  // the Python object owns it now
  return py::reinterpret_steal<py::object>(h);
}

void drop_outstanding(endpoint_core& core) {
  if (core.held_message != nullptr) core.held_message->release();
  if (core.held_loan != nullptr) core.held_loan->abort();
}

// ---- the buffer protocol ----

namespace {

// The buffer slots are set on Message and Loan only, so `obj` is one of them (or of a
// subclass): its value is read straight from pybind11's instance record.
template <class T>
T* self_of(PyObject* obj) noexcept {
  auto vh = reinterpret_cast<py::detail::instance*>(obj)->get_value_and_holder();
  return vh.holder_constructed() ? vh.template value_ptr<T>() : nullptr;
}

int fill(Py_buffer* view, PyObject* obj, void* data, std::size_t size, bool readonly, int flags) {
  return PyBuffer_FillInfo(view, obj, data, static_cast<Py_ssize_t>(size), readonly ? 1 : 0, flags);
}

int message_getbuffer(PyObject* obj, Py_buffer* view, int flags) {
  message* m = self_of<message>(obj);
  view->obj = nullptr;
  if (m == nullptr || m->released()) {
    PyErr_SetString(PyExc_ValueError, "the message was released");
    return -1;
  }
  auto d = m->view().data();
  // PyBuffer_FillInfo refuses PyBUF_WRITABLE on a read-only buffer (BufferError).
  if (fill(view, obj, const_cast<std::byte*>(d.data()), d.size(), true, flags) != 0) return -1;
  ++m->exports;
  return 0;
}

int loan_getbuffer(PyObject* obj, Py_buffer* view, int flags) {
  loan_object* l = self_of<loan_object>(obj);
  view->obj = nullptr;
  if (l == nullptr || l->finished()) {
    PyErr_SetString(PyExc_ValueError, "the loan was already committed or aborted");
    return -1;
  }
  auto d = l->loan().data();
  if (fill(view, obj, d.data(), d.size(), false, flags) != 0) return -1;
  ++l->exports;
  return 0;
}

template <class T>
void releasebuffer(PyObject* obj, Py_buffer*) {
  if (T* t = self_of<T>(obj)) --t->exports;
}

template <class T>
void set_buffer_procs(py::handle cls, getbufferproc get) {
  auto* type = reinterpret_cast<PyHeapTypeObject*>(cls.ptr());
  type->as_buffer.bf_getbuffer = get;
  type->as_buffer.bf_releasebuffer = releasebuffer<T>;
  type->ht_type.tp_as_buffer = &type->as_buffer;
}

// Messages and loans come only from endpoints. Without this, Message.__new__(Message)
// would make an object whose methods pybind11 runs on memory it allocates lazily and
// never constructs.
PyObject* refuse_new(PyTypeObject* type, PyObject*, PyObject*) {
  PyErr_Format(PyExc_TypeError, "cannot create '%s' instances: endpoints hand them out", type->tp_name);
  return nullptr;
}

void only_from_endpoints(py::handle cls) {
  auto* type = reinterpret_cast<PyTypeObject*>(cls.ptr());
  type->tp_new = refuse_new;
  PyType_Modified(type);
}

std::uintptr_t address_of(const void* p) { return reinterpret_cast<std::uintptr_t>(p); }

}  // namespace

void bind_message(py::module_& m) {
  auto msg = py::class_<message>(m, "Message", py::buffer_protocol(), R"(
A received message, read in place in the ring (zero-copy).

Supports the buffer protocol: memoryview(msg), bytes(msg), numpy.frombuffer(msg).
It stays valid while referenced; release() or leaving a `with` block hands it back
(at-least-once: release after handling). release() while a memoryview or array of it
exists raises BufferError.)");
  msg.def("__len__", [](const message& self) { return self.view().size(); })
      .def_property_readonly("size", [](const message& self) { return self.view().size(); })
      .def_property_readonly("missed", [](const message& self) { return self.view().missed(); },
                             "messages lost to overwriting just before this one (pub/sub overwrite)")
      .def_property_readonly("redelivered", [](const message& self) { return self.view().redelivered(); },
                             "a consumer that died holding this message may have seen it")
      .def_property_readonly("intact", [](const message& self) { return self.view().intact(); },
                             "False: a publisher (overwrite policy) reused the slot while it was read")
      .def_property_readonly("released", &message::released)
      .def_property_readonly("address", [](const message& self) { return address_of(self.view().data().data()); },
                             "where the message lies in this process's mapping of the ring")
      .def("tobytes", [](const message& self) {
        auto d = self.view().data();
        return py::bytes(reinterpret_cast<const char*>(d.data()), d.size());
      })
      .def("release", &message::release)
      .def("__enter__", [](py::object self) { return self; })
      .def("__exit__", [](message& self, py::object type, py::object, py::object) {
        // Never mask the exception that left the block: an exported message stays held
        // until its exports go.
        if (type.is_none() || self.exports == 0) self.release();
        return false;
      })
      .def("__repr__", [](const message& self) {
        return self.released() ? std::string("<shmq.Message released>")
                               : "<shmq.Message " + std::to_string(self.view().size()) + " bytes>";
      });
  set_buffer_procs<message>(msg, message_getbuffer);
  only_from_endpoints(msg);
  message_type = py::detail::get_type_info(typeid(message));

  auto loan = py::class_<loan_object>(m, "Loan", py::buffer_protocol(), R"(
Room for one message in the ring, writable in place (memoryview(loan), numpy).

`with producer.loan(n) as buf:` commits on a clean exit and aborts on an exception.
commit() or abort() while a memoryview or array of it exists raises BufferError.)");
  loan.def("__len__", [](const loan_object& self) { return self.loan().size(); })
      .def_property_readonly("size", [](const loan_object& self) { return self.loan().size(); })
      .def_property_readonly("finished", &loan_object::finished)
      .def_property_readonly("address", [](const loan_object& self) { return address_of(self.loan().data().data()); })
      .def("commit", &loan_object::commit, py::arg("used") = py::none(),
           "publishes the first `used` bytes (all of them by default)")
      .def("abort", &loan_object::abort)
      .def("write", [](loan_object& self, py::buffer data, std::size_t offset) {
        py::buffer_info b = data.request();
        auto d = self.loan().data();
        const auto n = static_cast<std::size_t>(b.size * b.itemsize);
        if (offset > d.size() || n > d.size() - offset)
          throw py::value_error("write of " + std::to_string(n) + " bytes at " + std::to_string(offset) +
                                " is over the loan's " + std::to_string(d.size()) + " bytes");
        std::memcpy(d.data() + offset, b.ptr, n);
        return n;
      }, py::arg("data"), py::arg("offset") = 0, "copies `data` into the loan at `offset`")
      .def("__enter__", [](py::object self) { return self; })
      .def("__exit__", [](loan_object& self, py::object type, py::object, py::object) {
        if (self.finished()) return false;
        if (type.is_none()) self.commit(std::nullopt);
        else if (self.exports == 0) self.abort();  // else aborted when the last export goes
        return false;
      })
      .def("__repr__", [](const loan_object& self) {
        return self.finished() ? std::string("<shmq.Loan finished>")
                               : "<shmq.Loan " + std::to_string(self.loan().size()) + " bytes>";
      });
  set_buffer_procs<loan_object>(loan, loan_getbuffer);
  only_from_endpoints(loan);
}

}  // namespace shmq::python

// The shmq._shmq extension module: the six endpoint classes, Message and Loan. The
// package shmq (python/shmq/) re-exports them with the exceptions and asyncio.
#include <string>

#include <pybind11/pybind11.h>

#include "endpoints.hpp"
#include "errors.hpp"
#include "fast_calls.hpp"
#include "message.hpp"
#include "options.hpp"
#include "shmq/segment.hpp"

namespace py = pybind11;
using namespace shmq::python;

namespace {

template <class E, class Make>
auto make_core(const std::string& name, const shmq::endpoint_options& o, Make make) {
  auto core = std::make_shared<core_of<E>>();
  core->name = name;
  core->spin = o.spin;
  core->endpoint.emplace(make());
  return core;
}

// A class for endpoint type E, made by `make(name, kwargs)`.
template <class E, class Make>
auto bind_endpoint(py::module_& m, const char* pyname, const char* doc, Make make) {
  auto cls = py::class_<core_of<E>, std::shared_ptr<core_of<E>>>(m, pyname, doc);
  cls.def(py::init([make, pyname](const std::string& name, py::kwargs kw) {
            py::dict rest(kw);  // this call's own dict: options take their keywords out of it
            return make(name, rest, pyname);
          }),
          py::arg("name"));
  bind_lifetime<E>(cls);
  return cls;
}

template <class E, class Options>
auto maker(Options (*options_from)(py::dict&)) {
  return [options_from](const std::string& name, py::dict& kw, const char* pyname) {
    const auto o = options_from(kw);
    finish_options(kw, pyname);
    py::gil_scoped_release nogil;  // attaching may wait for a creator (open_timeout)
    return make_core<E>(name, o, [&] { return E(name, o); });
  };
}

}  // namespace

PYBIND11_MODULE(_shmq, m) {
  m.doc() = "shmq: shared-memory channels between processes (the C++ core; use the shmq package)";
  register_errors(m);
  bind_message(m);

  auto sp = bind_endpoint<shmq::spsc_producer>(m, "SpscProducer", "The one producer of an SPSC channel.",
                                               maker<shmq::spsc_producer>(&spsc_options_from));
  fast::bind_producer<shmq::spsc_producer>(sp);
  bind_producer_calls<shmq::spsc_producer>(sp);
  sp.def_property_readonly("capacity", [](const producer_ptr<shmq::spsc_producer>& s) { return s->get().capacity(); });

  auto sc = bind_endpoint<shmq::spsc_consumer>(m, "SpscConsumer", "The one consumer of an SPSC channel.",
                                               maker<shmq::spsc_consumer>(&spsc_options_from));
  fast::bind_consumer<shmq::spsc_consumer>(sc);
  bind_consumer_calls<shmq::spsc_consumer>(sc);
  sc.def_property_readonly("capacity", [](const consumer_ptr<shmq::spsc_consumer>& s) { return s->get().capacity(); });

  auto mp = bind_endpoint<shmq::mpmc_producer>(m, "MpmcProducer", "A producer of an MPMC work queue.",
                                               maker<shmq::mpmc_producer>(&mpmc_options_from));
  fast::bind_producer<shmq::mpmc_producer>(mp);
  bind_producer_calls<shmq::mpmc_producer>(mp);
  mp.def_property_readonly("slots", [](const producer_ptr<shmq::mpmc_producer>& s) { return s->get().slots(); });

  auto mc = bind_endpoint<shmq::mpmc_consumer>(m, "MpmcConsumer", "A consumer of an MPMC work queue: each message reaches one.",
                                               maker<shmq::mpmc_consumer>(&mpmc_options_from));
  fast::bind_consumer<shmq::mpmc_consumer>(mc);
  bind_consumer_calls<shmq::mpmc_consumer>(mc);
  mc.def_property_readonly("slots", [](const consumer_ptr<shmq::mpmc_consumer>& s) { return s->get().slots(); });

  auto pub = bind_endpoint<shmq::publisher>(m, "Publisher", "A publisher of a publish/subscribe channel.",
                                            maker<shmq::publisher>(&pubsub_options_from));
  fast::bind_producer<shmq::publisher>(pub);
  bind_producer_calls<shmq::publisher>(pub);
  pub.def_property_readonly("subscribers", [](const producer_ptr<shmq::publisher>& s) { return s->get().subscribers(); });

  auto sub = bind_endpoint<shmq::subscriber>(
      m, "Subscriber",
      "A subscription: every message (private), or a share of them (group=...). "
      "start='newest'|'oldest', history=N.",
      [](const std::string& name, py::dict& kw, const char* pyname) {
        const auto how = subscription_from(kw);
        const auto o = pubsub_options_from(kw);
        finish_options(kw, pyname);
        py::gil_scoped_release nogil;
        return make_core<shmq::subscriber>(name, o, [&] { return shmq::subscriber(name, o, how); });
      });
  fast::bind_consumer<shmq::subscriber>(sub);
  bind_consumer_calls<shmq::subscriber>(sub);
  sub.def_property_readonly("missed_total", [](const consumer_ptr<shmq::subscriber>& s) { return s->get().missed_total(); });

  m.def("remove_segment", [](const std::string& name) { return shmq::remove_segment(name); }, py::arg("name"),
        "removes a channel's name; False if there was none");
  m.def("segment_exists", [](const std::string& name) { return shmq::segment_exists(name); }, py::arg("name"));
  m.def("valid_name", [](const std::string& name) { return shmq::valid_name(name); }, py::arg("name"));
}

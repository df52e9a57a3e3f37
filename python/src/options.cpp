#include "options.hpp"

#include <chrono>
#include <cmath>
#include <string>
#include <utility>

namespace py = pybind11;

namespace shmq::python {

namespace {

// Takes `key` out of `kw` and hands it to `set`.
template <class F>
void take(py::dict& kw, const char* key, F set) {
  if (!kw.contains(key)) return;
  py::object v = kw[key];
  PyDict_DelItemString(kw.ptr(), key);
  set(v);
}

template <class T>
void take_int(py::dict& kw, const char* key, T& out) {
  take(kw, key, [&](const py::object& v) {
    if (!py::isinstance<py::int_>(v)) throw py::type_error(std::string(key) + " must be an int");
    const long long n = v.cast<long long>();
    if (n < 0 && !std::is_signed_v<T>) throw py::value_error(std::string(key) + " must not be negative");
    out = static_cast<T>(n);
  });
}

template <class Duration>
void take_seconds(py::dict& kw, const char* key, Duration& out) {
  take(kw, key, [&](const py::object& v) {
    const double s = v.cast<double>();
    if (!std::isfinite(s) || s < 0) throw py::value_error(std::string(key) + " must be a finite number of seconds >= 0");
    out = std::chrono::duration_cast<Duration>(std::chrono::duration<double>(s));
  });
}

template <class E, std::size_t N>
void take_enum(py::dict& kw, const char* key, E& out, const std::pair<const char*, E> (&names)[N]) {
  take(kw, key, [&](const py::object& v) {
    const std::string s = py::str(v);
    std::string all;
    for (const auto& [name, value] : names) {
      if (s == name) {
        out = value;
        return;
      }
      all += std::string(all.empty() ? "" : ", ") + "'" + name + "'";
    }
    throw py::value_error(std::string(key) + " must be one of " + all + ", not '" + s + "'");
  });
}

void endpoint_from(py::dict& kw, endpoint_options& o) {
  take_int(kw, "mode", o.mode);
  take_int(kw, "gid", o.group);
  take_enum(kw, "open", o.open, {std::pair{"open_or_create", open_mode::open_or_create},
                                 std::pair{"create", open_mode::create}, std::pair{"open", open_mode::open}});
  take_enum(kw, "if_stale", o.if_stale,
            {std::pair{"recover", stale_segment::recover}, std::pair{"replace", stale_segment::replace}});
  take_seconds(kw, "open_timeout", o.open_timeout);
  take_seconds(kw, "spin", o.spin);
  take_enum(kw, "when_producer_gone", o.when_producer_gone,
            {std::pair{"wait", when_producer_gone::wait}, std::pair{"report", when_producer_gone::report}});
  take_seconds(kw, "liveness_interval", o.liveness_interval);
  // A file-backed channel (docs/durability.md).
  take(kw, "path", [&](const py::object& v) { o.file.path = v.is_none() ? "" : py::str(v).cast<std::string>(); });
  take_enum(kw, "durability", o.file.durability,
            {std::pair{"none", durability::none}, std::pair{"group_commit", durability::group_commit},
             std::pair{"per_commit", durability::per_commit}});
  take_int(kw, "group_messages", o.file.group_messages);
  take_seconds(kw, "group_interval", o.file.group_interval);
}

}  // namespace

channel_options spsc_options_from(py::dict& kw) {
  channel_options o;
  endpoint_from(kw, o);
  take_int(kw, "capacity", o.capacity);
  take_int(kw, "max_message_size", o.max_message_size);
  return o;
}

mpmc_options mpmc_options_from(py::dict& kw) {
  mpmc_options o;
  endpoint_from(kw, o);
  take_int(kw, "slots", o.slots);
  take_int(kw, "max_message_size", o.max_message_size);
  take_int(kw, "max_producers", o.max_producers);
  take_int(kw, "max_consumers", o.max_consumers);
  return o;
}

pubsub_options pubsub_options_from(py::dict& kw) {
  pubsub_options o;
  endpoint_from(kw, o);
  take_int(kw, "slots", o.slots);
  take_int(kw, "max_message_size", o.max_message_size);
  take_enum(kw, "policy", o.policy,
            {std::pair{"block", overflow_policy::block}, std::pair{"overwrite", overflow_policy::overwrite}});
  take_int(kw, "max_publishers", o.max_publishers);
  take_int(kw, "max_subscribers", o.max_subscribers);
  take_int(kw, "max_groups", o.max_groups);
  return o;
}

subscription subscription_from(py::dict& kw) {
  subscription s;
  take(kw, "group", [&](const py::object& v) { s.group = v.is_none() ? "" : v.cast<std::string>(); });
  take_enum(kw, "start", s.start, {std::pair{"newest", start_from::newest}, std::pair{"oldest", start_from::oldest}});
  take_int(kw, "history", s.history);
  return s;
}

void finish_options(const py::dict& kw, const char* type) {
  for (auto item : kw)
    throw py::type_error(std::string(type) + "() got an unexpected keyword argument '" +
                         py::str(item.first).cast<std::string>() + "'");
}

}  // namespace shmq::python

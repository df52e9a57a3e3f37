// Keyword arguments to shmq option structs: the C++ field names, durations in seconds,
// enumerations as their C++ names in strings ("open_or_create", "overwrite", ...).
// An unknown keyword or a bad value raises TypeError or ValueError.
#pragma once

#include <pybind11/pybind11.h>

#include "shmq/mpmc.hpp"
#include "shmq/pubsub.hpp"
#include "shmq/spsc.hpp"

namespace shmq::python {

// Each consumes the keywords it knows from `kw`; finish_options() rejects what is left.
channel_options spsc_options_from(pybind11::dict& kw);
mpmc_options mpmc_options_from(pybind11::dict& kw);
pubsub_options pubsub_options_from(pybind11::dict& kw);
subscription subscription_from(pybind11::dict& kw);
void finish_options(const pybind11::dict& kw, const char* type);

}  // namespace shmq::python

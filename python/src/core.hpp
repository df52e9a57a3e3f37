// What every Python endpoint object shares with the messages and loans it hands out.
//
// A message (a view) or a loan must not outlive its endpoint, and an endpoint serves one
// thread at a time. Both rules are kept here, with the GIL held: a message or a loan
// holds the endpoint's core (so the endpoint lives as long as they do), the core knows
// the one it has outstanding (so detach() can release it first), and `in_call` marks a
// call that waits with the GIL released, so that a second thread gets BusyError instead
// of racing it.
#pragma once

#include <chrono>
#include <memory>

namespace shmq::python {

class message;
class loan_object;

struct endpoint_core : std::enable_shared_from_this<endpoint_core> {
  virtual ~endpoint_core() = default;
  bool in_call = false;
  std::chrono::nanoseconds spin{};    // the endpoint's `spin` option: asyncio tries this long before arming
  message* held_message = nullptr;   // consumers: the view handed out and not released
  loan_object* held_loan = nullptr;  // producers: the loan handed out and not finished
};

// Marks an endpoint in use for a call that may release the GIL.
class call_guard {
 public:
  explicit call_guard(endpoint_core& core);
  ~call_guard() { core_.in_call = false; }
  call_guard(const call_guard&) = delete;
  call_guard& operator=(const call_guard&) = delete;

 private:
  endpoint_core& core_;
};

}  // namespace shmq::python

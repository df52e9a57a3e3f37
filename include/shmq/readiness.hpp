// Waiting in an event loop (epoll, poll, Boost.Asio, asyncio) instead of a blocked
// thread. Every endpoint has a readiness descriptor, native_handle(), that the loop
// watches for reading, and arm(), which tells the other side to wake it:
//
//   for (;;) {
//     shmq::view v = consumer.try_read();
//     if (v) { handle(v); continue; }
//     if (v.status() != shmq::status::empty) break;  // closed, producer_gone, corrupt, ...
//     if (consumer.arm() == shmq::arm_result::ready) continue;
//     wait until consumer.native_handle() is readable;
//   }
//
// Producers do the same with try_loan(n) / try_push(m) giving status::full and arm(n).
// The descriptor may also be readable when nothing is there (the liveness tick every
// liveness_interval, a message another consumer took first): that is why the loop tries
// first. docs/event-loops.md has the mechanism, its costs and limits.
#pragma once

#include <cstdint>

namespace shmq {

enum class arm_result : std::uint8_t {
  armed,  // nothing there: wait until native_handle() is readable, then try again
  ready,  // something is there already (a message or room, end of stream, an error, a due
          // liveness verdict): call the try_ operation now
};

const char* to_string(arm_result r) noexcept;

}  // namespace shmq

// The name of a readiness handle's wake socket: an abstract-namespace Unix datagram
// socket "\0shmq.wake.<key in hex>". The key is a random 64-bit number the handle
// stores in its wait word's table; wakers read it from there. Abstract names vanish
// with the socket, so a dead waiter leaves nothing behind in the filesystem, and a
// wake sent to it fails with ECONNREFUSED instead of succeeding silently.
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/un.h>

namespace shmq::detail {

struct wake_address {
  sockaddr_un addr{};
  socklen_t length = 0;
};

inline wake_address wake_address_of(std::uint64_t key) noexcept {
  wake_address a;
  a.addr.sun_family = AF_UNIX;
  // sun_path[0] stays 0: the abstract namespace. The name is not NUL-terminated.
  char name[32];
  const int n = std::snprintf(name, sizeof name, "shmq.wake.%016llx", static_cast<unsigned long long>(key));
  std::memcpy(a.addr.sun_path + 1, name, static_cast<std::size_t>(n));
  a.length = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + static_cast<std::size_t>(n));
  return a;
}

}  // namespace shmq::detail

namespace shmq::detail {

// Sends one wake byte to the handle of `key` (wake.cpp). False when no socket has that
// name any more: its handle was closed, or its process died.
bool send_wake(std::uint64_t key) noexcept;

}  // namespace shmq::detail

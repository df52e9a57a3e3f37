// Descriptors for many connections: the sink listens on one per endpoint and accepts one
// per client connection, a worker keeps one per pooled connection.
#pragma once

#include <sys/resource.h>

namespace shmq::push {

// Raises the soft limit on open descriptors to the hard one.
inline void raise_descriptor_limit() noexcept {
  rlimit r{};
  if (getrlimit(RLIMIT_NOFILE, &r) == 0 && r.rlim_cur < r.rlim_max) {
    r.rlim_cur = r.rlim_max;
    setrlimit(RLIMIT_NOFILE, &r);
  }
}

}  // namespace shmq::push

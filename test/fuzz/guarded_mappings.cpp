// The guarded mappings of fuzz_support.hpp: the library's mmap64 and munmap go through
// these wrappers (-Wl,--wrap=mmap64,--wrap=munmap).
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <sys/mman.h>

#include <sanitizer/asan_interface.h>

#include "fuzz_support.hpp"

namespace shmq::fuzz {

std::array<guarded_mapping, max_mappings> mappings;
bool guard_next_mappings = false;

void fail(const char* what) noexcept {
  std::fprintf(stderr, "shmq fuzzer: %s\n", what);
  std::abort();
}

namespace {
std::size_t page_round(std::size_t n) noexcept { return (n + guard_bytes - 1) / guard_bytes * guard_bytes; }
}  // namespace

}  // namespace shmq::fuzz

using namespace shmq::fuzz;

extern "C" {
void* __real_mmap64(void* addr, std::size_t len, int prot, int flags, int fd, off_t offset);
int __real_munmap(void* addr, std::size_t len);

void* __wrap_mmap64(void* addr, std::size_t len, int prot, int flags, int fd, off_t offset) {
  if (!guard_next_mappings || addr != nullptr || fd < 0 || (flags & MAP_SHARED) == 0 || len == 0)
    return __real_mmap64(addr, len, prot, flags, fd, offset);
  auto slot = std::find_if(mappings.begin(), mappings.end(),
                           [](const guarded_mapping& m) { return m.reservation == nullptr; });
  if (slot == mappings.end()) fail("more live mappings than the harness expects");
  const std::size_t total = guard_bytes + page_round(len) + guard_bytes;
  void* r = __real_mmap64(nullptr, total, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (r == MAP_FAILED) return MAP_FAILED;
  auto* reservation = static_cast<std::byte*>(r);
  void* base = __real_mmap64(reservation + guard_bytes, len, prot, flags | MAP_FIXED, fd, offset);
  if (base == MAP_FAILED) {
    const int err = errno;
    __real_munmap(reservation, total);
    errno = err;
    return MAP_FAILED;
  }
  // The tail of the last page reads as zeros without a fault: poison it instead.
  ASAN_POISON_MEMORY_REGION(static_cast<std::byte*>(base) + len, page_round(len) - len);
  *slot = {reservation, total, static_cast<std::byte*>(base), len};
  return base;
}

int __wrap_munmap(void* addr, std::size_t len) {
  for (guarded_mapping& m : mappings) {
    if (m.reservation == nullptr || m.base != addr) continue;
    if (len != m.size) fail("a guarded mapping was unmapped with another size");
    ASAN_UNPOISON_MEMORY_REGION(m.base, page_round(m.size));
    const int rc = __real_munmap(m.reservation, m.reservation_size);
    m = {};
    return rc;
  }
  return __real_munmap(addr, len);
}
}  // extern "C"

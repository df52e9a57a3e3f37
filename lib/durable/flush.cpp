#include "durable/flush.hpp"

#include <atomic>
#include <cerrno>
#include <fstream>
#include <mutex>
#include <sys/mman.h>
#include <unistd.h>

namespace shmq::detail {

namespace {

std::atomic<flush_observer> observer{nullptr};
std::atomic<void*> observer_context{nullptr};
std::atomic<int> injected_error{0};
std::atomic<unsigned> injected_count{0};

std::mutex boot_mutex;
std::string boot_override;

}  // namespace

int flush_pages(int fd, std::byte* base, std::uint64_t map_size, std::uint64_t offset, std::uint64_t length) noexcept {
  static const std::uint64_t page = static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE));
  if (offset >= map_size || length == 0) return 0;
  const std::uint64_t start = offset & ~(page - 1);
  const std::uint64_t end = std::min(map_size, offset + length);
  // A failure injected by a test stands for one from the disk: nothing was written.
  for (unsigned n = injected_count.load(std::memory_order_relaxed); n != 0;)
    if (injected_count.compare_exchange_weak(n, n - 1, std::memory_order_relaxed))
      return injected_error.load(std::memory_order_relaxed);
  if (::msync(base + start, end - start, MS_SYNC) != 0) return errno;
  if (flush_observer f = observer.load(std::memory_order_acquire))
    f(observer_context.load(std::memory_order_relaxed), fd, base, start, end - start);
  return 0;
}

int flush_file(int fd, std::byte* base, std::uint64_t map_size) noexcept {
  for (unsigned n = injected_count.load(std::memory_order_relaxed); n != 0;)
    if (injected_count.compare_exchange_weak(n, n - 1, std::memory_order_relaxed))
      return injected_error.load(std::memory_order_relaxed);
  if (::fsync(fd) != 0) return errno;
  if (flush_observer f = observer.load(std::memory_order_acquire))
    f(observer_context.load(std::memory_order_relaxed), fd, base, 0, map_size);
  return 0;
}

void set_flush_observer(flush_observer f, void* context) noexcept {
  observer_context.store(context, std::memory_order_relaxed);
  observer.store(f, std::memory_order_release);
}

void inject_flush_failures(int error, unsigned count) noexcept {
  injected_error.store(error, std::memory_order_relaxed);
  injected_count.store(count, std::memory_order_relaxed);
}

std::string boot_id() {
  {
    std::lock_guard<std::mutex> lock(boot_mutex);
    if (!boot_override.empty()) return boot_override;
  }
  std::ifstream in("/proc/sys/kernel/random/boot_id");
  std::string id;
  std::getline(in, id);
  return id.empty() ? std::string("unknown-boot") : id;
}

void set_boot_id_for_test(std::string id) {
  std::lock_guard<std::mutex> lock(boot_mutex);
  boot_override = std::move(id);
}

}  // namespace shmq::detail

// The one point through which every flush of a file-backed channel goes (msync of the
// pages touched, MS_SYNC), so that a test can watch each one complete and inject a
// failure. A failed flush is never retried as if the data were safe: the caller poisons
// its endpoint (Linux reports a writeback error once, then clears it).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace shmq::detail {

// Flushes the pages holding [offset, offset + length) of a mapping of `map_size` bytes
// at `base` of the file `fd`. 0, or the errno of the failure.
int flush_pages(int fd, std::byte* base, std::uint64_t map_size, std::uint64_t offset, std::uint64_t length) noexcept;

// The whole file: fsync of `fd` (creation), watched like the flushes above.
int flush_file(int fd, std::byte* base, std::uint64_t map_size) noexcept;

// ---- For tests (test/durable/): not part of the API ----

// Called after every successful flush (on the thread that flushed) with the file and
// the page-aligned range it covered.
using flush_observer = void (*)(void* context, int fd, const std::byte* base, std::uint64_t offset,
                                std::uint64_t length);
void set_flush_observer(flush_observer observer, void* context) noexcept;
// The next `count` flushes fail with `error` without reaching the disk.
void inject_flush_failures(int error, unsigned count) noexcept;

// The current boot's id (/proc/sys/kernel/random/boot_id), or what a test set instead
// (a crash-image test "reboots" by changing it; empty: the real one again).
std::string boot_id();
void set_boot_id_for_test(std::string id);

}  // namespace shmq::detail

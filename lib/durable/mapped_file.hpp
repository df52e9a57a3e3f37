// A regular file mapped MAP_SHARED: the descriptor (participant locks live on it) and
// the mapping, released together. What a file-backed segment holds instead of a
// /dev/shm object.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>

namespace shmq::detail {

class mapped_file {
 public:
  mapped_file() = default;
  mapped_file(int fd, std::byte* base, std::uint64_t size) noexcept : fd_(fd), base_(base), size_(size) {}
  mapped_file(mapped_file&& o) noexcept
      : fd_(std::exchange(o.fd_, -1)), base_(std::exchange(o.base_, nullptr)), size_(std::exchange(o.size_, 0)) {}
  mapped_file& operator=(mapped_file&& o) noexcept {
    if (this != &o) {
      reset();
      fd_ = std::exchange(o.fd_, -1);
      base_ = std::exchange(o.base_, nullptr);
      size_ = std::exchange(o.size_, 0);
    }
    return *this;
  }
  ~mapped_file() { reset(); }

  int fd() const noexcept { return fd_; }
  std::byte* base() const noexcept { return base_; }
  std::uint64_t size() const noexcept { return size_; }
  explicit operator bool() const noexcept { return fd_ >= 0; }

 private:
  void reset() noexcept;
  int fd_ = -1;
  std::byte* base_ = nullptr;
  std::uint64_t size_ = 0;
};

// Opens `path` (an existing regular file, read-write) or creates it exclusively with
// `mode` and sizes it to `size` with posix_fallocate. Returns the descriptor; throws
// shmq::error (not_found, already_exists, permission_denied, not_shmq for a file that
// is not a regular one, system_error). `label` names the channel in messages.
int open_channel_file(const std::string& path, const std::string& label);
int create_channel_file(const std::string& path, const std::string& label, unsigned mode, long group);
void preallocate_channel_file(int fd, const std::string& path, const std::string& label, std::uint64_t size);
std::uint64_t file_size(int fd, const std::string& label);
mapped_file map_channel_file(int fd, std::uint64_t size, const std::string& label);
// fsync of the directory that holds the file's name.
void sync_directory(const std::string& path, const std::string& label);
bool remove_channel_file(const std::string& path) noexcept;
// Maps [at, at + length) (page-aligned) read-only in this process. A consumer's ring:
// writeback then has no writable mapping of it to write-protect there, so it costs the
// consumer's CPU no TLB shoot-down (docs/durability.md, "Group commit"). Best effort.
void map_read_only(std::byte* at, std::uint64_t length) noexcept;
// Writable again (a read-only reader's rare write: a pub/sub subscriber skipping a dead
// publisher's slot). Best effort.
void map_writable(std::byte* at, std::uint64_t length) noexcept;
// Makes the pages of [at, at + length) (page-aligned) writable in this process's page
// tables again after a flush write-protected them (MADV_POPULATE_WRITE), so that the next
// writes into them take no page fault. The data is not changed. Best effort.
void prefault_writable(std::byte* at, std::uint64_t length) noexcept;

}  // namespace shmq::detail

#include "durable/mapped_file.hpp"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "shmq/status.hpp"

namespace shmq::detail {

namespace {

[[noreturn]] void fail_file(int err, const std::string& label, const std::string& path, const char* doing) {
  const std::string where = "shmq channel file '" + path + "' (" + label + "): ";
  switch (err) {
    case ENOENT: throw error(errc::not_found, where + "does not exist");
    case EEXIST: throw error(errc::already_exists, where + "already exists");
    case EACCES:
    case EPERM: throw error(errc::permission_denied, where + "permission denied while " + doing);
    default: throw error(errc::system_error, where + doing + ": " + std::strerror(err));
  }
}

std::string directory_of(const std::string& path) {
  const auto slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

}  // namespace

void mapped_file::reset() noexcept {
  if (base_ != nullptr) ::munmap(base_, size_);
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  base_ = nullptr;
  size_ = 0;
}

int open_channel_file(const std::string& path, const std::string& label) {
  const int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0 && errno == EISDIR)
    throw error(errc::not_shmq, "shmq channel file '" + path + "' (" + label + "): a directory");
  if (fd < 0) fail_file(errno, label, path, "opening it");
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    throw error(errc::not_shmq, "shmq channel file '" + path + "' (" + label + "): not a regular file");
  }
  return fd;
}

int create_channel_file(const std::string& path, const std::string& label, unsigned mode, long group) {
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode & 07777);
  if (fd < 0) fail_file(errno, label, path, "creating it");
  // The umask may have narrowed the mode: make it exact, as for /dev/shm segments.
  if (::fchmod(fd, mode & 07777) != 0 ||
      (group >= 0 && ::fchown(fd, static_cast<uid_t>(-1), static_cast<gid_t>(group)) != 0)) {
    const int err = errno;
    ::close(fd);
    ::unlink(path.c_str());
    fail_file(err, label, path, "setting its mode or group");
  }
  return fd;
}

void preallocate_channel_file(int fd, const std::string& path, const std::string& label, std::uint64_t size) {
  // Every block allocated now: a later flush never waits for (or fails on) allocation.
  const int err = ::posix_fallocate(fd, 0, static_cast<off_t>(size));
  if (err != 0) fail_file(err, label, path, "preallocating it");
}

std::uint64_t file_size(int fd, const std::string& label) {
  struct stat st {};
  if (::fstat(fd, &st) != 0 || st.st_size < 0)
    throw error(errc::system_error, "shmq channel '" + label + "': cannot read its file's size");
  return static_cast<std::uint64_t>(st.st_size);
}

mapped_file map_channel_file(int fd, std::uint64_t size, const std::string& label) {
  void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) {
    const int err = errno;
    ::close(fd);
    throw error(errc::system_error, "shmq channel '" + label + "': mapping its file: " + std::strerror(err));
  }
  return mapped_file(fd, static_cast<std::byte*>(p), size);
}

void sync_directory(const std::string& path, const std::string& label) {
  const int dir = ::open(directory_of(path).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir < 0) fail_file(errno, label, path, "opening its directory");
  const int rc = ::fsync(dir);
  const int err = errno;
  ::close(dir);
  if (rc != 0) fail_file(err, label, path, "syncing its directory");
}

bool remove_channel_file(const std::string& path) noexcept { return ::unlink(path.c_str()) == 0; }

void map_read_only(std::byte* at, std::uint64_t length) noexcept { (void)::mprotect(at, length, PROT_READ); }
void map_writable(std::byte* at, std::uint64_t length) noexcept {
  (void)::mprotect(at, length, PROT_READ | PROT_WRITE);
}

void prefault_writable(std::byte* at, std::uint64_t length) noexcept {
#ifdef MADV_POPULATE_WRITE
  (void)::madvise(at, length, MADV_POPULATE_WRITE);
#else
  (void)at;
  (void)length;
#endif
}

}  // namespace shmq::detail

// Shared helpers for the shmq tests: unique segment names with a guard that removes
// them, forked peers that report through their exit status, stamped test messages of
// any size, and a raw mapping of a segment for tests that corrupt it on purpose.
#pragma once

#include <atomic>
#include <chrono>
#include <cerrno>
#include <csignal>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <doctest/doctest.h>

#include "layout.hpp"
#include "shmq/segment.hpp"
#include "shmq/spsc.hpp"
#include "shmq/status.hpp"
#include "stamped_message.hpp"

// doctest prints enums as "{?}" without this; statuses in failure messages must be legible.
namespace shmq {
inline doctest::String toString(status s) { return to_string(s); }
inline doctest::String toString(errc e) { return make_error_code(e).message().c_str(); }
}  // namespace shmq

namespace shmq::test {

// ---- names and cleanup ----

// Unique per process and per call, so tests that meson runs side by side, or a test
// that runs twice, never meet on one segment.
inline std::string unique_name(std::string_view what) {
  static std::atomic<unsigned> counter{0};
  return "shmq-test-" + std::to_string(::getpid()) + "-" + std::to_string(counter++) + "-" +
         std::string(what);
}

inline std::string shm_path(std::string_view name) {
  return "/dev/shm/shmq." + std::string(name);
}

// Removes the segment when the test ends, whichever way it ends; an assertion that
// throws out of the test must not leave /dev/shm littered for the next run.
class segment_guard {
 public:
  explicit segment_guard(std::string_view what) : name_(unique_name(what)) { remove(); }
  ~segment_guard() { remove(); }
  segment_guard(const segment_guard&) = delete;
  segment_guard& operator=(const segment_guard&) = delete;

  const std::string& name() const noexcept { return name_; }
  std::string path() const { return shm_path(name_); }

 private:
  void remove() noexcept {
    try {
      shmq::remove_segment(name_);
    } catch (...) {
    }
  }
  std::string name_;
};

// ---- environment ----

inline std::uint64_t env_count(const char* variable, std::uint64_t fallback) {
  const char* v = std::getenv(variable);
  if (v == nullptr || *v == '\0') return fallback;
  char* end = nullptr;
  const unsigned long long n = std::strtoull(v, &end, 10);
  return (end != nullptr && *end == '\0' && n > 0) ? n : fallback;
}

// ---- test messages ----

// Messages of 16 bytes or more are stamped (sequence number + checksum over a payload
// derived from the sequence number). Smaller ones cannot hold a stamp, so every byte is
// derived from the sequence number and the size instead: a lost, repeated, reordered or
// torn small message still shows.
inline void fill_message(std::span<std::byte> out, std::uint64_t seq) noexcept {
  if (out.size() >= stamped::header_size) {
    stamped::fill(out, seq);
    return;
  }
  std::uint64_t state = stamped::mix(seq * 31 + out.size());
  for (std::size_t i = 0; i < out.size(); ++i)
    out[i] = static_cast<std::byte>(state >> (8 * (i % 8)));
}

inline bool message_ok(std::span<const std::byte> in, std::uint64_t expected_seq) noexcept {
  if (in.size() >= stamped::header_size) {
    std::uint64_t seq = 0;
    return stamped::check(in, seq) == stamped::verdict::ok && seq == expected_seq;
  }
  std::uint64_t state = stamped::mix(expected_seq * 31 + in.size());
  for (std::size_t i = 0; i < in.size(); ++i)
    if (in[i] != static_cast<std::byte>(state >> (8 * (i % 8)))) return false;
  return true;
}

inline std::vector<std::byte> make_message(std::uint64_t seq, std::size_t size) {
  std::vector<std::byte> m(size);
  fill_message(m, seq);
  return m;
}

// Size of message `seq` of a stream: a pure function of (salt, seq), so the receiver
// knows what size to expect without being told, and a truncated message shows. Mostly
// from `min` to `typical_max`; about one in 2048 from `min` up to `max`, and about one in
// 65536 exactly `max`.
inline std::size_t stream_message_size(std::uint64_t salt, std::uint64_t seq, std::size_t min,
                                       std::size_t typical_max, std::size_t max) noexcept {
  const std::uint64_t r = stamped::mix(seq ^ (salt * 0x9e3779b97f4a7c15ull));
  if ((r & 0xffff) == 0x1234) return max;
  if ((r & 0x7ff) == 0x7ff) return min + static_cast<std::size_t>((r >> 16) % (max - min + 1));
  return min + static_cast<std::size_t>((r >> 16) % (typical_max - min + 1));
}

// ---- forked peers ----

// Runs `body` in a forked child. The child never returns into doctest: it leaves with
// _exit(body()), so it prints no report and runs no atexit handlers of the parent. A
// child whose parent dies is killed, so a hung test run leaves no orphans behind. The
// child can write single bytes to the parent through notify(); the parent reads them
// with wait_notice(), which returns 0 if the child exited without writing.
class child_process {
 public:
  template <class Body>
  explicit child_process(Body&& body) {
    int fds[2];
    REQUIRE(::pipe(fds) == 0);
    const pid_t parent = ::getpid();
    std::fflush(nullptr);  // nothing buffered in the parent may be written twice
    pid_ = ::fork();
    if (pid_ == 0) {
      ::close(fds[0]);
      notice_fd_ = fds[1];
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (::getppid() != parent) ::_exit(120);
      int rc = 121;
      try {
        rc = body(*this);
      } catch (const std::exception& e) {
        std::fprintf(stderr, "child %d: exception: %s\n", static_cast<int>(::getpid()), e.what());
        rc = 122;
      } catch (...) {
        rc = 123;
      }
      ::_exit(rc);
    }
    ::close(fds[1]);
    notice_fd_ = fds[0];
    REQUIRE(pid_ > 0);
  }
  child_process(const child_process&) = delete;
  child_process& operator=(const child_process&) = delete;
  ~child_process() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      int st = 0;
      while (::waitpid(pid_, &st, 0) < 0 && errno == EINTR) {
      }
    }
    if (notice_fd_ >= 0) ::close(notice_fd_);
  }

  // In the child.
  void notify(char c) const noexcept {
    while (::write(notice_fd_, &c, 1) < 0 && errno == EINTR) {
    }
  }

  // In the parent. Blocks until the child writes a byte or exits.
  char wait_notice() const noexcept {
    char c = 0;
    ssize_t n;
    while ((n = ::read(notice_fd_, &c, 1)) < 0 && errno == EINTR) {
    }
    return n == 1 ? c : 0;
  }

  pid_t pid() const noexcept { return pid_; }

  // Kills the child at once, as a crash would, and reaps it.
  int kill_and_wait() {
    REQUIRE(pid_ > 0);
    ::kill(pid_, SIGKILL);
    return wait();
  }

  // Exit code of the child; 128 + signal if it was killed by one.
  int wait() {
    REQUIRE(pid_ > 0);
    int st = 0;
    pid_t r;
    while ((r = ::waitpid(pid_, &st, 0)) < 0 && errno == EINTR) {
    }
    REQUIRE(r == pid_);
    pid_ = -1;
    return decode(st);
  }

  // Reaps whichever of `a` and `b` ends first; if that one failed, kills the other (it
  // may be blocked forever on a peer that is gone). Returns both exit codes.
  static std::pair<int, int> wait_both(child_process& a, child_process& b) {
    int st = 0;
    pid_t r;
    while ((r = ::waitpid(-1, &st, 0)) < 0 && errno == EINTR) {
    }
    REQUIRE((r == a.pid_ || r == b.pid_));
    const bool a_first = r == a.pid_;
    child_process& first = a_first ? a : b;
    child_process& second = a_first ? b : a;
    first.pid_ = -1;
    const int first_rc = decode(st);
    if (first_rc != 0) ::kill(second.pid_, SIGKILL);
    const int second_rc = second.wait();
    return a_first ? std::pair{first_rc, second_rc} : std::pair{second_rc, first_rc};
  }

 private:
  static int decode(int st) noexcept {
    if (WIFEXITED(st)) return WEXITSTATUS(st);
    if (WIFSIGNALED(st)) return 128 + WTERMSIG(st);
    return 255;
  }

  pid_t pid_ = -1;
  int notice_fd_ = -1;
};

// In a forked consumer: reads message `seq` in place and dies (SIGKILL) holding the
// view, or, with `release_first`, just after releasing it. Returns only on a failure.
template <class Consumer>
int die_holding_view(Consumer& c, std::uint64_t seq, bool release_first = false) {
  view v = c.read_for(std::chrono::seconds(10));
  if (!v || !message_ok(v.data(), seq)) return 1;
  if (release_first) v.release();
  ::raise(SIGKILL);
  return 2;
}

// A pipe between two forked peers, for handshakes that must not depend on timing.
// Create it before forking; each child keeps only its end (keep_read / keep_write), and
// the parent closes both after forking, so a reader sees end-of-file if the writer dies.
class peer_pipe {
 public:
  peer_pipe() { REQUIRE(::pipe(fds_) == 0); }
  ~peer_pipe() { close_all(); }
  peer_pipe(const peer_pipe&) = delete;
  peer_pipe& operator=(const peer_pipe&) = delete;

  void keep_read() noexcept { close_fd(fds_[1]); }
  void keep_write() noexcept { close_fd(fds_[0]); }
  void close_all() noexcept {
    close_fd(fds_[0]);
    close_fd(fds_[1]);
  }
  bool send(char c) const noexcept {
    ssize_t n;
    while ((n = ::write(fds_[1], &c, 1)) < 0 && errno == EINTR) {
    }
    return n == 1;
  }
  // Blocks until a byte comes; false on end-of-file (the writer is gone).
  bool receive(char& c) const noexcept {
    ssize_t n;
    while ((n = ::read(fds_[0], &c, 1)) < 0 && errno == EINTR) {
    }
    return n == 1;
  }

 private:
  static void close_fd(int& fd) noexcept {
    if (fd >= 0) ::close(fd);
    fd = -1;
  }
  int fds_[2] = {-1, -1};
};

// ---- raw access to a segment ----

// Maps /dev/shm/shmq.<name> directly, without the library, so a test can read or damage
// any byte through the structs of layout.hpp.
class raw_segment {
 public:
  explicit raw_segment(std::string_view name) : path_(shm_path(name)) {
    fd_ = ::open(path_.c_str(), O_RDWR);
    REQUIRE_MESSAGE(fd_ >= 0, "cannot open " << path_ << ": " << std::strerror(errno));
    struct stat st {};
    REQUIRE(::fstat(fd_, &st) == 0);
    size_ = static_cast<std::size_t>(st.st_size);
    REQUIRE(size_ > 0);
    void* p = ::mmap(nullptr, size_, PROT_READ | PROT_WRITE, MAP_SHARED, fd_, 0);
    REQUIRE(p != MAP_FAILED);
    base_ = static_cast<std::byte*>(p);
  }
  ~raw_segment() {
    if (base_ != nullptr) ::munmap(base_, size_);
    if (fd_ >= 0) ::close(fd_);
  }
  raw_segment(const raw_segment&) = delete;
  raw_segment& operator=(const raw_segment&) = delete;

  std::byte* bytes() const noexcept { return base_; }
  std::size_t size() const noexcept { return size_; }
  detail::segment_header& header() const noexcept {
    return *reinterpret_cast<detail::segment_header*>(base_);
  }
  detail::spsc_control& control() const noexcept {
    return *reinterpret_cast<detail::spsc_control*>(base_ + header().control_offset);
  }
  std::byte* data() const noexcept { return base_ + header().data_offset; }

 private:
  std::string path_;
  int fd_ = -1;
  std::byte* base_ = nullptr;
  std::size_t size_ = 0;
};

// Creates a shm object of exactly `bytes` (not a shmq segment), the way a foreign
// program or a creator that died early would leave one.
inline void write_shm_object(std::string_view name, std::span<const std::byte> bytes) {
  const std::string path = shm_path(name);
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC, 0600);
  REQUIRE_MESSAGE(fd >= 0, "cannot create " << path << ": " << std::strerror(errno));
  std::size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    REQUIRE(n > 0);
    done += static_cast<std::size_t>(n);
  }
  ::close(fd);
}

inline void resize_shm_object(std::string_view name, std::size_t size) {
  const std::string path = shm_path(name);
  int fd = ::open(path.c_str(), O_RDWR);
  REQUIRE(fd >= 0);
  CHECK(::ftruncate(fd, static_cast<off_t>(size)) == 0);
  ::close(fd);
}

inline bool contains(std::string_view text, std::string_view part) {
  return text.find(part) != std::string_view::npos;
}

}  // namespace shmq::test

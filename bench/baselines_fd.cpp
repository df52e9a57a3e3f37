// Baselines over file descriptors: a pair of pipes, and an AF_UNIX stream socketpair.
// Streams have no message boundaries, so a receiver reads until the whole message is
// there, and the sender closing its end is the end of the stream.
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <system_error>
#include <vector>

#include "baseline.hpp"
#include "suites.hpp"

namespace shmq_bench {

namespace {

class fd_transport {
 public:
  fd_transport() = default;
  ~fd_transport() {
    for (int fd : owned_) ::close(fd);
  }
  fd_transport(const fd_transport&) = delete;
  fd_transport& operator=(const fd_transport&) = delete;

  void become_parent() { take_ends(parent_in_, parent_out_); }
  void become_child() { take_ends(child_in_, child_out_); }
  void setup_done() noexcept {}

  bool send(const std::byte* data, std::size_t size) noexcept {
    while (size > 0) {
      const ssize_t n = ::write(out_, data, size);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return false;
      data += n;
      size -= static_cast<std::size_t>(n);
    }
    return true;
  }

  long receive(std::byte* data, std::size_t size) noexcept {
    std::size_t got = 0;
    while (got < size) {
      const ssize_t n = ::read(in_, data + got, size - got);
      if (n < 0 && errno == EINTR) continue;
      if (n == 0 && got == 0) return 0;  // closed between messages: the end
      if (n <= 0) return -1;
      got += static_cast<std::size_t>(n);
    }
    return static_cast<long>(got);
  }

  void end_stream() noexcept {
    close_owned(out_);
    if (in_ == out_) in_ = -1;  // a socket: the same descriptor
    out_ = -1;
  }

 protected:
  // The in and out ends of a side may be one descriptor (a socket).
  void adopt(int parent_in, int parent_out, int child_in, int child_out) {
    parent_in_ = parent_in;
    parent_out_ = parent_out;
    child_in_ = child_in;
    child_out_ = child_out;
    for (int fd : {parent_in, parent_out, child_in, child_out})
      if (std::find(owned_.begin(), owned_.end(), fd) == owned_.end()) owned_.push_back(fd);
  }

 private:
  // Each side closes the other's ends, so that a sender closing its own is seen as
  // the end of the stream, and a peer that dies is seen as an error, not a hang.
  void take_ends(int in, int out) {
    for (int fd : std::vector<int>(owned_))
      if (fd != in && fd != out) close_owned(fd);
    in_ = in;
    out_ = out;
  }

  void close_owned(int fd) noexcept {
    auto it = std::find(owned_.begin(), owned_.end(), fd);
    if (it == owned_.end()) return;
    ::close(fd);
    owned_.erase(it);
  }

  std::vector<int> owned_;
  int parent_in_ = -1, parent_out_ = -1, child_in_ = -1, child_out_ = -1;
  int in_ = -1, out_ = -1;
};

class pipe_transport : public fd_transport {
 public:
  explicit pipe_transport(std::size_t) {
    int to_child[2];
    int to_parent[2];
    if (::pipe2(to_child, O_CLOEXEC) != 0)
      throw std::system_error(errno, std::generic_category(), "pipe2");
    if (::pipe2(to_parent, O_CLOEXEC) != 0) {
      const int e = errno;
      ::close(to_child[0]);
      ::close(to_child[1]);
      throw std::system_error(e, std::generic_category(), "pipe2");
    }
    adopt(to_parent[0], to_child[1], to_child[0], to_parent[1]);
  }
};

class socket_transport : public fd_transport {
 public:
  explicit socket_transport(std::size_t) {
    int ends[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, ends) != 0)
      throw std::system_error(errno, std::generic_category(), "socketpair");
    adopt(ends[0], ends[0], ends[1], ends[1]);
  }
};

}  // namespace

void register_fd_baselines() {
  register_latency("baseline_pipe_latency", baseline_latency<pipe_transport>, pace::kernel);
  register_latency("baseline_uds_latency", baseline_latency<socket_transport>, pace::kernel);
  register_throughput("baseline_pipe_throughput", baseline_throughput<pipe_transport>, pace::kernel);
  register_throughput("baseline_uds_throughput", baseline_throughput<socket_transport>, pace::kernel);
}

}  // namespace shmq_bench

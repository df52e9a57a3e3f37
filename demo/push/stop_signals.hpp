// SIGINT and SIGTERM as an Asio event: blocked for the whole process (call first in main,
// before any thread starts) and read through a signalfd, so a signal that comes while
// the program is starting or already shutting down cannot kill it half-way; it ends
// the way a handled one does.
#pragma once

#include <sys/signalfd.h>

#include <boost/asio/posix/stream_descriptor.hpp>
#include <csignal>
#include <stdexcept>

namespace shmq::push {

class stop_signals {
 public:
  static void block() {
    const sigset_t set = signals();
    pthread_sigmask(SIG_BLOCK, &set, nullptr);
  }
  explicit stop_signals(boost::asio::any_io_executor ex) : fd_(ex) {
    const sigset_t set = signals();
    const int fd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
    if (fd < 0) throw std::runtime_error("signalfd failed");
    fd_.assign(fd);
  }
  // Calls on_stop() once SIGINT or SIGTERM has come (not after cancel()).
  template <class F>
  void async_wait(F on_stop) {
    fd_.async_wait(boost::asio::posix::stream_descriptor::wait_read,
                   [f = std::move(on_stop)](boost::system::error_code ec) mutable {
                     if (!ec) f();
                   });
  }
  void cancel() { fd_.cancel(); }

 private:
  static sigset_t signals() {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    return set;
  }
  boost::asio::posix::stream_descriptor fd_;
};

}  // namespace shmq::push

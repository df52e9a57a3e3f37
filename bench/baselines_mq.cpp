// Baselines over message queues: POSIX (mq_open, in the kernel) and
// boost::interprocess::message_queue (shared memory, a process-shared mutex and
// condition variables). Both keep message boundaries, so an empty message is the end
// of the stream. The Boost queue also serves as the work queue that shmq's MPMC one is
// compared with (baseline_boost_mq_throughput/<P>x<C>/<bytes>).
#include <fcntl.h>
#include <mqueue.h>
#include <sys/resource.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <optional>
#include <stdexcept>
#include <string>
#include <system_error>
#include <vector>

#include <boost/interprocess/ipc/message_queue.hpp>

#include "baseline.hpp"
#include "fan.hpp"
#include "suites.hpp"

namespace shmq_bench {

namespace {

namespace bip = boost::interprocess;

const char* const msgsize_max_path = "/proc/sys/fs/mqueue/msgsize_max";
const char* const msg_max_path = "/proc/sys/fs/mqueue/msg_max";

long read_limit(const char* path) {
  std::ifstream in(path);
  long value = -1;
  in >> value;
  return in ? value : -1;
}

bool write_limit(const char* path, long value) {
  std::ofstream out(path);
  out << value;
  out.flush();
  return static_cast<bool>(out);
}

// mq_msgsize may not exceed /proc/sys/fs/mqueue/msgsize_max (8192 by default). A
// larger message size raises it while the benchmark runs (as root) and restores it.
class msgsize_max_raise {
 public:
  explicit msgsize_max_raise(std::size_t bytes) {
    const long now = read_limit(msgsize_max_path);
    const auto wanted = static_cast<long>(bytes);
    if (now >= wanted) return;
    const bool raised = write_limit(msgsize_max_path, wanted);
    const int e = errno;
    if (!raised || read_limit(msgsize_max_path) < wanted)
      throw std::runtime_error("POSIX mq: " + std::to_string(bytes) + "-byte messages need " +
                               msgsize_max_path + " >= " + std::to_string(bytes) + " (it is " +
                               std::to_string(now) + ") and raising it failed (needs root): " +
                               std::strerror(e));
    saved_ = now;
  }
  ~msgsize_max_raise() {
    if (saved_ > 0) write_limit(msgsize_max_path, saved_);
  }
  msgsize_max_raise(const msgsize_max_raise&) = delete;
  msgsize_max_raise& operator=(const msgsize_max_raise&) = delete;

 private:
  long saved_ = -1;
};

// Queue bytes count against RLIMIT_MSGQUEUE (800 KiB by default), which two queues of
// ten 64 KiB messages exceed. This process is a benchmark: lift it as far as allowed
// (past the hard limit only with CAP_SYS_RESOURCE).
void lift_msgqueue_rlimit() noexcept {
  rlimit r{};
  if (::getrlimit(RLIMIT_MSGQUEUE, &r) != 0 || r.rlim_cur == RLIM_INFINITY) return;
  const rlimit unlimited{RLIM_INFINITY, RLIM_INFINITY};
  if (::setrlimit(RLIMIT_MSGQUEUE, &unlimited) == 0) return;
  r.rlim_cur = r.rlim_max;
  ::setrlimit(RLIMIT_MSGQUEUE, &r);
}

class posix_mq_transport {
 public:
  explicit posix_mq_transport(std::size_t bytes) : raise_(bytes) {
    lift_msgqueue_rlimit();
    to_child_ = open_queue(bytes);
    try {
      to_parent_ = open_queue(bytes);
    } catch (...) {
      ::mq_close(to_child_);
      throw;
    }
  }
  ~posix_mq_transport() {
    ::mq_close(to_child_);
    ::mq_close(to_parent_);
  }
  posix_mq_transport(const posix_mq_transport&) = delete;
  posix_mq_transport& operator=(const posix_mq_transport&) = delete;

  // Descriptors survive fork, so each side just picks its direction.
  void become_parent() noexcept { in_ = to_parent_, out_ = to_child_; }
  void become_child() noexcept { in_ = to_child_, out_ = to_parent_; }
  void setup_done() noexcept {}

  bool send(const std::byte* data, std::size_t size) noexcept {
    int rc;
    while ((rc = ::mq_send(out_, reinterpret_cast<const char*>(data), size, 0)) != 0 && errno == EINTR) {
    }
    return rc == 0;
  }
  long receive(std::byte* data, std::size_t size) noexcept {
    ssize_t n;
    while ((n = ::mq_receive(in_, reinterpret_cast<char*>(data), size, nullptr)) < 0 && errno == EINTR) {
    }
    return static_cast<long>(n);
  }
  void end_stream() noexcept {
    const char none = 0;
    ::mq_send(out_, &none, 0, 0);
  }

 private:
  // 10 messages deep (the default msg_max), or fewer where RLIMIT_MSGQUEUE cannot hold
  // two such queues (it counts each message's bytes plus kernel bookkeeping).
  static long queue_depth(std::size_t bytes) {
    long depth = std::clamp<long>(read_limit(msg_max_path), 1, 10);
    rlimit r{};
    if (::getrlimit(RLIMIT_MSGQUEUE, &r) == 0 && r.rlim_cur != RLIM_INFINITY) {
      const auto fit = static_cast<long>(r.rlim_cur / 2 / (bytes + 256));
      depth = std::clamp<long>(fit, 1, depth);
    }
    return depth;
  }

  static mqd_t open_queue(std::size_t bytes) {
    mq_attr attr{};
    attr.mq_maxmsg = queue_depth(bytes);
    attr.mq_msgsize = static_cast<long>(bytes);
    std::string name = "/";  // (not "/" + ...: g++ 12 warns falsely, -Wrestrict)
    name += unique_name("mq");
    const mqd_t q = ::mq_open(name.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600, &attr);
    if (q == static_cast<mqd_t>(-1)) {
      const int e = errno;
      throw std::system_error(e, std::generic_category(),
                              e == EMFILE ? "mq_open (RLIMIT_MSGQUEUE too low)" : "mq_open");
    }
    ::mq_unlink(name.c_str());  // the descriptors are all either side needs
    return q;
  }

  msgsize_max_raise raise_;
  mqd_t to_child_ = -1, to_parent_ = -1;
  mqd_t in_ = -1, out_ = -1;
};

class boost_mq_transport {
 public:
  explicit boost_mq_transport(std::size_t bytes)
      : to_child_name_(unique_name("bmq")), to_parent_name_(unique_name("bmq")) {
    // As many messages as a 1 MiB shmq ring holds, within reason.
    const std::size_t depth = std::clamp<std::size_t>((1u << 20) / bytes, 16, 4096);
    to_child_.emplace(bip::create_only, to_child_name_.c_str(), depth, bytes);
    to_parent_.emplace(bip::create_only, to_parent_name_.c_str(), depth, bytes);
  }
  ~boost_mq_transport() { setup_done(); }
  boost_mq_transport(const boost_mq_transport&) = delete;
  boost_mq_transport& operator=(const boost_mq_transport&) = delete;

  void become_parent() noexcept { in_ = &*to_parent_, out_ = &*to_child_; }
  // The child opens the queues by name, as an unrelated process would.
  void become_child() {
    to_child_.emplace(bip::open_only, to_child_name_.c_str());
    to_parent_.emplace(bip::open_only, to_parent_name_.c_str());
    in_ = &*to_child_;
    out_ = &*to_parent_;
  }
  void setup_done() noexcept {
    bip::message_queue::remove(to_child_name_.c_str());
    bip::message_queue::remove(to_parent_name_.c_str());
  }

  bool send(const std::byte* data, std::size_t size) noexcept {
    try {
      out_->send(data, size, 0);
      return true;
    } catch (const bip::interprocess_exception&) {
      return false;
    }
  }
  long receive(std::byte* data, std::size_t size) noexcept {
    try {
      bip::message_queue::size_type received = 0;
      unsigned priority = 0;
      in_->receive(data, size, received, priority);
      return static_cast<long>(received);
    } catch (const bip::interprocess_exception&) {
      return -1;
    }
  }
  void end_stream() noexcept {
    const char none = 0;
    send(reinterpret_cast<const std::byte*>(&none), 0);
  }

 private:
  std::string to_child_name_, to_parent_name_;
  std::optional<bip::message_queue> to_child_, to_parent_;
  bip::message_queue* in_ = nullptr;
  bip::message_queue* out_ = nullptr;
};

// One Boost queue shared by P producer and C consumer processes, as many messages deep
// as shmq's MPMC ring has slots. Any process may send or receive on it (its mutex makes
// that safe), so it is a work queue as it is; one empty message per consumer ends the
// stream.
void baseline_boost_mq_fan(benchmark::State& state, const fan_shape& shape) {
  const auto bytes = static_cast<std::size_t>(state.range(0));
  struct queue_name {
    std::string name = unique_name("bmq");
    ~queue_name() { remove(); }
    void remove() const noexcept { bip::message_queue::remove(name.c_str()); }
  } const q;
  bip::message_queue queue(bip::create_only, q.name.c_str(), ring_slots(bytes), bytes);
  const payload message(bytes);

  time_fan(state, shape,
           {.producer =
                [&](const control_link& link) {
                  bip::message_queue out(bip::open_only, q.name.c_str());
                  std::vector<std::byte> buffer(bytes);
                  return produce_share(link, [&](std::uint64_t seq) {
                    message.write(buffer.data(), seq);
                    out.send(buffer.data(), bytes, 0);  // throws on failure: the peer fails
                    return true;
                  });
                },
            .consumer =
                [&](const control_link& link) {
                  bip::message_queue in(bip::open_only, q.name.c_str());
                  std::vector<std::byte> buffer(bytes);
                  return consume_stream(link, [&](stream_report& r) {
                    for (;;) {
                      bip::message_queue::size_type received = 0;
                      unsigned priority = 0;
                      in.receive(buffer.data(), bytes, received, priority);
                      if (received == 0) return true;
                      if (received != bytes) return false;
                      r.fold += fold(buffer.data(), bytes);
                      ++r.messages;
                    }
                  });
                },
            .setup_done = [&] { q.remove(); },
            .end_stream =
                [&] {
                  const char none = 0;
                  for (int i = 0; i < shape.consumers; ++i) queue.send(&none, 0, 0);
                },
            .kind = delivery::once});
}

}  // namespace

void register_queue_baselines() {
  register_latency("baseline_posix_mq_latency", baseline_latency<posix_mq_transport>, pace::kernel);
  register_latency("baseline_boost_mq_latency", baseline_latency<boost_mq_transport>, pace::kernel);
  register_throughput("baseline_posix_mq_throughput", baseline_throughput<posix_mq_transport>,
                      pace::kernel);
}

sized_family boost_mq_stream() {
  return throughput_family("baseline_boost_mq_throughput", baseline_throughput<boost_mq_transport>,
                           pace::kernel);
}

sized_family boost_mq_work_queue(const fan_shape& shape) {
  return fan_family("baseline_boost_mq_throughput", baseline_boost_mq_fan, shape, pace::kernel);
}

}  // namespace shmq_bench

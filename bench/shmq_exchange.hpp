// What the shmq benchmarks of every channel kind do the same way: name their channels,
// wait on them (busy polling or the library's blocking calls), drain a stream in place,
// and ping-pong. Written once over the endpoint types, which share one interface
// (include/shmq/endpoint.hpp), so SPSC and pub/sub latencies are measured alike.
#pragma once

#include <cerrno>
#include <cstring>
#include <initializer_list>
#include <optional>
#include <string>
#include <sys/epoll.h>
#include <unistd.h>
#include <vector>

#include "measure.hpp"
#include "shmq/loan.hpp"
#include "shmq/segment.hpp"
#include "shmq/status.hpp"
#include "wait_word.hpp"  // cpu_relax: the same pause as the library's spin phase

namespace shmq_bench {

// Segment names of one run. Removed as soon as every side is attached (the mappings
// outlive the names), and again at scope exit in case setup failed half-way.
class channel_names {
 public:
  explicit channel_names(std::initializer_list<const char*> roles) {
    for (const char* role : roles) names_.push_back(unique_name(role));
  }
  ~channel_names() { remove(); }
  channel_names(const channel_names&) = delete;
  channel_names& operator=(const channel_names&) = delete;

  const std::string& operator[](std::size_t i) const { return names_[i]; }
  void remove() noexcept {
    for (const auto& name : names_) {
      try {
        shmq::remove_segment(name);
      } catch (...) {  // only a bad name throws, and ours are valid
      }
    }
  }

 private:
  std::vector<std::string> names_;
};

// busy: poll try_ calls; block: the library's blocking calls (spin, then the futex);
// fd: an event loop's way, try_ then arm() then epoll_wait on the readiness descriptor,
// with no spinning at all (shmq/readiness.hpp).
enum class waiting { busy, block, fd };

// An epoll instance watching one endpoint's readiness descriptor, edge-triggered as
// Boost.Asio registers descriptors.
class epoll_waiter {
 public:
  template <class Endpoint>
  explicit epoll_waiter(Endpoint& e) : epoll_(::epoll_create1(EPOLL_CLOEXEC)) {
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLET;
    ::epoll_ctl(epoll_, EPOLL_CTL_ADD, e.native_handle(), &ev);
  }
  ~epoll_waiter() { ::close(epoll_); }
  epoll_waiter(const epoll_waiter&) = delete;
  epoll_waiter& operator=(const epoll_waiter&) = delete;
  void wait() const noexcept {
    epoll_event ev{};
    while (::epoll_wait(epoll_, &ev, 1, -1) < 0 && errno == EINTR) {
    }
  }

 private:
  int epoll_;
};

// The waiter an endpoint needs under W: one for waiting::fd, none otherwise.
template <waiting W, class Endpoint>
std::optional<epoll_waiter> waiter_for(Endpoint& e) {
  if constexpr (W == waiting::fd) return std::optional<epoll_waiter>(std::in_place, e);
  return std::nullopt;
}

// Busy polls pause between tries, as any spin-wait should and as read() does in its
// spin phase. Without it the poller keeps pulling back the line the producer is still
// writing (the commit word shares it with the payload); that cost ~15 ns one-way at
// 64 bytes when measured (SPSC).
template <waiting W, class Consumer>
shmq::view take(Consumer& in, const std::optional<epoll_waiter>& waiter = std::nullopt) {
  if constexpr (W == waiting::block) {
    return in.read();
  } else if constexpr (W == waiting::fd) {
    for (;;) {
      shmq::view v = in.try_read();
      if (v.status() != shmq::status::empty) return v;
      if (in.arm() == shmq::arm_result::armed) waiter->wait();
    }
  } else {
    for (;;) {
      shmq::view v = in.try_read();
      if (v.status() != shmq::status::empty) return v;
      shmq::detail::cpu_relax();
    }
  }
}

template <waiting W, class Producer>
shmq::loan borrow(Producer& out, std::size_t size, const std::optional<epoll_waiter>& waiter = std::nullopt) {
  if constexpr (W == waiting::block) {
    return out.loan(size);
  } else if constexpr (W == waiting::fd) {
    for (;;) {
      shmq::loan l = out.try_loan(size);
      if (l.status() != shmq::status::full) return l;
      if (out.arm(size) == shmq::arm_result::armed) waiter->wait();
    }
  } else {
    for (;;) {
      shmq::loan l = out.try_loan(size);
      if (l.status() != shmq::status::full) return l;
      shmq::detail::cpu_relax();
    }
  }
}

// A stream consumer's loop: read() in place until status::closed, folding every byte.
// False on any other failure.
// A producer step for the streaming benchmarks: message `seq` of `bytes`, written in
// place through a loan.
template <class Producer>
auto send_in_place(Producer& out, std::size_t bytes, const payload& message) {
  return [&out, bytes, &message](std::uint64_t seq) {
    shmq::loan l = out.loan(bytes);
    if (!l) return false;
    message.write(l.data().data(), seq);
    l.commit();
    return true;
  };
}

template <class Consumer>
bool drain(Consumer& in, stream_report& report) {
  for (;;) {
    shmq::view v = in.read();
    if (v.status() == shmq::status::closed) return true;
    if (!v) return false;
    report.fold += fold(v.data().data(), v.size());
    ++report.messages;
  }
}

// Ping-pong over two channels of `Kind`, one each way; messages written in place
// (loan, commit) and read in place (view). Kind provides
//   producer, consumer, options                       the endpoint and option types
//   static options make_options(std::size_t bytes)
//   static std::int64_t ring_lap(const options&, std::size_t bytes)
// where ring_lap is the number of messages in one lap of the ring. A process takes a
// page fault the first time it touches each page of a fresh segment (or, pre-faulted,
// a cache miss): warming up a whole lap measures the steady state instead.
template <class Kind, waiting W>
void shmq_ping_pong(benchmark::State& state) {
  const auto bytes = static_cast<std::size_t>(state.range(0));
  const auto options = Kind::make_options(bytes);
  channel_names names{"ping", "pong"};
  // The parent attaches first, so the child only ever opens: no race to create. For
  // pub/sub this also subscribes the parent to pong before the child can publish.
  typename Kind::producer ping(names[0], options);
  typename Kind::consumer pong(names[1], options);
  const payload message(bytes);
  const std::int64_t warmup = Kind::ring_lap(options, bytes);
  const std::int64_t rounds = round_trips(state, warmup);

  peer child(state, [&](const control_link& link) {
    typename Kind::consumer in(names[0], options);
    typename Kind::producer out(names[1], options);
    const auto in_waiter = waiter_for<W>(in);
    const auto out_waiter = waiter_for<W>(out);
    if (!signal_ready(link)) return 1;
    for (std::int64_t i = 0; i < rounds; ++i) {
      shmq::view request = take<W>(in, in_waiter);
      if (!request) return 2;
      shmq::loan reply = borrow<W>(out, request.size(), out_waiter);
      if (!reply) return 2;
      std::memcpy(reply.data().data(), request.data().data(), request.size());
      // Commit before the view goes: the reply is on the critical path, handing the
      // request's space back is not.
      reply.commit();
    }
    return 0;
  });
  if (!child.wait_ready()) return;
  names.remove();

  const auto ping_waiter = waiter_for<W>(ping);
  const auto pong_waiter = waiter_for<W>(pong);
  std::uint64_t seq = 0;
  time_round_trips(state, [&] {
    {
      shmq::loan request = borrow<W>(ping, bytes, ping_waiter);
      if (!request) return false;
      message.write(request.data().data(), ++seq);
      request.commit();
    }
    shmq::view reply = take<W>(pong, pong_waiter);
    if (!reply || reply.size() != bytes || sequence_of(reply.data().data()) != seq) return false;
    benchmark::DoNotOptimize(fold(reply.data().data(), reply.size()));
    return true;
  }, warmup);
  child.finish();
}

// A one-way stream of state.range(0)-byte messages from this process to a forked
// consumer over one channel of `options` (shmq_spsc_throughput, durable_spsc_throughput_*).
template <class Producer, class Consumer, class Options>
void time_one_way_stream(benchmark::State& state, const Options& options) {
  const auto bytes = static_cast<std::size_t>(state.range(0));
  channel_names names{"stream"};
  Producer out(names[0], options);
  const payload message(bytes);
  peer child(state, [&](const control_link& link) {
    Consumer in(names[0], options);
    if (!signal_ready(link)) return 1;
    stream_report report{};
    if (!drain(in, report)) return 2;
    return link.send(report) ? 0 : 1;
  });
  if (!child.wait_ready()) return;
  names.remove();
  time_stream(state, child, message, send_in_place(out, bytes, message), [&] { out.close(); });
  child.finish();
}

}  // namespace shmq_bench

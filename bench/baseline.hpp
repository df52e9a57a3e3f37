// The shape shared by the kernel-mediated baselines (pipe, socket, POSIX and Boost
// message queues): a Transport moves whole messages between the parent and its peer,
// and these templates run the same ping-pong and the same stream over any of them.
//
// A Transport is built in the parent before fork; then each side takes its ends.
//   explicit Transport(std::size_t bytes)        create; throws on failure
//   void become_parent() / void become_child()   right after fork, on that side
//   void setup_done()                            both sides ready: names may go
//   bool send(const std::byte*, std::size_t)     blocking
//   long receive(std::byte*, std::size_t size)   one message of `size` bytes, blocking:
//                                                its size, 0 at the end of the stream,
//                                                -1 on error
//   void end_stream()                            tells the receiver nothing more comes
#pragma once

#include <cstddef>
#include <vector>

#include "measure.hpp"

namespace shmq_bench {

template <class Transport>
void baseline_latency(benchmark::State& state) {
  const auto bytes = static_cast<std::size_t>(state.range(0));
  const auto size = static_cast<long>(bytes);
  Transport transport(bytes);
  const std::int64_t rounds = round_trips(state);

  peer child(state, [&](const control_link& link) {
    transport.become_child();
    if (!signal_ready(link)) return 1;
    std::vector<std::byte> buffer(bytes);
    for (std::int64_t i = 0; i < rounds; ++i) {
      if (transport.receive(buffer.data(), bytes) != size) return 2;
      if (!transport.send(buffer.data(), bytes)) return 2;
    }
    return 0;
  });
  transport.become_parent();
  if (!child.wait_ready()) return;
  transport.setup_done();

  const payload message(bytes);
  std::vector<std::byte> request(bytes);
  std::vector<std::byte> reply(bytes);
  std::uint64_t seq = 0;
  time_round_trips(state, [&] {
    message.write(request.data(), ++seq);
    if (!transport.send(request.data(), bytes)) return false;
    if (transport.receive(reply.data(), bytes) != size || sequence_of(reply.data()) != seq)
      return false;
    benchmark::DoNotOptimize(fold(reply.data(), bytes));
    return true;
  });
  child.finish();
}

template <class Transport>
void baseline_throughput(benchmark::State& state) {
  const auto bytes = static_cast<std::size_t>(state.range(0));
  const auto size = static_cast<long>(bytes);
  Transport transport(bytes);

  peer child(state, [&](const control_link& link) {
    transport.become_child();
    if (!signal_ready(link)) return 1;
    std::vector<std::byte> buffer(bytes);
    stream_report report{};
    for (;;) {
      const long n = transport.receive(buffer.data(), bytes);
      if (n == 0) break;
      if (n != size) return 2;
      report.fold += fold(buffer.data(), bytes);
      ++report.messages;
    }
    return link.send(report) ? 0 : 1;
  });
  transport.become_parent();
  if (!child.wait_ready()) return;
  transport.setup_done();

  const payload message(bytes);
  std::vector<std::byte> buffer(bytes);
  time_stream(
      state, child, message,
      [&](std::uint64_t seq) {
        message.write(buffer.data(), seq);
        return transport.send(buffer.data(), bytes);
      },
      [&] { transport.end_stream(); });
  child.finish();
}

}  // namespace shmq_bench

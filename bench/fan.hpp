// Many-process streams: P producer processes and C consumer processes on one channel,
// either a work queue (each message reaches one consumer) or publish/subscribe (each
// message reaches every subscriber). Shared by shmq and the baselines, so that their
// numbers mean the same thing.
//
// Producers run on the placement's parent CPU and consumers on its child CPU, so both
// sides keep the two CPUs the two-process benchmarks use. With more than one process on
// a CPU they time-share it: such runs measure the scheduler as much as the channel, and
// their label says so. The parent only coordinates, asleep in a pipe read meanwhile.
#pragma once

#include <cstdint>
#include <functional>
#include <utility>

#include "measure.hpp"

namespace shmq_bench {

struct fan_shape {
  int producers;
  int consumers;
  const char* name;  // the part of the benchmark name between family and size
};

inline constexpr fan_shape work_queue_shapes[] = {{1, 1, "1x1"}, {2, 2, "2x2"}, {4, 4, "4x4"}};
inline constexpr fan_shape fan_out_shapes[] = {{1, 1, "1"}, {1, 2, "2"}, {1, 4, "4"}};

// The family name/<shape>/<bytes> (see measure.hpp), one iteration per message.
using fan_fn = void (*)(benchmark::State&, const fan_shape&);
sized_family fan_family(const char* name, fan_fn fn, const fan_shape& shape, pace p);

// A producer's part of the stream: sequence numbers first .. first + count - 1. The
// parts of all producers are 0 .. iterations - 1, so payload::expected_fold holds.
struct fan_share {
  std::uint64_t first;
  std::uint64_t count;
};

// Producer process, after its setup: ready, wait for its share (the start signal),
// send(seq) each message (false: failed), then end() and report back.
template <class Send, class End>
int produce_share(const control_link& link, Send&& send, End&& end) {
  if (!signal_ready(link)) return 1;
  fan_share share{};
  if (!link.receive(share)) return 1;
  for (std::uint64_t i = 0; i < share.count; ++i)
    if (!send(share.first + i)) return 2;
  end();
  return link.send(share.count) ? 0 : 1;
}

template <class Send>
int produce_share(const control_link& link, Send&& send) {
  return produce_share(link, std::forward<Send>(send), [] {});
}

// Consumer process, after its setup: ready, drain(report) up to the end of the stream
// (false: failed), report back.
template <class Drain>
int consume_stream(const control_link& link, Drain&& drain) {
  if (!signal_ready(link)) return 1;
  stream_report report{};
  if (!drain(report)) return 2;
  return link.send(report) ? 0 : 1;
}

enum class delivery {
  once,     // work queue: the consumers' reports add up to the stream
  to_each,  // publish/subscribe: every consumer's report is the whole stream
};

struct fan_transfer {
  peer::body_fn producer;            // in each producer process: setup, then produce_share
  peer::body_fn consumer;            // in each consumer process: setup, then consume_stream
  std::function<void()> setup_done;  // all attached: names may go
  std::function<void()> end_stream;  // all producers done: tell the consumers (may do nothing)
  delivery kind;
};

// Forks the processes, and once all are ready times the whole transfer of
// state.max_iterations messages: from sending the shares to the last consumer's report.
// Checks the reports and sets msgs_per_s and bytes_per_s (deliveries: messages times
// consumers for to_each), and publish_per_s for to_each.
void time_fan(benchmark::State& state, const fan_shape& shape, const fan_transfer& transfer);

}  // namespace shmq_bench

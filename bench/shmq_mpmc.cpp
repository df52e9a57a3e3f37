// shmq MPMC work queue between processes, through the public API only.
//   shmq_mpmc_throughput/<P>x<C>/<bytes>: P producer processes write their share of one
//       stream in place (loan, commit); C consumer processes read() in place and fold
//       every byte. The parent ends the stream once every producer is done.
#include "fan.hpp"
#include "shmq/mpmc.hpp"
#include "shmq_exchange.hpp"
#include "suites.hpp"

namespace shmq_bench {

namespace {

void shmq_mpmc_throughput(benchmark::State& state, const fan_shape& shape) {
  const auto bytes = static_cast<std::size_t>(state.range(0));
  shmq::mpmc_options options;
  options.slots = ring_slots(bytes);
  options.max_message_size = bytes;
  options.max_producers = static_cast<std::uint32_t>(shape.producers) + 1;  // + the closer
  options.max_consumers = static_cast<std::uint32_t>(shape.consumers);
  channel_names names{"mpmc"};
  // Creates the channel before any process is forked (no race to create), and closes
  // it once all producers are done: with several producers none of them can tell it
  // is the last.
  shmq::mpmc_producer closer(names[0], options);
  const payload message(bytes);

  time_fan(state, shape,
           {.producer =
                [&](const control_link& link) {
                  shmq::mpmc_producer out(names[0], options);
                  return produce_share(link, send_in_place(out, bytes, message));
                },
            .consumer =
                [&](const control_link& link) {
                  shmq::mpmc_consumer in(names[0], options);
                  return consume_stream(link, [&](stream_report& r) { return drain(in, r); });
                },
            .setup_done = [&] { names.remove(); },
            .end_stream = [&] { closer.close(); },
            .kind = delivery::once});
}

}  // namespace

sized_family shmq_mpmc_stream(const fan_shape& shape) {
  return fan_family("shmq_mpmc_throughput", shmq_mpmc_throughput, shape, pace::cache);
}

}  // namespace shmq_bench

// shmq publish/subscribe between processes, through the public API only; the channels
// use overflow_policy::block, so nothing is lost and every count must match.
//   shmq_pubsub_latency/1/<bytes>: ping-pong over two pub/sub channels, one each way,
//       each with one publisher and one private subscriber; busy-polls try_loan and
//       try_read like shmq_spsc_latency_busy. Pub/sub both ways, so that the one-way
//       figure is pub/sub's alone, not half pub/sub and half SPSC.
//   shmq_pubsub_throughput/<S>/<bytes>: one publisher process streams (loan, commit) to
//       S subscriber processes, each a private subscription reading every message in
//       place and folding every byte.
#include "fan.hpp"
#include "shmq/pubsub.hpp"
#include "shmq_exchange.hpp"
#include "suites.hpp"

namespace shmq_bench {

namespace {

shmq::pubsub_options bench_options(std::size_t bytes, std::uint32_t subscribers) {
  shmq::pubsub_options o;
  o.slots = ring_slots(bytes);
  o.max_message_size = bytes;
  o.policy = shmq::overflow_policy::block;
  o.max_publishers = 2;  // the publisher, and the parent that creates the channel
  o.max_subscribers = subscribers;
  o.max_groups = subscribers;
  return o;
}

// The pub/sub channel for shmq_ping_pong (shmq_exchange.hpp). Each endpoint is built
// with the default subscription: private, from the newest message on.
struct pubsub_kind {
  using producer = shmq::publisher;
  using consumer = shmq::subscriber;
  using options = shmq::pubsub_options;
  static options make_options(std::size_t bytes) { return bench_options(bytes, 1); }
  static std::int64_t ring_lap(const options& o, std::size_t) {
    return static_cast<std::int64_t>(o.slots) + 1;
  }
};

void shmq_pubsub_throughput(benchmark::State& state, const fan_shape& shape) {
  const auto bytes = static_cast<std::size_t>(state.range(0));
  const auto options = bench_options(bytes, static_cast<std::uint32_t>(shape.consumers));
  channel_names names{"pubsub"};
  // Creates the channel before any process is forked (no race to create); it never
  // publishes, and a publisher does not hold anyone back.
  shmq::publisher creator(names[0], options);
  const payload message(bytes);

  time_fan(state, shape,
           {.producer =
                [&](const control_link& link) {
                  shmq::publisher out(names[0], options);
                  return produce_share(
                      link,
                      send_in_place(out, bytes, message),
                      [&] { out.close(); });
                },
            // Subscribed before signalling ready, so before the publisher starts.
            .consumer =
                [&](const control_link& link) {
                  shmq::subscriber in(names[0], options);
                  return consume_stream(link, [&](stream_report& r) { return drain(in, r); });
                },
            .setup_done = [&] { names.remove(); },
            .end_stream = [] {},  // the publisher closes the channel itself
            .kind = delivery::to_each});
}

}  // namespace

sized_family shmq_pubsub_latency() {
  return latency_family("shmq_pubsub_latency/1", shmq_ping_pong<pubsub_kind, waiting::busy>,
                        pace::cache);
}

sized_family shmq_pubsub_stream(const fan_shape& shape) {
  return fan_family("shmq_pubsub_throughput", shmq_pubsub_throughput, shape, pace::cache);
}

}  // namespace shmq_bench

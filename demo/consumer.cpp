// shmq-consumer: receives stamped messages, checks checksums and order, prints one
// summary line. Exits 0 only if everything arrived intact and in order.
//
// A consumer that gets the whole stream (spsc, a private pubsub subscription) expects
// each of --producers producers' messages in order, up to sequence --count - 1. It may
// start past 0: a consumer that attaches where an earlier one stopped gets the stream
// from the oldest unread message, and says so. One that shares the stream (queue, a
// pubsub --group member) gets some of the messages: it checks each producer's messages
// only grow, and ends when the stream is closed.
//
// If every producer dies before closing the stream, it says so and exits 1 (within
// endpoint_options::liveness_interval, 100 ms, of running dry).
#include <chrono>
#include <cstdio>
#include <vector>

#include "options.hpp"
#include "shmq/mpmc.hpp"
#include "shmq/pubsub.hpp"
#include "shmq/segment.hpp"
#include "shmq/spsc.hpp"
#include "stamped_message.hpp"

namespace {

template <class Consumer>
int receive(Consumer& consumer, const shmq::demo::options& o, bool shares_stream) {
  std::vector<std::uint64_t> next(o.producers, 0);
  std::vector<bool> started(o.producers, false);
  std::uint64_t received = 0, bytes = 0, bad_seq = 0, finished = 0;
  const char* problem = nullptr;
  std::chrono::steady_clock::time_point start{};
  while (shares_stream || finished < o.producers) {
    shmq::view v = consumer.read();
    if (v.status() == shmq::status::closed) {
      if (!shares_stream) problem = "the producer closed the stream early";
      break;
    }
    if (v.status() == shmq::status::producer_gone) {
      problem = "the producer died before sending everything";
      bad_seq = received;
      break;
    }
    if (!v) {
      std::fprintf(stderr, "shmq-consumer: read failed: %s\n", shmq::to_string(v.status()));
      return 1;
    }
    if (received == 0) start = std::chrono::steady_clock::now();
    std::uint64_t stamp = 0;
    const auto verdict = shmq::stamped::check(v.data(), stamp);
    const std::uint64_t id = stamp >> shmq::demo::id_shift;
    const std::uint64_t seq = stamp & ((std::uint64_t{1} << shmq::demo::id_shift) - 1);
    if (verdict != shmq::stamped::verdict::ok) {
      problem = verdict == shmq::stamped::verdict::too_short ? "a message too short to be stamped"
                                                             : "a checksum mismatch (torn or corrupt message)";
      bad_seq = received;
      break;
    }
    if (id >= o.producers) {
      problem = "a message from an unexpected producer id (see --producers)";
      bad_seq = stamp;
      break;
    }
    if (!started[id]) {
      started[id] = true;
      if (seq != 0 && !shares_stream) {
        std::printf("shmq-consumer: producer %llu's stream starts at sequence %llu here (an earlier "
                    "consumer took the ones before)\n",
                    static_cast<unsigned long long>(id), static_cast<unsigned long long>(seq));
        next[id] = seq;
      }
    }
    if (shares_stream ? seq < next[id] : seq != next[id]) {
      problem = seq < next[id] ? "a duplicate or reordered message" : "lost messages";
      bad_seq = seq;
      break;
    }
    next[id] = seq + 1;
    if (!shares_stream && next[id] == o.count) ++finished;
    bytes += v.size();
    ++received;
  }
  if (problem != nullptr) {
    std::fprintf(stderr, "shmq-consumer: FAILED after %llu messages: %s (sequence %llu)\n",
                 static_cast<unsigned long long>(received), problem, static_cast<unsigned long long>(bad_seq));
    return 1;
  }
  const double seconds =
      received == 0 ? 0.0 : std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("shmq-consumer%s%s: %llu messages, %llu bytes, %.3f s, %.0f messages/s, all intact and in order%s\n",
              o.group.empty() ? "" : " in group ", o.group.c_str(), static_cast<unsigned long long>(received),
              static_cast<unsigned long long>(bytes), seconds,
              seconds > 0 ? static_cast<double>(received) / seconds : 0.0,
              shares_stream ? " (its share of the stream)" : "");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const auto o = shmq::demo::parse(argc, argv, "shmq-consumer");
  try {
    switch (o.pattern) {
      case shmq::demo::pattern::spsc: {
        int rc = 0;
        {
          shmq::channel_options co;
          co.when_producer_gone = shmq::when_producer_gone::report;
          shmq::spsc_consumer consumer(o.channel, co);
          rc = receive(consumer, o, false);
        }
        shmq::remove_segment(o.channel);  // the one consumer is done with it
        return rc;
      }
      case shmq::demo::pattern::queue: {
        shmq::mpmc_options mo;
        mo.slots = shmq::demo::slotted_slots;
        mo.max_message_size = shmq::demo::slotted_max_message;
        mo.when_producer_gone = shmq::when_producer_gone::report;
        shmq::mpmc_consumer consumer(o.channel, mo);
        return receive(consumer, o, true);
      }
      case shmq::demo::pattern::pubsub: {
        shmq::pubsub_options po;
        po.slots = shmq::demo::slotted_slots;
        po.max_message_size = shmq::demo::slotted_max_message;
        po.when_producer_gone = shmq::when_producer_gone::report;
        shmq::subscription how;
        how.group = o.group;
        shmq::subscriber consumer(o.channel, po, how);
        return receive(consumer, o, !o.group.empty());
      }
    }
  } catch (const shmq::error& e) {
    std::fprintf(stderr, "shmq-consumer: %s\n", e.what());
  }
  return 1;
}

// The two directions of shmq-bridge and what they share: configuration and counters.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "link.hpp"

namespace shmq_bridge {

struct config {
  link_options broker;
  std::string channel;      // the shmq channel
  bool pubsub = false;      // a pub/sub channel (out: a member of `group`; in: a publisher), else MPMC
  std::string group = "shmq-bridge";  // out, pub/sub: the consumer group
  std::string exchange;     // out: publish here ("" is the default exchange)
  std::string routing_key;  // out: with this key
  std::string queue;        // in: consume this queue; out: declare and bind it if set
  std::string source_id;    // first part of every message id
  unsigned confirm_window = 64;  // out: messages published and not yet confirmed
  unsigned prefetch = 256;       // in: basic.qos prefetch count
  unsigned ack_every = 64;       // in: multiple-ack after this many (or when idle)
  bool envelope = false;         // in: write shmq/bridge/envelope.hpp's envelope around each body
  std::size_t slots = 1024, max_message_size = 4096;  // if the bridge creates the channel
  bool stats = false;
  std::string stats_file;  // JSON, rewritten every second
};

struct counters {
  std::atomic<std::uint64_t> forwarded{0}, confirmed{0}, redelivered{0}, in_flight{0}, reconnects{0},
      republished{0};
};

// The bridge's endpoints: the sizes it gives a channel it creates, and no spinning before
// sleeping (its waits are on the network; a spinning bridge takes the CPU the broker needs).
template <class Options>
Options channel_options(const config& c) {
  Options o;
  o.slots = c.slots;
  o.max_message_size = c.max_message_size;
  o.spin = std::chrono::nanoseconds(0);
  return o;
}

// A header on a message bridge out publishes again (or took again from a dead consumer).
inline constexpr std::string_view redelivered_header = "x-shmq-redelivered";

extern volatile bool stop_requested;

int run_out(const config& c, counters& n);
int run_in(const config& c, counters& n);
void report_stats(const config& c, const counters& n, const char* direction, bool final);

}  // namespace shmq_bridge

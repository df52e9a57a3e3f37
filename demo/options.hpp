// Command-line options shared by the two demo programs.
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

namespace shmq::demo {

enum class pattern { spsc, queue, pubsub };

struct options {
  std::string channel = "demo";
  std::uint64_t count = 1'000'000;  // messages per producer
  std::uint64_t size = 64;
  demo::pattern pattern = pattern::spsc;
  std::uint32_t id = 0;           // producer: its number, carried in every message
  std::uint32_t producers = 1;    // consumer: how many producers to expect
  std::uint32_t subscribers = 0;  // producer, pubsub: wait until this many subscribed
  std::string group;              // consumer, pubsub: join this consumer group
  bool close = true;              // producer: close the stream when done
};

inline const char* usage_text =
    "usage: %s [--channel NAME] [--count N] [--size BYTES] [--pattern spsc|queue|pubsub]\n"
    "          [--id K] [--producers P] [--subscribers S] [--group NAME] [--no-close]\n"
    "  --count N        messages each producer sends (0: just close the stream)\n"
    "  --size BYTES     16 (sequence number and checksum) to 65536\n"
    "  --pattern        spsc: one producer, one consumer (default)\n"
    "                   queue: MPMC work queue, each message to one consumer\n"
    "                   pubsub: every subscriber gets every message\n"
    "  --id K           producer: its number (0-1023), stamped into its messages\n"
    "  --producers P    consumer: producers to expect, ids 0..P-1\n"
    "  --subscribers S  pubsub producer: wait for S subscribers before sending\n"
    "  --group NAME     pubsub consumer: share the stream with the group's other members\n"
    "  --no-close       producer: leave the stream open (another producer closes it)\n";

inline options parse(int argc, char** argv, const char* program) {
  options o;
  auto usage = [&](const char* why) {
    std::fprintf(stderr, "%s: %s\n", program, why);
    std::fprintf(stderr, usage_text, program);
    std::exit(2);
  };
  auto number = [&](const char* text) {
    char* end = nullptr;
    const unsigned long long n = std::strtoull(text, &end, 10);
    if (*text == '\0' || *end != '\0') usage("not a number");
    return static_cast<std::uint64_t>(n);
  };
  for (int i = 1; i < argc; ++i) {
    const std::string_view a = argv[i];
    if (a == "--help" || a == "-h") usage("send and check stamped messages over a shmq channel");
    if (a == "--no-close") {
      o.close = false;
      continue;
    }
    if (i + 1 >= argc) usage("missing value");
    const char* v = argv[++i];
    if (a == "--channel") o.channel = v;
    else if (a == "--count") o.count = number(v);
    else if (a == "--size") o.size = number(v);
    else if (a == "--id") o.id = static_cast<std::uint32_t>(number(v));
    else if (a == "--producers") o.producers = static_cast<std::uint32_t>(number(v));
    else if (a == "--subscribers") o.subscribers = static_cast<std::uint32_t>(number(v));
    else if (a == "--group") o.group = v;
    else if (a == "--pattern") {
      const std::string_view p = v;
      if (p == "spsc") o.pattern = pattern::spsc;
      else if (p == "queue") o.pattern = pattern::queue;
      else if (p == "pubsub") o.pattern = pattern::pubsub;
      else usage("unknown pattern");
    } else usage("unknown option");
  }
  if (o.size < 16 || o.size > 65536) usage("--size must be from 16 to 65536");
  if (o.id > 1023 || o.producers < 1 || o.producers > 1024) usage("--id or --producers out of range");
  if (!o.group.empty() && o.pattern != pattern::pubsub) usage("--group needs --pattern pubsub");
  return o;
}

// The same channel options on both sides, so either may create the channel.
inline constexpr std::size_t slotted_max_message = 65536;
inline constexpr std::size_t slotted_slots = 256;

// Sequence numbers carry the producer id in their top bits.
inline constexpr int id_shift = 40;

}  // namespace shmq::demo

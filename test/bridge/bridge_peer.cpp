// The two ends of the simulated two-host pipeline in the bridge test.
//   bridge_peer produce KIND CHANNEL COUNT SIZE      stamped messages 0..COUNT-1 into CHANNEL
//   bridge_peer consume KIND CHANNEL COUNT SEEN_FILE [SLOTS]   reads until all COUNT distinct sequence
//     numbers are in SEEN_FILE (one line "seq flagged id" per message, appended before the
//     view is released, so a restarted consumer goes on where the killed one stopped)
// KIND is mpmc, or pubsub (a publisher that waits for its first subscriber; a subscriber in
// the group "bridge-test"). Channel B's messages come in shmq-bridge in's envelope
// (--envelope): flagged means the envelope or the ring said "redelivered", that is, this
// may be a duplicate. consume exits 0 when every message arrived intact, 1 on a bad
// envelope, a bad checksum or an out-of-range sequence number.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include <shmq/bridge/envelope.hpp>
#include <shmq/mpmc.hpp>
#include <shmq/pubsub.hpp>

#include "stamped_message.hpp"

namespace {

template <class Options>
Options channel_options(std::size_t slots = 1024) {  // as shmq-bridge makes them, with --confirm-window <= 16
  Options o;
  o.slots = slots;
  o.max_message_size = 4096;
  return o;
}

template <class Producer>
int produce(Producer p, std::uint64_t count, std::size_t size) {
  std::vector<std::byte> buf(size);
  for (std::uint64_t seq = 0; seq < count; ++seq) {
    shmq::stamped::fill(buf, seq);
    if (const auto st = p.push(buf); st != shmq::status::ok) {
      std::fprintf(stderr, "produce: push: %s\n", shmq::to_string(st));
      return 1;
    }
  }
  return 0;
}

shmq::publisher audience(const char* name) {
  // Pub/sub delivers to the subscriptions that exist: wait (bounded) for bridge out's group.
  shmq::publisher p(name, channel_options<shmq::pubsub_options>());
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (p.subscribers() == 0 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));  // polling a condition, bounded
  return p;
}

template <class Consumer>
int consume(Consumer c, std::uint64_t count, const char* seen_file) {
  std::vector<std::uint8_t> seen(count, 0);
  std::uint64_t distinct = 0, duplicates = 0, flagged = 0;
  if (FILE* f = std::fopen(seen_file, "r")) {
    unsigned long long s;
    int r;
    while (std::fscanf(f, "%llu %d %*s", &s, &r) == 2)
      if (s < count && seen[s]++ == 0) ++distinct;
    std::fclose(f);
  }
  FILE* out = std::fopen(seen_file, "a");
  if (out == nullptr) return 1;
  while (distinct < count) {
    shmq::view v = c.read_for(std::chrono::seconds(1));
    if (!v) continue;
    shmq::bridge::envelope e;
    if (const auto r = shmq::bridge::parse_envelope(v.data(), e); r != shmq::bridge::envelope_result::ok) {
      std::fprintf(stderr, "consume: a %zu-byte message: %s\n", v.size(), shmq::bridge::to_string(r));
      return 1;
    }
    std::uint64_t seq;
    if (shmq::stamped::check(e.body, seq) != shmq::stamped::verdict::ok || seq >= count || e.message_id.empty()) {
      std::fprintf(stderr, "consume: a corrupt or out-of-range message (%zu bytes)\n", v.size());
      return 1;
    }
    const bool maybe_duplicate = e.redelivered || v.redelivered();
    std::fprintf(out, "%llu %d %.*s\n", static_cast<unsigned long long>(seq), maybe_duplicate ? 1 : 0,
                 static_cast<int>(e.message_id.size()), e.message_id.data());
    std::fflush(out);  // before the release: killed in between, the ring redelivers it flagged
    if (seen[seq]++ == 0) ++distinct;
    else ++duplicates;
    if (maybe_duplicate) ++flagged;
  }
  std::printf("consume: all %llu messages, duplicates %llu flagged %llu\n", static_cast<unsigned long long>(count),
              static_cast<unsigned long long>(duplicates), static_cast<unsigned long long>(flagged));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 6 || argc == 7) {
    const std::string mode = argv[1], kind = argv[2];
    const char* name = argv[3];
    const std::uint64_t count = std::strtoull(argv[4], nullptr, 10);
    if (mode == "produce" && kind == "mpmc")
      return produce(shmq::mpmc_producer(name, channel_options<shmq::mpmc_options>()), count,
                     std::strtoull(argv[5], nullptr, 10));
    if (mode == "produce" && kind == "pubsub") return produce(audience(name), count, std::strtoull(argv[5], nullptr, 10));
    if (mode == "consume" && kind == "mpmc")
      return consume(shmq::mpmc_consumer(name, channel_options<shmq::mpmc_options>()), count, argv[5]);
    if (mode == "consume" && kind == "pubsub")
      return consume(shmq::subscriber(name, channel_options<shmq::pubsub_options>(argc == 7 ? std::strtoull(argv[6], nullptr, 10) : 1024),
                                      {.group = "bridge-test", .start = shmq::start_from::oldest}),
                     count, argv[5]);
  }
  std::fprintf(stderr, "usage: bridge_peer produce mpmc|pubsub CHANNEL COUNT SIZE | consume mpmc|pubsub CHANNEL COUNT SEEN_FILE [SLOTS]\n");
  return 2;
}

// The two ends of the simulated two-host pipeline in the bridge test and benchmark.
//   bridge_peer produce CHANNEL COUNT SIZE          stamped messages 0..COUNT-1 into CHANNEL
//   bridge_peer consume CHANNEL COUNT SEEN_FILE      reads until all COUNT distinct sequence
//     numbers are in SEEN_FILE (one line "seq redelivered" per message, appended before
//     the view is released, so a restarted consumer goes on where the killed one stopped)
// consume exits 0 when every message arrived intact, 1 on a bad checksum or an
// out-of-range sequence number. It prints "duplicates D flagged F" at the end.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include <shmq/mpmc.hpp>

#include "stamped_message.hpp"

namespace {

shmq::mpmc_options channel_options() {
  shmq::mpmc_options o;
  o.slots = 1024;
  o.max_message_size = 4096;
  return o;
}

int produce(const char* name, std::uint64_t count, std::size_t size) {
  shmq::mpmc_producer p(name, channel_options());
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

int consume(const char* name, std::uint64_t count, const char* seen_file) {
  std::vector<std::uint8_t> seen(count, 0);
  std::uint64_t distinct = 0, duplicates = 0, flagged = 0;
  if (FILE* f = std::fopen(seen_file, "r")) {
    unsigned long long s;
    int r;
    while (std::fscanf(f, "%llu %d", &s, &r) == 2)
      if (s < count && seen[s]++ == 0) ++distinct;
    std::fclose(f);
  }
  FILE* out = std::fopen(seen_file, "a");
  if (out == nullptr) return 1;
  shmq::mpmc_consumer c(name, channel_options());
  while (distinct < count) {
    shmq::view v = c.read_for(std::chrono::seconds(1));
    if (!v) continue;
    std::uint64_t seq;
    if (shmq::stamped::check(v.data(), seq) != shmq::stamped::verdict::ok || seq >= count) {
      std::fprintf(stderr, "consume: a corrupt or out-of-range message (%zu bytes)\n", v.size());
      return 1;
    }
    std::fprintf(out, "%llu %d\n", static_cast<unsigned long long>(seq), v.redelivered() ? 1 : 0);
    std::fflush(out);  // before the release: killed in between, the ring redelivers it flagged
    if (seen[seq]++ == 0) ++distinct;
    else ++duplicates;
    if (v.redelivered()) ++flagged;
  }
  std::printf("consume: all %llu messages, duplicates %llu flagged-by-shmq %llu\n",
              static_cast<unsigned long long>(count), static_cast<unsigned long long>(duplicates),
              static_cast<unsigned long long>(flagged));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 5 && std::strcmp(argv[1], "produce") == 0)
    return produce(argv[2], std::strtoull(argv[3], nullptr, 10), std::strtoull(argv[4], nullptr, 10));
  if (argc == 5 && std::strcmp(argv[1], "consume") == 0)
    return consume(argv[2], std::strtoull(argv[3], nullptr, 10), argv[4]);
  std::fprintf(stderr, "usage: bridge_peer produce CHANNEL COUNT SIZE | consume CHANNEL COUNT SEEN_FILE\n");
  return 2;
}

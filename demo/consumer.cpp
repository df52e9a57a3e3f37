// shmq-consumer: receives --count stamped messages, checks order and checksums, prints
// one summary line. Exits 0 only if all arrived intact and in order.
#include <chrono>
#include <cstdio>

#include "options.hpp"
#include "shmq/segment.hpp"
#include "shmq/spsc.hpp"
#include "stamped_message.hpp"

int main(int argc, char** argv) {
  const auto o = shmq::demo::parse(argc, argv, "shmq-consumer");
  std::uint64_t received = 0, bytes = 0;
  const char* problem = nullptr;
  std::uint64_t bad_seq = 0;
  std::chrono::steady_clock::time_point start{};
  try {
    shmq::spsc_consumer consumer(o.channel);
    while (received < o.count) {
      shmq::view v = consumer.read();
      if (v.status() == shmq::status::closed) {
        problem = "the producer closed the stream early";
        break;
      }
      if (!v) {
        std::fprintf(stderr, "shmq-consumer: read failed: %s\n", shmq::to_string(v.status()));
        return 1;
      }
      if (received == 0) start = std::chrono::steady_clock::now();
      std::uint64_t seq = 0;
      auto verdict = shmq::stamped::check(v.data(), seq);
      if (verdict != shmq::stamped::verdict::ok) {
        problem = verdict == shmq::stamped::verdict::too_short ? "a message too short to be stamped"
                                                               : "a checksum mismatch (torn or corrupt message)";
        bad_seq = received;
        break;
      }
      if (seq != received) {
        problem = seq < received ? "a duplicate or reordered message" : "lost messages";
        bad_seq = seq;
        break;
      }
      bytes += v.size();
      ++received;
    }
  } catch (const shmq::error& e) {
    std::fprintf(stderr, "shmq-consumer: %s\n", e.what());
    return 1;
  }
  shmq::remove_segment(o.channel);
  if (problem != nullptr) {
    std::fprintf(stderr, "shmq-consumer: FAILED after %llu of %llu messages: %s (sequence %llu)\n",
                 static_cast<unsigned long long>(received), static_cast<unsigned long long>(o.count),
                 problem, static_cast<unsigned long long>(bad_seq));
    return 1;
  }
  const double seconds =
      received == 0 ? 0.0 : std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("shmq-consumer: %llu messages, %llu bytes, %.3f s, %.0f messages/s, all intact and in order\n",
              static_cast<unsigned long long>(received), static_cast<unsigned long long>(bytes),
              seconds, seconds > 0 ? static_cast<double>(received) / seconds : 0.0);
  return 0;
}

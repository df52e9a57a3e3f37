// shmq-producer: sends --count stamped messages of --size bytes, then closes the stream.
#include <cstdio>

#include "options.hpp"
#include "shmq/spsc.hpp"
#include "stamped_message.hpp"

int main(int argc, char** argv) {
  const auto o = shmq::demo::parse(argc, argv, "shmq-producer");
  try {
    shmq::spsc_producer producer(o.channel);
    for (std::uint64_t seq = 0; seq < o.count; ++seq) {
      shmq::loan l = producer.loan(o.size);  // waits while the ring is full
      if (!l) {
        std::fprintf(stderr, "shmq-producer: loan failed: %s\n", shmq::to_string(l.status()));
        return 1;
      }
      shmq::stamped::fill(l.data(), seq);  // written in place, in the ring
      l.commit();
    }
    producer.close();
    std::printf("shmq-producer: sent %llu messages of %llu bytes on '%s'\n",
                static_cast<unsigned long long>(o.count), static_cast<unsigned long long>(o.size),
                o.channel.c_str());
  } catch (const shmq::error& e) {
    std::fprintf(stderr, "shmq-producer: %s\n", e.what());
    return 1;
  }
  return 0;
}

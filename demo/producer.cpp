// shmq-producer: sends --count stamped messages of --size bytes, written in place in the
// ring, then closes the stream. --pattern picks the channel kind.
#include <chrono>
#include <cstdio>
#include <thread>

#include "options.hpp"
#include "shmq/mpmc.hpp"
#include "shmq/pubsub.hpp"
#include "shmq/spsc.hpp"
#include "stamped_message.hpp"

namespace {

template <class Producer>
int send(Producer& producer, const shmq::demo::options& o) {
  for (std::uint64_t seq = 0; seq < o.count; ++seq) {
    shmq::loan l = producer.loan(o.size);  // waits while the channel is full
    if (!l) {
      std::fprintf(stderr, "shmq-producer: loan failed: %s\n", shmq::to_string(l.status()));
      return 1;
    }
    shmq::stamped::fill(l.data(), (std::uint64_t{o.id} << shmq::demo::id_shift) | seq);
    l.commit();
  }
  if (o.close) producer.close();
  std::printf("shmq-producer %u: sent %llu messages of %llu bytes on '%s'%s\n", o.id,
              static_cast<unsigned long long>(o.count), static_cast<unsigned long long>(o.size),
              o.channel.c_str(), o.close ? ", closed the stream" : "");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const auto o = shmq::demo::parse(argc, argv, "shmq-producer");
  try {
    switch (o.pattern) {
      case shmq::demo::pattern::spsc: {
        shmq::spsc_producer producer(o.channel);
        return send(producer, o);
      }
      case shmq::demo::pattern::queue: {
        shmq::mpmc_options mo;
        mo.slots = shmq::demo::slotted_slots;
        mo.max_message_size = shmq::demo::slotted_max_message;
        shmq::mpmc_producer producer(o.channel, mo);
        return send(producer, o);
      }
      case shmq::demo::pattern::pubsub: {
        shmq::pubsub_options po;
        po.slots = shmq::demo::slotted_slots;
        po.max_message_size = shmq::demo::slotted_max_message;
        shmq::publisher producer(o.channel, po);
        // Subscribers get what is published after they subscribe, so wait for them. A
        // demo may poll; a real publisher would rather not care who listens.
        while (producer.subscribers() < o.subscribers)
          std::this_thread::sleep_for(std::chrono::milliseconds(1));
        return send(producer, o);
      }
    }
  } catch (const shmq::error& e) {
    std::fprintf(stderr, "shmq-producer: %s\n", e.what());
  }
  return 1;
}

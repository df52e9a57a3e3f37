// shmq-push-dead-letters: reads the dead-letter queue of a push queue (<queue>.dead)
// and prints one line per dead letter, flushed before its view is released:
//   dead <push id> <reason> <attempts> <last HTTP status, 0 for none> <port> <path>
// ("dead - malformed ..." when the record inside failed its checks). Runs until killed.
#include <cstdio>

#include "args.hpp"
#include "channels.hpp"
#include "dead_letter.hpp"
#include "push_request.hpp"

int main(int argc, char** argv) {
  const shmq::push::args a(argc, argv, "[--queue NAME]\n  print the dead letters of queue NAME (push)\n", {"--queue"});
  try {
    shmq::mpmc_consumer dead(shmq::push::dead_letter_name(a.text("--queue", "push")),
                             shmq::push::dead_letter_options());
    for (;;) {
      const shmq::view v = dead.read();
      if (!v) {
        std::fprintf(stderr, "shmq-push-dead-letters: %s\n", shmq::to_string(v.status()));
        return v.status() == shmq::status::closed ? 0 : 1;
      }
      shmq::push::dead_header h;
      std::span<const std::byte> record;
      shmq::push::request p;
      if (!shmq::push::decode_dead(v.data(), h, record)) {
        std::printf("bad-dead-letter %zu bytes\n", v.size());
      } else if (shmq::push::decode(record, p) != shmq::push::decode_error::none) {
        std::printf("dead - %s %u %u - -\n", shmq::push::to_string(h.reason), h.attempts, h.last_status);
      } else {
        std::printf("dead %llu %s %u %u %u %.*s\n", static_cast<unsigned long long>(p.id),
                    shmq::push::to_string(h.reason), h.attempts, h.last_status, p.port,
                    static_cast<int>(p.path.size()), p.path.data());
      }
      std::fflush(stdout);  // printed before released: a kill in between prints it again, never loses it
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "shmq-push-dead-letters: %s\n", e.what());
    return 1;
  }
}

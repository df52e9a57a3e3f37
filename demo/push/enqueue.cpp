// shmq-push-enqueue: a producer of push requests. Push i (from --first-id on) goes to
// endpoint i mod E, where E is the number of ports listed in --ports (one per line, as
// shmq-push-sink writes them), path /hook/<endpoint>, with a JSON body of --body-bytes.
// Blocks on back-pressure when the queue is full; any number can run at once.
//
//   shmq-push-enqueue --ports ports.txt --count 100000 [--queue push] [--first-id 0]
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "args.hpp"
#include "channels.hpp"
#include "push_request.hpp"

namespace {

const char* usage =
    "--ports FILE --count N [--queue NAME] [--first-id ID] [--body-bytes B]\n"
    "  enqueue N push requests; push i goes to the (i mod E)-th port of FILE\n";

std::vector<std::uint16_t> read_ports(const std::string& file) {
  std::ifstream in(file);
  if (!in) throw std::runtime_error("cannot open " + file);
  std::vector<std::uint16_t> ports;
  unsigned long p = 0;
  while (in >> p) {
    if (p == 0 || p > 65535) throw std::runtime_error(file + ": not a port: " + std::to_string(p));
    ports.push_back(static_cast<std::uint16_t>(p));
  }
  if (ports.empty()) throw std::runtime_error(file + ": no ports");
  return ports;
}

}  // namespace

int main(int argc, char** argv) {
  const shmq::push::args a(argc, argv, usage, {"--ports", "--count", "--queue", "--first-id", "--body-bytes"});
  try {
    const auto ports = read_ports(a.text("--ports", "ports.txt"));
    const std::uint64_t count = a.number("--count", 1000, 0, 1ull << 40);
    const std::uint64_t first = a.number("--first-id", 0, 0, 1ull << 62);
    const std::size_t body_bytes = a.number("--body-bytes", 200, 0, 700);
    shmq::mpmc_producer queue(a.text("--queue", "push"), shmq::push::queue_options());
    for (std::uint64_t id = first; id < first + count; ++id) {
      const std::size_t endpoint = id % ports.size();
      const std::string path = "/hook/" + std::to_string(endpoint);
      const std::string body = shmq::push::make_body(id, body_bytes);
      const std::size_t size = shmq::push::encoded_size(path, body);
      shmq::loan l = queue.loan(size);
      if (!l) throw std::runtime_error(std::string("loan: ") + shmq::to_string(l.status()));
      shmq::push::encode(l.data(), id, ports[endpoint], path, body, shmq::push::now_ns());
      if (const shmq::status s = l.commit(); s != shmq::status::ok)
        throw std::runtime_error(std::string("commit: ") + shmq::to_string(s));
    }
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "shmq-push-enqueue: %s\n", e.what());
    return 1;
  }
}

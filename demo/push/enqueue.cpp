// shmq-push-enqueue: a producer of push requests. Push i (from --first-id on) goes to
// endpoint i mod E, where E is the number of ports listed in --ports (one per line, as
// shmq-push-sink writes them), path /hook/<endpoint>, with a JSON body of --body-bytes.
// Blocks on back-pressure when the queue is full; any number can run at once.
// --rate paces them (pushes per second, for latency measurements); --dump writes the
// records to a file instead (each behind its 4-byte length), for the aiohttp baseline.
//
//   shmq-push-enqueue --ports ports.txt --count 100000 [--queue push] [--first-id 0]
#include <cstdio>
#include <fstream>
#include <thread>
#include <string>
#include <vector>

#include "args.hpp"
#include "channels.hpp"
#include "push_request.hpp"

namespace {

const char* usage =
    "--ports FILE --count N [--queue NAME] [--first-id ID] [--body-bytes B] [--rate R]\n"
    "          [--dump FILE]\n"
    "  enqueue N push requests (R a second if given); push i goes to the (i mod E)-th port\n"
    "  of the ports FILE; --dump: write them to FILE instead\n";

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

// Push `id` as a record: where it goes and its body, made once per id.
struct push_source {
  const std::vector<std::uint16_t>& ports;
  std::size_t body_bytes;
  std::uint16_t port = 0;
  std::string path, body;

  std::size_t prepare(std::uint64_t id) {
    const std::size_t endpoint = id % ports.size();
    port = ports[endpoint];
    path = "/hook/" + std::to_string(endpoint);
    body = shmq::push::make_body(id, body_bytes);
    return shmq::push::encoded_size(path, body);
  }
  void write(std::span<std::byte> out, std::uint64_t id, std::uint64_t enqueued_ns) const {
    shmq::push::encode(out, id, port, path, body, enqueued_ns);
  }
};

int write_dump(const std::string& file, push_source& source, std::uint64_t first, std::uint64_t count) {
  std::ofstream out(file, std::ios::binary);
  std::vector<std::byte> record;
  for (std::uint64_t id = first; id < first + count; ++id) {
    record.resize(source.prepare(id));
    source.write(record, id, 0);
    const auto size = static_cast<std::uint32_t>(record.size());
    out.write(reinterpret_cast<const char*>(&size), sizeof size);
    out.write(reinterpret_cast<const char*>(record.data()), static_cast<std::streamsize>(record.size()));
  }
  out.close();
  if (!out) throw std::runtime_error("cannot write " + file);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const shmq::push::args a(argc, argv, usage,
                           {"--ports", "--count", "--queue", "--first-id", "--body-bytes", "--rate", "--dump"});
  try {
    const auto ports = read_ports(a.text("--ports", "ports.txt"));
    const std::uint64_t count = a.number("--count", 1000, 0, 1ull << 40);
    const std::uint64_t first = a.number("--first-id", 0, 0, 1ull << 62);
    const std::size_t body_bytes = a.number("--body-bytes", 200, 0, 700);
    const std::uint64_t rate = a.number("--rate", 0, 0, 100'000'000);
    const std::string dump = a.text("--dump", "");
    push_source source{ports, body_bytes, 0, {}, {}};
    if (!dump.empty()) return write_dump(dump, source, first, count);
    shmq::mpmc_producer queue(a.text("--queue", "push"), shmq::push::queue_options());
    const auto start = std::chrono::steady_clock::now();
    for (std::uint64_t id = first; id < first + count; ++id) {
      const std::size_t size = source.prepare(id);
      if (rate != 0)
        std::this_thread::sleep_until(start + std::chrono::nanoseconds((id - first) * 1'000'000'000ull / rate));
      shmq::loan l = queue.loan(size);
      if (!l) throw std::runtime_error(std::string("loan: ") + shmq::to_string(l.status()));
      source.write(l.data(), id, shmq::push::now_ns());
      if (const shmq::status s = l.commit(); s != shmq::status::ok)
        throw std::runtime_error(std::string("commit: ") + shmq::to_string(s));
    }
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "shmq-push-enqueue: %s\n", e.what());
    return 1;
  }
}

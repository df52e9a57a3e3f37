// shmq-bridge: at-least-once between an shmq channel and a RabbitMQ broker.
//   shmq-bridge out CHANNEL --url URL --exchange X --routing-key K [--queue Q]
//   shmq-bridge in  CHANNEL --url URL --queue Q
// Exit status: 0 stopped by a signal, 1 failure, 2 usage.
#include <csignal>
#include <cstdio>
#include <fstream>
#include <thread>

#include <unistd.h>

#include <CLI/CLI.hpp>

#include "bridge.hpp"

namespace shmq_bridge {

volatile bool stop_requested = false;

void report_stats(const config& c, const counters& n, const char* direction, bool final) {
  const auto f = n.forwarded.load(), k = n.confirmed.load(), r = n.redelivered.load(), i = n.in_flight.load(),
             x = n.reconnects.load();
  std::fprintf(stderr, "shmq-bridge %s%s: forwarded %llu confirmed %llu redelivered %llu in_flight %llu reconnects %llu\n",
               direction, final ? " (final)" : "", (unsigned long long)f, (unsigned long long)k,
               (unsigned long long)r, (unsigned long long)i, (unsigned long long)x);
  if (!c.stats_file.empty()) {
    const std::string tmp = c.stats_file + ".tmp";
    std::ofstream(tmp) << "{\"direction\":\"" << direction << "\",\"forwarded\":" << f << ",\"confirmed\":" << k
                       << ",\"redelivered\":" << r << ",\"in_flight\":" << i << ",\"reconnects\":" << x << "}\n";
    std::rename(tmp.c_str(), c.stats_file.c_str());
  }
}

}  // namespace shmq_bridge

int main(int argc, char** argv) {
  using namespace shmq_bridge;
  CLI::App app("shmq-bridge: at-least-once between an shmq channel and RabbitMQ", "shmq-bridge");
  app.require_subcommand(1);
  config c;
  c.broker.url = "amqp://guest:guest@localhost:5672";
  const auto common = [&](CLI::App* s) {
    s->add_option("channel", c.channel, "shmq channel name (MPMC unless --pubsub)")->required();
    s->add_option("--url", c.broker.url, "broker URL amqp://user:password@host:port/vhost (the password is never printed)")
        ->envname("SHMQ_BRIDGE_URL");
    s->add_option("--queue", c.queue, "queue (in: consumed; out: declared durable and bound if given)");
    s->add_option("--slots", c.slots, "ring slots if the bridge creates the channel")->capture_default_str();
    s->add_option("--max-message-size", c.max_message_size, "slot size if the bridge creates the channel")
        ->capture_default_str();
    s->add_flag("--stats", c.stats, "a counters line per second on stderr");
    s->add_option("--stats-file", c.stats_file, "counters as JSON, rewritten every second");
  };
  auto* out = app.add_subcommand("out", "shmq channel -> exchange, with publisher confirms");
  common(out);
  out->add_flag("--pubsub", c.pubsub, "the channel is pub/sub: consume as a member of --group");
  out->add_option("--group", c.group, "pub/sub consumer group")->capture_default_str();
  out->add_option("--exchange", c.exchange, "exchange to publish to ('' = default exchange)");
  out->add_option("--routing-key", c.routing_key, "routing key")->required();
  out->add_option("--confirm-window", c.confirm_window, "messages in flight before waiting for confirms")
      ->check(CLI::Range(1u, 1024u))
      ->capture_default_str();
  out->add_option("--source-id", c.source_id, "source part of message ids SOURCE:PID:N (default CHANNEL@HOST)");
  auto* in = app.add_subcommand("in", "queue -> shmq channel, acked after the shmq commit");
  common(in);
  in->get_option("--queue")->required();
  in->add_flag("--pubsub", c.pubsub, "the channel is pub/sub: write as a publisher");
  in->add_flag("--envelope", c.envelope,
               "write each message in an envelope with its message id and redelivered flag (shmq/bridge/envelope.hpp)");
  in->add_option("--prefetch", c.prefetch, "basic.qos prefetch count")->check(CLI::Range(1u, 65535u))->capture_default_str();
  in->add_option("--ack-every", c.ack_every, "multiple-ack after this many commits (or when idle)")
      ->check(CLI::Range(1u, 65535u))
      ->capture_default_str();
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return rc == 0 ? 0 : 2;
  }
  if (c.source_id.empty()) {
    char host[256] = "host";
    gethostname(host, sizeof host - 1);
    c.source_id = c.channel + "@" + host;
  }
  struct sigaction sa {};
  sa.sa_handler = [](int) { stop_requested = true; };
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  std::signal(SIGPIPE, SIG_IGN);
  counters n;
  const char* direction = out->parsed() ? "out" : "in";
  std::jthread stats;
  if (c.stats || !c.stats_file.empty())
    stats = std::jthread([&](std::stop_token t) {
      while (!t.stop_requested()) {
        for (int i = 0; i < 10 && !t.stop_requested(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(100));
        if (!t.stop_requested() && c.stats) report_stats(c, n, direction, false);
      }
    });
  try {
    { shmq_bridge::link url_check(c.broker); }  // a bad URL fails here, before a channel is created
    const int rc = out->parsed() ? run_out(c, n) : run_in(c, n);
    if (stats.joinable()) {
      stats.request_stop();
      stats.join();
    }
    if (c.stats || !c.stats_file.empty()) report_stats(c, n, direction, true);
    return rc;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "shmq-bridge %s: %s\n", direction, e.what());
    return 1;
  }
}

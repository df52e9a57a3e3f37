// shmq sub NAME: messages from a channel to stdout, framed as the flags say, until the
// stream is closed (or --count, or --timeout). A message is released only after its
// bytes were written: killed by SIGPIPE or otherwise, sub never loses one it held.
#include <unistd.h>

#include <csignal>
#include <cstdlib>
#include <cstdio>
#include <exception>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "channel.hpp"
#include "commands.hpp"
#include "duration.hpp"
#include "framing.hpp"
#include "json.hpp"
#include "shmq/status.hpp"

namespace shmq_cli {

namespace {

struct sub_settings {
  std::string name;
  channel_shape shape;
  framing_flags framing;
  std::uint64_t count = 0;  // 0: until closed
  std::string timeout;
  std::string group;
  std::string from = "newest";
  std::size_t history = 0;
  bool json = false;
  bool ready = false;
  CLI::Option* kind = nullptr;
};

std::string json_line(std::span<const std::byte> bytes, const shmq::view& v) {
  std::string flags = "[";
  if (v.redelivered()) flags += "\"redelivered\"";
  if (v.missed() != 0) flags += std::string(flags.size() > 1 ? "," : "") + "\"missed\"";
  flags += "]";
  json_object o;
  o.number("size", bytes.size()).field("flags", flags).number("missed", v.missed()).boolean("redelivered", v.redelivered());
  if (printable(bytes))
    o.text("text", std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
  else
    o.text("base64", base64(bytes));
  return o.str() + "\n";
}

// Why the stream ended, as an exit status: closed is success, the rest failures.
int stream_end(shmq::status s, const sub_settings& settings) {
  switch (s) {
    case shmq::status::closed: return 0;
    case shmq::status::timed_out: return fail("sub", "no message within " + settings.timeout);
    case shmq::status::producer_gone: return fail("sub", "the producers died without closing the stream");
    default: return fail("sub", std::string("reading failed: ") + shmq::to_string(s));
  }
}

template <class Consumer>
int subscribe(Consumer& in, const sub_settings& s, bool check_intact) {
  if (s.ready) std::fprintf(stderr, "shmq sub: ready\n");
  const std::optional<std::chrono::nanoseconds> timeout =
      s.timeout.empty() ? std::nullopt : parse_duration(s.timeout);
  const framing f = s.framing.chosen();
  std::vector<std::byte> copy;
  for (std::uint64_t n = 0; s.count == 0 || n < s.count;) {
    shmq::view v = timeout ? in.read_for(*timeout) : in.read();
    if (!v) return stream_end(v.status(), s);
    std::span<const std::byte> bytes = v.data();
    if (check_intact) {  // an overwriting publisher may be reusing the slot
      copy.assign(bytes.begin(), bytes.end());
      if (!v.intact()) continue;  // dropped; the release counts it as missed
      bytes = copy;
    }
    try {
      if (s.json) {
        const std::string line = json_line(bytes, v);
        write_all(STDOUT_FILENO, std::as_bytes(std::span(line.data(), line.size())));
      } else {
        write_message(STDOUT_FILENO, f, bytes);
      }
    } catch (const std::exception& e) {
      // EPIPE with SIGPIPE blocked, a full disk: leave at once, the view unreleased (a
      // destructor would release it) so that the message goes to the next consumer.
      std::fprintf(stderr, "shmq sub: %s\n", e.what());
      std::_Exit(1);
    }
    v.release();  // only now: its bytes are out
    ++n;
  }
  return 0;
}

}  // namespace

void add_sub_command(CLI::App& app, runner& run) {
  auto s = std::make_shared<sub_settings>();
  CLI::App* cmd = app.add_subcommand("sub", "write messages from a channel to stdout");
  s->kind = add_channel_options(*cmd, s->name, s->shape);
  add_framing_options(*cmd, s->framing, false);
  cmd->add_flag("--json", s->json,
                "one JSON object per message: size, flags, missed, redelivered, and text (printable) or base64");
  cmd->add_option("--count", s->count, "stop after N messages")->check(CLI::PositiveNumber);
  cmd->add_option("--timeout", s->timeout, "fail (exit 1) if no message comes for this long")->check(duration_check());
  cmd->add_option("--group", s->group, "pubsub: join this consumer group (shares its messages with the other members)");
  cmd->add_option("--from", s->from, "pubsub: where a new subscription starts")
      ->check(CLI::IsMember({"newest", "oldest"}))
      ->default_str("newest");
  cmd->add_option("--history", s->history, "pubsub: also the last K messages still in the ring");
  cmd->add_flag("--ready", s->ready, "print 'shmq sub: ready' on stderr once subscribed");
  cmd->callback([s, &run] {
    run = [s] {
      // Killed by SIGPIPE when the reader goes away, as cat is, with the message it held
      // unreleased: it goes to the next consumer, flagged redelivered.
      std::signal(SIGPIPE, SIG_DFL);
      try {
        shmq::subscription how;
        how.group = s->group;
        how.start = s->from == "oldest" ? shmq::start_from::oldest : shmq::start_from::newest;
        how.history = s->history;
        any_consumer in = open_consumer(s->name, s->shape, s->kind->count() > 0, how);
        // A subscription copies each message and checks it is intact before writing it:
        // under overwrite a publisher may be reusing the slot (under block it is always intact).
        const bool subscription = std::holds_alternative<shmq::subscriber>(in);
        return std::visit([&](auto& c) { return subscribe(c, *s, subscription); }, in);
      } catch (const std::exception& e) {
        return fail("sub", e.what());
      }
    };
  });
}

}  // namespace shmq_cli

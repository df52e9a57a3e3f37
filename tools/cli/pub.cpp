// shmq pub NAME: messages from stdin into a channel, framed as the flags say; close()
// at end of input unless --no-close.
#include <unistd.h>

#include <cstring>
#include <exception>
#include <memory>
#include <string>

#include "channel.hpp"
#include "commands.hpp"
#include "framing.hpp"
#include "shmq/status.hpp"

namespace shmq_cli {

namespace {

struct pub_settings {
  std::string name;
  channel_shape shape;
  framing_flags framing;
  bool no_close = false;
  CLI::Option* kind = nullptr;
};

// Loans `size` bytes, fills them with `fill(span) -> bytes written` and commits; throws
// if the channel refuses.
template <class Producer, class Fill>
void send(Producer& out, std::size_t size, Fill&& fill) {
  shmq::loan l = out.loan(size);
  if (!l) throw shmq::error(shmq::errc::invalid_argument, std::string("loan failed: ") + shmq::to_string(l.status()));
  l.commit(fill(l.data()));
}

template <class Producer>
void publish(Producer& out, const pub_settings& s) {
  input_stream in(STDIN_FILENO);
  const std::size_t max = out.max_message_size();
  switch (s.framing.chosen()) {
    case framing::lines: {
      std::string line;
      while (in.next_line(line, max))
        send(out, line.size(), [&](std::span<std::byte> d) {
          std::memcpy(d.data(), line.data(), line.size());
          return line.size();
        });
      break;
    }
    case framing::length_prefixed:
      for (;;) {
        std::byte prefix[4];
        const std::size_t got = in.read(prefix);
        if (got == 0) break;
        if (got < 4) throw std::runtime_error("the input ends inside a length prefix");
        const std::uint32_t size = read_le32(prefix);
        if (size > max)
          throw std::length_error("a message of " + std::to_string(size) + " bytes is longer than " +
                                  std::to_string(max) + ", the channel's max message size");
        send(out, size, [&](std::span<std::byte> d) {
          if (in.read(d) != d.size()) throw std::runtime_error("the input ends inside a message");
          return d.size();
        });
      }
      break;
    case framing::chunk: {
      if (s.framing.chunk > max)
        throw std::length_error("--chunk " + std::to_string(s.framing.chunk) + " is over " +
                                std::to_string(max) + ", the channel's max message size");
      for (bool more = true; more;) {
        shmq::loan l = out.loan(s.framing.chunk);
        if (!l) throw shmq::error(shmq::errc::invalid_argument, std::string("loan failed: ") + shmq::to_string(l.status()));
        const std::size_t got = in.read(l.data());
        more = got == s.framing.chunk;
        if (got == 0) break;  // the destroyed loan aborts
        l.commit(got);
      }
      break;
    }
    case framing::raw: break;  // not a pub framing
  }
  if (!s.no_close) out.close();
}

}  // namespace

void add_pub_command(CLI::App& app, runner& run) {
  auto s = std::make_shared<pub_settings>();
  CLI::App* cmd = app.add_subcommand("pub", "publish messages read from stdin to a channel");
  s->kind = add_channel_options(*cmd, s->name, s->shape);
  add_framing_options(*cmd, s->framing, true);
  cmd->add_flag("--no-close", s->no_close, "leave the stream open at end of input");
  cmd->callback([s, &run] {
    run = [s] {
      try {
        any_producer out = open_producer(s->name, s->shape, s->kind->count() > 0);
        std::visit([&](auto& p) { publish(p, *s); }, out);
        return 0;
      } catch (const std::exception& e) {
        return fail("pub", e.what());
      }
    };
  });
}

}  // namespace shmq_cli

// shmq-push-gateway: one worker of the push gateway. K lanes, each a coroutine with its
// own consumer of the push queue (an endpoint holds one view at a time, so K lanes are
// K requests in flight), deliver push requests over HTTP/1.1 with keep-alive
// connections pooled per endpoint (http_client.hpp). A request that meets a connection
// error, a timeout or a 5xx is tried again after an exponential backoff, up to R
// attempts; then, or at once on another status, it goes to the dead-letter queue
// (<queue>.dead). The lane releases its view only after a 2xx or once the dead letter is
// committed: a worker killed at any moment loses nothing, since shmq hands the views it
// held to other consumers of the queue (docs/crash-safety.md), flagged redelivered.
// Prints "ready" once every lane is attached, and its counts on stderr when it ends.
//
//   shmq-push-gateway [--queue push] [--lanes 32] [--attempts 3] [--timeout-ms 2000]
#include "shmq/asio.hpp"  // first: it includes <utility> before Boost's awaitable.hpp

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <csignal>
#include <cstdio>
#include <list>
#include <random>
#include <vector>

#include "args.hpp"
#include "descriptors.hpp"
#include "channels.hpp"
#include "dead_letter.hpp"
#include "http_client.hpp"
#include "push_request.hpp"
#include "stop_signals.hpp"

namespace net = boost::asio;
namespace http = boost::beast::http;
using boost::system::error_code;

namespace {

struct settings {
  std::uint32_t attempts = 3;
  std::chrono::milliseconds timeout{2000}, backoff{10}, backoff_max{1000};
};

struct counters {
  std::uint64_t delivered = 0, retries = 0, dead = 0, redelivered = 0, reconnects = 0, malformed = 0;
};

// The dead-letter producer, shared by the lanes: one push at a time (an endpoint is one
// operation at a time), the others wait for their turn on a timer that never expires
// and is cancelled when the turn passes.
class dead_letters {
 public:
  dead_letters(net::any_io_executor ex, const std::string& name)
      : queue_(ex, shmq::mpmc_producer(name, shmq::push::dead_letter_options())), turn_(ex) {
    turn_.expires_at(net::steady_timer::time_point::max());
  }
  net::awaitable<error_code> push(const shmq::push::dead_header& h, std::span<const std::byte> record) {
    error_code ec;
    while (busy_) co_await turn_.async_wait(net::redirect_error(net::use_awaitable, ec));
    busy_ = true;
    message_.resize(shmq::push::dead_header_size + record.size());
    shmq::push::encode_dead(message_, h, record);
    co_await shmq::asio::async_push(queue_, std::span<const std::byte>(message_),
                                    net::redirect_error(net::use_awaitable, ec));
    busy_ = false;
    turn_.cancel();
    co_return ec;
  }

 private:
  shmq::asio::endpoint<shmq::mpmc_producer> queue_;
  net::steady_timer turn_;
  bool busy_ = false;
  std::vector<std::byte> message_;
};

// Which lane waits on the queue: one at a time, so a message wakes one lane of this
// worker, not all K (each waiting lane would be an armed descriptor, and a message
// wakes every armed one). The lane that got a message passes the turn to one other.
class read_turn {
 public:
  explicit read_turn(net::any_io_executor ex) : wake_(ex) { wake_.expires_at(net::steady_timer::time_point::max()); }
  net::awaitable<void> take() {
    error_code ignored;
    while (taken_) co_await wake_.async_wait(net::redirect_error(net::use_awaitable, ignored));
    taken_ = true;
  }
  void pass() {
    taken_ = false;
    wake_.cancel_one();
  }

 private:
  net::steady_timer wake_;
  bool taken_ = false;
};

struct worker {
  settings config;
  shmq::push::connection_pool pool;
  dead_letters dead;
  read_turn turn;
  counters count;
  std::size_t lanes = 0, attached = 0;
  std::minstd_rand jitter{static_cast<unsigned>(getpid())};
};

http::request<http::string_body> make_request(const shmq::push::request& p, std::uint32_t attempt,
                                              bool redelivered) {
  http::request<http::string_body> req{http::verb::post, std::string(p.path), 11};
  req.set(http::field::host, "127.0.0.1:" + std::to_string(p.port));
  req.set(http::field::content_type, "application/json");
  req.set("X-Push-Id", std::to_string(p.id));
  req.set("X-Push-Attempt", std::to_string(attempt));
  req.set("X-Push-Checksum", std::to_string(p.body_sum));
  req.set("X-Enqueued-Ns", std::to_string(p.enqueued_ns));
  if (redelivered) req.set("X-Redelivered", "1");
  req.keep_alive(true);
  req.body() = std::string(p.body);
  req.prepare_payload();
  return req;
}

// Delivers one push: returns what its dead letter says if it is to be given up, or
// nothing once an endpoint answered 2xx.
net::awaitable<std::optional<shmq::push::dead_header>> deliver(worker& w, const shmq::push::request& p,
                                                                bool redelivered) {
  net::steady_timer backoff(co_await net::this_coro::executor);
  for (std::uint32_t attempt = 0;; ++attempt) {
    const auto result = co_await shmq::push::post(w.pool, p.port, make_request(p, attempt, redelivered), w.config.timeout);
    w.count.reconnects += result.reconnected;
    if (result.outcome == shmq::push::post_outcome::ok) co_return std::nullopt;
    if (result.outcome == shmq::push::post_outcome::rejected)
      co_return shmq::push::dead_header{attempt + 1, result.status, shmq::push::dead_reason::rejected};
    if (attempt + 1 >= w.config.attempts)
      co_return shmq::push::dead_header{attempt + 1, result.status, shmq::push::dead_reason::failed_attempts};
    ++w.count.retries;
    // Exponential backoff with up to 50 % jitter, so retries of a failing endpoint spread.
    auto wait = std::min(w.config.backoff * (1u << std::min(attempt, 20u)), w.config.backoff_max);
    wait += std::chrono::milliseconds(w.jitter() % (wait.count() / 2 + 1));
    backoff.expires_after(wait);
    error_code ignored;
    co_await backoff.async_wait(net::redirect_error(net::use_awaitable, ignored));
  }
}

// One request in flight at a time, for as long as the queue stays open.
net::awaitable<void> lane(worker& w, std::string queue) {
  const auto ex = co_await net::this_coro::executor;
  shmq::asio::endpoint in(ex, shmq::mpmc_consumer(queue, shmq::push::queue_options()));
  if (++w.attached == w.lanes) {
    std::printf("ready\n");  // every lane attached: for scripts that wait for the worker
    std::fflush(stdout);
  }
  for (;;) {
    error_code ec;
    co_await w.turn.take();
    shmq::view v = co_await shmq::asio::async_read(in, net::redirect_error(net::use_awaitable, ec));
    w.turn.pass();
    if (ec) {
      if (ec != shmq::asio::make_error_code(shmq::status::closed))
        std::fprintf(stderr, "shmq-push-gateway: lane stops: %s\n", ec.message().c_str());
      co_return;
    }
    w.count.redelivered += v.redelivered();
    shmq::push::request p;
    std::optional<shmq::push::dead_header> give_up;
    if (const auto bad = shmq::push::decode(v.data(), p); bad != shmq::push::decode_error::none) {
      std::fprintf(stderr, "shmq-push-gateway: a malformed record (%s) goes to the dead letters\n",
                   shmq::push::to_string(bad));
      ++w.count.malformed;
      give_up = shmq::push::dead_header{0, 0, shmq::push::dead_reason::malformed};
    } else {
      give_up = co_await deliver(w, p, v.redelivered());
    }
    if (give_up) {
      // The view stays ours until the dead letter is committed: a worker killed in
      // between sends it to the dead letters again (a duplicate there, never a loss).
      if (const error_code e = co_await w.dead.push(*give_up, v.data())) {
        std::fprintf(stderr, "shmq-push-gateway: dead letter: %s; the push stays queued\n", e.message().c_str());
        co_return;  // the view goes back unreleased when the process ends
      }
      ++w.count.dead;
    } else {
      ++w.count.delivered;
    }
  }  // the view is released here, after a 2xx or a committed dead letter
}

}  // namespace

int main(int argc, char** argv) {
  static const char* usage =
      "[--queue NAME] [--lanes K] [--attempts R] [--timeout-ms MS] [--backoff-ms MS]\n"
      "          [--backoff-max-ms MS] [--pool-idle N]\n"
      "  K requests in flight, R attempts per push, MS per attempt; backoff doubles from\n"
      "  --backoff-ms up to --backoff-max-ms; at most N idle connections kept\n";
  shmq::push::stop_signals::block();
  const shmq::push::args a(
      argc, argv, usage,
      {"--queue", "--lanes", "--attempts", "--timeout-ms", "--backoff-ms", "--backoff-max-ms", "--pool-idle"});
  try {
    shmq::push::raise_descriptor_limit();
    const std::string queue = a.text("--queue", "push");
    const std::size_t lanes = a.number("--lanes", 32, 1, 200);
    settings config;
    config.attempts = static_cast<std::uint32_t>(a.number("--attempts", 3, 1, 100));
    config.timeout = std::chrono::milliseconds(a.number("--timeout-ms", 2000, 1, 3'600'000));
    config.backoff = std::chrono::milliseconds(a.number("--backoff-ms", 10, 0, 60'000));
    config.backoff_max = std::chrono::milliseconds(a.number("--backoff-max-ms", 1000, 0, 600'000));
    const std::size_t pool_idle = a.number("--pool-idle", 2048, 0, 1'000'000);

    net::io_context io(1);
    worker w{config, shmq::push::connection_pool(pool_idle, lanes),
             dead_letters(io.get_executor(), shmq::push::dead_letter_name(queue)), read_turn(io.get_executor()), {},
             lanes};
    std::size_t running = lanes;
    shmq::push::stop_signals stop(io.get_executor());
    stop.async_wait([&] { io.stop(); });
    for (std::size_t i = 0; i < lanes; ++i)
      net::co_spawn(io, lane(w, queue), [&](std::exception_ptr e) {
        if (e) {
          try {
            std::rethrow_exception(e);
          } catch (const std::exception& x) {
            std::fprintf(stderr, "shmq-push-gateway: lane failed: %s\n", x.what());
          }
        }
        if (--running == 0) stop.cancel();
      });
    io.run();
    std::fprintf(stderr, "shmq-push-gateway: delivered %llu retries %llu dead %llu redelivered %llu reconnects %llu\n",
                 static_cast<unsigned long long>(w.count.delivered), static_cast<unsigned long long>(w.count.retries),
                 static_cast<unsigned long long>(w.count.dead), static_cast<unsigned long long>(w.count.redelivered),
                 static_cast<unsigned long long>(w.count.reconnects));
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "shmq-push-gateway: %s\n", e.what());
    return 1;
  }
}

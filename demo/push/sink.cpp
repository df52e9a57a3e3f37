// shmq-push-sink: the endpoints of a push test, in one process. Listens on --endpoints
// ports of 127.0.0.1 (picked by the kernel, written to --ports-out one per line), reads
// HTTP/1.1 POSTs with keep-alive, and answers each as fault_plan.hpp decides: 200, 503,
// or a dropped connection, some of them slowly. It records every request it read: push
// id, attempt, port, what it answered, whether the body's checksum held, whether the
// gateway flagged it redelivered, and enqueue-to-arrival latency.
//
// Prints "ready" once listening, then "delivered D received R" (distinct push ids
// answered 200, requests read) whenever they changed, at most every 10 ms. On SIGTERM or
// SIGINT it writes --records (one line per request: id attempt port answer checksum_ok
// redelivered latency_ns) and exits.
#include <utility>  // first: Boost 1.74's awaitable.hpp uses std::exchange without it

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <charconv>
#include <cstdio>
#include <fstream>
#include <unordered_set>
#include <vector>

#include "args.hpp"
#include "descriptors.hpp"
#include "fault_plan.hpp"
#include "push_request.hpp"
#include "stop_signals.hpp"

namespace net = boost::asio;
namespace http = boost::beast::http;
using tcp = net::ip::tcp;
using boost::system::error_code;

namespace {

const char* usage =
    "[--endpoints N] [--ports-out FILE] [--records FILE] [--fail F] [--drop F]\n"
    "          [--slow F] [--slow-ms MS] [--seed S]\n"
    "  F: fractions 0..1 of attempts answered 503, dropped, answered after MS\n";

enum class recorded : std::uint8_t { ok, server_error, drop, bad_request };

struct record {
  std::uint64_t id, attempt, latency_ns;
  std::uint16_t port;
  recorded answer;
  bool checksum_ok, redelivered;
};

struct sink_state {
  shmq::push::fault_plan plan;
  std::chrono::milliseconds slow_for{0};
  std::vector<record> records;
  std::unordered_set<std::uint64_t> delivered;
  std::size_t reported_delivered = ~std::size_t{0}, reported_received = 0;
};

bool header_number(const http::request<http::string_body>& req, const char* name, std::uint64_t& out) {
  auto it = req.find(name);
  if (it == req.end()) return false;
  const auto v = it->value();
  const auto r = std::from_chars(v.data(), v.data() + v.size(), out);
  return r.ec == std::errc() && r.ptr == v.data() + v.size();
}

net::awaitable<void> serve(tcp::socket socket, std::uint16_t port, sink_state& s) {
  boost::beast::tcp_stream stream(std::move(socket));
  boost::beast::flat_buffer buffer;
  error_code ec;
  for (;;) {
    http::request<http::string_body> req;
    co_await http::async_read(stream, buffer, req, net::redirect_error(net::use_awaitable, ec));
    if (ec) co_return;  // the client closed, or sent something that is not HTTP
    record r{};
    r.port = port;
    std::uint64_t sum = 0, enqueued = 0, redelivered = 0;
    const bool well_formed = req.method() == http::verb::post && header_number(req, "X-Push-Id", r.id) &&
                             header_number(req, "X-Push-Attempt", r.attempt) &&
                             header_number(req, "X-Push-Checksum", sum) &&
                             header_number(req, "X-Enqueued-Ns", enqueued);
    header_number(req, "X-Redelivered", redelivered);
    const std::uint64_t now = shmq::push::now_ns();
    r.latency_ns = enqueued < now ? now - enqueued : 0;
    r.redelivered = redelivered != 0;
    r.checksum_ok = well_formed && shmq::push::body_checksum(r.id, req.body()) == sum;
    shmq::push::answer a = shmq::push::answer::ok;
    if (!well_formed) r.answer = recorded::bad_request;
    else {
      a = s.plan.decide(r.id, r.attempt);
      r.answer = a == shmq::push::answer::ok ? recorded::ok
                 : a == shmq::push::answer::drop ? recorded::drop
                                                 : recorded::server_error;
    }
    s.records.push_back(r);
    if (r.answer == recorded::ok) s.delivered.insert(r.id);
    if (well_formed && s.plan.slow(r.id, r.attempt)) {
      net::steady_timer slow(stream.get_executor(), s.slow_for);
      co_await slow.async_wait(net::redirect_error(net::use_awaitable, ec));
    }
    if (a == shmq::push::answer::drop) {
      stream.socket().close(ec);
      co_return;
    }
    http::response<http::string_body> res{
        !well_formed ? http::status::bad_request
        : a == shmq::push::answer::ok ? http::status::ok
                                      : http::status::service_unavailable,
        req.version()};
    res.set(http::field::content_type, "text/plain");
    res.body() = r.answer == recorded::ok ? "ok\n" : "no\n";
    res.keep_alive(req.keep_alive());
    res.prepare_payload();
    co_await http::async_write(stream, res, net::redirect_error(net::use_awaitable, ec));
    if (ec || !req.keep_alive()) co_return;
  }
}

net::awaitable<void> listen(tcp::acceptor& acceptor, sink_state& s) {
  const std::uint16_t port = acceptor.local_endpoint().port();
  for (;;) {
    error_code ec;
    tcp::socket socket = co_await acceptor.async_accept(net::redirect_error(net::use_awaitable, ec));
    if (ec == net::error::operation_aborted) co_return;
    if (ec) continue;  // e.g. out of descriptors for a moment: the client retries
    socket.set_option(tcp::no_delay(true), ec);
    net::co_spawn(acceptor.get_executor(), serve(std::move(socket), port, s), net::detached);
  }
}

net::awaitable<void> report_progress(sink_state& s) {
  net::steady_timer tick(co_await net::this_coro::executor);
  for (;;) {
    if (s.delivered.size() != s.reported_delivered || s.records.size() != s.reported_received) {
      s.reported_delivered = s.delivered.size();
      s.reported_received = s.records.size();
      std::printf("delivered %zu received %zu\n", s.reported_delivered, s.reported_received);
      std::fflush(stdout);
    }
    tick.expires_after(std::chrono::milliseconds(10));  // batches output; nobody waits on it
    co_await tick.async_wait(net::use_awaitable);
  }
}

void write_records(const std::string& file, const sink_state& s) {
  std::FILE* out = std::fopen(file.c_str(), "w");
  if (out == nullptr) throw std::runtime_error("cannot write " + file);
  static const char* names[] = {"ok", "503", "drop", "bad"};
  for (const record& r : s.records)
    std::fprintf(out, "%llu %llu %u %s %d %d %llu\n", static_cast<unsigned long long>(r.id),
                 static_cast<unsigned long long>(r.attempt), r.port, names[static_cast<int>(r.answer)],
                 r.checksum_ok ? 1 : 0, r.redelivered ? 1 : 0, static_cast<unsigned long long>(r.latency_ns));
  if (std::fclose(out) != 0) throw std::runtime_error("cannot write " + file);
}

std::uint32_t ppm(double fraction) { return static_cast<std::uint32_t>(fraction * 1'000'000 + 0.5); }

}  // namespace

int main(int argc, char** argv) {
  shmq::push::stop_signals::block();
  const shmq::push::args a(argc, argv, usage,
                           {"--endpoints", "--ports-out", "--records", "--fail", "--drop", "--slow", "--slow-ms",
                            "--seed"});
  try {
    shmq::push::raise_descriptor_limit();
    sink_state s;
    s.plan.seed = a.number("--seed", 1, 0, ~0ull);
    s.plan.fail_ppm = ppm(a.fraction("--fail", 0));
    s.plan.drop_ppm = ppm(a.fraction("--drop", 0));
    s.plan.slow_ppm = ppm(a.fraction("--slow", 0));
    if (s.plan.fail_ppm + s.plan.drop_ppm > 1'000'000) throw std::runtime_error("--fail + --drop over 1");
    s.slow_for = std::chrono::milliseconds(a.number("--slow-ms", 100, 0, 600'000));
    const std::size_t endpoints = a.number("--endpoints", 1000, 1, 20000);
    const std::string records = a.text("--records", "");

    net::io_context io(1);
    std::vector<std::unique_ptr<tcp::acceptor>> acceptors;
    std::ofstream ports(a.text("--ports-out", "ports.txt"));
    for (std::size_t i = 0; i < endpoints; ++i) {
      auto acc = std::make_unique<tcp::acceptor>(io, tcp::endpoint(net::ip::address_v4::loopback(), 0));
      ports << acc->local_endpoint().port() << '\n';
      acceptors.push_back(std::move(acc));
    }
    ports.close();
    if (!ports) throw std::runtime_error("cannot write the ports file");
    for (auto& acc : acceptors) net::co_spawn(io, listen(*acc, s), net::detached);
    net::co_spawn(io, report_progress(s), net::detached);
    shmq::push::stop_signals stop(io.get_executor());
    stop.async_wait([&] { io.stop(); });
    std::printf("ready\n");
    std::fflush(stdout);
    io.run();
    if (!records.empty()) write_records(records, s);
    std::printf("delivered %zu received %zu\n", s.delivered.size(), s.records.size());
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "shmq-push-sink: %s\n", e.what());
    return 1;
  }
}

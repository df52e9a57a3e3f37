// The gateway's HTTP/1.1 client: keep-alive connections pooled per endpoint, and one
// POST with a deadline. A connection goes back to the pool only after a complete answer
// that allows keep-alive; one that failed is closed.
#pragma once

#include <utility>  // first: Boost 1.74's awaitable.hpp uses std::exchange without it

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <unordered_map>
#include <vector>

namespace shmq::push {

namespace net = boost::asio;
namespace http = boost::beast::http;

struct connection {
  explicit connection(net::any_io_executor ex) : stream(std::move(ex)) {}
  boost::beast::tcp_stream stream;
  boost::beast::flat_buffer buffer;  // what the server sent beyond the last answer
};

// Idle connections by port, at most max_per_endpoint for one port and max_idle in all
// (beyond that a connection is closed instead of kept).
class connection_pool {
 public:
  connection_pool(std::size_t max_idle, std::size_t max_per_endpoint)
      : max_idle_(max_idle), max_per_endpoint_(max_per_endpoint) {}

  std::unique_ptr<connection> take(std::uint16_t port) {
    auto it = idle_.find(port);
    if (it == idle_.end() || it->second.empty()) return nullptr;
    auto c = std::move(it->second.back());
    it->second.pop_back();
    --count_;
    return c;
  }
  void give_back(std::uint16_t port, std::unique_ptr<connection> c) {
    auto& list = idle_[port];
    if (count_ >= max_idle_ || list.size() >= max_per_endpoint_) return;  // closed as it goes
    list.push_back(std::move(c));
    ++count_;
  }
  std::size_t idle() const noexcept { return count_; }

 private:
  std::size_t max_idle_, max_per_endpoint_;
  std::size_t count_ = 0;
  std::unordered_map<std::uint16_t, std::vector<std::unique_ptr<connection>>> idle_;
};

enum class post_outcome {
  ok,                // 2xx
  server_error,      // 5xx: retry
  rejected,          // any other status: retrying will not help
  connection_error,  // refused, reset, closed without an answer: retry
  timed_out,         // no complete answer within the deadline: retry
};

struct post_result {
  post_outcome outcome;
  unsigned status = 0;  // the HTTP status, 0 without an answer
  bool reconnected = false;  // a pooled connection failed and the request went again on a new one
};

inline post_outcome classify(unsigned status) {
  if (status >= 200 && status < 300) return post_outcome::ok;
  if (status >= 500 && status < 600) return post_outcome::server_error;
  return post_outcome::rejected;
}

// POSTs `req` to 127.0.0.1:port within `timeout` (connect, write and read each get the
// whole deadline afresh). A failure on a pooled connection other than the deadline is
// taken for a connection the server had closed while it sat idle: the request goes once
// more on a new connection before it counts as an attempt that failed. If the server had
// read it, that is an ambiguous retry; the sink counts them.
inline net::awaitable<post_result> post(connection_pool& pool, std::uint16_t port,
                                        const http::request<http::string_body>& req,
                                        std::chrono::milliseconds timeout) {
  using boost::system::error_code;
  const auto ex = co_await net::this_coro::executor;
  const net::ip::tcp::endpoint where(net::ip::address_v4::loopback(), port);
  bool reconnected = false;
  for (;;) {
    std::unique_ptr<connection> c = reconnected ? nullptr : pool.take(port);
    const bool reused = c != nullptr;
    error_code ec;
    if (!c) {
      c = std::make_unique<connection>(ex);
      c->stream.expires_after(timeout);
      co_await c->stream.async_connect(where, net::redirect_error(net::use_awaitable, ec));
      if (ec)
        co_return post_result{ec == boost::beast::error::timeout ? post_outcome::timed_out
                                                                 : post_outcome::connection_error,
                              0, reconnected};
      c->stream.socket().set_option(net::ip::tcp::no_delay(true), ec);
    }
    c->stream.expires_after(timeout);
    co_await http::async_write(c->stream, req, net::redirect_error(net::use_awaitable, ec));
    http::response<http::string_body> res;
    if (!ec) co_await http::async_read(c->stream, c->buffer, res, net::redirect_error(net::use_awaitable, ec));
    if (ec) {
      if (ec == boost::beast::error::timeout) co_return post_result{post_outcome::timed_out, 0, reconnected};
      if (reused) {
        reconnected = true;
        continue;
      }
      co_return post_result{post_outcome::connection_error, 0, reconnected};
    }
    c->stream.expires_never();
    const unsigned status = res.result_int();
    if (res.keep_alive()) pool.give_back(port, std::move(c));
    co_return post_result{classify(status), status, reconnected};
  }
}

}  // namespace shmq::push

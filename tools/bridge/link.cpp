#include "link.hpp"

#include <cstdio>
#include <stdexcept>
#include <thread>
#include <utility>
#include <algorithm>

#include <amqp_tcp_socket.h>

namespace shmq_bridge {

std::string mask_url(const std::string& url) {
  const auto scheme = url.find("://");
  const auto start = scheme == std::string::npos ? 0 : scheme + 3;
  const auto at = url.find('@', start);
  if (at == std::string::npos) return url;
  const auto colon = url.find(':', start);
  if (colon == std::string::npos || colon > at) return url;
  return url.substr(0, colon + 1) + "***" + url.substr(at);
}

link::link(link_options options) : options_(std::move(options)), masked_(mask_url(options_.url)) {
  url_copy_ = options_.url;
  amqp_default_connection_info(&info_);
  if (amqp_parse_url(url_copy_.data(), &info_) != AMQP_STATUS_OK)
    throw std::runtime_error("malformed broker URL '" + masked_ +
                             "' (expected amqp://user:password@host:port/vhost)");
  // The socket is plain TCP: an amqps:// URL must not quietly go unencrypted.
  if (info_.ssl)
    throw std::runtime_error("broker URL '" + masked_ + "': amqps:// (TLS) is not supported by this build");
}

link::~link() {
  if (conn_ != nullptr) {
    amqp_channel_close(conn_, channel, AMQP_REPLY_SUCCESS);
    amqp_connection_close(conn_, AMQP_REPLY_SUCCESS);
  }
  drop();
}

void link::drop() noexcept {
  if (conn_ != nullptr) amqp_destroy_connection(std::exchange(conn_, nullptr));
}

std::string link::check(amqp_rpc_reply_t r, const char* what) const {
  switch (r.reply_type) {
    case AMQP_RESPONSE_NORMAL:
      return {};
    case AMQP_RESPONSE_NONE:
      return std::string(what) + ": missing reply";
    case AMQP_RESPONSE_LIBRARY_EXCEPTION:
      return std::string(what) + ": " + amqp_error_string2(r.library_error);
    case AMQP_RESPONSE_SERVER_EXCEPTION:
      if (r.reply.id == AMQP_CONNECTION_CLOSE_METHOD) {
        auto* m = static_cast<amqp_connection_close_t*>(r.reply.decoded);
        return std::string(what) + ": broker closed the connection: " +
               std::string(static_cast<char*>(m->reply_text.bytes), m->reply_text.len);
      }
      if (r.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
        auto* m = static_cast<amqp_channel_close_t*>(r.reply.decoded);
        return std::string(what) + ": broker closed the channel: " +
               std::string(static_cast<char*>(m->reply_text.bytes), m->reply_text.len);
      }
      return std::string(what) + ": broker error";
  }
  return std::string(what) + ": unknown reply";
}

std::string link::try_connect() {
  drop();
  conn_ = amqp_new_connection();
  amqp_socket_t* socket = amqp_tcp_socket_new(conn_);
  if (socket == nullptr) return "cannot create a socket";
  timeval tv{static_cast<long>(options_.connect_timeout.count()), 0};
  if (const int rc = amqp_socket_open_noblock(socket, info_.host, info_.port, &tv); rc != AMQP_STATUS_OK)
    return std::string("cannot connect to ") + masked_ + ": " + amqp_error_string2(rc);
  // The handshake and every later RPC time out instead of hanging on a silent broker.
  amqp_set_rpc_timeout(conn_, &tv);
  if (auto e = check(amqp_login(conn_, info_.vhost, 0, 131072, 30, AMQP_SASL_METHOD_PLAIN, info_.user,
                                info_.password),
                     "login");
      !e.empty())
    return e;
  amqp_channel_open(conn_, channel);
  return check(amqp_get_rpc_reply(conn_), "channel.open");
}

bool link::connect(const volatile bool& stop) {
  auto backoff = options_.backoff_min;
  while (!stop) {
    const std::string e = try_connect();
    if (e.empty()) {
      if (connects_++ > 0) ++reconnects_;
      std::fprintf(stderr, "shmq-bridge: connected to %s\n", masked_.c_str());
      return true;
    }
    drop();
    std::fprintf(stderr, "shmq-bridge: %s; retrying in %lld ms\n", e.c_str(),
                 static_cast<long long>(backoff.count()));
    std::this_thread::sleep_for(backoff);
    backoff = std::min(backoff * 2, options_.backoff_max);
  }
  return false;
}

}  // namespace shmq_bridge

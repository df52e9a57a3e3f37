// One AMQP connection and channel through rabbitmq-c 0.11, with what the library does not
// do: reconnection with exponential backoff, error text with the credentials masked.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include <amqp.h>

namespace shmq_bridge {

struct link_options {
  std::string url;  // amqp://user:pass@host:port/vhost
  std::chrono::milliseconds backoff_min{100};
  std::chrono::milliseconds backoff_max{5000};
  std::chrono::seconds connect_timeout{5};
};

// "amqp://user:secret@host/" -> "amqp://user:***@host/"
std::string mask_url(const std::string& url);

class link {
 public:
  explicit link(link_options options);  // throws std::runtime_error on a malformed URL
  link(const link&) = delete;
  link& operator=(const link&) = delete;
  ~link();

  // Connects (or reconnects) until it succeeds or `stop` becomes true, sleeping with
  // backoff between tries and saying so on stderr. Returns false only if stopped.
  bool connect(const volatile bool& stop);
  void drop() noexcept;  // closes the socket without a handshake
  bool connected() const noexcept { return conn_ != nullptr; }
  amqp_connection_state_t state() const noexcept { return conn_; }
  static constexpr amqp_channel_t channel = 1;

  // Turns a reply into text; empty means success.
  std::string check(amqp_rpc_reply_t reply, const char* what) const;
  std::uint64_t reconnects() const noexcept { return reconnects_; }
  const std::string& masked_url() const noexcept { return masked_; }

 private:
  std::string try_connect();
  link_options options_;
  amqp_connection_info info_{};
  std::string url_copy_;  // amqp_parse_url points into this
  std::string masked_;
  amqp_connection_state_t conn_ = nullptr;
  std::uint64_t connects_ = 0, reconnects_ = 0;
};

}  // namespace shmq_bridge

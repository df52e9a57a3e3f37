// Direction out: an shmq channel (MPMC, or a pub/sub group) -> an AMQP exchange, with
// publisher confirms. An shmq endpoint holds one view at a time, so a confirm window of W
// messages is W consumer endpoints of the same channel (W members of the group): each
// holds its view until the broker confirmed the message, and only then releases it.
// Killed at any moment, the bridge leaves every unconfirmed message in the ring, and the
// next consumer (the next member) gets it with redelivered() set.
#include <poll.h>

#include <unistd.h>

#include <charconv>
#include <chrono>
#include <cstdio>
#include <deque>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include <shmq/mpmc.hpp>
#include <shmq/pubsub.hpp>

#include "bridge.hpp"

namespace shmq_bridge {
namespace {

struct held {
  shmq::view view;
  std::uint64_t tag = 0;      // delivery tag of the latest publish on this connection
  std::uint64_t number = 0;   // this bridge's running number (part of the message id)
  bool redelivered = false;   // shmq said so, or we published it before
};

template <class Consumer>
class out_bridge {
 public:
  out_bridge(const config& c, counters& n, std::function<Consumer()> make)
      : c_(c), n_(n), link_(c.broker), make_(std::move(make)) {
    // A message id is short string on the wire: at most 255 bytes, the number included.
    id_ = c.source_id.substr(0, 200) + ":" + std::to_string(getpid()) + ":";
    id_prefix_ = id_.size();
    id_.reserve(id_prefix_ + 24);
    consumers_.reserve(c.confirm_window);
    slots_.reserve(c.confirm_window);
    grow();
  }

  int run() {
    while (!stop_requested) {
      if (consumers_.size() < c_.confirm_window && clock::now() >= next_grow_) grow();
      if (!link_.connected()) {
        if (!link_.connect(stop_requested)) break;
        if (auto e = setup(); !e.empty()) {
          std::fprintf(stderr, "shmq-bridge: %s\n", e.c_str());
          link_.drop();
          continue;
        }
        n_.reconnects = link_.reconnects();
        // Everything unconfirmed goes again, in its order, flagged.
        for (unsigned i : order_)
          if (!publish(i, true)) break;
      }
      const bool took = fill();
      const bool heard = link_.connected() && poll();
      if (!took && !heard && !free_.empty() && !order_.empty()) wait_for_work();
    }
    return 0;
  }

 private:
  std::string setup() {
    auto* s = link_.state();
    amqp_confirm_select(s, link::channel);
    if (auto e = link_.check(amqp_get_rpc_reply(s), "confirm.select"); !e.empty()) return e;
    if (!c_.queue.empty()) {
      amqp_table_t none{0, nullptr};
      amqp_queue_declare(s, link::channel, amqp_cstring_bytes(c_.queue.c_str()), 0, 1, 0, 0, none);
      if (auto e = link_.check(amqp_get_rpc_reply(s), "queue.declare"); !e.empty()) return e;
      if (!c_.exchange.empty()) {
        amqp_queue_bind(s, link::channel, amqp_cstring_bytes(c_.queue.c_str()),
                        amqp_cstring_bytes(c_.exchange.c_str()), amqp_cstring_bytes(c_.routing_key.c_str()),
                        none);
        if (auto e = link_.check(amqp_get_rpc_reply(s), "queue.bind"); !e.empty()) return e;
      }
    }
    next_tag_ = 1;
    return {};
  }

  // Takes views while the window has room: waits briefly only when nothing is in flight.
  // True if it took one.
  bool fill() {
    bool took = false;
    while (!free_.empty() && !stop_requested) {
      const unsigned i = free_.front();
      auto v = order_.empty() ? consumers_[i].read_for(std::chrono::milliseconds(50)) : consumers_[i].try_read();
      if (!v) {
        if (v.status() == shmq::status::corrupt) {
          std::fprintf(stderr, "shmq-bridge: channel '%s' is corrupt\n", c_.channel.c_str());
          stop_requested = true;
        }
        return took;
      }
      took = true;
      free_.pop_front();
      held& h = slots_[i];
      h.redelivered = v.redelivered();
      h.number = ++number_;
      h.view = std::move(v);
      order_.push_back(i);
      ++n_.forwarded;
      if (h.redelivered) ++n_.redelivered;
      n_.in_flight = order_.size();
      if (link_.connected() && !publish(i, false)) break;
    }
    return took;
  }

  // Room in the window, messages in flight, and nothing to do: sleeps until a frame
  // or a message may be there (or 50 ms), instead of spinning on both.
  void wait_for_work() {
    pollfd fds[2];
    nfds_t n = 0;
    if (link_.connected()) {
      auto* s = link_.state();
      if (amqp_frames_enqueued(s) || amqp_data_in_buffer(s)) return;
      fds[n++] = {amqp_get_sockfd(s), POLLIN, 0};
    }
    auto& next = consumers_[free_.front()];
    try {
      if (next.arm() == shmq::arm_result::ready) return;
      fds[n++] = {next.native_handle(), POLLIN, 0};
    } catch (const shmq::error&) {
      // No readiness descriptor (out of descriptors or wake slots): a short nap instead.
    }
    ::poll(fds, n, n == 2 ? 50 : 1);
  }

  bool publish(unsigned i, bool again) {
    held& h = slots_[i];
    if (again) {
      h.redelivered = true;
      ++n_.republished;
    }
    // SOURCE:PID:N, without an allocation: the prefix is there once, the number goes after.
    id_.resize(id_prefix_);
    char number[24];
    const auto end = std::to_chars(number, number + sizeof number, h.number).ptr;
    id_.append(number, end);
    amqp_basic_properties_t p{};
    p._flags = AMQP_BASIC_DELIVERY_MODE_FLAG | AMQP_BASIC_MESSAGE_ID_FLAG | AMQP_BASIC_CONTENT_TYPE_FLAG;
    p.delivery_mode = 2;
    p.message_id = {id_.size(), id_.data()};
    p.content_type = amqp_cstring_bytes("application/octet-stream");
    amqp_table_entry_t flag;
    if (h.redelivered) {
      flag.key = {redelivered_header.size(), const_cast<char*>(redelivered_header.data())};
      flag.value.kind = AMQP_FIELD_KIND_BOOLEAN;
      flag.value.value.boolean = 1;
      p._flags |= AMQP_BASIC_HEADERS_FLAG;
      p.headers = {1, &flag};
    }
    const auto data = h.view.data();
    amqp_bytes_t body{data.size(), const_cast<std::byte*>(data.data())};
    const int rc = amqp_basic_publish(link_.state(), link::channel, amqp_cstring_bytes(c_.exchange.c_str()),
                                      amqp_cstring_bytes(c_.routing_key.c_str()), 1, 0, &p, body);
    if (rc != AMQP_STATUS_OK) {
      std::fprintf(stderr, "shmq-bridge: publish: %s; reconnecting\n", amqp_error_string2(rc));
      link_.drop();
      return false;
    }
    h.tag = next_tag_++;
    return true;
  }

  // Confirms, nacks and returns; waits up to 50 ms for the first frame when the window
  // is full, never when there is room to take more. True if it handled a frame.
  bool poll() {
    for (bool heard = false;; heard = true) {
      amqp_frame_t f;
      timeval tv{0, free_.empty() ? 50000 : 0};
      const int rc = amqp_simple_wait_frame_noblock(link_.state(), &f, &tv);
      if (rc == AMQP_STATUS_TIMEOUT) return heard;
      if (rc != AMQP_STATUS_OK) {
        std::fprintf(stderr, "shmq-bridge: connection lost: %s; reconnecting\n", amqp_error_string2(rc));
        link_.drop();
        return true;
      }
      if (f.frame_type != AMQP_FRAME_METHOD) continue;
      switch (f.payload.method.id) {
        case AMQP_BASIC_ACK_METHOD: {
          auto* m = static_cast<amqp_basic_ack_t*>(f.payload.method.decoded);
          settle(m->delivery_tag, m->multiple, true);
          break;
        }
        case AMQP_BASIC_NACK_METHOD: {
          auto* m = static_cast<amqp_basic_nack_t*>(f.payload.method.decoded);
          settle(m->delivery_tag, m->multiple, false);
          break;
        }
        case AMQP_BASIC_RETURN_METHOD: {
          // Unroutable: its ack follows, but it reached no queue. Read the content off
          // the wire and mark the message to go again.
          amqp_message_t msg;
          amqp_read_message(link_.state(), link::channel, &msg, 0);
          amqp_destroy_message(&msg);
          returned_ = true;
          std::fprintf(stderr, "shmq-bridge: broker returned a message as unroutable (exchange '%s', key '%s'); publishing again\n",
                       c_.exchange.c_str(), c_.routing_key.c_str());
          break;
        }
        case AMQP_CHANNEL_CLOSE_METHOD:
        case AMQP_CONNECTION_CLOSE_METHOD:
          std::fprintf(stderr, "shmq-bridge: broker closed the connection; reconnecting\n");
          link_.drop();
          return true;
        default:
          break;
      }
      if (!free_.empty()) return true;
    }
  }

  void settle(std::uint64_t tag, bool multiple, bool ack) {
    std::vector<unsigned> again;
    for (auto it = order_.begin(); it != order_.end();) {
      held& h = slots_[*it];
      if (h.tag == tag || (multiple && h.tag < tag)) {
        if (ack && !returned_) {
          h.view.release();  // only now: the broker has it on disk
          ++n_.confirmed;
          free_.push_back(*it);
        } else {
          again.push_back(*it);
        }
        it = order_.erase(it);
        if (returned_ && h.tag == tag) returned_ = false;
      } else {
        ++it;
      }
    }
    for (unsigned i : again) {
      order_.push_back(i);
      if (!publish(i, true)) break;
    }
    n_.in_flight = order_.size();
  }

  // Attaches consumers until the window has one per message, or the channel has no room:
  // a pub/sub member that died holding a message keeps its place until the group's
  // orphan before it was taken (docs/limits.md), so a bridge restarted after a kill may
  // start with fewer and grows as the dead are retired (tried every 100 ms).
  void grow() {
    const std::size_t before = consumers_.size();
    try {
      while (consumers_.size() < c_.confirm_window) {
        consumers_.push_back(make_());
        slots_.emplace_back();
        free_.push_back(static_cast<unsigned>(consumers_.size() - 1));
      }
    } catch (const shmq::error& e) {
      if (e.code() != shmq::errc::limit_reached) throw;
      if (!short_said_) std::fprintf(stderr, "shmq-bridge: %s; a window of %zu for now\n", e.what(), consumers_.size());
      short_said_ = true;
    }
    if (short_said_ && consumers_.size() == c_.confirm_window && before < consumers_.size())
      std::fprintf(stderr, "shmq-bridge: the window is whole again (%zu)\n", consumers_.size());
    next_grow_ = clock::now() + std::chrono::milliseconds(100);
  }

  using clock = std::chrono::steady_clock;
  const config& c_;
  counters& n_;
  link link_;
  std::function<Consumer()> make_;
  std::string id_;  // the message id being published
  std::size_t id_prefix_ = 0;
  clock::time_point next_grow_{};
  bool short_said_ = false;
  std::vector<Consumer> consumers_;
  std::vector<held> slots_;
  std::deque<unsigned> free_, order_;  // order_: held views in the order they were taken
  std::uint64_t next_tag_ = 1, number_ = 0;
  bool returned_ = false;
};

}  // namespace

int run_out(const config& c, counters& n) {
  const auto endpoints = std::max<std::uint32_t>(16, c.confirm_window);
  if (c.pubsub) {
    auto o = channel_options<shmq::pubsub_options>(c);
    o.max_subscribers = endpoints;
    const shmq::subscription member{c.group, shmq::start_from::oldest};
    out_bridge<shmq::subscriber> b(c, n, [&] { return shmq::subscriber(c.channel, o, member); });
    return b.run();
  }
  auto o = channel_options<shmq::mpmc_options>(c);
  o.max_consumers = endpoints;
  out_bridge<shmq::mpmc_consumer> b(c, n, [&] { return shmq::mpmc_consumer(c.channel, o); });
  return b.run();
}

}  // namespace shmq_bridge

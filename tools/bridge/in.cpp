// Direction in: an AMQP queue -> an shmq channel (an MPMC producer, or a pub/sub
// publisher). Manual acks with a prefetch window; a delivery is acked (multiple=true, in
// batches) only after its shmq commit, so a bridge killed at any moment leaves every
// unacked delivery to the broker, which redelivers it with the redelivered flag set.
// With --envelope each message is written inside shmq/bridge/envelope.hpp's envelope:
// its message id and whether it may be a duplicate.
#include <chrono>
#include <cstdio>
#include <cstring>
#include <span>
#include <string_view>
#include <thread>

#include <shmq/bridge/envelope.hpp>
#include <shmq/mpmc.hpp>
#include <shmq/pubsub.hpp>

#include "bridge.hpp"

namespace shmq_bridge {
namespace {

std::string_view text(amqp_bytes_t b) { return {static_cast<const char*>(b.bytes), b.len}; }

// May be a duplicate: the broker redelivered it, or bridge out published it again.
bool flagged(const amqp_envelope_t& e) {
  if (e.redelivered) return true;
  const auto& p = e.message.properties;
  if (!(p._flags & AMQP_BASIC_HEADERS_FLAG)) return false;
  for (int i = 0; i < p.headers.num_entries; ++i) {
    const auto& entry = p.headers.entries[i];
    if (text(entry.key) == redelivered_header && entry.value.kind == AMQP_FIELD_KIND_BOOLEAN &&
        entry.value.value.boolean)
      return true;
  }
  return false;
}

std::string_view message_id(const amqp_envelope_t& e) {
  const auto& p = e.message.properties;
  return (p._flags & AMQP_BASIC_MESSAGE_ID_FLAG) ? text(p.message_id) : std::string_view{};
}

std::string setup(link& l, const config& c) {
  auto* s = l.state();
  amqp_queue_declare(s, link::channel, amqp_cstring_bytes(c.queue.c_str()), 0, 1, 0, 0, amqp_empty_table);
  if (auto e = l.check(amqp_get_rpc_reply(s), "queue.declare"); !e.empty()) return e;
  amqp_basic_qos(s, link::channel, 0, static_cast<std::uint16_t>(c.prefetch), 0);
  if (auto e = l.check(amqp_get_rpc_reply(s), "basic.qos"); !e.empty()) return e;
  amqp_basic_consume(s, link::channel, amqp_cstring_bytes(c.queue.c_str()), amqp_empty_bytes, 0, 0, 0,
                     amqp_empty_table);
  return l.check(amqp_get_rpc_reply(s), "basic.consume");
}

// Pub/sub delivers to the subscriptions that exist: with no subscriber on channel B, a
// message written would be nobody's once the ring wraps, and acked it would be lost. So
// the bridge holds it (unacked) until one attaches. (A subscriber that died and is not
// retired yet still counts: docs/bridge.md.)
bool audience(const shmq::mpmc_producer&) { return true; }
bool audience(const shmq::publisher& p) { return p.subscribers() > 0; }

// Writes one delivery into the channel, waiting for an audience and for room (in 100 ms
// steps, to notice a stop): ok, too_large, or why not.
template <class Producer>
shmq::status write(Producer& producer, const config& c, const amqp_envelope_t& env) {
  const std::span body(static_cast<const std::byte*>(env.message.body.bytes), env.message.body.len);
  const std::size_t size = c.envelope ? shmq::bridge::envelope_size(message_id(env), body.size()) : body.size();
  if (!audience(producer)) {
    std::fprintf(stderr, "shmq-bridge: waiting for a subscriber on channel '%s'\n", c.channel.c_str());
    while (!audience(producer) && !stop_requested) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    if (stop_requested) return shmq::status::timed_out;
  }
  for (;;) {
    shmq::loan l = producer.loan_for(size, std::chrono::milliseconds(100));
    if (!l) {
      if (l.status() == shmq::status::timed_out && !stop_requested) continue;
      return l.status();
    }
    if (c.envelope)
      shmq::bridge::write_envelope(l.data(), flagged(env), message_id(env), body);
    else if (!body.empty())
      std::memcpy(l.data().data(), body.data(), body.size());
    return l.commit();
  }
}

template <class Producer>
int run(Producer producer, const config& c, counters& n) {
  link l(c.broker);
  std::uint64_t last_tag = 0;  // committed to shmq, not yet acked
  unsigned unacked = 0;
  const auto ack = [&] {
    if (unacked == 0) return;
    if (amqp_basic_ack(l.state(), link::channel, last_tag, 1) != AMQP_STATUS_OK) l.drop();
    n.confirmed += unacked;
    unacked = 0;
    n.in_flight = 0;
  };
  while (!stop_requested) {
    if (!l.connected()) {
      unacked = 0;  // tags of a lost connection mean nothing: the broker redelivers them
      if (!l.connect(stop_requested)) break;
      if (auto e = setup(l, c); !e.empty()) {
        std::fprintf(stderr, "shmq-bridge: %s\n", e.c_str());
        l.drop();
        continue;
      }
      n.reconnects = l.reconnects();
    }
    amqp_maybe_release_buffers(l.state());
    amqp_envelope_t env;
    timeval tv{0, 50000};
    const amqp_rpc_reply_t r = amqp_consume_message(l.state(), &env, &tv, 0);
    if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION && r.library_error == AMQP_STATUS_TIMEOUT) {
      ack();  // idle: settle what is committed
      continue;
    }
    if (r.reply_type != AMQP_RESPONSE_NORMAL) {
      std::fprintf(stderr, "shmq-bridge: %s; reconnecting\n", l.check(r, "consume").c_str());
      l.drop();
      continue;
    }
    if (flagged(env)) ++n.redelivered;
    const shmq::status st = write(producer, c, env);
    if (st == shmq::status::ok) {
      ++n.forwarded;
      last_tag = env.delivery_tag;
      ++unacked;
      n.in_flight = unacked;
      if (unacked >= c.ack_every) ack();
    } else if (st == shmq::status::too_large) {
      std::fprintf(stderr, "shmq-bridge: a %zu-byte message is over channel '%s''s maximum; rejecting it\n",
                   static_cast<std::size_t>(env.message.body.len), c.channel.c_str());
      ack();
      amqp_basic_reject(l.state(), link::channel, env.delivery_tag, 0);
    } else if (!stop_requested) {
      std::fprintf(stderr, "shmq-bridge: channel '%s': %s\n", c.channel.c_str(), shmq::to_string(st));
      stop_requested = true;  // unacked: the broker keeps it
    }
    amqp_destroy_envelope(&env);
  }
  if (l.connected()) ack();
  return 0;
}

}  // namespace

int run_in(const config& c, counters& n) {
  if (c.pubsub) return run(shmq::publisher(c.channel, channel_options<shmq::pubsub_options>(c)), c, n);
  return run(shmq::mpmc_producer(c.channel, channel_options<shmq::mpmc_options>(c)), c, n);
}

}  // namespace shmq_bridge

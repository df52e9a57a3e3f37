// Direction in: an AMQP queue -> an shmq MPMC channel. Manual acks with a prefetch
// window; a delivery is acked (multiple=true, in batches) only after its shmq commit, so
// a bridge killed at any moment leaves every unacked delivery to the broker, which
// redelivers it with the redelivered flag set.
#include <chrono>
#include <cstdio>
#include <span>

#include <shmq/mpmc.hpp>

#include "bridge.hpp"

namespace shmq_bridge {
namespace {

bool flagged(const amqp_envelope_t& e) {
  if (e.redelivered) return true;
  const auto& p = e.message.properties;
  if (!(p._flags & AMQP_BASIC_HEADERS_FLAG)) return false;
  for (int i = 0; i < p.headers.num_entries; ++i) {
    const auto& entry = p.headers.entries[i];
    const std::string_view key(static_cast<const char*>(entry.key.bytes), entry.key.len);
    if (key == "x-shmq-redelivered" && entry.value.kind == AMQP_FIELD_KIND_BOOLEAN && entry.value.value.boolean)
      return true;
  }
  return false;
}

std::string setup(link& l, const config& c) {
  auto* s = l.state();
  amqp_table_t none{0, nullptr};
  amqp_queue_declare(s, link::channel, amqp_cstring_bytes(c.queue.c_str()), 0, 1, 0, 0, none);
  if (auto e = l.check(amqp_get_rpc_reply(s), "queue.declare"); !e.empty()) return e;
  amqp_basic_qos(s, link::channel, 0, static_cast<std::uint16_t>(c.prefetch), 0);
  if (auto e = l.check(amqp_get_rpc_reply(s), "basic.qos"); !e.empty()) return e;
  amqp_basic_consume(s, link::channel, amqp_cstring_bytes(c.queue.c_str()), amqp_empty_bytes, 0, 0, 0, none);
  return l.check(amqp_get_rpc_reply(s), "basic.consume");
}

}  // namespace

int run_in(const config& c, counters& n) {
  shmq::mpmc_options o;
  o.slots = c.slots;
  o.max_message_size = c.max_message_size;
  shmq::mpmc_producer producer(c.channel, o);
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
    const auto body = std::span(static_cast<const std::byte*>(env.message.body.bytes), env.message.body.len);
    if (flagged(env)) ++n.redelivered;
    shmq::status st = shmq::status::timed_out;
    while (!stop_requested && (st = producer.push_for(body, std::chrono::milliseconds(100))) == shmq::status::timed_out) {
    }
    if (st == shmq::status::ok) {
      ++n.forwarded;
      last_tag = env.delivery_tag;
      ++unacked;
      n.in_flight = unacked;
      if (unacked >= c.ack_every) ack();
    } else if (st == shmq::status::too_large) {
      std::fprintf(stderr, "shmq-bridge: a %zu-byte message is over channel '%s''s maximum; rejecting it\n",
                   body.size(), c.channel.c_str());
      ack();
      amqp_basic_reject(l.state(), link::channel, env.delivery_tag, 0);
    }
    amqp_destroy_envelope(&env);
  }
  if (l.connected()) ack();
  return 0;
}

}  // namespace shmq_bridge

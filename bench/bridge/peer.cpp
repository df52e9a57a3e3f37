// The ends of the bridge benchmark (bench/bridge/run.py drives them, one run, one broker).
//   bridge-bench-peer amqp-publish URL QUEUE COUNT SIZE WINDOW RATE   the baseline: a direct
//       rabbitmq-c publisher, persistent, with publisher confirms in a window of WINDOW
//   bridge-bench-peer amqp-consume URL QUEUE COUNT PREFETCH ACK_EVERY  its direct consumer
//   bridge-bench-peer shmq-produce CHANNEL COUNT SIZE RATE              into channel A
//   bridge-bench-peer shmq-consume CHANNEL COUNT FORM                   from channel B, FORM
//       envelope (shmq-bridge in --envelope) or raw
// RATE is messages per second, 0 for as fast as it goes. Each message is
// | time (steady clock, ns: sent, or due when paced) | stamped message (sequence, checksum, payload) |; the
// consumers check it and print one JSON line: throughput from the first send to the last
// arrival, and latency percentiles. The publisher prints its confirmed rate.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include <shmq/bridge/envelope.hpp>
#include <shmq/mpmc.hpp>

#include "link.hpp"
#include "stamped_message.hpp"

namespace {

using clock_type = std::chrono::steady_clock;
constexpr std::size_t time_size = 8;

std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(clock_type::now().time_since_epoch()).count();
}

// Fills buf with message seq. Paced, the time in it is when the message was due, not when
// the sender got round to it: a publisher held back by a full window (or a full channel)
// counts that wait in the latency instead of hiding it.
struct sender {
  std::vector<std::byte> buf;
  std::int64_t start = 0;
  double rate;
  sender(std::size_t size, double r) : buf(size), rate(r) {}
  std::int64_t due(std::uint64_t seq) const {
    return start + static_cast<std::int64_t>(1e9 * static_cast<double>(seq) / (rate > 0 ? rate : 1));
  }
  std::span<const std::byte> next(std::uint64_t seq) {
    if (seq == 0) start = now_ns();
    std::int64_t t = due(seq);
    if (rate > 0)
      std::this_thread::sleep_until(clock_type::time_point(std::chrono::nanoseconds(t)));
    else
      t = now_ns();
    shmq::stamped::fill(std::span(buf).subspan(time_size), seq);
    std::memcpy(buf.data(), &t, time_size);
    return buf;
  }
};

// What a consumer saw: each sequence number once, its latency, the span of the run.
struct receiver {
  std::vector<std::uint8_t> seen;
  std::vector<std::int64_t> latency;
  std::int64_t first_send = INT64_MAX, last_arrival = 0;
  std::uint64_t distinct = 0, duplicates = 0;
  explicit receiver(std::uint64_t count) : seen(count) { latency.reserve(count); }
  bool done() const { return distinct == seen.size(); }
  // False on a message that is not intact.
  bool take(std::span<const std::byte> m) {
    const std::int64_t t = now_ns();
    std::uint64_t seq;
    if (m.size() < time_size || shmq::stamped::check(m.subspan(time_size), seq) != shmq::stamped::verdict::ok ||
        seq >= seen.size())
      return false;
    if (seen[seq]++ != 0) {
      ++duplicates;
      return true;
    }
    std::int64_t sent;
    std::memcpy(&sent, m.data(), time_size);
    first_send = std::min(first_send, sent);
    last_arrival = t;
    latency.push_back(t - sent);
    ++distinct;
    return true;
  }
  void print() {
    std::sort(latency.begin(), latency.end());
    const auto pct = [&](double p) {
      return latency.empty() ? 0.0 : latency[std::min(latency.size() - 1, static_cast<std::size_t>(p * latency.size()))] / 1e3;
    };
    const double seconds = (last_arrival - first_send) / 1e9;
    std::printf("{\"count\": %llu, \"duplicates\": %llu, \"seconds\": %.4f, \"msgs_per_s\": %.1f, \"p50_us\": %.1f, "
                "\"p99_us\": %.1f}\n",
                static_cast<unsigned long long>(distinct), static_cast<unsigned long long>(duplicates), seconds,
                distinct / seconds, pct(0.50), pct(0.99));
  }
};

const volatile bool never = false;

bool declare(shmq_bridge::link& l, const char* queue) {
  amqp_queue_declare(l.state(), l.channel, amqp_cstring_bytes(queue), 0, 1, 0, 0, amqp_empty_table);
  if (auto e = l.check(amqp_get_rpc_reply(l.state()), "queue.declare"); !e.empty()) {
    std::fprintf(stderr, "%s\n", e.c_str());
    return false;
  }
  return true;
}

int amqp_publish(const char* url, const char* queue, std::uint64_t count, std::size_t size, unsigned window,
                 double rate) {
  shmq_bridge::link l(shmq_bridge::link_options{url});
  l.connect(never);
  if (!declare(l, queue)) return 1;
  amqp_confirm_select(l.state(), l.channel);
  if (auto e = l.check(amqp_get_rpc_reply(l.state()), "confirm.select"); !e.empty()) return 1;
  sender s(size, rate);
  std::uint64_t sent = 0, confirmed = 0;
  std::vector<std::uint8_t> acked(count + 1);  // by delivery tag
  std::uint64_t lowest = 1;                     // every tag below is acked
  std::int64_t first = 0;
  char id[64];
  while (confirmed < count) {
    while (sent < count && sent - confirmed < window) {
      const auto m = s.next(sent);
      if (sent == 0) first = now_ns();
      std::snprintf(id, sizeof id, "direct:%llu", static_cast<unsigned long long>(sent + 1));
      amqp_basic_properties_t p{};
      p._flags = AMQP_BASIC_DELIVERY_MODE_FLAG | AMQP_BASIC_MESSAGE_ID_FLAG | AMQP_BASIC_CONTENT_TYPE_FLAG;
      p.delivery_mode = 2;
      p.message_id = amqp_cstring_bytes(id);
      p.content_type = amqp_cstring_bytes("application/octet-stream");
      if (amqp_basic_publish(l.state(), l.channel, amqp_empty_bytes, amqp_cstring_bytes(queue), 1, 0, &p,
                             {m.size(), const_cast<std::byte*>(m.data())}) != AMQP_STATUS_OK)
        return 1;
      ++sent;
      if (rate > 0) break;  // paced: look for confirms between sends
    }
    // Paced with room in the window: read confirms until the next message is due.
    std::int64_t wait_us = 500000;
    if (rate > 0 && sent < count && sent - confirmed < window)
      wait_us = std::clamp<std::int64_t>((s.due(sent) - now_ns()) / 1000, 0, 500000);
    amqp_frame_t f;
    timeval tv{0, static_cast<long>(wait_us)};
    const int rc = amqp_simple_wait_frame_noblock(l.state(), &f, &tv);
    if (rc == AMQP_STATUS_TIMEOUT) continue;
    if (rc != AMQP_STATUS_OK) return 1;
    if (f.frame_type != AMQP_FRAME_METHOD) continue;
    if (f.payload.method.id == AMQP_BASIC_NACK_METHOD) {
      std::fprintf(stderr, "amqp-publish: nack\n");
      return 1;
    }
    if (f.payload.method.id != AMQP_BASIC_ACK_METHOD) continue;
    const auto* a = static_cast<amqp_basic_ack_t*>(f.payload.method.decoded);
    const std::uint64_t tag = std::min<std::uint64_t>(a->delivery_tag, count);
    for (std::uint64_t t = a->multiple ? lowest : tag; t <= tag; ++t)
      if (acked[t] == 0) acked[t] = 1, ++confirmed;
    while (lowest <= count && acked[lowest] != 0) ++lowest;
  }
  const double seconds = (now_ns() - first) / 1e9;
  std::printf("{\"confirmed\": %llu, \"seconds\": %.4f, \"msgs_per_s\": %.1f}\n",
              static_cast<unsigned long long>(confirmed), seconds, confirmed / seconds);
  return 0;
}

int amqp_consume(const char* url, const char* queue, std::uint64_t count, unsigned prefetch, unsigned ack_every) {
  shmq_bridge::link l(shmq_bridge::link_options{url});
  l.connect(never);
  if (!declare(l, queue)) return 1;
  amqp_basic_qos(l.state(), l.channel, 0, static_cast<std::uint16_t>(prefetch), 0);
  amqp_basic_consume(l.state(), l.channel, amqp_cstring_bytes(queue), amqp_empty_bytes, 0, 0, 0, amqp_empty_table);
  if (auto e = l.check(amqp_get_rpc_reply(l.state()), "basic.consume"); !e.empty()) return 1;
  receiver r(count);
  std::uint64_t last_tag = 0;
  unsigned unacked = 0;
  while (!r.done()) {
    amqp_maybe_release_buffers(l.state());
    amqp_envelope_t env;
    timeval tv{0, 50000};
    const auto reply = amqp_consume_message(l.state(), &env, &tv, 0);
    if (reply.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION && reply.library_error == AMQP_STATUS_TIMEOUT) {
      if (unacked > 0) amqp_basic_ack(l.state(), l.channel, last_tag, 1);
      unacked = 0;
      continue;
    }
    if (reply.reply_type != AMQP_RESPONSE_NORMAL) return 1;
    const bool ok = r.take({static_cast<const std::byte*>(env.message.body.bytes), env.message.body.len});
    last_tag = env.delivery_tag;
    amqp_destroy_envelope(&env);
    if (!ok) return 1;
    if (++unacked >= ack_every) {
      amqp_basic_ack(l.state(), l.channel, last_tag, 1);
      unacked = 0;
    }
  }
  if (unacked > 0) amqp_basic_ack(l.state(), l.channel, last_tag, 1);
  r.print();
  return 0;
}

// As run.py's bridges make them: room for a 4 KiB message and its envelope; on channel A,
// as many consumers as the confirm window (shmq-bridge out's endpoints). The ends do not
// spin before sleeping: on two cores shared with the broker, spinning takes its CPU.
shmq::mpmc_options channel_options(std::uint32_t consumers) {
  shmq::mpmc_options o;
  o.spin = std::chrono::nanoseconds(0);
  o.slots = 1024;
  o.max_message_size = 8192;
  o.max_consumers = consumers;
  return o;
}

int shmq_produce(const char* name, std::uint64_t count, std::size_t size, double rate) {
  shmq::mpmc_producer p(name, channel_options(64));
  sender s(size, rate);
  for (std::uint64_t seq = 0; seq < count; ++seq)
    if (p.push(s.next(seq)) != shmq::status::ok) return 1;
  return 0;
}

int shmq_consume(const char* name, std::uint64_t count, bool enveloped) {
  shmq::mpmc_consumer c(name, channel_options(16));
  receiver r(count);
  while (!r.done()) {
    const shmq::view v = c.read_for(std::chrono::seconds(1));
    if (!v) continue;
    shmq::bridge::envelope e;
    if (!enveloped)
      e.body = v.data();
    else if (shmq::bridge::parse_envelope(v.data(), e) != shmq::bridge::envelope_result::ok)
      e.body = {};
    if (!r.take(e.body)) {
      std::fprintf(stderr, "shmq-consume: a message that is not intact (%zu bytes)\n", v.size());
      return 1;
    }
  }
  r.print();
  return 0;
}

std::uint64_t number(const char* s) { return std::strtoull(s, nullptr, 10); }

}  // namespace

int main(int argc, char** argv) {
  const std::string mode = argc > 1 ? argv[1] : "";
  if (mode == "amqp-publish" && argc == 8)
    return amqp_publish(argv[2], argv[3], number(argv[4]), number(argv[5]), static_cast<unsigned>(number(argv[6])),
                        std::strtod(argv[7], nullptr));
  if (mode == "amqp-consume" && argc == 7)
    return amqp_consume(argv[2], argv[3], number(argv[4]), static_cast<unsigned>(number(argv[5])),
                        static_cast<unsigned>(number(argv[6])));
  if (mode == "shmq-produce" && argc == 6)
    return shmq_produce(argv[2], number(argv[3]), number(argv[4]), std::strtod(argv[5], nullptr));
  if (mode == "shmq-consume" && argc == 5 && (std::strcmp(argv[4], "envelope") == 0 || std::strcmp(argv[4], "raw") == 0))
    return shmq_consume(argv[2], number(argv[3]), std::strcmp(argv[4], "envelope") == 0);
  std::fprintf(stderr,
               "usage: bridge-bench-peer amqp-publish URL QUEUE COUNT SIZE WINDOW RATE | amqp-consume URL QUEUE COUNT "
               "PREFETCH ACK_EVERY | shmq-produce CHANNEL COUNT SIZE RATE | shmq-consume CHANNEL COUNT envelope|raw\n");
  return 2;
}

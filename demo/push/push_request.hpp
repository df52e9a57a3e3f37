// One push request as it travels through the queue: where to POST it (a port on
// 127.0.0.1 and a path), its id, the time it was enqueued, and its body. The record is
// a stamped message (demo/stamped_message.hpp): its id is the sequence number and its
// checksum covers everything after it, so a torn or forged record is caught before it is
// sent. The body has a checksum of its own, sent along as X-Push-Checksum, which the
// sink checks end to end.
//
//   0    8         16     20    22         24         28    32           40            48
//   | id | record  | magic| port| path_len | body_len | 0   | enqueued_ns | body_sum    | path | body |
//   |    | checksum|
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "stamped_message.hpp"

namespace shmq::push {

inline constexpr std::uint32_t magic = 0x31485350;  // "PSH1"
inline constexpr std::size_t header_size = 48;
inline constexpr std::size_t max_path = 256;

// The steady clock in nanoseconds: CLOCK_MONOTONIC on Linux, the clock every process of
// the host shares, so enqueue-to-delivery latency can be taken across processes.
inline std::uint64_t now_ns() noexcept {
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
          .count());
}

inline std::uint64_t body_checksum(std::uint64_t id, std::string_view body) noexcept {
  return stamped::checksum(id, std::as_bytes(std::span(body.data(), body.size())));
}

// A record read back from the queue; its views point into the message.
struct request {
  std::uint64_t id = 0;
  std::uint16_t port = 0;
  std::uint64_t enqueued_ns = 0;
  std::uint64_t body_sum = 0;
  std::string_view path;
  std::string_view body;
};

inline std::size_t encoded_size(std::string_view path, std::string_view body) noexcept {
  return header_size + path.size() + body.size();
}

// Writes the record into out (encoded_size bytes); the caller checked the sizes.
inline void encode(std::span<std::byte> out, std::uint64_t id, std::uint16_t port, std::string_view path,
                   std::string_view body, std::uint64_t enqueued_ns) noexcept {
  auto put = [&](std::size_t at, const auto& value) { std::memcpy(out.data() + at, &value, sizeof value); };
  put(16, magic);
  put(20, port);
  put(22, static_cast<std::uint16_t>(path.size()));
  put(24, static_cast<std::uint32_t>(body.size()));
  put(28, std::uint32_t{0});
  put(32, enqueued_ns);
  put(40, body_checksum(id, body));
  std::memcpy(out.data() + header_size, path.data(), path.size());
  std::memcpy(out.data() + header_size + path.size(), body.data(), body.size());
  const std::uint64_t sum = stamped::checksum(id, out.subspan(stamped::header_size));
  put(0, id);
  put(8, sum);
}

enum class decode_error { none, too_short, bad_checksum, bad_magic, bad_lengths, bad_body_checksum };

inline const char* to_string(decode_error e) noexcept {
  switch (e) {
    case decode_error::none: return "none";
    case decode_error::too_short: return "too_short";
    case decode_error::bad_checksum: return "bad_checksum";
    case decode_error::bad_magic: return "bad_magic";
    case decode_error::bad_lengths: return "bad_lengths";
    case decode_error::bad_body_checksum: return "bad_body_checksum";
  }
  return "unknown";
}

// Checks everything before trusting anything: the record checksum, the magic, that the
// lengths add up to the message's size exactly, the body checksum, and a non-zero port.
inline decode_error decode(std::span<const std::byte> in, request& out) noexcept {
  if (in.size() < header_size) return decode_error::too_short;
  std::uint64_t id = 0;
  if (stamped::check(in, id) != stamped::verdict::ok) return decode_error::bad_checksum;
  auto get = [&](std::size_t at, auto& value) { std::memcpy(&value, in.data() + at, sizeof value); };
  std::uint32_t m = 0, body_len = 0;
  std::uint16_t port = 0, path_len = 0;
  get(16, m);
  if (m != magic) return decode_error::bad_magic;
  get(20, port);
  get(22, path_len);
  get(24, body_len);
  if (port == 0 || path_len == 0 || path_len > max_path ||
      in.size() - header_size != static_cast<std::size_t>(path_len) + body_len)
    return decode_error::bad_lengths;
  out.id = id;
  out.port = port;
  get(32, out.enqueued_ns);
  get(40, out.body_sum);
  const char* text = reinterpret_cast<const char*>(in.data()) + header_size;
  out.path = std::string_view(text, path_len);
  out.body = std::string_view(text + path_len, body_len);
  if (out.path.front() != '/') return decode_error::bad_lengths;
  if (body_checksum(id, out.body) != out.body_sum) return decode_error::bad_body_checksum;
  return decode_error::none;
}

// The body of push `id`: a small JSON notification of `size` bytes (at least its
// fixed part), derived from the id so every process can rebuild and check it.
inline std::string make_body(std::uint64_t id, std::size_t size) {
  std::string body = "{\"push\":" + std::to_string(id) + ",\"user\":" + std::to_string(stamped::mix(id) % 1000000) +
                     ",\"text\":\"";
  const std::size_t tail = 2;  // "}
  const char* alphabet = "abcdefghijklmnopqrstuvwxyz0123456789";
  std::uint64_t state = stamped::mix(id ^ 0x5eed);
  while (body.size() + tail < size) {
    body.push_back(alphabet[state % 36]);
    state = stamped::mix(state);
  }
  body += "\"}";
  return body;
}

}  // namespace shmq::push

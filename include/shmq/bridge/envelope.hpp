// The envelope shmq-bridge in writes around each message when started with --envelope,
// so that a consumer on host B sees what it needs to deduplicate: the message id and
// whether the message may be a duplicate. Header-only; docs/bridge.md has the contract.
//
//   0      4        5          6             6+L
//   | "SQB1" | flags | id length L | message id | body (the AMQP body as published) |
//
// flags bit 0: redelivered (the broker redelivered it, or bridge out published it again
// or took it again from channel A after a crash). Other bits are zero in this version.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string_view>

namespace shmq::bridge {

inline constexpr std::size_t envelope_header_size = 6;
inline constexpr std::size_t max_message_id_size = 255;
inline constexpr char envelope_magic[4] = {'S', 'Q', 'B', '1'};
inline constexpr std::uint8_t envelope_redelivered = 1;

struct envelope {
  bool redelivered = false;
  std::string_view message_id;     // points into the parsed bytes
  std::span<const std::byte> body;  // likewise
};

enum class envelope_result { ok, too_short, bad_magic, bad_flags, bad_id_length };

inline const char* to_string(envelope_result r) noexcept {
  switch (r) {
    case envelope_result::ok: return "ok";
    case envelope_result::too_short: return "shorter than an envelope header";
    case envelope_result::bad_magic: return "not an shmq-bridge envelope";
    case envelope_result::bad_flags: return "unknown envelope flags";
    case envelope_result::bad_id_length: return "message id longer than the message";
  }
  return "unknown";
}

// Bytes an envelope of this id and body takes (the id is cut at max_message_id_size).
inline std::size_t envelope_size(std::string_view id, std::size_t body_size) noexcept {
  return envelope_header_size + (id.size() < max_message_id_size ? id.size() : max_message_id_size) + body_size;
}

// Writes the envelope into out, which holds envelope_size(id, body.size()) bytes.
inline void write_envelope(std::span<std::byte> out, bool redelivered, std::string_view id,
                           std::span<const std::byte> body) noexcept {
  if (id.size() > max_message_id_size) id = id.substr(0, max_message_id_size);
  std::memcpy(out.data(), envelope_magic, 4);
  out[4] = static_cast<std::byte>(redelivered ? envelope_redelivered : 0);
  out[5] = static_cast<std::byte>(id.size());
  std::memcpy(out.data() + envelope_header_size, id.data(), id.size());
  if (!body.empty()) std::memcpy(out.data() + envelope_header_size + id.size(), body.data(), body.size());
}

// Checks every length against the message before pointing into it.
inline envelope_result parse_envelope(std::span<const std::byte> in, envelope& out) noexcept {
  if (in.size() < envelope_header_size) return envelope_result::too_short;
  if (std::memcmp(in.data(), envelope_magic, 4) != 0) return envelope_result::bad_magic;
  const auto flags = static_cast<std::uint8_t>(in[4]);
  if ((flags & ~envelope_redelivered) != 0) return envelope_result::bad_flags;
  const std::size_t id_size = static_cast<std::uint8_t>(in[5]);
  if (envelope_header_size + id_size > in.size()) return envelope_result::bad_id_length;
  out.redelivered = (flags & envelope_redelivered) != 0;
  out.message_id = {reinterpret_cast<const char*>(in.data()) + envelope_header_size, id_size};
  out.body = in.subspan(envelope_header_size + id_size);
  return envelope_result::ok;
}

}  // namespace shmq::bridge

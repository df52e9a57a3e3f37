// A dead letter: the record a worker gave up on, behind a 16-byte header that says why.
//
//   0      4          8             12       16
//   | magic| attempts | last_status | reason | original record (push_request.hpp) |
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>

namespace shmq::push {

inline constexpr std::uint32_t dead_magic = 0x314c4450;  // "PDL1"
inline constexpr std::size_t dead_header_size = 16;

enum class dead_reason : std::uint32_t {
  failed_attempts = 1,  // R attempts ended in a connection error, a timeout or a 5xx
  rejected = 2,         // the endpoint answered 4xx: retrying will not help
  malformed = 3,        // the record failed its checks (push_request.hpp decode)
};

inline const char* to_string(dead_reason r) noexcept {
  switch (r) {
    case dead_reason::failed_attempts: return "failed_attempts";
    case dead_reason::rejected: return "rejected";
    case dead_reason::malformed: return "malformed";
  }
  return "unknown";
}

struct dead_header {
  std::uint32_t attempts = 0;
  std::uint32_t last_status = 0;
  dead_reason reason = dead_reason::failed_attempts;
};

inline void encode_dead(std::span<std::byte> out, const dead_header& h, std::span<const std::byte> record) noexcept {
  const std::uint32_t words[4] = {dead_magic, h.attempts, h.last_status, static_cast<std::uint32_t>(h.reason)};
  std::memcpy(out.data(), words, sizeof words);
  std::memcpy(out.data() + dead_header_size, record.data(), record.size());
}

// False if `in` is not a dead letter; otherwise the header and the original record.
inline bool decode_dead(std::span<const std::byte> in, dead_header& h, std::span<const std::byte>& record) noexcept {
  if (in.size() < dead_header_size) return false;
  std::uint32_t words[4];
  std::memcpy(words, in.data(), sizeof words);
  if (words[0] != dead_magic || words[3] < 1 || words[3] > 3) return false;
  h = {words[1], words[2], static_cast<dead_reason>(words[3])};
  record = in.subspan(dead_header_size);
  return true;
}

}  // namespace shmq::push

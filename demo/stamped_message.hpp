// A message that proves its own integrity: sequence number, checksum, and a payload
// derived from the sequence number, so loss, duplication, reordering and torn reads
// all show up. Used by the demo pair, the tests and the benchmarks.
//
//   0       8          16                     size
//   | seq   | checksum | payload(seq) ...     |
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>

namespace shmq::stamped {

inline constexpr std::size_t header_size = 16;

inline std::uint64_t mix(std::uint64_t x) noexcept {  // splitmix64 finalizer
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

inline std::uint64_t checksum(std::uint64_t seq, std::span<const std::byte> payload) noexcept {
  std::uint64_t h = mix(seq ^ payload.size());
  std::size_t i = 0;
  for (; i + 8 <= payload.size(); i += 8) {
    std::uint64_t w;
    std::memcpy(&w, payload.data() + i, 8);
    h = (h ^ w) * 0x100000001b3ull;
  }
  for (; i < payload.size(); ++i) h = (h ^ static_cast<std::uint8_t>(payload[i])) * 0x100000001b3ull;
  return mix(h);
}

// Writes a stamped message of out.size() >= header_size bytes.
inline void fill(std::span<std::byte> out, std::uint64_t seq) noexcept {
  auto payload = out.subspan(header_size);
  std::uint64_t state = mix(seq);
  std::size_t i = 0;
  for (; i + 8 <= payload.size(); i += 8, state += 0x9e3779b97f4a7c15ull)
    std::memcpy(payload.data() + i, &state, 8);
  for (; i < payload.size(); ++i) payload[i] = static_cast<std::byte>(state >> (8 * (i % 8)));
  const std::uint64_t sum = checksum(seq, payload);
  std::memcpy(out.data(), &seq, 8);
  std::memcpy(out.data() + 8, &sum, 8);
}

enum class verdict { ok, too_short, bad_checksum };

// Reads the sequence number and checks the checksum.
inline verdict check(std::span<const std::byte> in, std::uint64_t& seq) noexcept {
  if (in.size() < header_size) return verdict::too_short;
  std::uint64_t sum;
  std::memcpy(&seq, in.data(), 8);
  std::memcpy(&sum, in.data() + 8, 8);
  return checksum(seq, in.subspan(header_size)) == sum ? verdict::ok : verdict::bad_checksum;
}

}  // namespace shmq::stamped

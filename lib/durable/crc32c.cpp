#include "durable/crc32c.hpp"

#include <algorithm>
#include <array>
#include <cstring>

#if defined(__x86_64__)
#include <nmmintrin.h>
#endif

namespace shmq::detail {

namespace {

constexpr std::uint32_t polynomial = 0x82f63b78u;  // reflected Castagnoli

constexpr std::array<std::uint32_t, 256> make_table() noexcept {
  std::array<std::uint32_t, 256> t{};
  for (std::uint32_t i = 0; i < 256; ++i) {
    std::uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ polynomial : c >> 1;
    t[i] = c;
  }
  return t;
}
constexpr auto table = make_table();

std::uint32_t crc_table(std::uint32_t crc, const unsigned char* p, std::size_t n) noexcept {
  for (std::size_t i = 0; i < n; ++i) crc = table[(crc ^ p[i]) & 0xff] ^ (crc >> 8);
  return crc;
}

#if defined(__x86_64__)
[[gnu::target("sse4.2")]] std::uint32_t crc_sse42(std::uint32_t crc, const unsigned char* p, std::size_t n) noexcept {
  std::uint64_t c = crc;
  for (; n >= 8; n -= 8, p += 8) {
    std::uint64_t v;
    std::memcpy(&v, p, 8);
    c = _mm_crc32_u64(c, v);
  }
  std::uint32_t c32 = static_cast<std::uint32_t>(c);
  for (; n > 0; --n, ++p) c32 = _mm_crc32_u8(c32, *p);
  return c32;
}
const bool have_sse42 = __builtin_cpu_supports("sse4.2");

// Three jobs' facts and common length in 8-byte words, interleaved; each job's rest after.
[[gnu::target("sse4.2")]] void crc_sse42_three(crc_job* j) noexcept {
  const std::size_t words = std::min({j[0].size, j[1].size, j[2].size}) / 8;
  const auto* p0 = static_cast<const unsigned char*>(j[0].data);
  const auto* p1 = static_cast<const unsigned char*>(j[1].data);
  const auto* p2 = static_cast<const unsigned char*>(j[2].data);
  std::uint64_t c0 = ~0u, c1 = ~0u, c2 = ~0u;
  for (int f = 0; f < 2; ++f) {
    c0 = _mm_crc32_u64(c0, j[0].facts[f]);
    c1 = _mm_crc32_u64(c1, j[1].facts[f]);
    c2 = _mm_crc32_u64(c2, j[2].facts[f]);
  }
  for (std::size_t w = 0; w < words; ++w) {
    std::uint64_t v0, v1, v2;
    std::memcpy(&v0, p0 + 8 * w, 8);
    std::memcpy(&v1, p1 + 8 * w, 8);
    std::memcpy(&v2, p2 + 8 * w, 8);
    c0 = _mm_crc32_u64(c0, v0);
    c1 = _mm_crc32_u64(c1, v1);
    c2 = _mm_crc32_u64(c2, v2);
  }
  const std::uint64_t done = 8 * words;
  j[0].crc = ~crc_sse42(static_cast<std::uint32_t>(c0), p0 + done, j[0].size - done);
  j[1].crc = ~crc_sse42(static_cast<std::uint32_t>(c1), p1 + done, j[1].size - done);
  j[2].crc = ~crc_sse42(static_cast<std::uint32_t>(c2), p2 + done, j[2].size - done);
}
#endif

}  // namespace

std::uint32_t crc32c(std::uint32_t crc, const void* data, std::size_t size) noexcept {
  const auto* p = static_cast<const unsigned char*>(data);
  crc = ~crc;
#if defined(__x86_64__)
  if (have_sse42) return ~crc_sse42(crc, p, size);
#endif
  return ~crc_table(crc, p, size);
}

void crc32c_each(crc_job* jobs, std::size_t count) noexcept {
  std::size_t i = 0;
#if defined(__x86_64__)
  if (have_sse42)
    for (; i + 3 <= count; i += 3) crc_sse42_three(jobs + i);
#endif
  for (; i < count; ++i) jobs[i].crc = crc32c(crc32c(0, jobs[i].facts, sizeof jobs[i].facts), jobs[i].data, jobs[i].size);
}

}  // namespace shmq::detail

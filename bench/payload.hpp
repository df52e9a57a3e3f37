// What the benchmarks send: a fixed pattern with the sequence number in its first word,
// and the fold every receiver runs over every byte it gets. The fold is what makes a
// receiver pay for reading the message (shared memory hands out pointers; a benchmark
// that never reads them would measure nothing), and its sum checks what arrived.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

namespace shmq_bench {

// Sum of the message's 8-byte words (sizes are multiples of 8), mod 2^64. Four
// two-lane vector sums over 64-byte blocks: a scalar loop would make every receiver
// compute-bound on large messages (about 34 GB/s here, under what a ring delivers), and
// the benchmarks would measure the fold instead of the transport.
inline std::uint64_t fold(const std::byte* data, std::size_t size) noexcept {
  using lanes = std::uint64_t __attribute__((vector_size(16)));
  const auto load = [data](std::size_t at) {
    lanes v;
    std::memcpy(&v, data + at, sizeof v);  // a stream transport's buffer may be unaligned
    return v;
  };
  lanes s0 = {}, s1 = {}, s2 = {}, s3 = {};
  std::size_t i = 0;
  for (; i + 64 <= size; i += 64) {
    s0 += load(i);
    s1 += load(i + 16);
    s2 += load(i + 32);
    s3 += load(i + 48);
  }
  const lanes total = (s0 + s1) + (s2 + s3);
  std::uint64_t folded = total[0] + total[1];
  for (; i + 8 <= size; i += 8) {
    std::uint64_t word;
    std::memcpy(&word, data + i, 8);
    folded += word;
  }
  return folded;
}

inline std::uint64_t sequence_of(const std::byte* message) noexcept {
  std::uint64_t seq;
  std::memcpy(&seq, message, 8);
  return seq;
}

class payload {
 public:
  explicit payload(std::size_t bytes) : pattern_(bytes) {
    for (std::size_t i = 8; i + 8 <= bytes; i += 8) {
      const std::uint64_t word = (i / 8) * 0x9e3779b97f4a7c15ull;
      std::memcpy(pattern_.data() + i, &word, 8);
    }
    rest_fold_ = fold(pattern_.data(), bytes);  // first word is 0 here
  }

  std::size_t size() const noexcept { return pattern_.size(); }

  // Writes message number `seq` at `dst` (size() bytes).
  void write(std::byte* dst, std::uint64_t seq) const noexcept {
    std::memcpy(dst + 8, pattern_.data() + 8, pattern_.size() - 8);
    std::memcpy(dst, &seq, 8);
  }

  // fold() summed over messages 0 .. count-1, all wrapping mod 2^64.
  std::uint64_t expected_fold(std::uint64_t count) const noexcept {
    const std::uint64_t seq_sum = count % 2 == 0 ? (count / 2) * (count - 1) : count * ((count - 1) / 2);
    return count * rest_fold_ + seq_sum;
  }

 private:
  std::vector<std::byte> pattern_;
  std::uint64_t rest_fold_ = 0;
};

}  // namespace shmq_bench

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

// Sum of the message's 8-byte words (sizes are multiples of 8).
inline std::uint64_t fold(const std::byte* data, std::size_t size) noexcept {
  std::uint64_t sum = 0;
  for (std::size_t i = 0; i + 8 <= size; i += 8) {
    std::uint64_t word;
    std::memcpy(&word, data + i, 8);  // a stream transport's buffer may be unaligned
    sum += word;
  }
  return sum;
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

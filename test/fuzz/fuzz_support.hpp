// What the libFuzzer targets share: guarded mappings of the fuzzed object (the library's
// mmap64/munmap calls are wrapped, -Wl,--wrap=mmap64, see guarded_mappings.cpp), the
// input as a byte stream, and patches of an image by the input.
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

namespace shmq::fuzz {

[[noreturn]] void fail(const char* what) noexcept;

// ---- guarded mappings ----

constexpr std::size_t guard_bytes = 4096;
constexpr std::size_t max_mappings = 8;

struct guarded_mapping {
  std::byte* reservation = nullptr;  // guard | mapping, rounded to pages | guard
  std::size_t reservation_size = 0;
  std::byte* base = nullptr;  // what the library got
  std::size_t size = 0;       // what it asked for
};

// While guard_next_mappings is set (only while endpoints attach to the fuzzed object),
// each shared mapping of a file the library makes gets a PROT_NONE page on either side,
// and the bytes between the object's end and the end of its last page are ASan-poisoned.
extern std::array<guarded_mapping, max_mappings> mappings;
extern bool guard_next_mappings;

// Does [p, p + n) lie at or past `data_offset` in one of the guarded mappings?
inline bool in_data_area(std::uint64_t data_offset, const std::byte* p, std::size_t n) noexcept {
  for (const guarded_mapping& m : mappings) {
    if (m.reservation == nullptr || data_offset > m.size) continue;
    const std::byte* begin = m.base + data_offset;
    const std::byte* end = m.base + m.size;
    if (p >= begin && p <= end && n <= static_cast<std::size_t>(end - p)) return true;
  }
  return false;
}

// ---- the input ----

struct input {
  const std::uint8_t* p;
  std::size_t n;
  std::uint8_t byte() noexcept {
    if (n == 0) return 0;
    --n;
    return *p++;
  }
};

template <class T>
T load(const std::vector<std::byte>& img, std::uint64_t offset) noexcept {
  T v{};
  if (offset <= img.size() && sizeof(T) <= img.size() - offset) std::memcpy(&v, img.data() + offset, sizeof(T));
  return v;
}
template <class T>
void store(std::vector<std::byte>& img, std::uint64_t offset, T v) noexcept {
  if (offset <= img.size() && sizeof(T) <= img.size() - offset) std::memcpy(img.data() + offset, &v, sizeof(T));
}

// The rest of the input as patches: offset (2 bytes LE, mod image size), n, then
//   n < 128: n bytes written at offset
//   n >= 128: 8 bytes added to the 64-bit word at offset & ~7
inline void apply_patches(std::vector<std::byte>& img, input& in) {
  while (in.n >= 3 && !img.empty()) {
    const std::size_t offset = (in.byte() | std::size_t{in.byte()} << 8) % img.size();
    const std::uint8_t n = in.byte();
    if (n >= 128) {
      std::uint64_t delta = 0;
      for (int i = 0; i < 8; ++i) delta |= std::uint64_t{in.byte()} << (8 * i);
      const std::size_t at = offset & ~std::size_t{7};
      store(img, at, load<std::uint64_t>(img, at) + delta);
    } else {
      const std::size_t len = std::min({std::size_t{n}, in.n, img.size() - offset});
      std::memcpy(img.data() + offset, in.p, len);
      in.p += len;
      in.n -= len;
    }
  }
}

}  // namespace shmq::fuzz

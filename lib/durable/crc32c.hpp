// CRC32C (Castagnoli), the per-record checksum of file-backed channels: the SSE 4.2
// instruction where the CPU has it, a table otherwise (same results).
#pragma once

#include <cstddef>
#include <cstdint>

namespace shmq::detail {

// Continues `crc` (0 to start) over `size` bytes.
std::uint32_t crc32c(std::uint32_t crc, const void* data, std::size_t size) noexcept;

}  // namespace shmq::detail

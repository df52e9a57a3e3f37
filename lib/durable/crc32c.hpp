// CRC32C (Castagnoli), the per-record checksum of file-backed channels: the SSE 4.2
// instruction where the CPU has it, a table otherwise (same results).
#pragma once

#include <cstddef>
#include <cstdint>

namespace shmq::detail {

// Continues `crc` (0 to start) over `size` bytes.
std::uint32_t crc32c(std::uint32_t crc, const void* data, std::size_t size) noexcept;

// Several independent CRCs at once: each job's `crc` becomes the CRC32C (from 0) of its
// two `facts` words followed by its `size` bytes. Three run interleaved, so that each
// crc32 instruction's latency hides behind the others' (about three times the
// throughput of one after the other on short records).
struct crc_job {
  std::uint64_t facts[2];
  const void* data;
  std::size_t size;
  std::uint32_t crc;
};
void crc32c_each(crc_job* jobs, std::size_t count) noexcept;

}  // namespace shmq::detail

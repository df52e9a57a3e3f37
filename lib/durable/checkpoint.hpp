// Checkpoints of a file channel (docs/durability.md, "Checkpoints"): two slots of whole
// pages, each a file_checkpoint {sequence, head, boot id, CRC32C} and the kind's bytes
// after it (none for SPSC and MPMC, the named groups' cursors for pub/sub). A write goes
// into the older slot and is flushed, so a torn write leaves the other one; the newer
// valid slot wins. The boot id says whether the machine rebooted since.
#pragma once

#include <cstddef>
#include <cstdint>
#include <mutex>
#include <span>
#include <string>

#include "../layout.hpp"
#include "../registry.hpp"
#include "../segment.hpp"

namespace shmq::detail {

struct checkpoint_area {
  std::uint64_t offset;        // of slot 0, in the file
  std::uint64_t payload_size;  // the kind's bytes after each file_checkpoint
  std::uint64_t stride() const noexcept { return slotted_checkpoint_stride(payload_size); }
};

// An SPSC file's, after its control block.
checkpoint_area spsc_checkpoints(const segment_header& h) noexcept;
// A slotted file's (MPMC, pub/sub), after a control block of `control_size` bytes.
checkpoint_area slotted_checkpoints(const segment_header& h, std::uint64_t control_size,
                                    std::uint64_t payload_size) noexcept;

// The newer slot that checks out (CRCs, a NUL in the boot id), or nullptr. Its payload
// follows it: checkpoint_payload().
const file_checkpoint* newest_checkpoint(const segment& seg, const checkpoint_area& area) noexcept;
inline const std::byte* checkpoint_payload(const file_checkpoint* c) noexcept {
  return reinterpret_cast<const std::byte*>(c + 1);
}

// Holds the checkpoint lock (a file lock against other processes, a mutex against the
// other threads of this one) for a read-modify-write of the checkpoint.
class checkpoint_writer {
 public:
  checkpoint_writer(const segment& seg, checkpoint_area area);
  checkpoint_writer(const checkpoint_writer&) = delete;
  checkpoint_writer& operator=(const checkpoint_writer&) = delete;

  const file_checkpoint* newest() const noexcept { return newest_; }
  // Writes {newest's sequence + 1, head, boot} and `payload` (payload_size bytes, or
  // none: zeros) into the older slot; with `flush`, flushes it. 0 or an errno.
  int write(std::uint64_t head, const std::string& boot, std::span<const std::byte> payload, bool flush) noexcept;

 private:
  const segment& seg_;
  checkpoint_area area_;
  std::unique_lock<std::mutex> local_;
  lock_guard file_;
  const file_checkpoint* newest_;
};

}  // namespace shmq::detail

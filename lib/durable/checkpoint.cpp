#include "durable/checkpoint.hpp"

#include <algorithm>
#include <cstring>

#include "durable/crc32c.hpp"
#include "durable/file_ring.hpp"  // checkpoint_lock
#include "durable/flush.hpp"

namespace shmq::detail {

namespace {

std::mutex in_process;  // the threads of this process (a background flush, a full ring)

file_checkpoint* slot_at(const segment& seg, const checkpoint_area& a, int i) noexcept {
  return reinterpret_cast<file_checkpoint*>(seg.at(a.offset + static_cast<std::uint64_t>(i) * a.stride()));
}

std::uint32_t header_crc(const file_checkpoint& c) noexcept {
  return crc32c(0, &c, offsetof(file_checkpoint, crc));
}

bool valid(const file_checkpoint& c, std::uint64_t payload_size) noexcept {
  return c.sequence != 0 && c.crc == header_crc(c) && std::memchr(c.boot_id, 0, sizeof c.boot_id) != nullptr &&
         c.payload_crc == crc32c(0, checkpoint_payload(&c), payload_size);
}

}  // namespace

checkpoint_area spsc_checkpoints(const segment_header& h) noexcept {
  return {h.control_offset + file_checkpoint_offset, 0};
}

checkpoint_area slotted_checkpoints(const segment_header& h, std::uint64_t control_size,
                                    std::uint64_t payload_size) noexcept {
  return {h.control_offset + file_pages(control_size), payload_size};
}

const file_checkpoint* newest_checkpoint(const segment& seg, const checkpoint_area& area) noexcept {
  // The caller derived the area from sizes it checked against the file's; check anyway.
  if (area.offset + 2 * area.stride() > seg.size()) return nullptr;
  const file_checkpoint* best = nullptr;
  for (int i = 0; i < 2; ++i) {
    const file_checkpoint* c = slot_at(seg, area, i);
    if (valid(*c, area.payload_size) && (best == nullptr || c->sequence > best->sequence)) best = c;
  }
  return best;
}

checkpoint_writer::checkpoint_writer(const segment& seg, checkpoint_area area)
    : seg_(seg), area_(area), local_(in_process), file_(seg.fd(), checkpoint_lock),
      newest_(newest_checkpoint(seg, area)) {}

int checkpoint_writer::write(std::uint64_t head, const std::string& boot, std::span<const std::byte> payload,
                             bool flush) noexcept {
  if (area_.offset + 2 * area_.stride() > seg_.size()) return EINVAL;
  file_checkpoint* target = slot_at(seg_, area_, newest_ == slot_at(seg_, area_, 0) ? 1 : 0);
  file_checkpoint c{};
  c.sequence = newest_ == nullptr ? 1 : newest_->sequence + 1;
  c.head = head;
  std::memcpy(c.boot_id, boot.data(), std::min(boot.size(), sizeof c.boot_id - 1));
  auto* bytes = reinterpret_cast<std::byte*>(target + 1);
  const std::size_t n = std::min<std::size_t>(payload.size(), area_.payload_size);
  if (n != 0) std::memcpy(bytes, payload.data(), n);  // an empty span may hold nullptr
  std::memset(bytes + n, 0, area_.payload_size - n);
  c.payload_crc = crc32c(0, bytes, area_.payload_size);
  c.crc = header_crc(c);
  std::memcpy(static_cast<void*>(target), &c, sizeof c);
  newest_ = target;
  if (!flush) return 0;
  const auto offset = static_cast<std::uint64_t>(reinterpret_cast<std::byte*>(target) - seg_.at(0));
  return flush_pages(seg_.fd(), seg_.at(0), seg_.size(), offset, sizeof c + area_.payload_size);
}

}  // namespace shmq::detail

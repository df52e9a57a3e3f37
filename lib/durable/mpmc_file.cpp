#include "durable/mpmc_file.hpp"

#include <algorithm>
#include <cstring>
#include <new>
#include <string>
#include <vector>

#include "../channel_checks.hpp"
#include "durable/flush.hpp"
#include "durable/slot_file.hpp"

namespace shmq::detail {

namespace {

mpmc_file_limits limits_of(const segment& seg) {
  const segment_header& h = seg.header();
  const mpmc_file_limits l{h.file_slots, h.file_max_message, h.file_limits[0], h.file_limits[1]};
  const bool pages = file_policy_of(h).flushes();
  if (!slot_fields_valid(l.slots, file_slot_size_for(l.max_message, pages), l.max_message, h.data_size, true,
                         pages) ||
      l.producers < 1 || l.producers > max_endpoints || l.consumers < 1 || l.consumers > max_endpoints ||
      h.control_size != slotted_file_control_size(mpmc_control_size(l.producers, l.consumers), 0))
    fail_channel(errc::corrupt, seg.name(), "header holds impossible slots, sizes or limits");
  return l;
}

}  // namespace

void init_mpmc_file(segment& seg, const mpmc_file_limits& l) {
  segment_header& h = seg.header();
  h.file_slots = l.slots;
  h.file_max_message = l.max_message;
  h.file_limits[0] = l.producers;
  h.file_limits[1] = l.consumers;
  checkpoint_writer(seg, mpmc_checkpoints(h, l)).write(0, boot_id(), {}, false);
}

bool recover_mpmc_after_reboot(const segment& seg) {
  const std::string boot = boot_id();
  const segment_header& h = seg.header();
  const mpmc_file_limits l = limits_of(seg);
  const checkpoint_area area = mpmc_checkpoints(h, l);
  if (const file_checkpoint* cp = newest_checkpoint(seg, area); cp != nullptr && boot == cp->boot_id)
    return false;  // no reboot since: the page cache holds it all
  const file_policy policy = file_policy_of(h);
  const slot_geometry g = file_slot_geometry(seg.at(h.data_offset), l.slots, l.max_message, policy.flushes());
  const std::uint64_t n = l.slots;

  // Which slots hold what, by their seals. The newest sealed ticket ends the last lap:
  // no ticket a lap before it can still be unreleased (a producer takes ticket t + n
  // only once t is released), so only that lap is kept.
  std::vector<sealed_slot> seals(n);
  std::uint64_t end = 0;  // the newest sealed ticket + 1
  for (std::uint64_t i = 0; i < n; ++i) {
    seals[i] = read_seal(g, i);
    if (seals[i].ok) end = std::max(end, seals[i].ticket + 1);
  }
  const std::uint64_t lap = end > n ? end - n : 0;
  // Unreleased messages: sealed, of the last lap, turn == t + 1 (committed; released is
  // t + n), and no skip.
  const auto kept = [&](std::uint64_t i) {
    const sealed_slot& s = seals[i];
    return s.ok && s.ticket >= lap && s.state == 0 && g.slot(i).flags == 0 &&
           g.slot(i).turn.load(std::memory_order_relaxed) == s.ticket + 1;
  };
  std::uint64_t head = end;  // the oldest unreleased message
  for (std::uint64_t i = 0; i < n; ++i)
    if (kept(i)) head = std::min(head, seals[i].ticket);

  // Tickets [head, end): the kept messages, skips between them. [end, head + n): free
  // for producers. Each slot is one ticket of [head, head + n).
  for (std::uint64_t i = 0; i < n; ++i) {
    const std::uint64_t t = head + ((i - head) & (n - 1));
    slot_header& s = g.slot(i);
    if (t < end && kept(i)) continue;  // kept(i) implies seals[i].ticket == t
    s.length = 0;
    if (t < end) {
      s.flags = slot_skip;
      seal_slot(g, t, 0, slot_skip);
      s.turn.store(t + 1, std::memory_order_relaxed);  // published by the attach lock's release
    } else {
      s.flags = 0;
      clear_seal(g, i);
      s.turn.store(t, std::memory_order_relaxed);
    }
  }

  // The control block may hold torn sectors: rebuilt from the header, as at creation.
  auto* c = new (seg.at(h.control_offset)) mpmc_control{};
  c->slot_count = n;
  c->slot_size = g.slot_size;
  c->max_message_size = l.max_message;
  c->max_producers = l.producers;
  c->max_consumers = l.consumers;
  c->enqueue_pos.store(end, std::memory_order_relaxed);
  c->dequeue_pos.store(head, std::memory_order_relaxed);
  c->redeliver_until.store(end, std::memory_order_relaxed);  // any of them may have been read
  std::byte* tables = seg.at(h.control_offset + sizeof(mpmc_control));
  const std::uint32_t participants = l.producers + l.consumers;
  std::memset(tables, 0, pid_words_size(participants));
  auto* records = reinterpret_cast<ticket_record*>(tables + pid_words_size(participants));
  for (std::uint32_t i = 0; i < participants; ++i) new (&records[i]) ticket_record{{no_ticket}, {}};

  if (policy.flushes()) {
    const int e = flush_pages(seg.fd(), seg.at(0), seg.size(), h.control_offset, seg.size() - h.control_offset);
    if (e != 0)
      fail_channel(errc::io_failed, seg.name(), std::string("flushing its recovered state: ") + std::strerror(e));
  }
  if (const int e = checkpoint_writer(seg, area).write(0, boot, {}, policy.flushes()); e != 0)
    fail_channel(errc::io_failed, seg.name(), std::string("flushing its boot record: ") + std::strerror(e));
  return true;
}

}  // namespace shmq::detail

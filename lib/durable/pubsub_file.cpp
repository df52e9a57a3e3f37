#include "durable/pubsub_file.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <exception>
#include <new>
#include <set>
#include <string>
#include <vector>

#include "../channel_checks.hpp"
#include "durable/flush.hpp"
#include "durable/flush_thread.hpp"
#include "durable/slot_file.hpp"
#include "shmq/pubsub.hpp"   // overflow_policy
#include "shmq/segment.hpp"  // valid_name

namespace shmq::detail {

namespace {

constexpr std::uint64_t max_floor = std::uint64_t{1} << 62;  // far from any overflow, as for seals
constexpr auto active_state = static_cast<std::uint32_t>(group_state::active);
constexpr auto idle_state = static_cast<std::uint32_t>(group_state::idle);

// Group `index`'s floor, read as the ring's gate() reads it (pubsub_ring.hpp): the cursor
// (acquire) before the members' positions, the orphan before and after them. A member
// stores position = c before its CAS moves the cursor past c, so a floor that misses c
// through the cursor sees it through the position.
std::uint64_t group_floor(const pubsub_tables& t, std::size_t index) noexcept {
  const pubsub_group& g = t.groups[index];
  const auto orphan = [&g](std::uint64_t f) {
    const std::uint64_t o = g.orphan.load(std::memory_order_acquire);
    return o != 0 ? std::min(f, o - 1) : f;
  };
  std::uint64_t f = orphan(g.cursor.load(std::memory_order_acquire));
  for (const pubsub_member& m : t.members)
    if (m.group.load(std::memory_order_relaxed) == index) f = std::min(f, m.position.load(std::memory_order_acquire));
  return orphan(f);
}

const pubsub_group_checkpoint* entries_of(const file_checkpoint* c) noexcept {
  return c == nullptr ? nullptr : reinterpret_cast<const pubsub_group_checkpoint*>(checkpoint_payload(c));
}

}  // namespace

pubsub_file_limits pubsub_limits_of(const segment& seg) {
  const segment_header& h = seg.header();
  const pubsub_file_limits l{h.file_slots,     h.file_max_message, h.file_limits[0],
                             h.file_limits[1], h.file_limits[2],   h.file_limits[3]};
  const bool pages = file_policy_of(h).flushes();
  const auto endpoints_ok = [](std::uint32_t n) { return n >= 1 && n <= max_endpoints; };
  if (!slot_fields_valid(l.slots, file_slot_size_for(l.max_message, pages), l.max_message, h.data_size, true,
                         pages) ||
      !endpoints_ok(l.publishers) || !endpoints_ok(l.subscribers) || !endpoints_ok(l.groups) || l.policy > 1 ||
      h.control_size != pubsub_file_control_size(l))
    fail_channel(errc::corrupt, seg.name(), "header holds impossible slots, sizes or limits");
  return l;
}

void init_pubsub_file(segment& seg, const pubsub_file_limits& l) {
  segment_header& h = seg.header();
  h.file_slots = l.slots;
  h.file_max_message = l.max_message;
  h.file_limits[0] = l.publishers;
  h.file_limits[1] = l.subscribers;
  h.file_limits[2] = l.groups;
  h.file_limits[3] = l.policy;
  reinterpret_cast<pubsub_control*>(seg.at(h.control_offset))
      ->durable_gate.store(no_position, std::memory_order_relaxed);  // published by mark_ready
  checkpoint_writer(seg, pubsub_checkpoints(h, l)).write(no_position, boot_id(), {}, false);
}

int write_group_checkpoint(const pubsub_file_view& f, bool flush) noexcept {
  try {
    const std::uint32_t groups = f.limits.groups;
    checkpoint_writer w(*f.seg, pubsub_checkpoints(f.seg->header(), f.limits));
    // Floors only grow: a floor computed before a newer checkpoint's (a background
    // write racing a release's) must not take it back.
    const pubsub_group_checkpoint* old = entries_of(w.newest());
    std::vector<pubsub_group_checkpoint> entries(groups);
    std::uint64_t gate = no_position;  // the lowest floor of the groups that gate publishers
    for (std::uint32_t i = 0; i < groups; ++i) {
      const pubsub_group& g = f.tables.groups[i];
      // Acquire: a joiner writes the name before it stores the state (the table lock).
      const std::uint32_t state = g.state.load(std::memory_order_acquire);
      if ((state != active_state && state != idle_state) || g.name[0] == '\0') continue;
      pubsub_group_checkpoint& e = entries[i];
      std::memcpy(e.name, g.name, group_name_size - 1);
      e.floor = group_floor(f.tables, i);
      if (old != nullptr && std::strncmp(old[i].name, e.name, group_name_size) == 0)
        e.floor = std::max(e.floor, old[i].floor);
      e.state = state;
      if (state == active_state) gate = std::min(gate, e.floor);
    }
    const int e = w.write(gate, boot_id(),
                          {reinterpret_cast<const std::byte*>(entries.data()), entries.size() * sizeof entries[0]},
                          flush);
    // Only once on stable storage, and under the checkpoint lock: the writes come in order.
    if (e == 0 && flush && f.limits.policy == static_cast<std::uint32_t>(overflow_policy::block))
      f.control->durable_gate.store(gate, std::memory_order_release);  // the publisher's claim acquires it
    return e;
  } catch (const std::exception&) {
    return ENOMEM;
  }
}

bool recover_pubsub_after_reboot(const segment& seg) {
  const std::string boot = boot_id();
  const segment_header& h = seg.header();
  const pubsub_file_limits l = pubsub_limits_of(seg);
  const checkpoint_area area = pubsub_checkpoints(h, l);
  const file_checkpoint* cp = newest_checkpoint(seg, area);
  if (cp != nullptr && boot == cp->boot_id) return false;  // no reboot since: the page cache holds it all
  const file_policy policy = file_policy_of(h);
  // Both checkpoints torn. At a flushing level every write is flushed before the next
  // one starts, into the older slot, so one stays whole unless the medium failed: the
  // groups' positions are unknown, and guessing could lose promised messages. Under none
  // nothing was promised (two unflushed writes may both be torn): no group is kept.
  if (cp == nullptr && policy.flushes())
    fail_channel(errc::corrupt, seg.name(), "holds no valid checkpoint of its groups");
  const slot_geometry g = file_slot_geometry(seg.at(h.data_offset), l.slots, l.max_message, policy.flushes());
  const std::uint64_t n = l.slots;

  // The named groups, checked: the CRC held, but trust nothing.
  std::vector<pubsub_group_checkpoint> kept_groups(l.groups);
  if (cp != nullptr) std::memcpy(kept_groups.data(), entries_of(cp), l.groups * sizeof(pubsub_group_checkpoint));
  std::set<std::string> names;
  std::uint64_t end = 0;  // the newest sealed sequence + 1, or past every floor
  for (pubsub_group_checkpoint& e : kept_groups) {
    if (e.name[0] == '\0') continue;
    const std::size_t len = ::strnlen(e.name, group_name_size);
    const std::string name(e.name, len);
    if (len >= group_name_size || !valid_name(name) || !names.insert(name).second || e.floor >= max_floor ||
        (e.state != active_state && e.state != idle_state))
      fail_channel(errc::corrupt, seg.name(), "checkpoint holds an impossible group entry");
    end = std::max(end, e.floor);  // a group never gets ahead of the stream
  }

  // Which slots hold what, by their seals. No sequence a lap before the newest sealed one
  // can still be needed by a gating group (publishers wait for it), so the last lap is kept.
  std::vector<sealed_slot> seals(n);
  for (std::uint64_t i = 0; i < n; ++i) {
    seals[i] = read_seal(g, i);
    if (seals[i].ok) end = std::max(end, seals[i].ticket + 1);
  }
  const std::uint64_t lap = end > n ? end - n : 0;
  for (std::uint64_t i = 0; i < n; ++i) {
    const std::uint64_t s = lap + ((i - lap) & (n - 1));  // the sequence of [lap, lap + n) slot i holds
    slot_header& slot = g.slot(i);
    const sealed_slot& seal = seals[i];
    if (s < end && seal.ok && seal.ticket == s && seal.state == turn_committed &&
        slot.turn.load(std::memory_order_relaxed) == make_turn(s, turn_committed))
      continue;  // a message, whole
    slot.length = 0;
    slot.flags = 0;
    if (s < end) {  // lost, torn or never finished: a sealed skip, so a second recovery agrees
      seal_slot(g, s, 0, turn_skip);
      slot.turn.store(make_turn(s, turn_skip), std::memory_order_relaxed);  // published by the attach lock's release
    } else {  // first lap, never written
      clear_seal(g, i);
      slot.turn.store(0, std::memory_order_relaxed);
    }
  }

  // The control block may hold torn sectors: rebuilt from the header, as at creation.
  std::byte* at = seg.at(h.control_offset);
  auto* c = new (at) pubsub_control{};
  c->slot_count = n;
  c->slot_size = g.slot_size;
  c->max_message_size = l.max_message;
  c->policy = l.policy;
  c->max_publishers = l.publishers;
  c->max_subscribers = l.subscribers;
  c->max_groups = l.groups;
  c->claim_pos.store(end, std::memory_order_relaxed);
  c->redeliver_until.store(end, std::memory_order_relaxed);  // any of them may have been read
  c->durable_gate.store(no_position, std::memory_order_relaxed);  // no group is active
  const pubsub_tables t = pubsub_tables_at(at, l.groups, l.subscribers);
  for (std::uint32_t i = 0; i < l.groups; ++i) {
    pubsub_group& group = *new (&t.groups[i]) pubsub_group{};
    const pubsub_group_checkpoint& e = kept_groups[i];
    if (e.name[0] == '\0') continue;  // free, or private: private subscriptions end with their subscriber
    std::memcpy(group.name, e.name, group_name_size);
    group.cursor.store(e.floor, std::memory_order_relaxed);
    group.state.store(idle_state, std::memory_order_relaxed);
  }
  for (pubsub_member& m : t.members) {
    new (&m) pubsub_member{};
    m.position.store(no_position, std::memory_order_relaxed);
  }
  auto* pids = reinterpret_cast<std::byte*>(t.members.data() + t.members.size());
  std::memset(pids, 0, pid_words_size(l.publishers));
  auto* records = reinterpret_cast<ticket_record*>(pids + pid_words_size(l.publishers));
  for (std::uint32_t i = 0; i < l.publishers; ++i) new (&records[i]) ticket_record{{no_ticket}, {}};

  if (policy.flushes()) {
    const int e = flush_pages(seg.fd(), seg.at(0), seg.size(), h.control_offset, seg.size() - h.control_offset);
    if (e != 0)
      fail_channel(errc::io_failed, seg.name(), std::string("flushing its recovered state: ") + std::strerror(e));
  }
  if (const int e = write_group_checkpoint({&seg, c, t, l}, policy.flushes()); e != 0)
    fail_channel(errc::io_failed, seg.name(), std::string("flushing its checkpoint: ") + std::strerror(e));
  return true;
}

// ---- group_checkpoints ----

struct group_checkpoints::state_t {
  pubsub_file_view file;
  file_policy policy;
  std::uint64_t due = 1;  // group commit: releases per background checkpoint
  int error = 0;          // this subscriber's, on its own thread
  std::uint64_t pending = 0, generation = 0;
  std::unique_ptr<flush_thread> background;

  status poison(int e) noexcept {
    error = e;
    file.control->poisoned.store(static_cast<std::uint32_t>(e), std::memory_order_relaxed);  // page cache only
    return status::io_error;
  }
  bool poisoned() const noexcept { return error != 0 || (background && background->error() != 0); }
  int write(bool flush) noexcept { return write_group_checkpoint(file, flush); }
  flush_thread* thread() noexcept {
    if (!background && error == 0) {
      try {
        background = std::make_unique<flush_thread>(
            [this](std::uint64_t) {
              const int e = write(true);
              if (e != 0) file.control->poisoned.store(static_cast<std::uint32_t>(e), std::memory_order_relaxed);
              return e;
            },
            policy.group_interval, 0);
      } catch (const std::exception&) {
        poison(EAGAIN);  // nothing can be made durable: never taken for durable
      }
    }
    return background.get();
  }
};

group_checkpoints::group_checkpoints() noexcept = default;
group_checkpoints::group_checkpoints(group_checkpoints&&) noexcept = default;
group_checkpoints& group_checkpoints::operator=(group_checkpoints&&) noexcept = default;
group_checkpoints::~group_checkpoints() = default;  // ~flush_thread finishes what was asked

group_checkpoints::group_checkpoints(const pubsub_file_view& f) : s_(std::make_unique<state_t>()) {
  s_->file = f;
  s_->policy = file_policy_of(f.seg->header());
  // Publishers wait for durable floors (block): a group must not make them wait a whole
  // group of releases, so it asks every quarter ring too.
  s_->due = std::max<std::uint64_t>(1, std::min<std::uint64_t>(s_->policy.group_messages, f.limits.slots / 4));
}

bool group_checkpoints::poisoned() const noexcept { return s_ && s_->poisoned(); }

void group_checkpoints::joined() {
  if (!s_ || !s_->policy.flushes()) return;
  if (const int e = s_->write(true); e != 0) {
    s_->poison(e);
    fail_channel(errc::io_failed, s_->file.seg->name(),
                 std::string("flushing the checkpoint of a group joined: ") + std::strerror(e));
  }
}

status group_checkpoints::released() noexcept {
  if (!s_ || s_->policy.level == durability::none) return status::ok;
  state_t& s = *s_;
  if (s.poisoned()) return status::io_error;
  if (s.policy.level == durability::per_commit) {
    if (const int e = s.write(true); e != 0) return s.poison(e);
    return status::ok;
  }
  flush_thread* b = s.background.get();
  if (++s.pending >= s.due || b == nullptr || b->interval_elapsed()) {
    b = s.thread();
    if (b == nullptr) return status::io_error;
    s.pending = 0;
    b->request(++s.generation);
  }
  return s.poisoned() ? status::io_error : status::ok;
}

status group_checkpoints::sync() noexcept {
  if (!s_) return status::ok;
  state_t& s = *s_;
  if (s.poisoned()) return status::io_error;
  if (s.policy.level != durability::group_commit) return status::ok;
  flush_thread* b = s.thread();
  if (b == nullptr) return status::io_error;
  s.pending = 0;
  if (const int e = b->wait(++s.generation); e != 0) return s.poison(e);
  return status::ok;
}

void group_checkpoints::closed() noexcept {
  if (!s_ || s_->poisoned()) return;
  if (const int e = s_->write(s_->policy.flushes()); e != 0) s_->poison(e);
}

}  // namespace shmq::detail

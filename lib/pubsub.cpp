// Publish/subscribe endpoints: attach (create or open, validate), joining and leaving
// groups under the table lock, and the Impl hooks endpoint.hpp builds on.
#include "shmq/pubsub.hpp"

#include <cctype>
#include <cstring>
#include <new>
#include <vector>
#include <sched.h>
#include <unistd.h>

#include "channel_checks.hpp"
#include "consumer_base.hpp"
#include "durable/pubsub_file.hpp"
#include "durable/slot_file.hpp"
#include "endpoint.hpp"
#include "inspect.hpp"
#include "pubsub_ring.hpp"
#include "registry.hpp"
#include "segment.hpp"
#include "slot_producer.hpp"
#include "shmq/segment.hpp"

namespace shmq::detail {

namespace {

struct attached {
  segment seg;
  pubsub_control* control;
  slot_geometry geometry;
  pubsub_tables tables;
  std::span<std::atomic<std::uint32_t>> publishers;
  std::span<ticket_record> records;  // publishers'
  bool block;
  // A file channel's: its limits, and whether publishers wait for the durable gate (a
  // flushing level under block).
  pubsub_file_limits limits{};
  bool durable_gate = false;
  // A subscriber's file mapping of the slots is read-only (it never writes them, but to
  // skip a dead publisher's slot): writeback then costs its CPU no TLB shoot-down.
  bool slots_read_only = false;
  // A file channel's attach lock, held until the endpoint has claimed its slot: the first
  // one to attach recovers the file, and nobody else may look before it is done.
  std::unique_ptr<lock_guard> attaching;

  pubsub_file_view file_view() const noexcept { return {&seg, control, tables, limits}; }
  // A publisher full by the durable gate but not by the live one: the checkpoint it
  // writes (flushed) moves the durable gate to the groups' floors now, as an SPSC
  // producer writes the consumer's (docs/durability.md). true: try again.
  bool make_room(const pubsub_ring& ring, slot_durability& durable) const noexcept {
    if (durable.poisoned() || !ring.durable_gate_only()) return false;
    if (const int e = write_group_checkpoint(file_view(), true); e != 0) {
      durable.fail(e);
      return false;
    }
    return true;
  }
};

// Participant locks (registry.hpp): the table lock, then publishers, then subscribers.
constexpr std::uint64_t table_lock_index = 0;

attached attach(std::string_view name, const pubsub_options& o) {
  const bool file = !o.file.path.empty();
  const bool pages = file && o.file.durability != durability::none;  // whole-page slots
  if (o.open != open_mode::open) {
    check_slot_options(name, o.slots, o.max_message_size, o.max_publishers, o.max_subscribers);
    if (o.max_groups < 1 || o.max_groups > max_endpoints)
      fail_channel(errc::invalid_argument, name, "max_groups must be from 1 to 1024");
    if (o.policy != overflow_policy::block && o.policy != overflow_policy::overwrite)
      fail_channel(errc::invalid_argument, name, "unknown overflow policy");
    if (file) {
      check_file_options(name, o.file);
      if (file_slot_size_for(o.max_message_size, pages) > max_slot_bytes / o.slots)
        fail_channel(errc::invalid_argument, name, "slots * the file channel's slot size is over 1 GiB");
    }
  }
  const std::uint64_t slot_size = file ? file_slot_size_for(o.max_message_size, pages) : slot_size_for(o.max_message_size);
  const pubsub_file_limits wanted{o.slots,          o.max_message_size, o.max_publishers,
                                  o.max_subscribers, o.max_groups,       static_cast<std::uint32_t>(o.policy)};
  const std::uint64_t tables = pubsub_control_size(o.max_publishers, o.max_subscribers, o.max_groups);
  auto [seg, created] = attach_segment(
      name, channel_kind::pubsub, {file ? pubsub_file_control_size(wanted) : tables, o.slots * slot_size}, o,
      [&](segment& s) {
        std::byte* at = s.at(s.header().control_offset);
        auto* c = new (at) pubsub_control{};
        c->slot_count = o.slots;
        c->slot_size = slot_size;
        c->max_message_size = o.max_message_size;
        c->policy = static_cast<std::uint32_t>(o.policy);
        c->max_publishers = o.max_publishers;
        c->max_subscribers = o.max_subscribers;
        c->max_groups = o.max_groups;
        auto* groups = reinterpret_cast<pubsub_group*>(at + sizeof(pubsub_control));
        for (std::uint32_t i = 0; i < o.max_groups; ++i) new (&groups[i]) pubsub_group{};
        auto* members = reinterpret_cast<pubsub_member*>(groups + o.max_groups);
        for (std::uint32_t i = 0; i < o.max_subscribers; ++i) {
          new (&members[i]) pubsub_member{};
          members[i].position.store(no_position, std::memory_order_relaxed);  // published by mark_ready
        }
        auto* records = reinterpret_cast<ticket_record*>(reinterpret_cast<std::byte*>(members + o.max_subscribers) +
                                                         pid_words_size(o.max_publishers));
        for (std::uint32_t i = 0; i < o.max_publishers; ++i) new (&records[i]) ticket_record{{no_ticket}, {}};
        if (file) init_pubsub_file(s, wanted);
      });

  const segment_header& h = seg.header();
  std::unique_ptr<lock_guard> attaching;
  pubsub_file_limits limits{};
  if (file) {
    limits = pubsub_limits_of(seg);
    // The first to attach (no participant alive, nor a joiner holding the table lock)
    // recovers a file left by a reboot.
    attaching = std::make_unique<lock_guard>(seg.fd(), attach_lock);
    const std::uint64_t locks = 1 + std::uint64_t{limits.publishers} + limits.subscribers;
    bool alive = false;
    for (std::uint64_t i = table_lock_index; i < locks && !alive; ++i) alive = held_elsewhere(seg.fd(), i);
    if (!alive) recover_pubsub_after_reboot(seg);
  }
  if (h.control_size < sizeof(pubsub_control))
    fail_channel(errc::corrupt, name, "control block too small");
  std::byte* at = seg.at(h.control_offset);
  auto* c = reinterpret_cast<pubsub_control*>(at);
  note_publisher_fences(c->data_ready);  // before this process can publish anything
  note_publisher_fences(c->space_ready);
  const std::uint64_t slots = c->slot_count, slot_bytes = c->slot_size, max = c->max_message_size;
  const std::uint32_t policy = c->policy, pubs = c->max_publishers, subs = c->max_subscribers,
                      groups = c->max_groups;
  const bool file_pages = file && file_policy_of(h).flushes();
  if (!slot_fields_valid(slots, slot_bytes, max, h.data_size, file, file_pages) || policy > 1 || pubs < 1 ||
      pubs > max_endpoints || subs < 1 || subs > max_endpoints || groups < 1 || groups > max_endpoints ||
      h.control_size != (file ? pubsub_file_control_size({slots, max, pubs, subs, groups, policy})
                              : pubsub_control_size(pubs, subs, groups)) ||
      (file && (slots != limits.slots || max != limits.max_message || pubs != limits.publishers ||
                subs != limits.subscribers || groups != limits.groups || policy != limits.policy)))
    fail_channel(errc::corrupt, name, "control block holds impossible sizes or limits");
  if (file && c->poisoned.load(std::memory_order_relaxed) != 0)
    fail_channel(errc::io_failed, name,
                 std::string("a flush of its file failed (") +
                     std::strerror(static_cast<int>(c->poisoned.load(std::memory_order_relaxed))) +
                     "): what it holds is not known to be durable; remove it or reboot");
  if (!created && o.open == open_mode::open_or_create) {
    check_same(name, "slots", slots, o.slots);
    check_same(name, "max_message_size", max, o.max_message_size);
    check_same(name, "policy", policy, static_cast<std::uint32_t>(o.policy));
    check_same(name, "max_publishers", pubs, o.max_publishers);
    check_same(name, "max_subscribers", subs, o.max_subscribers);
    check_same(name, "max_groups", groups, o.max_groups);
  }
  const pubsub_tables t = pubsub_tables_at(at, groups, subs);
  auto* pids = reinterpret_cast<std::atomic<std::uint32_t>*>(t.members.data() + subs);
  auto* records = reinterpret_cast<ticket_record*>(reinterpret_cast<std::byte*>(pids) + pid_words_size(pubs));
  const slot_geometry g = file ? file_slot_geometry(seg.at(h.data_offset), slots, max, file_pages)
                               : slot_geometry{seg.at(h.data_offset), slots, slot_bytes, max};
  const bool block = policy == static_cast<std::uint32_t>(overflow_policy::block);
  return attached{std::move(seg), c,      g,        t, {pids, pubs}, {records, pubs}, block, limits,
                  file_pages && block, false, std::move(attaching)};
}

constexpr std::uint64_t publisher_lock(std::size_t i) noexcept { return 1 + i; }
std::uint64_t member_lock(const attached& a, std::size_t i) noexcept { return 1 + a.publishers.size() + i; }

// Serializes joins, leaves and recoveries across processes (registry.hpp).
lock_guard table_lock(const attached& a) noexcept { return {a.seg.fd(), table_lock_index}; }

// The group's name as a person may read it: the segment may hold any bytes there.
std::string printable_group_name(const pubsub_group& g) {
  std::string out(g.name, ::strnlen(g.name, group_name_size));
  for (char& ch : out)
    if (std::isalnum(static_cast<unsigned char>(ch)) == 0 && ch != '.' && ch != '_' && ch != '-') ch = '?';
  return out;
}

bool same_name(const pubsub_group& g, std::string_view name) noexcept {
  return std::strncmp(g.name, std::string(name).c_str(), group_name_size) == 0;
}

// Members of group `index` other than `except`, counted from the member table (a count
// kept beside it would go wrong when a process dies between the two stores). Call with
// the table lock held.
std::uint32_t count_members(const attached& a, std::size_t index, const pubsub_member* except) noexcept {
  std::uint32_t n = 0;
  for (const pubsub_member& m : a.tables.members)
    n += &m != except && m.pid.load(std::memory_order_relaxed) != 0 &&
         m.group.load(std::memory_order_relaxed) == index;
  return n;
}

// Updates group `index`'s member count; with none left, a named group goes idle (it keeps
// its place in the stream) and a private one free. Also mends a group left active and
// empty by a process that died joining it. Call with the table lock held.
void settle_group(const attached& a, std::size_t index, const pubsub_member* leaving) noexcept {
  pubsub_group& g = a.tables.groups[index];
  g.members = count_members(a, index, leaving);
  if (g.members == 0 && g.state.load(std::memory_order_relaxed) == static_cast<std::uint32_t>(group_state::active))
    g.state.store(static_cast<std::uint32_t>(g.name[0] != '\0' ? group_state::idle : group_state::free),
                  std::memory_order_seq_cst);
}

// A member leaves its group. Call with the table lock held.
void leave_group(const attached& a, pubsub_member& m) noexcept {
  m.position.store(no_position, std::memory_order_seq_cst);
  if (const std::uint32_t g = m.group.load(std::memory_order_relaxed); g < a.tables.groups.size())
    settle_group(a, g, &m);
}

// A member leaves its group: one that is closing, or one whose process died (its lock
// is ours now). A message it held becomes the group's orphan, for another member or
// the next to join to take again; a private group has nobody to take it. false: the
// group already has an orphan, so the member stays (holding the gate, if dead) until
// that one is taken. Call with the table lock held.
bool retire(const attached& a, pubsub_member& m) noexcept {
  const std::uint64_t c = m.position.load(std::memory_order_acquire);
  const std::uint32_t index = m.group.load(std::memory_order_relaxed);
  if (c != no_position && index < a.tables.groups.size()) {
    pubsub_group& g = a.tables.groups[index];
    const bool claimed = c < g.cursor.load(std::memory_order_acquire);  // else not taken yet
    const bool wanted = g.name[0] != '\0' || count_members(a, index, &m) > 0;
    const bool there = a.geometry.slot(c).turn.load(std::memory_order_acquire) == make_turn(c, turn_committed);
    if (claimed && wanted && there) {
      if (g.orphan.load(std::memory_order_acquire) != 0) return false;
      g.orphan.store(c + 1, std::memory_order_seq_cst);  // before leave_group clears the position
      wake_all(a.control->data_ready);
    }
  }
  leave_group(a, m);
  m.pid.store(0, std::memory_order_relaxed);
  return true;
}

std::size_t join(const attached& a, std::string_view name, const subscription& how) {
  if (!how.group.empty() && (how.group.size() >= group_name_size || !valid_name(how.group)))
    fail_channel(errc::invalid_name, name,
                 "invalid group name '" + how.group + "' (1-47 characters of [A-Za-z0-9._-])");
  const auto self = static_cast<std::uint32_t>(::getpid());
  const lock_guard lock = table_lock(a);

  pubsub_member* member = nullptr;
  for (std::size_t i = 0; i < a.tables.members.size(); ++i) {
    if (!hold_lock(a.seg.fd(), member_lock(a, i))) continue;
    pubsub_member& m = a.tables.members[i];
    // A dead subscriber's: clean up once.
    if (m.pid.load(std::memory_order_relaxed) != 0 && !retire(a, m)) {
      drop_lock(a.seg.fd(), member_lock(a, i));
      continue;
    }
    member = &m;
    break;
  }
  if (member == nullptr)
    fail_channel(errc::limit_reached, name,
                 "already has " + std::to_string(a.tables.members.size()) +
                     " live subscribers, the most it was created for");
  // From here on a failure must give the member slot back.
  struct give_back {
    const attached& a;
    pubsub_member* m;
    ~give_back() {
      if (m != nullptr) drop_lock(a.seg.fd(), member_lock(a, static_cast<std::size_t>(m - a.tables.members.data())));
    }
  } undo{a, member};

  pubsub_group* group = nullptr;
  if (!how.group.empty())
    for (pubsub_group& g : a.tables.groups)
      if (g.state.load(std::memory_order_relaxed) != static_cast<std::uint32_t>(group_state::free) &&
          same_name(g, how.group))
        group = &g;
  if (group != nullptr) {
    if (group->cursor.load(std::memory_order_relaxed) > a.control->claim_pos.load(std::memory_order_acquire))
      fail_channel(errc::corrupt, name, "group '" + how.group + "' is ahead of the stream");
    group->state.store(static_cast<std::uint32_t>(group_state::active), std::memory_order_seq_cst);
  } else {
    for (pubsub_group& g : a.tables.groups)
      if (g.state.load(std::memory_order_relaxed) == static_cast<std::uint32_t>(group_state::free)) {
        group = &g;
        break;
      }
    if (group == nullptr)
      fail_channel(errc::limit_reached, name,
                   "already has " + std::to_string(a.tables.groups.size()) +
                       " groups and private subscriptions, the most it was created for");
    std::memset(group->name, 0, group_name_size);
    std::memcpy(group->name, how.group.data(), how.group.size());
    group->orphan.store(0, std::memory_order_relaxed);  // a freed private group's
    // Gate publishers from here before choosing the start: a gate scan that misses this
    // group ran before the store below, so it read claim_pos <= the value read after it.
    group->cursor.store(a.control->claim_pos.load(std::memory_order_seq_cst), std::memory_order_seq_cst);
    group->state.store(static_cast<std::uint32_t>(group_state::active), std::memory_order_seq_cst);
    const std::uint64_t newest = a.control->claim_pos.load(std::memory_order_seq_cst);
    const std::uint64_t oldest = newest > a.geometry.slot_count ? newest - a.geometry.slot_count : 0;
    const std::uint64_t back = std::min<std::uint64_t>(how.history, newest - oldest);
    group->cursor.store(how.start == start_from::oldest ? oldest : newest - back, std::memory_order_seq_cst);
  }
  member->position.store(no_position, std::memory_order_relaxed);
  member->group.store(static_cast<std::uint32_t>(group - a.tables.groups.data()), std::memory_order_relaxed);
  member->pid.store(self, std::memory_order_relaxed);  // dropping the table lock publishes it
  ++group->members;
  undo.m = nullptr;
  return static_cast<std::size_t>(member - a.tables.members.data());
}

claimed_slot claim_publisher(const attached& a, std::string_view name) {
  const int i = claim_slot(a.seg.fd(), publisher_lock(0), a.publishers);
  if (i < 0)
    fail_channel(errc::limit_reached, name,
                 "already has " + std::to_string(a.publishers.size()) +
                     " live publishers, the most it was created for");
  const auto index = static_cast<std::size_t>(i);
  return {publisher_lock(index), &a.publishers[index]};
}

ticket_record& own_record(const attached& a, const claimed_slot& slot) noexcept {
  return a.records[slot.lock - publisher_lock(0)];
}

// Publishers that died between claiming a sequence and committing it leave its slot
// unfinished: subscribers stop there, publishers a lap later. A skip goes in its place,
// as an aborted loan would have left (ticket_records.hpp argues the order: claim_pos,
// records, turn).
void skip_dead_claims(const attached& a, pubsub_ring& ring) noexcept {
  skip_dead_tickets(
      {a.seg.fd(), publisher_lock(0), a.records}, table_lock_index,
      [&] {
        const std::uint64_t claimed = a.control->claim_pos.load(std::memory_order_acquire);
        return [&ring, claimed](std::uint64_t t) { return ring.unfinished(t, claimed); };
      },
      [&](std::uint64_t t) {
        if (!a.slots_read_only) return ring.publish(t, 0, true);
        // The slot's header is in its first page (slots are 64-aligned, pages 4096).
        auto* page = reinterpret_cast<std::byte*>(reinterpret_cast<std::uintptr_t>(&a.geometry.slot(t)) &
                                                  ~std::uintptr_t{file_page - 1});
        map_writable(page, file_page);
        ring.publish(t, 0, true);
        map_read_only(page, file_page);
      });
}

// An active group without a member: its creator died joining. Without the lock, so a
// join in progress may look like one too; the caller checks again under the lock.
bool empty_active_group(const attached& a) noexcept {
  std::vector<bool> has_member(a.tables.groups.size());
  for (const pubsub_member& m : a.tables.members)
    if (const std::uint32_t g = m.group.load(std::memory_order_relaxed);
        m.pid.load(std::memory_order_relaxed) != 0 && g < has_member.size())
      has_member[g] = true;
  for (std::size_t g = 0; g < has_member.size(); ++g)
    if (!has_member[g] &&
        a.tables.groups[g].state.load(std::memory_order_relaxed) == static_cast<std::uint32_t>(group_state::active))
      return true;
  return false;
}

// A subscriber that died leaves its member slot taken and, under block, holds
// publishers back through its position and its group's cursor: retire it as it would
// have left, handing a message it held to its group. `self` is the caller's own member
// (a subscriber's; none for a publisher): its lock is held through this very
// descriptor, which an OFD lock never conflicts with, so it would look dead, and
// hold_lock would "take" it. A live subscriber must never retire itself.
void reap_dead(const attached& a, const pubsub_member* self) noexcept {
  const int fd = a.seg.fd();
  const auto dead = [&](std::size_t i) {
    return &a.tables.members[i] != self && a.tables.members[i].pid.load(std::memory_order_acquire) != 0 &&
           !held_elsewhere(fd, member_lock(a, i));
  };
  bool any = false;
  for (std::size_t i = 0; i < a.tables.members.size() && !any; ++i) any = dead(i);
  if (!any && !empty_active_group(a)) return;
  const lock_guard lock = table_lock(a);
  for (std::size_t i = 0; i < a.tables.members.size(); ++i) {
    pubsub_member& m = a.tables.members[i];
    if (&m == self || m.pid.load(std::memory_order_relaxed) == 0 || !hold_lock(fd, member_lock(a, i))) continue;
    retire(a, m);
    drop_lock(fd, member_lock(a, i));
  }
  for (std::size_t g = 0; g < a.tables.groups.size(); ++g) settle_group(a, g, nullptr);
}

// What a waiting publisher (`self` null) or subscriber mends.
void recover_dead(const attached& a, pubsub_ring& ring, const pubsub_member* self = nullptr) noexcept {
  skip_dead_claims(a, ring);
  reap_dead(a, self);
}

}  // namespace

struct publisher_impl final : slot_producer<attached, pubsub_ring> {
  using slot_producer::slot_producer;
};

struct subscriber_impl final : consumer_base<subscriber_impl> {
  attached channel;
  pubsub_member& member;
  pubsub_ring ring;
  mutable int checked = -1;  // intact() result for the view out: -1 not asked, 0, 1
  bool orphan_out = false;   // the view out is an adopted orphan: maybe overwritten (seqlock)
  std::uint64_t missed_pending = 0, missed_total = 0;

  // A file channel's checkpoints of the group's releases (lib/durable/pubsub_file.hpp).
  group_checkpoints durable;
  // A file channel recovered after a reboot: every sequence before it may have been
  // handed out before the power went, so each is flagged redelivered.
  std::uint64_t redeliver_until = 0;

  subscriber_impl(attached a, std::string_view name, const subscription& how, const endpoint_options& o)
      : consumer_base(o),
        channel(std::move(a)),
        member(channel.tables.members[join(channel, name, how)]),
        ring(*channel.control, channel.geometry, channel.tables, channel.block) {
    if (!channel.seg.file_backed()) return;
    map_read_only(channel.geometry.data, channel.geometry.slot_count * channel.geometry.slot_size);
    channel.slots_read_only = true;
    redeliver_until = channel.control->redeliver_until.load(std::memory_order_relaxed);
    channel.attaching.reset();  // joined: the next endpoint may attach
    try {
      durable = group_checkpoints(channel.file_view());
      if (!how.group.empty()) durable.joined();  // the group is durable before it takes anything
    } catch (...) {
      leave();
      throw;
    }
  }
  ~subscriber_impl() {
    (void)durable.sync();
    leave();
    durable.closed();  // the group's floor (idle if it was the last member) for the next boot
  }
  void leave() noexcept {
    {
      const lock_guard lock = table_lock(channel);
      if (!retire(channel, member)) {  // a message kept for a larger buffer is dropped
        leave_group(channel, member);
        member.pid.store(0, std::memory_order_relaxed);
      }
      drop_lock(channel.seg.fd(), member_lock(channel, static_cast<std::size_t>(&member - channel.tables.members.data())));
    }
    wake_sleepers(channel.control->space_ready);  // the gate may have moved
  }

  // Only on the rare paths: a lap by an overwriting publisher, a torn read.
  void count_missed(std::uint64_t n) noexcept {
    missed_pending += n;
    missed_total += n;
    channel.control->missed.fetch_add(n, std::memory_order_relaxed);
  }

  pubsub_group& group() const noexcept { return channel.tables.groups[member.group.load(std::memory_order_relaxed)]; }

  status take(const std::byte*& payload, std::uint64_t& size, std::uint64_t& ticket, std::uint64_t& missed) noexcept {
    checked = -1;
    if (durable.poisoned()) return status::io_error;
    if (member.group.load(std::memory_order_relaxed) >= channel.tables.groups.size()) return status::corrupt;
    std::uint64_t jumped = 0;
    orphan_out = false;
    const status s = ring.try_take(group(), member, ticket, payload, size, jumped, orphan_out);
    redelivering = orphan_out;
    if (s == status::ok && ticket < redeliver_until) redelivering = true;
    if (redelivering) channel.control->redelivered.fetch_add(1, std::memory_order_relaxed);
    if (jumped != 0) count_missed(jumped);
    if (s == status::ok) {
      missed = missed_pending;
      missed_pending = 0;
    }
    return s;
  }
  bool has_record() const noexcept { return ring.has_message(group()); }
  void recover() noexcept { recover_dead(channel, ring, &member); }
  pubsub_control& control() const noexcept { return *channel.control; }
  bool producers_died() const noexcept {
    return all_died(channel.seg.fd(), publisher_lock(0), channel.publishers);
  }
  void release_view(std::uint64_t ticket) noexcept override {
    const bool whole = checked >= 0 ? checked == 1 : view_intact(ticket);
    if (!whole) count_missed(1);
    ring.release(member);
    view_out = false;
    (void)durable.released();  // a failure poisons it: take() says io_error from then on
  }
  status sync() noexcept { return durable.sync(); }
  bool view_intact(std::uint64_t ticket) const noexcept override {
    // Under block, publishers cannot reach a slot still being read, unless it is an
    // orphan that waited in a group with no member.
    if (channel.block && !orphan_out) return true;
    checked = ring.intact(ticket) ? 1 : 0;
    return checked == 1;
  }
  std::size_t max_message_size() const noexcept { return channel.geometry.max_payload; }
};

channel_stats pubsub_stats(std::string_view name) {
  pubsub_options o;
  o.open = open_mode::open;
  o.open_timeout = std::chrono::milliseconds(0);
  const attached a = attach(name, o);
  channel_stats s;
  s.unit = "messages";
  s.policy = a.block ? "block" : "overwrite";
  s.capacity = a.geometry.slot_count;
  s.max_message_size = a.geometry.max_payload;
  // Cursors first: claim_pos, read after them, cannot be behind any of them.
  for (const pubsub_group& g : a.tables.groups) {
    const std::uint32_t state = g.state.load(std::memory_order_acquire);
    if (state == static_cast<std::uint32_t>(group_state::free)) continue;
    if (state != static_cast<std::uint32_t>(group_state::active) && state != static_cast<std::uint32_t>(group_state::idle))
      fail_channel(errc::corrupt, name, "group table holds an unknown state " + std::to_string(state));
    s.groups.push_back({printable_group_name(g), state == static_cast<std::uint32_t>(group_state::active) ? "active" : "idle",
                        g.members, g.cursor.load(std::memory_order_acquire), 0,
                        g.orphan.load(std::memory_order_relaxed) != 0});
  }
  const std::uint64_t claimed = a.control->claim_pos.load(std::memory_order_acquire);
  s.write_position = s.committed = s.read_position = claimed;
  for (group_stats& g : s.groups) {
    if (g.position > claimed)
      fail_channel(errc::corrupt, name, "group '" + g.name + "' is ahead of the stream");
    g.lag = claimed - g.position;
    s.read_position = std::min(s.read_position, g.position);
  }
  s.delivered = s.read_position;
  s.fill = std::min(claimed - s.read_position, s.capacity);
  s.closed = a.control->closed.load(std::memory_order_acquire) != 0;
  s.redelivered = a.control->redelivered.load(std::memory_order_relaxed);
  s.missed = a.control->missed.load(std::memory_order_relaxed);
  for (std::size_t i = 0; i < a.publishers.size(); ++i)
    if (const std::uint32_t p = a.publishers[i].load(std::memory_order_acquire); p != 0)
      s.participants.push_back({"publisher", p, held_elsewhere(a.seg.fd(), publisher_lock(i))});
  for (std::size_t i = 0; i < a.tables.members.size(); ++i)
    if (const std::uint32_t p = a.tables.members[i].pid.load(std::memory_order_acquire); p != 0)
      s.participants.push_back({"subscriber", p, held_elsewhere(a.seg.fd(), member_lock(a, i))});
  return s;
}

}  // namespace shmq::detail

namespace shmq {

template class basic_producer<detail::publisher_impl>;
template class basic_consumer<detail::subscriber_impl>;

publisher::publisher(std::string_view name, const pubsub_options& options)
    : basic_producer([&] {
        auto a = detail::attach(name, options);
        const auto slot = detail::claim_publisher(a, name);
        const detail::pubsub_ring ring(*a.control, a.geometry, a.tables, a.block, &detail::own_record(a, slot),
                                       a.durable_gate);
        a.attaching.reset();  // claimed: the next endpoint may attach
        return std::make_unique<detail::publisher_impl>(std::move(a), ring, slot, options);
      }()) {}

subscriber::subscriber(std::string_view name, const pubsub_options& options, const subscription& how)
    : basic_consumer(
          std::make_unique<detail::subscriber_impl>(detail::attach(name, options), name, how, options)) {}

std::size_t publisher::subscribers() const noexcept {
  std::size_t n = 0;
  for (const detail::pubsub_member& m : impl_->channel.tables.members)
    n += m.pid.load(std::memory_order_acquire) != 0;
  return n;
}

std::uint64_t subscriber::missed_total() const noexcept { return impl_->missed_total; }

}  // namespace shmq

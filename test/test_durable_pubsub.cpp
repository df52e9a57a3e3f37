// File-backed publish/subscribe channels (docs/durability.md, "Pub/sub in a file"):
// power loss simulated with crash images (test/durable/crash_image.hpp) on a workload of
// two publishers, a named group of two members whose releases complete out of order and
// a second group, the negative control, kill -9 of a publisher, mutated file images, a
// failed flush, and a publisher and a group member in separate processes.
#include <cerrno>
#include <map>
#include <optional>
#include <random>
#include <set>

#include "durable/crash_image.hpp"
#include "durable/file_support.hpp"
#include "durable/flush.hpp"
#include "durable/pubsub_file.hpp"
#include "layout.hpp"
#include "shmq/pubsub.hpp"
#include "test_support.hpp"

namespace shmq::test {
namespace {

constexpr std::size_t slots = 64, max_message = 700;
constexpr std::size_t groups = 2;  // "g" (two members), "h" (one)
const char* const group_names[groups] = {"g", "h"};

pubsub_options pubsub_file(const std::string& path, durability level, open_mode open = open_mode::open_or_create) {
  pubsub_options o;
  o.slots = slots;
  o.max_message_size = max_message;
  o.max_publishers = 4;
  o.max_subscribers = 8;
  o.max_groups = 4;
  o.open = open;
  o.file.path = path;
  o.file.durability = level;
  o.file.group_messages = 8;
  o.file.group_interval = std::chrono::microseconds(500);
  return o;
}

subscription member_of(const char* group) {
  subscription how;
  how.group = group;
  how.start = start_from::oldest;
  return how;
}

// Every message the subscriber's group has, in delivery order; each must check out and
// come after the one before. `flagged`: all were flagged redelivered.
std::vector<std::uint64_t> take_all(subscriber& s, std::string& why, bool* flagged = nullptr) {
  std::vector<std::uint64_t> got;
  if (flagged != nullptr) *flagged = true;
  for (std::size_t k = 0; k <= 2 * slots; ++k) {
    view v = s.try_read();
    if (!v) {
      if (v.status() != status::empty) why += "read ended with " + std::string(to_string(v.status())) + "; ";
      return got;
    }
    const std::uint64_t seq = stamped_seq(v.data());
    if (seq == ~std::uint64_t{0}) {
      why += "a delivered message fails its stamp; ";
      return got;
    }
    if (!got.empty() && seq <= got.back())
      why += "seq " + std::to_string(seq) + " after " + std::to_string(got.back()) + "; ";
    if (v.missed() != 0) why += "a group was told it missed " + std::to_string(v.missed()) + " messages before " + std::to_string(seq) + "; ";
    if (flagged != nullptr) *flagged = *flagged && v.redelivered();
    got.push_back(seq);
  }
  why += "more messages than slots; ";
  return got;
}

// What the API promised about each message of the workload.
struct message_state {
  bool promised = false;              // its publish returned under per_commit, or its publisher's sync() did
  bool released[groups] = {};         // a member of the group released it
  bool released_durably_h = false;    // ... and h's release was made durable (h has one member)
};
using ledger = std::map<std::uint64_t, message_state>;

// Recovers `image` as after a reboot and checks it against the ledger. Empty, or what
// was wrong.
std::string check_image(const scratch_dir& dir, const std::vector<std::byte>& image, const ledger& book,
                        durability level, std::uint64_t number) {
  const std::string path = dir.file("image-" + std::to_string(number) + ".shmq");
  write_file(path, image);
  reboot_guard reboot("pubsub-crash-boot-" + std::to_string(number));
  std::string why;
  try {
    const pubsub_options o = pubsub_file(path, level, open_mode::open);
    std::optional<subscriber> subs[groups];
    for (std::size_t k = 0; k < groups; ++k) {
      subs[k].emplace("image", o, member_of(group_names[k]));
      bool flagged = true;
      const std::vector<std::uint64_t> got = take_all(*subs[k], why, &flagged);
      if (!flagged) why += "a recovered message is not flagged redelivered; ";
      const std::set<std::uint64_t> present(got.begin(), got.end());
      for (const auto& [seq, m] : book) {
        if (m.promised && !m.released[k] && present.count(seq) == 0)
          why += std::string("group ") + group_names[k] + " lost promised message " + std::to_string(seq) + "; ";
        if (k == 1 && m.released_durably_h && present.count(seq) != 0)
          why += "seq " + std::to_string(seq) + " delivered again to h, its release was durable; ";
      }
      for (std::uint64_t seq : got)
        if (book.count(seq) == 0) why += "seq " + std::to_string(seq) + " was never published; ";
    }
    // The recovered channel goes on: new messages reach both groups intact.
    publisher p("image", o);
    for (std::uint64_t k = 0; k < 3; ++k) {
      if (p.push_for(make_message(1'000'000 + k, 100 + 200 * k), std::chrono::seconds(5)) != status::ok)
        why += "publish after recovery failed; ";
      for (auto& s : subs) {
        view v = s->try_read();
        if (!v || stamped_seq(v.data()) != 1'000'000 + k || v.redelivered()) why += "message after recovery not read back; ";
      }
    }
  } catch (const std::exception& e) {
    why += std::string("opening the image failed: ") + e.what() + "; ";
  }
  ::unlink(path.c_str());
  return why;
}

std::size_t file_bytes(durability level) {
  const detail::pubsub_file_limits l{slots, max_message, 4, 8, 4, 0};
  return detail::file_control_offset + detail::pubsub_file_control_size(l) +
         slots * detail::file_slot_size_for(max_message, level != durability::none);
}

// Two publishers, members a and b of group g and c of group h, on one thread at random;
// a member may hold a view while the other goes on, so g's releases complete out of
// order. `count_all_as_promised`: the negative control.
crash_run_result crash_run(durability level, std::uint64_t seed, std::uint64_t crash_points,
                           std::uint64_t images_per_point, bool count_all_as_promised = false) {
  scratch_dir live_dir("/var/tmp");
  scratch_dir image_dir("/dev/shm");
  const std::string path = live_dir.file("stream.shmq");
  durable_image disk(std::vector<std::byte>(file_bytes(level)), path);  // creation's flushes fill it
  const pubsub_options created = pubsub_file(path, level, open_mode::create);
  const pubsub_options o = pubsub_file(path, level, open_mode::open);
  publisher publishers[2] = {publisher("crash", created), publisher("crash", o)};
  subscriber members[3] = {subscriber("crash", o, member_of("g")), subscriber("crash", o, member_of("g")),
                           subscriber("crash", o, member_of("h"))};
  const std::size_t group_of[3] = {0, 0, 1};
  REQUIRE(read_file(path).size() == file_bytes(level));

  std::mt19937_64 rng(seed);
  ledger book;
  std::vector<std::uint64_t> unsynced[2];  // each publisher's publishes since its last sync()
  std::vector<std::uint64_t> unsynced_h;   // c's releases since its last sync()
  std::optional<view> held[3];
  std::uint64_t held_seq[3] = {};
  crash_run_result r;
  std::uint64_t next = 1;
  while (r.images < crash_points * images_per_point) {
    const unsigned op = rng() % 100;
    const unsigned who = rng() % 3;
    if (op < 40) {
      const unsigned pub = who % 2;
      const status s = publishers[pub].try_push(make_message(next, 16 + rng() % (max_message - 16)));
      if (s == status::ok) {
        book[next].promised = level == durability::per_commit || count_all_as_promised;
        unsynced[pub].push_back(next++);
      } else {
        REQUIRE(s == status::full);
      }
    } else if (op < 65) {
      if (held[who]) continue;
      view v = members[who].try_read();
      if (!v) {
        REQUIRE(v.status() == status::empty);
        continue;
      }
      held_seq[who] = stamped_seq(v.data());
      REQUIRE(book.count(held_seq[who]) == 1);
      held[who].emplace(std::move(v));
    } else if (op < 85) {
      if (!held[who]) continue;
      held[who]->release();
      held[who].reset();
      message_state& m = book[held_seq[who]];
      m.released[group_of[who]] = true;
      if (who == 2) {
        m.released_durably_h = level == durability::per_commit;
        unsynced_h.push_back(held_seq[who]);
      }
    } else if (op < 91) {
      REQUIRE(publishers[who % 2].sync() == status::ok);
      if (level != durability::none)
        for (std::uint64_t seq : unsynced[who % 2]) book[seq].promised = true;
      unsynced[who % 2].clear();
    } else if (op < 97) {
      REQUIRE(members[who].sync() == status::ok);
      if (who == 2 && level != durability::none) {
        for (std::uint64_t seq : unsynced_h) book[seq].released_durably_h = true;
        unsynced_h.clear();
      }
    } else {
      r.crash_now(disk, images_per_point, rng, [&](const std::vector<std::byte>& image, std::uint64_t i) {
        return check_image(image_dir, image, book, level, i);
      });
    }
  }
  r.flushes = disk.flushes();
  for (const auto& [seq, m] : book) r.promised += m.promised;
  return r;
}

}  // namespace

TEST_SUITE_BEGIN("durable");

TEST_CASE("pubsub_crash_images_keep_every_promise") {
  check_every_promise("pubsub", [](durability level, std::uint64_t seed, std::uint64_t points, std::uint64_t per) {
    return crash_run(level, seed, points, per);
  });
}

TEST_CASE("pubsub_crash_image_checker_catches_a_lost_promise") {
  const crash_run_result r = crash_run(durability::none, 3, 20, 6, true);
  check_negative_control("pubsub", r);
}

TEST_CASE("pubsub_file_groups_after_a_reboot_at_every_level") {
  for (durability level : {durability::none, durability::group_commit, durability::per_commit}) {
    CAPTURE(static_cast<int>(level));
    scratch_dir dir;
    const pubsub_options o = pubsub_file(dir.file("s.shmq"), level);
    {
      publisher p("s", o);
      subscriber a("s", o, member_of("g")), b("s", o, member_of("g"));
      subscriber mine("s", o);  // private: not kept across a reboot
      push_stamped(p, 1, 20);
      // a holds 1 while b takes and releases 2..5: g's floor stays at 1.
      view held = a.try_read();
      REQUIRE(held);
      CHECK(stamped_seq(held.data()) == 1);
      for (std::uint64_t seq = 2; seq <= 5; ++seq) {
        view v = b.try_read();
        REQUIRE(v);
        CHECK(stamped_seq(v.data()) == seq);
      }
      CHECK(p.sync() == status::ok);
      CHECK(b.sync() == status::ok);
      CHECK(a.sync() == status::ok);
    }  // a releases 1 as its view goes: g's floor is 6 at close
    reboot_guard reboot("pubsub-reboot-" + std::to_string(static_cast<int>(level)));
    subscriber g("s", o, member_of("g"));
    std::string why;
    bool flagged = false;
    const auto got = take_all(g, why, &flagged);
    CHECK(why.empty());
    // Every level closed cleanly (the page cache is intact here): 6..20.
    REQUIRE(got.size() == 15);
    CHECK(got.front() == 6);
    CHECK(got.back() == 20);
    CHECK(flagged);
    CHECK(g.redeliveries() == 15);
    publisher p("s", o);
    push_stamped(p, 21, 3);
    view v = g.try_read();
    REQUIRE(v);
    CHECK(stamped_seq(v.data()) == 21);
    CHECK_FALSE(v.redelivered());
  }
}

TEST_CASE("pubsub_file_overwrite_policy_after_a_reboot_reports_what_a_lagging_group_missed") {
  scratch_dir dir;
  pubsub_options o = pubsub_file(dir.file("ow.shmq"), durability::per_commit);
  o.policy = overflow_policy::overwrite;
  {
    publisher p("ow", o);
    subscriber g("ow", o, member_of("g"));
    push_stamped(p, 1, 10);
    for (std::uint64_t seq = 1; seq <= 5; ++seq) {
      view v = g.try_read();
      REQUIRE(v);
      CHECK(stamped_seq(v.data()) == seq);
    }
    push_stamped(p, 11, 2 * slots);  // laps g, which is at 6
  }
  reboot_guard reboot("pubsub-overwrite-reboot");
  subscriber g("ow", o, member_of("g"));
  view first = g.try_read();
  REQUIRE(first);
  const std::uint64_t newest = 10 + 2 * slots;
  CHECK(stamped_seq(first.data()) == newest - slots + 1);  // the oldest still there
  CHECK(first.missed() == newest - slots + 1 - 6);
  CHECK(first.redelivered());
  first.release();
  std::string why;
  const auto rest = take_all(g, why);
  CHECK(why.empty());
  CHECK(rest.size() == slots - 1);
  CHECK(rest.back() == newest);
}

TEST_CASE("pubsub_file_durable_gate_is_moved_by_the_publisher") {
  // A group-commit member releasing less than a group of messages leaves its floor
  // unflushed: the publisher, full by the durable gate alone, writes the checkpoint.
  scratch_dir dir;
  pubsub_options o = pubsub_file(dir.file("gate.shmq"), durability::group_commit);
  o.file.group_messages = 1'000'000;
  o.file.group_interval = std::chrono::seconds(10);
  publisher p("gate", o);
  subscriber s("gate", o, member_of("g"));
  std::uint64_t next = push_stamped(p, 1, slots);
  CHECK(p.try_push(make_message(next, 64)) == status::full);
  for (int k = 0; k < 10; ++k) {
    view v = s.try_read();
    REQUIRE(v);
  }
  next = push_stamped(p, next, 10);
  CHECK(p.try_push(make_message(next, 64)) == status::full);
}

TEST_CASE("pubsub_file_flush_failure_poisons_the_endpoint_and_the_channel") {
  scratch_dir dir;
  const pubsub_options o = pubsub_file(dir.file("p.shmq"), durability::per_commit);
  publisher p("p", o);
  subscriber s("p", o, member_of("g"));
  push_stamped(p, 1, 3);
  detail::inject_flush_failures(EIO, 1);
  CHECK(p.try_push(make_message(4, 64)) == status::io_error);
  detail::inject_flush_failures(0, 0);
  // Never retried as if the data were safe: io_error from then on.
  CHECK(p.try_push(make_message(5, 64)) == status::io_error);
  CHECK(p.sync() == status::io_error);
  try {
    publisher again("p", o);
    FAIL("attached to a poisoned file");
  } catch (const error& e) {
    CHECK(e.code() == errc::io_failed);
  }
  // A subscriber's failed checkpoint of its release poisons it likewise.
  {
    view v = s.try_read();
    REQUIRE(v);
    detail::inject_flush_failures(EIO, 1);
  }
  detail::inject_flush_failures(0, 0);
  CHECK(s.try_read().status() == status::io_error);
  CHECK(s.sync() == status::io_error);

  // Group commit: a failed background checkpoint shows from sync() on.
  const pubsub_options g = pubsub_file(dir.file("g.shmq"), durability::group_commit);
  publisher gp("g", g);
  subscriber gs("g", g, member_of("g"));
  push_stamped(gp, 1, 20);
  detail::inject_flush_failures(EIO, 1000);
  for (int k = 0; k < 20; ++k) (void)gs.try_read();
  CHECK(gs.sync() == status::io_error);
  detail::inject_flush_failures(0, 0);
  CHECK(gs.try_read().status() == status::io_error);
}

TEST_CASE("pubsub_file_per_commit_publisher_killed_at_random_loses_no_committed_message") {
  const std::uint64_t rounds = env_count("SHMQ_DURABLE_KILLS", 6);
  std::mt19937_64 rng(47);
  for (std::uint64_t round = 0; round < rounds; ++round) {
    CAPTURE(round);
    scratch_dir dir;
    const pubsub_options o = pubsub_file(dir.file("kill.shmq"), durability::per_commit);
    // The group's member stays attached (not reading): under block it gates the
    // publisher, which fills the ring at most.
    std::optional<subscriber> waiting;
    waiting.emplace("kill", o, member_of("g"));
    const std::uint64_t kill_after = 3 + rng() % 50;
    child_process pub([&](child_process& self) { return push_until_killed<publisher>(self, "kill", o, 600); });
    wait_promised(pub, kill_after);
    const std::uint64_t promised = kill_after;
    pub.kill_and_wait();
    pubsub_options copy = o;
    copy.file.path = dir.file("copy.shmq");
    write_file(copy.file.path, read_file(o.file.path));
    std::string why;
    {
      // A process crash: the page cache holds it all.
      const auto got = take_all(*waiting, why);
      CHECK(got.size() >= promised);
      for (std::size_t i = 0; i < got.size(); ++i) CHECK(got[i] == i + 1);
    }
    waiting.reset();
    reboot_guard reboot("pubsub-after-kill-" + std::to_string(round));
    subscriber s("kill", copy, member_of("g"));
    bool flagged = false;
    const auto got = take_all(s, why, &flagged);
    CHECK(why.empty());
    REQUIRE(got.size() >= promised);
    for (std::size_t i = 0; i < got.size(); ++i) CHECK(got[i] == i + 1);
    CHECK(flagged);
  }
}

TEST_CASE("pubsub_file_subscriber_skips_a_dead_publishers_slot_through_its_read_only_mapping") {
  scratch_dir dir;
  pubsub_options o = pubsub_file(dir.file("dead.shmq"), durability::per_commit);
  o.liveness_interval = std::chrono::milliseconds(1);
  subscriber s("dead", o, member_of("g"));
  child_process holder([&](child_process& self) {
    publisher p("dead", o);
    loan l = p.try_loan(64);  // sequence 0, never committed
    if (!l) return 1;
    self.notify('l');
    for (;;) ::pause();
  });
  REQUIRE(holder.wait_notice() == 'l');
  publisher p("dead", o);
  push_stamped(p, 1, 3);  // sequences 1-3, behind the holder's 0
  CHECK(s.try_read().status() == status::empty);
  holder.kill_and_wait();  // nobody but the subscriber is left to skip 0
  for (std::uint64_t seq = 1; seq <= 3; ++seq) {
    view v = s.read_for(std::chrono::seconds(10));  // the subscriber skips 0 while it waits
    REQUIRE(v);
    CHECK(stamped_seq(v.data()) == seq);
  }
}

TEST_CASE("pubsub_bad_files_are_refused_with_a_clear_error") {
  scratch_dir dir;
  const pubsub_options o = pubsub_file(dir.file("good.shmq"), durability::group_commit);
  {
    publisher p("bad", o);
    subscriber s("bad", o, member_of("g"));
    push_stamped(p, 1, 5);
  }
  const auto image = read_file(o.file.path);
  const auto refused = [&](std::vector<std::byte> bytes, errc expected, const char* what) {
    CAPTURE(what);
    pubsub_options at = o;
    at.open = open_mode::open;
    at.file.path = dir.file("bad.shmq");
    write_file(at.file.path, bytes);
    reboot_guard reboot(std::string("pubsub-bad-") + what);
    try {
      subscriber s("bad", at, member_of("g"));
      FAIL("opened");
    } catch (const error& e) {
      CHECK(e.code() == expected);
    }
  };
  auto slots_changed = image;
  slots_changed[offsetof(detail::segment_header, file_slots)] = std::byte{3};
  refused(slots_changed, errc::corrupt, "slot count");
  auto groups_changed = image;
  groups_changed[offsetof(detail::segment_header, file_limits) + 8 + 1] = std::byte{0x40};
  refused(groups_changed, errc::corrupt, "group limit");
  auto policy_changed = image;
  policy_changed[offsetof(detail::segment_header, file_limits) + 12] = std::byte{7};
  refused(policy_changed, errc::corrupt, "policy");
  // Both checkpoints torn: the groups' floors are unknown, so nothing is guessed.
  const std::uint64_t checkpoints =
      detail::file_control_offset + detail::file_pages(detail::pubsub_control_size(4, 8, 4));
  auto torn = image;
  for (std::size_t i = 0; i < 64; ++i) {
    torn[checkpoints + i] = std::byte{0xff};
    torn[checkpoints + detail::file_page + i] = std::byte{0xff};
  }
  refused(torn, errc::corrupt, "both checkpoints");
}

TEST_CASE("pubsub_mutated_file_images_never_deliver_a_message_that_does_not_check_out") {
  scratch_dir dir("/dev/shm");
  const pubsub_options o = pubsub_file(dir.file("seed.shmq"), durability::group_commit);
  {
    publisher p("fuzz", o);
    subscriber g("fuzz", o, member_of("g")), h("fuzz", o, member_of("h"));
    std::uint64_t next = 1;
    for (int round = 0; round < 3; ++round) {
      next = push_stamped(p, next, 40);
      for (int k = 0; k < 35; ++k) REQUIRE(g.try_read());
      for (int k = 0; k < 30; ++k) REQUIRE(h.try_read());
    }
  }
  const auto seed = read_file(o.file.path);
  std::mt19937_64 rng(11);
  const std::uint64_t runs = env_count("SHMQ_DURABLE_FUZZ", 300);
  std::uint64_t opened_ok = 0, delivered = 0;
  for (std::uint64_t run = 0; run < runs; ++run) {
    auto bytes = seed;
    mutate_runs(bytes, rng);
    pubsub_options at = o;
    at.open = open_mode::open;
    at.file.path = dir.file("mutated.shmq");
    write_file(at.file.path, bytes);
    reboot_guard reboot("pubsub-fuzz-" + std::to_string(run));
    try {
      for (const char* group : group_names) {
        subscriber s("fuzz", at, member_of(group));
        for (std::size_t k = 0; k <= 2 * slots; ++k) {
          view v = s.try_read();
          if (!v) break;
          ++delivered;
          CHECK(stamped_seq(v.data()) != ~std::uint64_t{0});
        }
      }
      ++opened_ok;
    } catch (const error&) {
      // refused with a clear error: fine
    }
  }
  MESSAGE(opened_ok << " of " << runs << " mutated pub/sub images opened, " << delivered
                    << " messages delivered, all intact");
  CHECK(opened_ok > 0);
}

TEST_CASE("pubsub_file_publisher_and_group_member_in_separate_processes") {
  for (durability level : {durability::none, durability::group_commit, durability::per_commit}) {
    CAPTURE(static_cast<int>(level));
    scratch_dir dir;
    const pubsub_options o = pubsub_file(dir.file("x.shmq"), level);
    constexpr std::uint64_t count = 300;
    { subscriber create("x", o, member_of("g")); }  // the group exists before anything is published
    child_process member([&](child_process& self) {
      subscriber s("x", o, member_of("g"));
      self.notify('j');
      for (std::uint64_t seq = 1; seq <= count; ++seq) {
        view v = s.read_for(std::chrono::seconds(20));
        if (!v || stamped_seq(v.data()) != seq) return 1;
      }
      return s.sync() == status::ok ? 0 : 2;
    });
    REQUIRE(member.wait_notice() == 'j');
    child_process pub([&](child_process&) {
      publisher p("x", o);
      for (std::uint64_t seq = 1; seq <= count; ++seq)
        if (p.push_for(make_message(seq, 16 + seq % 600), std::chrono::seconds(20)) != status::ok) return 1;
      return p.sync() == status::ok ? 0 : 2;
    });
    CHECK(pub.wait() == 0);
    CHECK(member.wait() == 0);
  }
}

TEST_SUITE_END();

}  // namespace shmq::test

// File-backed MPMC queues (docs/durability.md, "Slotted channels"): power loss
// simulated with crash images (test/durable/crash_image.hpp) on a workload of two
// producers and two consumers whose releases complete out of order, the negative
// control, a simulated reboot at each level, a failed flush, kill -9 across processes
// and mutated file images.
#include <cerrno>
#include <map>
#include <optional>
#include <random>
#include <set>

#include "durable/crash_image.hpp"
#include "durable/file_support.hpp"
#include "durable/flush.hpp"
#include "layout.hpp"
#include "shmq/mpmc.hpp"
#include "shmq/spsc.hpp"
#include "test_support.hpp"

namespace shmq::test {
namespace {

constexpr std::size_t slots = 64, max_message = 700;

mpmc_options mpmc_file(const std::string& path, durability level, open_mode open = open_mode::open_or_create) {
  mpmc_options o;
  o.slots = slots;
  o.max_message_size = max_message;
  o.max_producers = 4;
  o.max_consumers = 4;
  o.open = open;
  o.file.path = path;
  o.file.durability = level;
  o.file.group_messages = 8;
  o.file.group_interval = std::chrono::microseconds(500);
  return o;
}

// Every message there is, in delivery order; each must check out. `flagged`: all were
// flagged redelivered.
std::vector<std::uint64_t> drain(mpmc_consumer& c, std::string& why, bool* flagged = nullptr) {
  std::vector<std::uint64_t> got;
  if (flagged != nullptr) *flagged = true;
  for (std::size_t k = 0; k <= 2 * slots; ++k) {
    view v = c.try_read();
    if (!v) {
      if (v.status() != status::empty) why += "read ended with " + std::string(to_string(v.status())) + "; ";
      return got;
    }
    const std::uint64_t seq = stamped_seq(v.data());
    if (seq == ~std::uint64_t{0}) {
      why += "a delivered message fails its stamp; ";
      return got;
    }
    if (flagged != nullptr) *flagged = *flagged && v.redelivered();
    got.push_back(seq);
  }
  why += "more messages than slots; ";
  return got;
}

// What the API promised about each message of the workload.
struct message_state {
  bool promised = false;          // its commit returned under per_commit, or its producer's sync() did
  bool released = false;          // a consumer released it
  bool released_durably = false;  // ... and that release was made durable
};
using ledger = std::map<std::uint64_t, message_state>;

// Recovers `image` as after a reboot and checks it against the ledger. Empty, or what
// was wrong.
std::string check_image(const scratch_dir& dir, const std::vector<std::byte>& image, const ledger& book,
                        durability level, std::uint64_t number) {
  const std::string path = dir.file("image-" + std::to_string(number) + ".shmq");
  write_file(path, image);
  reboot_guard reboot("mpmc-crash-boot-" + std::to_string(number));
  std::string why;
  try {
    const mpmc_options o = mpmc_file(path, level, open_mode::open);
    mpmc_consumer c("image", o);
    bool flagged = true;
    const std::vector<std::uint64_t> got = drain(c, why, &flagged);
    for (std::size_t i = 1; i < got.size(); ++i)
      if (got[i] <= got[i - 1])
        why += "seq " + std::to_string(got[i]) + " after " + std::to_string(got[i - 1]) + "; ";
    if (!flagged) why += "a recovered message is not flagged redelivered; ";
    const std::set<std::uint64_t> present(got.begin(), got.end());
    for (const auto& [seq, m] : book) {
      if (m.promised && !m.released && present.count(seq) == 0)
        why += "lost promised message " + std::to_string(seq) + "; ";
      if (m.released_durably && present.count(seq) != 0)
        why += "seq " + std::to_string(seq) + " delivered again, its release was durable; ";
    }
    for (std::uint64_t seq : got)
      if (book.count(seq) == 0) why += "seq " + std::to_string(seq) + " was never committed; ";
    // The recovered queue goes on: new messages arrive intact.
    mpmc_producer p("image", o);
    for (std::uint64_t k = 0; k < 3; ++k) {
      if (p.push_for(make_message(1'000'000 + k, 100 + 200 * k), std::chrono::seconds(5)) != status::ok)
        why += "push after recovery failed; ";
      view v = c.try_read();
      if (!v || stamped_seq(v.data()) != 1'000'000 + k) why += "message after recovery not read back; ";
    }
  } catch (const std::exception& e) {
    why += std::string("opening the image failed: ") + e.what() + "; ";
  }
  ::unlink(path.c_str());
  return why;
}


// Two producers and two consumers on one thread, at random; each consumer may hold a
// view while the other goes on, so releases complete out of order. `count_all_as_promised`:
// the negative control.
crash_run_result crash_run(durability level, std::uint64_t seed, std::uint64_t crash_points, std::uint64_t images_per_point,
                     bool count_all_as_promised = false) {
  scratch_dir live_dir("/var/tmp");
  scratch_dir image_dir("/dev/shm");
  const std::string path = live_dir.file("queue.shmq");
  const bool pages = level != durability::none;
  const std::size_t file_bytes =
      detail::file_control_offset +
      detail::slotted_file_control_size(detail::mpmc_control_size(4, 4), 0) +
      slots * detail::file_slot_size_for(max_message, pages);
  durable_image disk(std::vector<std::byte>(file_bytes), path);  // creation's flushes fill it
  const mpmc_options o = mpmc_file(path, level, open_mode::create);
  mpmc_producer producers[2] = {mpmc_producer("crash", o), mpmc_producer("crash", mpmc_file(path, level, open_mode::open))};
  mpmc_consumer consumers[2] = {mpmc_consumer("crash", mpmc_file(path, level, open_mode::open)),
                                mpmc_consumer("crash", mpmc_file(path, level, open_mode::open))};
  REQUIRE(read_file(path).size() == file_bytes);

  std::mt19937_64 rng(seed);
  ledger book;
  std::vector<std::uint64_t> unsynced[2];        // each producer's commits since its last sync()
  std::vector<std::uint64_t> unsynced_release[2];  // each consumer's releases since its last sync()
  std::optional<view> held[2];
  std::uint64_t held_seq[2] = {0, 0};
  crash_run_result r;
  std::uint64_t next = 1;
  while (r.images < crash_points * images_per_point) {
    const unsigned op = rng() % 100;
    const unsigned who = rng() % 2;
    if (op < 45) {
      const status s = producers[who].try_push(make_message(next, 16 + rng() % (max_message - 16)));
      if (s == status::ok) {
        book[next].promised = level == durability::per_commit || count_all_as_promised;
        unsynced[who].push_back(next++);
      } else {
        REQUIRE(s == status::full);
      }
    } else if (op < 70) {
      if (held[who]) continue;
      view v = consumers[who].try_read();
      if (!v) {
        REQUIRE(v.status() == status::empty);
        continue;
      }
      held_seq[who] = stamped_seq(v.data());
      REQUIRE(book.count(held_seq[who]) == 1);
      held[who].emplace(std::move(v));
    } else if (op < 88) {
      if (!held[who]) continue;
      held[who]->release();
      held[who].reset();
      message_state& m = book[held_seq[who]];
      m.released = true;
      m.released_durably = level == durability::per_commit;
      unsynced_release[who].push_back(held_seq[who]);
    } else if (op < 93) {
      REQUIRE(producers[who].sync() == status::ok);
      if (level != durability::none)
        for (std::uint64_t seq : unsynced[who]) book[seq].promised = true;
      unsynced[who].clear();
    } else if (op < 97) {
      REQUIRE(consumers[who].sync() == status::ok);
      if (level != durability::none)
        for (std::uint64_t seq : unsynced_release[who]) book[seq].released_durably = true;
      unsynced_release[who].clear();
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

TEST_CASE("mpmc_crash_images_keep_every_promise") {
  check_every_promise("mpmc", [](durability level, std::uint64_t seed, std::uint64_t points, std::uint64_t images) {
    return crash_run(level, seed, points, images);
  });
}

TEST_CASE("mpmc_crash_image_checker_catches_a_lost_promise") {
  const crash_run_result r = crash_run(durability::none, 3, 20, 6, true);
  check_negative_control("mpmc", r);
}

TEST_CASE("mpmc_file_queue_after_a_reboot_at_every_level") {
  for (durability level : {durability::none, durability::group_commit, durability::per_commit}) {
    CAPTURE(static_cast<int>(level));
    scratch_dir dir;
    const mpmc_options o = mpmc_file(dir.file("q.shmq"), level);
    {
      mpmc_producer p("q", o);
      mpmc_consumer a("q", o), b("q", o);
      push_stamped(p, 1, 20);
      // a holds 1 while b takes and releases 2..5: releases out of order.
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
    }  // a's view is released as it goes out of scope: 1 is released too
    reboot_guard reboot("mpmc-reboot-" + std::to_string(static_cast<int>(level)));
    mpmc_consumer c("q", o);
    std::string why;
    bool flagged = false;
    const auto got = drain(c, why, &flagged);
    CHECK(why.empty());
    // Under every level the endpoints closed cleanly (page cache intact here): 6..20.
    REQUIRE(got.size() == 15);
    CHECK(got.front() == 6);
    CHECK(got.back() == 20);
    CHECK(flagged);
    CHECK(c.redeliveries() == 15);
    // New messages after the recovered ones, not flagged.
    mpmc_producer p("q", o);
    push_stamped(p, 21, 3);
    view v = c.try_read();
    REQUIRE(v);
    CHECK(stamped_seq(v.data()) == 21);
    CHECK_FALSE(v.redelivered());
  }
}

TEST_CASE("mpmc_file_flush_failure_poisons_the_endpoint_and_the_channel") {
  scratch_dir dir;
  const mpmc_options o = mpmc_file(dir.file("p.shmq"), durability::per_commit);
  mpmc_producer p("p", o);
  mpmc_consumer c("p", o);
  push_stamped(p, 1, 3);
  detail::inject_flush_failures(EIO, 1);
  CHECK(p.try_push(make_message(4, 64)) == status::io_error);
  detail::inject_flush_failures(0, 0);
  // Never retried as if the data were safe: io_error from then on.
  CHECK(p.try_push(make_message(5, 64)) == status::io_error);
  CHECK(p.sync() == status::io_error);
  try {
    mpmc_producer again("p", o);
    FAIL("attached to a poisoned file");
  } catch (const error& e) {
    CHECK(e.code() == errc::io_failed);
  }
  // A consumer's failed release flush poisons it likewise.
  {
    view v = c.try_read();
    REQUIRE(v);
    detail::inject_flush_failures(EIO, 1);
  }
  detail::inject_flush_failures(0, 0);
  CHECK(c.try_read().status() == status::io_error);

  // Group commit: a failed background flush shows from sync() on.
  const mpmc_options g = mpmc_file(dir.file("g.shmq"), durability::group_commit);
  mpmc_producer gp("g", g);
  detail::inject_flush_failures(EIO, 1000);
  for (std::uint64_t seq = 1; seq <= 20; ++seq) (void)gp.try_push(make_message(seq, 64));
  CHECK(gp.sync() == status::io_error);
  detail::inject_flush_failures(0, 0);
  CHECK(gp.try_push(make_message(21, 64)) == status::io_error);
}

TEST_CASE("mpmc_file_per_commit_producer_killed_at_random_loses_no_committed_message") {
  const std::uint64_t rounds = env_count("SHMQ_DURABLE_KILLS", 6);
  std::mt19937_64 rng(43);
  for (std::uint64_t round = 0; round < rounds; ++round) {
    CAPTURE(round);
    scratch_dir dir;
    const mpmc_options o = mpmc_file(dir.file("kill.shmq"), durability::per_commit);
    { mpmc_producer create("kill", o); }
    const std::uint64_t kill_after = 3 + rng() % 50;
    // A consumer process holds the first message it reads when the producer dies, and
    // is killed too: after the reboot that message is delivered again.
    child_process consumer([&](child_process& self) {
      mpmc_consumer c("kill", o);
      view v = c.read_for(std::chrono::seconds(20));
      if (!v || stamped_seq(v.data()) != 1) return 1;
      self.notify('h');
      for (;;) ::pause();
    });
    child_process producer(
        [&](child_process& self) { return push_until_killed<mpmc_producer>(self, "kill", o, max_message); });
    wait_promised(producer, kill_after);
    const std::uint64_t promised = kill_after;
    REQUIRE(consumer.wait_notice() == 'h');
    producer.kill_and_wait();
    consumer.kill_and_wait();
    mpmc_options copy = o;
    copy.file.path = dir.file("copy.shmq");
    write_file(copy.file.path, read_file(o.file.path));
    std::string why;
    {
      // A process crash: the page cache holds it all; the consumer that attaches next
      // adopts the message the dead one held.
      mpmc_consumer c("kill", o);
      const std::vector<std::uint64_t> got = drain(c, why);
      CHECK(got.size() >= promised);
      CHECK(std::count(got.begin(), got.end(), 1) == 1);
    }
    reboot_guard reboot("mpmc-after-kill-" + std::to_string(round));
    mpmc_consumer c("kill", copy);
    bool flagged = false;
    const auto got = drain(c, why, &flagged);
    CHECK(why.empty());
    REQUIRE(got.size() >= promised);
    CHECK(got.front() == 1);  // the message the killed consumer held
    for (std::size_t i = 1; i < got.size(); ++i) CHECK(got[i] == got[i - 1] + 1);
    CHECK(flagged);
  }
}

TEST_CASE("mpmc_bad_files_are_refused_with_a_clear_error") {
  scratch_dir dir;
  const mpmc_options o = mpmc_file(dir.file("good.shmq"), durability::group_commit);
  {
    mpmc_producer p("bad", o);
    push_stamped(p, 1, 5);
  }
  const auto image = read_file(o.file.path);
  const auto refused = [&](std::vector<std::byte> bytes, errc expected, const char* what) {
    CAPTURE(what);
    mpmc_options at = o;
    at.open = open_mode::open;
    at.file.path = dir.file("bad.shmq");
    write_file(at.file.path, bytes);
    reboot_guard reboot(std::string("mpmc-bad-") + what);
    try {
      mpmc_consumer c("bad", at);
      FAIL("opened");
    } catch (const error& e) {
      CHECK(e.code() == expected);
    }
  };
  // The header's slot count, which the recovery rebuilds the control block from.
  auto slots_changed = image;
  slots_changed[offsetof(detail::segment_header, file_slots)] = std::byte{3};
  refused(slots_changed, errc::corrupt, "slot count");
  auto limits_changed = image;
  limits_changed[offsetof(detail::segment_header, file_limits) + 1] = std::byte{0x40};
  refused(limits_changed, errc::corrupt, "producer limit");
  // An MPMC file opened as an SPSC channel.
  {
    channel_options as_spsc = file_channel(o.file.path, durability::group_commit);
    as_spsc.open = open_mode::open;
    try {
      spsc_consumer c("bad", as_spsc);
      FAIL("an MPMC file opened as SPSC");
    } catch (const error& e) {
      CHECK(e.code() == errc::kind_mismatch);
    }
  }
  // Both boot records torn: the recovery runs (it needs nothing from them), and the
  // messages are there.
  const std::uint64_t records = detail::file_control_offset + detail::file_pages(detail::mpmc_control_size(4, 4));
  auto torn = image;
  for (std::size_t i = 0; i < 64; ++i) {
    torn[records + i] = std::byte{0xff};
    torn[records + detail::file_page + i] = std::byte{0xff};
  }
  mpmc_options at = o;
  at.file.path = dir.file("torn.shmq");
  write_file(at.file.path, torn);
  mpmc_consumer c("bad", at);
  std::string why;
  bool flagged = false;
  CHECK(drain(c, why, &flagged).size() == 5);
  CHECK(why.empty());
  CHECK(flagged);
}

TEST_CASE("mpmc_mutated_file_images_never_deliver_a_message_that_does_not_check_out") {
  scratch_dir dir("/dev/shm");
  const mpmc_options o = mpmc_file(dir.file("seed.shmq"), durability::group_commit);
  {
    mpmc_producer p("fuzz", o);
    mpmc_consumer c("fuzz", o);
    std::uint64_t next = 1;
    for (int round = 0; round < 3; ++round) {
      next = push_stamped(p, next, 40);
      for (int k = 0; k < 30; ++k) REQUIRE(c.try_read());
    }
  }
  const auto seed = read_file(o.file.path);
  std::mt19937_64 rng(9);
  const std::uint64_t runs = env_count("SHMQ_DURABLE_FUZZ", 300);
  std::uint64_t opened_ok = 0, delivered = 0;
  for (std::uint64_t run = 0; run < runs; ++run) {
    auto image = seed;
    mutate_runs(image, rng);
    mpmc_options at = o;
    at.open = open_mode::open;
    at.file.path = dir.file(std::to_string(run) + "-mutated.shmq");
    write_file(at.file.path, image);
    reboot_guard reboot("mpmc-fuzz-boot-" + std::to_string(run));
    try {
      mpmc_consumer c("fuzz", at);
      for (int k = 0; k < 100; ++k) {
        view v = c.try_read();
        if (!v) break;
        REQUIRE(stamped_seq(v.data()) != ~std::uint64_t{0});
        ++delivered;
      }
      ++opened_ok;
    } catch (const error&) {
    }
    ::unlink(at.file.path.c_str());
  }
  MESSAGE(opened_ok << " of " << runs << " mutated MPMC images opened, " << delivered
                    << " messages delivered, all intact");
  CHECK(opened_ok > 0);
}

TEST_SUITE_END();

}  // namespace shmq::test

// File-backed, durable channels (docs/durability.md) through the public API: each level
// round trip across processes, what creation leaves on disk, a simulated reboot, a
// failed flush, kill -9 of a per-commit producer, bad files and mutated file images.
// The power-loss model itself is in test_crash_images.cpp.
#include <cerrno>
#include <random>
#include <sys/stat.h>

#include "durable/file_support.hpp"
#include "durable/flush.hpp"
#include "shmq/mpmc.hpp"
#include "shmq/pubsub.hpp"
#include "test_support.hpp"

namespace shmq::test {
namespace {

channel_options opened(channel_options o) {
  o.open = open_mode::open;
  return o;
}

// Reads every message there is; each must check out and follow the one before.
std::vector<std::uint64_t> drain(spsc_consumer& c, bool* all_redelivered = nullptr) {
  std::vector<std::uint64_t> got;
  if (all_redelivered != nullptr) *all_redelivered = true;
  for (;;) {
    view v = c.try_read();
    if (!v) {
      REQUIRE(v.status() == status::empty);
      return got;
    }
    const std::uint64_t seq = stamped_seq(v.data());
    REQUIRE(seq != ~std::uint64_t{0});
    if (!got.empty()) REQUIRE(seq == got.back() + 1);
    if (all_redelivered != nullptr) *all_redelivered = *all_redelivered && v.redelivered();
    got.push_back(seq);
  }
}

}  // namespace

TEST_SUITE_BEGIN("durable");

TEST_CASE("file_channel_round_trip_across_processes_at_every_level") {
  for (durability level : {durability::none, durability::group_commit, durability::per_commit}) {
    CAPTURE(static_cast<int>(level));
    scratch_dir dir;
    const std::string path = dir.file("orders.shmq");
    const channel_options o = file_channel(path, level, 1u << 16, 1024);
    constexpr std::uint64_t count = 300;
    child_process producer([&](child_process&) {
      spsc_producer p("orders", o);
      for (std::uint64_t seq = 1; seq <= count; ++seq) {
        const auto m = make_message(seq, stream_message_size(7, seq, 16, 200, 1024));
        if (p.push_for(m, std::chrono::seconds(20)) != status::ok) return 1;
      }
      return p.sync() == status::ok ? 0 : 2;
    });
    child_process consumer([&](child_process&) {
      spsc_consumer c("orders", o);
      for (std::uint64_t seq = 1; seq <= count; ++seq) {
        view v = c.read_for(std::chrono::seconds(20));
        if (!v) return 3;
        if (v.size() != stream_message_size(7, seq, 16, 200, 1024) || !message_ok(v.data(), seq)) return 4;
      }
      return c.sync() == status::ok ? 0 : 5;
    });
    const auto [prc, crc] = child_process::wait_both(producer, consumer);
    CHECK(prc == 0);
    CHECK(crc == 0);
  }
}

TEST_CASE("file_channel_creation_preallocates_and_keeps_messages_after_every_process_left") {
  scratch_dir dir;
  const std::string path = dir.file("kept.shmq");
  channel_options o = file_channel(path, durability::group_commit, 1u << 16, 512);
  o.mode = 0640;
  {
    spsc_producer p("kept", o);
    CHECK(p.max_message_size() == 512);
    for (std::uint64_t seq = 1; seq <= 20; ++seq) REQUIRE(p.try_push(make_message(seq, 64)) == status::ok);
  }
  struct stat st {};
  REQUIRE(::stat(path.c_str(), &st) == 0);
  CHECK(S_ISREG(st.st_mode));
  CHECK((st.st_mode & 07777) == 0640);
  CHECK(static_cast<std::uint64_t>(st.st_size) == detail::file_control_offset + detail::file_control_size + (1u << 16));
  CHECK(static_cast<std::uint64_t>(st.st_blocks) * 512 >= static_cast<std::uint64_t>(st.st_size));  // allocated
  spsc_consumer c("kept", opened(o));
  const auto got = drain(c);
  REQUIRE(got.size() == 20);
  CHECK(got.front() == 1);
}

TEST_CASE("after_a_reboot_unreleased_messages_come_back_flagged_and_durable_releases_do_not") {
  scratch_dir dir;
  const std::string path = dir.file("reboot.shmq");
  const channel_options o = file_channel(path, durability::per_commit, 1u << 16, 256);
  {
    spsc_producer p("reboot", o);
    spsc_consumer c("reboot", o);
    for (std::uint64_t seq = 1; seq <= 10; ++seq) REQUIRE(p.try_push(make_message(seq, 100)) == status::ok);
    for (std::uint64_t seq = 1; seq <= 4; ++seq) {
      view v = c.try_read();
      REQUIRE(v);
      CHECK(stamped_seq(v.data()) == seq);
      CHECK_FALSE(v.redelivered());
    }
    // Message 5 is read but not released when the "power goes".
    view v = c.try_read();
    REQUIRE(stamped_seq(v.data()) == 5);
    detail::inject_flush_failures(0, 0);
  }
  reboot_guard reboot("a-later-boot");
  spsc_consumer c("reboot", opened(o));
  bool flagged = false;
  // The consumer above released message 5 when it left; per-commit, that release is durable.
  const auto got = drain(c, &flagged);
  REQUIRE_FALSE(got.empty());
  CHECK(got.front() == 6);
  CHECK(got.back() == 10);
  CHECK(flagged);
  CHECK(c.redeliveries() == got.size());
  spsc_producer p("reboot", opened(o));
  REQUIRE(p.try_push(make_message(11, 100)) == status::ok);
  view v = c.try_read();
  REQUIRE(v);
  CHECK(stamped_seq(v.data()) == 11);
  CHECK_FALSE(v.redelivered());
}

TEST_CASE("a_failed_flush_poisons_the_channel_and_is_never_taken_for_durable") {
  scratch_dir dir;
  const std::string path = dir.file("poison.shmq");
  const channel_options o = file_channel(path, durability::per_commit, 1u << 16, 256);
  {
    spsc_producer p("poison", o);
    REQUIRE(p.try_push(make_message(1, 64)) == status::ok);
    detail::inject_flush_failures(EIO, 1);
    CHECK(p.try_push(make_message(2, 64)) == status::io_error);  // committed, not durable
    detail::inject_flush_failures(0, 0);
    // The next flush would succeed (Linux forgets the error): it must not be believed.
    CHECK(p.try_push(make_message(3, 64)) == status::io_error);
    CHECK(p.sync() == status::io_error);
    loan l = p.try_loan(8);
    CHECK(l.status() == status::io_error);
  }
  try {
    spsc_producer again("poison", opened(o));
    FAIL("a poisoned file opened");
  } catch (const error& e) {
    CHECK(e.code() == errc::io_failed);
    CHECK(contains(e.what(), "flush"));
  }
}

TEST_CASE("a_failed_background_flush_poisons_a_group_commit_producer") {
  // Group commit flushes on a background thread: its failure comes back from sync() and
  // from every call after it, and later attachers are refused, as on the caller's thread.
  scratch_dir dir;
  const channel_options o = file_channel(dir.file("bg.shmq"), durability::group_commit, 1u << 16, 256);
  {
    spsc_producer p("bg", o);
    REQUIRE(p.try_push(make_message(1, 64)) == status::ok);
    REQUIRE(p.sync() == status::ok);
    detail::inject_flush_failures(EIO, 1);
    CHECK(p.try_push(make_message(2, 64)) == status::ok);  // committed; not promised yet
    CHECK(p.sync() == status::io_error);
    detail::inject_flush_failures(0, 0);
    CHECK(p.try_push(make_message(3, 64)) == status::io_error);
    CHECK(p.sync() == status::io_error);
  }
  CHECK_THROWS_AS(spsc_producer("bg", opened(o)), error);
}

TEST_CASE("a_none_level_channel_shut_down_cleanly_keeps_its_unreleased_messages_across_a_reboot") {
  // Level none flushes nothing, but a producer seals its records when it closes and a
  // consumer writes its position when it leaves: once the page cache reaches the disk
  // (a clean shutdown), a reboot finds the unreleased messages, flagged.
  scratch_dir dir;
  const channel_options o = file_channel(dir.file("none.shmq"), durability::none, 1u << 16, 256);
  {
    spsc_producer p("none", o);
    spsc_consumer c("none", o);
    // More than the ring holds in all, so that position 0 has been reused.
    std::uint64_t released = 0;
    for (std::uint64_t seq = 1; seq <= 400; ++seq) {
      REQUIRE(p.try_push(make_message(seq, 200)) == status::ok);
      if (seq <= 390) {
        view v = c.try_read();
        REQUIRE(v);
        CHECK(stamped_seq(v.data()) == ++released);
      }
    }
  }
  reboot_guard reboot("none-clean-boot");
  spsc_consumer c("none", opened(o));
  bool flagged = false;
  const auto got = drain(c, &flagged);
  REQUIRE(got.size() == 10);
  CHECK(got.front() == 391);
  CHECK(flagged);
}

TEST_CASE("a_failed_checkpoint_flush_poisons_the_consumer") {
  scratch_dir dir;
  const channel_options o = file_channel(dir.file("c.shmq"), durability::group_commit, 1u << 16, 256);
  spsc_producer p("c", o);
  spsc_consumer c("c", o);
  for (std::uint64_t seq = 1; seq <= 3; ++seq) REQUIRE(p.try_push(make_message(seq, 64)) == status::ok);
  REQUIRE(p.sync() == status::ok);
  { view v = c.try_read(); REQUIRE(v); }
  detail::inject_flush_failures(EIO, 1);
  CHECK(c.sync() == status::io_error);
  detail::inject_flush_failures(0, 0);
  CHECK(c.try_read().status() == status::io_error);
  CHECK(c.sync() == status::io_error);
}

TEST_CASE("file_backing_is_checked_at_creation") {
  scratch_dir dir;
  pubsub_options ps;
  ps.file.path = dir.file("t.shmq");
  ps.file.durability = durability::group_commit;
  ps.file.group_messages = 0;  // pub/sub files are checked as the others are
  CHECK_THROWS_AS(publisher("t", ps), error);
  channel_options bad = file_channel(dir.file("s.shmq"), durability::group_commit, 1u << 16, 256);
  bad.file.group_messages = 0;
  try {
    spsc_producer p("s", bad);
    FAIL("accepted group_messages 0");
  } catch (const error& e) {
    CHECK(e.code() == errc::invalid_argument);
  }
  // A message size that leaves no room for a flush's page padding.
  channel_options big = file_channel(dir.file("b.shmq"), durability::per_commit, 16384, 6000);
  CHECK_THROWS_AS(spsc_producer("b", big), error);
}

TEST_CASE("a_per_commit_producer_killed_at_random_loses_no_committed_message") {
  const std::uint64_t rounds = env_count("SHMQ_DURABLE_KILLS", 6);
  std::mt19937_64 rng(42);
  for (std::uint64_t round = 0; round < rounds; ++round) {
    CAPTURE(round);
    scratch_dir dir;
    const channel_options o = file_channel(dir.file("kill.shmq"), durability::per_commit, 1u << 18, 512);
    const std::uint64_t kill_after = 5 + rng() % 60;
    child_process producer(
        [&](child_process& self) { return push_until_killed<spsc_producer>(self, "kill", o, 416); });
    wait_promised(producer, kill_after);
    const std::uint64_t promised = kill_after;
    producer.kill_and_wait();
    // The same file as a power loss right now would leave it, if the page cache reached
    // the disk: recovered as after a reboot, from a copy.
    channel_options copy = opened(o);
    copy.file.path = dir.file("copy.shmq");
    write_file(copy.file.path, read_file(o.file.path));
    {
      // A process crash: everything committed is in the page cache.
      spsc_consumer c("kill", opened(o));
      const auto got = drain(c);
      REQUIRE(got.size() >= promised);
      CHECK(got.front() == 1);
    }
    reboot_guard reboot("after-kill-" + std::to_string(round));
    spsc_consumer c("kill", copy);
    bool flagged = false;
    const auto got = drain(c, &flagged);
    REQUIRE(got.size() >= promised);
    CHECK(got.front() == 1);
    CHECK(flagged);
  }
}

TEST_CASE("bad_files_are_refused_with_a_clear_error") {
  scratch_dir dir;
  const auto refused = [&](const std::string& path, errc expected) {
    channel_options o = file_channel(path, durability::none, 1u << 16, 256);
    o.open = open_mode::open;
    try {
      spsc_consumer c("bad", o);
      FAIL("opened " << path);
    } catch (const error& e) {
      CHECK(e.code() == expected);
    }
  };
  refused(dir.file("missing.shmq"), errc::not_found);
  write_file(dir.file("junk.shmq"), std::vector<std::byte>(20000, std::byte{0x5a}));
  refused(dir.file("junk.shmq"), errc::not_shmq);
  write_file(dir.file("short.shmq"), std::vector<std::byte>(100));
  refused(dir.file("short.shmq"), errc::truncated);
  refused(dir.path(), errc::not_shmq);  // a directory

  const std::string good = dir.file("good.shmq");
  const channel_options o = file_channel(good, durability::group_commit, 1u << 16, 256);
  { spsc_producer p("bad", o); REQUIRE(p.try_push(make_message(1, 64)) == status::ok); }
  auto image = read_file(good);
  // Both checkpoints torn: nothing says where the consumer was.
  auto torn = image;
  for (std::size_t i = 0; i < 64; ++i) {
    torn[detail::file_control_offset + detail::file_checkpoint_offset + i] = std::byte{0xff};
    torn[detail::file_control_offset + detail::file_checkpoint_offset + detail::file_slot_stride + i] = std::byte{0xff};
  }
  write_file(dir.file("torn.shmq"), torn);
  {
    reboot_guard reboot("bad-files-boot");
    refused(dir.file("torn.shmq"), errc::corrupt);
  }
  // A durable head out of step with head, in the same boot (test/fuzz/fuzz_file.cpp found
  // that a misaligned one made the producer seal records from a misaligned position).
  for (const std::uint64_t bad : {std::uint64_t{5}, std::uint64_t{1} << 20}) {
    auto odd = image;
    std::memcpy(odd.data() + detail::file_control_offset + offsetof(detail::spsc_control, durable_head), &bad,
                sizeof bad);
    write_file(dir.file("durable-head.shmq"), odd);
    refused(dir.file("durable-head.shmq"), errc::corrupt);
  }
  // A file image opened as a /dev/shm segment is another kind of thing.
  segment_guard g("fileimage");
  write_shm_object(g.name(), image);
  try {
    spsc_consumer c(g.name());
    FAIL("a file image opened as a segment");
  } catch (const error& e) {
    CHECK(e.code() == errc::kind_mismatch);
  }
}

TEST_CASE("mutated_file_images_never_deliver_a_record_that_does_not_check_out") {
  // A small fuzzer: a real file with messages in it, bytes changed at random, recovered
  // as after a reboot. Opening may fail with shmq::error; it must not crash, and every
  // message delivered must check out (test/fuzz covers /dev/shm images with libFuzzer).
  scratch_dir dir("/dev/shm");
  const std::string good = dir.file("seed.shmq");
  const channel_options o = file_channel(good, durability::group_commit, 1u << 15, 600);
  {
    spsc_producer p("fuzz", o);
    spsc_consumer c("fuzz", o);
    for (std::uint64_t seq = 1; seq <= 60; ++seq) {
      REQUIRE(p.push_for(make_message(seq, 16 + (seq * 37) % 500), std::chrono::seconds(5)) == status::ok);
      if (seq % 3 == 0) { view v = c.try_read(); REQUIRE(v); }
    }
  }
  const auto seed = read_file(good);
  {
    // Unmutated, it recovers to the 40 messages never released.
    channel_options at = opened(o);
    at.file.path = dir.file("unmutated.shmq");
    write_file(at.file.path, seed);
    reboot_guard reboot("fuzz-boot-seed");
    spsc_consumer c("fuzz", at);
    CHECK(drain(c).size() == 40);
  }
  std::mt19937_64 rng(7);
  const std::uint64_t runs = env_count("SHMQ_DURABLE_FUZZ", 400);
  std::uint64_t opened_ok = 0, delivered = 0;
  for (std::uint64_t run = 0; run < runs; ++run) {
    auto image = seed;
    mutate_runs(image, rng);
    const std::string path = dir.file("m" + std::to_string(run) + ".shmq");
    write_file(path, image);
    reboot_guard reboot("fuzz-boot-" + std::to_string(run));
    try {
      channel_options at = opened(o);
      at.file.path = path;
      spsc_consumer c("fuzz", at);
      for (int k = 0; k < 100; ++k) {
        view v = c.try_read();
        if (!v) break;
        REQUIRE(stamped_seq(v.data()) != ~std::uint64_t{0});
        ++delivered;
      }
      ++opened_ok;
    } catch (const error&) {
    }
    ::unlink(path.c_str());
  }
  MESSAGE(opened_ok << " of " << runs << " mutated images opened, " << delivered << " messages delivered, all intact");
  CHECK(opened_ok > 0);
}

TEST_SUITE_END();

}  // namespace shmq::test

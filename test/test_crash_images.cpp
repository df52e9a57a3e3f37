// Power loss, simulated (docs/durability.md, "Test method"): a workload on a file-backed
// SPSC channel on a real filesystem, a flush observer that keeps the durable image, and at
// random crash points many disks a power loss could leave (durable_image::crash). Each is
// recovered as after a reboot and checked against what the API promised:
//   - every message whose durability was promised (per-commit commit() or sync()
//     returned ok) and not yet released is delivered, intact and in order;
//   - nothing delivered fails its stamp (sequence number + checksum); sequence numbers
//     run on without a gap or a repeat; each one is flagged redelivered;
//   - a message whose release was made durable (consumer sync() or per-commit release) is
//     not delivered again;
//   - the recovered channel takes new messages and delivers them.
// The negative control runs the same checker on a channel that never flushes, while
// counting every commit as promised: the checker must find the loss.
#include <random>
#include <sstream>

#include "durable/crash_image.hpp"
#include "durable/file_support.hpp"
#include "durable/flush.hpp"
#include "test_support.hpp"

namespace shmq::test {
namespace {

struct promises {
  std::uint64_t committed = 0;          // last seq committed (seqs start at 1)
  std::uint64_t promised = 0;           // last seq whose durability was promised
  std::uint64_t released = 0;           // last seq the consumer released
  std::uint64_t released_durably = 0;   // last seq whose release was promised durable
};

constexpr std::size_t capacity = 65536, max_message = 700;

// Recovers `image` as after a reboot and checks it. Empty, or what was wrong.
std::string check_image(const scratch_dir& dir, const std::vector<std::byte>& image, const promises& p,
                        durability level, std::uint64_t number) {
  const std::string path = dir.file("image-" + std::to_string(number) + ".shmq");
  write_file(path, image);
  detail::set_boot_id_for_test("crash-image-boot-" + std::to_string(number));
  std::ostringstream why;
  try {
    channel_options o = file_channel(path, level, capacity, max_message);
    o.open = open_mode::open;
    std::vector<std::uint64_t> got;
    bool all_flagged = true;
    {
      spsc_consumer c("image", o);
      std::vector<std::byte> buf(max_message);
      for (;;) {
        view v = c.try_read();
        if (!v) {
          if (v.status() != status::empty) why << "read ended with " << to_string(v.status()) << "; ";
          break;
        }
        const std::uint64_t seq = stamped_seq(v.data());
        if (seq == ~std::uint64_t{0}) {
          why << "a delivered message fails its stamp (after seq " << (got.empty() ? 0 : got.back()) << "); ";
          break;
        }
        all_flagged = all_flagged && v.redelivered();
        got.push_back(seq);
      }
      for (std::size_t i = 1; i < got.size(); ++i)
        if (got[i] != got[i - 1] + 1) why << "seq " << got[i] << " follows " << got[i - 1] << "; ";
      if (!all_flagged) why << "a message recovered after the reboot is not flagged redelivered; ";
      if (!got.empty() && got.front() <= p.released_durably)
        why << "seq " << got.front() << " delivered again, its release was durable (up to "
            << p.released_durably << "); ";
      if (p.promised > p.released &&
          (got.empty() || got.front() > p.released + 1 || got.back() < p.promised))
        why << "lost promised messages: promised up to " << p.promised << ", released " << p.released
            << ", recovered " << (got.empty() ? std::string("none")
                                              : std::to_string(got.front()) + ".." + std::to_string(got.back()))
            << "; ";
      if (got.size() > p.committed) why << "more messages than were ever committed; ";
      // The recovered channel goes on: a new producer's messages arrive intact.
      spsc_producer prod("image", o);
      for (std::uint64_t k = 0; k < 3; ++k) {
        const auto m = make_message(1'000'000 + k, 100 + 200 * k);
        if (prod.push_for(m, std::chrono::seconds(5)) != status::ok) why << "push after recovery failed; ";
        view v = c.try_read();
        if (!v || stamped_seq(v.data()) != 1'000'000 + k) why << "message after recovery not read back; ";
      }
    }
  } catch (const std::exception& e) {
    why << "opening the image failed: " << e.what() << "; ";
  }
  detail::set_boot_id_for_test("");
  ::unlink(path.c_str());
  return why.str();
}


// A random workload with crash points. `count_all_as_promised`: the negative control.
crash_run_result crash_run(durability level, std::uint64_t seed, std::uint64_t crash_points, std::uint64_t images_per_point,
                     bool count_all_as_promised = false) {
  scratch_dir live_dir("/var/tmp");
  scratch_dir image_dir("/dev/shm");  // images are only recovered: no disk needed there
  const std::string path = live_dir.file("channel.shmq");
  channel_options o = file_channel(path, level, capacity, max_message);
  o.open = open_mode::create;
  const std::size_t file_bytes = detail::file_control_offset + detail::file_control_size + capacity;
  durable_image disk(std::vector<std::byte>(file_bytes), path);  // creation's flushes fill it
  spsc_producer prod("crash", o);
  o.open = open_mode::open;
  spsc_consumer cons("crash", o);
  REQUIRE(read_file(path).size() == file_bytes);

  std::mt19937_64 rng(seed);
  promises p;
  crash_run_result r;
  std::uint64_t next = 1;
  while (r.images < crash_points * images_per_point) {
    const unsigned op = rng() % 100;
    if (op < 50) {
      const auto m = make_message(next, 16 + rng() % (max_message - 16));
      const status s = prod.try_push(m);
      if (s == status::ok) {
        p.committed = next++;
        if (level == durability::per_commit || count_all_as_promised) p.promised = p.committed;
      } else {
        REQUIRE(s == status::full);
      }
    } else if (op < 82) {
      view v = cons.try_read();
      if (v) {
        REQUIRE(stamped_seq(v.data()) == p.released + 1);
        v.release();
        ++p.released;
        if (level == durability::per_commit) p.released_durably = p.released;
      } else {
        REQUIRE(v.status() == status::empty);
      }
    } else if (op < 88) {
      REQUIRE(prod.sync() == status::ok);
      if (level != durability::none) p.promised = p.committed;
    } else if (op < 93) {
      REQUIRE(cons.sync() == status::ok);
      if (level != durability::none) p.released_durably = p.released;
    } else {
      const std::vector<std::byte> live = read_file(path);
      for (std::uint64_t i = 0; i < images_per_point; ++i) {
        const std::string why = check_image(image_dir, disk.crash(live, rng), p, level, r.images);
        ++r.images;
        if (!why.empty() && r.failures++ == 0) r.first_failure = why;
      }
    }
  }
  r.flushes = disk.flushes();
  r.promised = p.promised;
  return r;
}

}  // namespace

TEST_SUITE_BEGIN("durable");

TEST_CASE("crash_images_keep_every_promise") {
  check_every_promise("spsc", [](durability level, std::uint64_t seed, std::uint64_t points, std::uint64_t images) {
    return crash_run(level, seed, points, images);
  });
}

TEST_CASE("crash_image_checker_catches_a_lost_promise") {
  // Negative control: level none never flushes, but every commit is counted as promised.
  const crash_run_result r = crash_run(durability::none, 3, 20, 6, true);
  MESSAGE("negative control: " << r.failures << " of " << r.images << " images caught; e.g. " << r.first_failure);
  CHECK(r.failures > 0);
  CHECK(contains(r.first_failure, "lost promised messages"));
}

TEST_SUITE_END();

}  // namespace shmq::test

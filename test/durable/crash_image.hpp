// The crash-image model of a power loss (docs/durability.md, "Test method").
//
// A flush observer (lib/durable/flush.hpp) copies every range a completed flush covered
// into `durable`: what the disk is known to hold. At a crash point, an image is the
// durable bytes plus, for each page whose bytes differ in the page cache, the page left
// old, written new, or torn: each of its 512-byte sectors old, new or garbage.
// Group commit flushes on a background thread: the observer runs there, under a mutex
// that crash() holds too. Only flushes of the live file count (by inode), not those of
// the images recovered (whose endpoints flush on threads of their own too).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <atomic>
#include <mutex>
#include <string>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <random>
#include <span>
#include <vector>

#include <doctest/doctest.h>

#include "durable/flush.hpp"
#include "shmq/durability.hpp"
#include "test_support.hpp"

namespace shmq::test {

class durable_image {
 public:
  static constexpr std::size_t page = 4096, sector = 512;

  // `initial`: the file as its creator synced it; `path`: the live file.
  durable_image(std::vector<std::byte> initial, std::string path)
      : durable_(std::move(initial)), path_(std::move(path)) {
    detail::set_flush_observer(&durable_image::on_flush, this);
  }
  ~durable_image() { detail::set_flush_observer(nullptr, nullptr); }
  durable_image(const durable_image&) = delete;
  durable_image& operator=(const durable_image&) = delete;

  std::uint64_t flushes() const noexcept { return flushes_.load(); }

  // `count` possible disks after a power loss now. The page cache and the durable bytes
  // are read together, under the observer's mutex: a background flush completing
  // between the two reads would make the durable bytes newer than the page cache they
  // are compared with, a disk no power loss can leave (both checkpoint slots rewritten,
  // slots of messages published after the crash point).
  std::vector<std::vector<std::byte>> crash_now(std::uint64_t count, std::mt19937_64& rng) const {
    std::lock_guard<std::mutex> lock(mutex_);
    std::vector<std::byte> live(durable_.size());
    const int fd = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
    REQUIRE(fd >= 0);
    for (std::size_t at = 0; at < live.size();) {
      const ssize_t n = ::pread(fd, &live[at], live.size() - at, static_cast<off_t>(at));
      if (n <= 0) break;
      at += static_cast<std::size_t>(n);
    }
    ::close(fd);
    std::vector<std::vector<std::byte>> images;
    for (std::uint64_t i = 0; i < count; ++i) images.push_back(crash_locked(durable_, live, rng));
    return images;
  }

 private:
  static std::vector<std::byte> crash_locked(const std::vector<std::byte>& durable, std::span<const std::byte> live,
                                             std::mt19937_64& rng) {
    std::vector<std::byte> image = durable;
    for (std::size_t p = 0; p < live.size(); p += page) {
      const std::size_t n = std::min(page, live.size() - p);
      if (std::memcmp(&image[p], &live[p], n) == 0) continue;  // not dirty
      switch (rng() % 3) {
        case 0: break;  // never written back
        case 1: std::memcpy(&image[p], &live[p], n); break;
        default:  // torn: sector by sector
          for (std::size_t s = p; s < p + n; s += sector) {
            const std::size_t m = std::min(sector, p + n - s);
            const unsigned pick = rng() % 8;
            if (pick < 3) continue;  // old
            if (pick < 7) {
              std::memcpy(&image[s], &live[s], m);  // new
            } else {
              for (std::size_t i = 0; i < m; ++i) image[s + i] = static_cast<std::byte>(rng());
            }
          }
      }
    }
    return image;
  }

  static void on_flush(void* self, int fd, const std::byte*, std::uint64_t offset, std::uint64_t length) {
    auto& d = *static_cast<durable_image*>(self);
    struct stat st {}, live {};
    if (::fstat(fd, &st) != 0 || ::stat(d.path_.c_str(), &live) != 0 || st.st_ino != live.st_ino ||
        st.st_dev != live.st_dev)
      return;  // an image being recovered
    std::lock_guard<std::mutex> lock(d.mutex_);
    ++d.flushes_;
    const std::uint64_t end = std::min<std::uint64_t>(offset + length, d.durable_.size());
    // Read through the file, not the mapping: under group commit the producer goes on
    // writing while its flush thread is here (the kernel's copy is the page cache's
    // content now, as a user-space copy would be, without racing the producer's stores).
    for (std::uint64_t at = offset; at < end;) {
      const ssize_t n = ::pread(fd, &d.durable_[at], end - at, static_cast<off_t>(at));
      if (n <= 0) break;
      at += static_cast<std::uint64_t>(n);
    }
  }

  std::vector<std::byte> durable_;
  mutable std::mutex mutex_;
  const std::string path_;
  std::atomic<std::uint64_t> flushes_{0};
};

// What a crash-image run found: images recovered, how many broke a promise (and the
// first one's account), flushes observed, messages promised.
struct crash_run_result {
  std::uint64_t images = 0, failures = 0, flushes = 0, promised = 0;
  std::string first_failure;

  // Builds `count` images of `disk` now and counts what `check(image, index)` says of
  // each: empty if it kept every promise, else the account of the one it broke.
  template <class Check>
  void crash_now(const durable_image& disk, std::uint64_t count, std::mt19937_64& rng, Check&& check) {
    for (const std::vector<std::byte>& image : disk.crash_now(count, rng)) {
      const std::string why = check(image, images);
      ++images;
      if (!why.empty() && failures++ == 0) first_failure = why;
    }
  }
};

// The negative control's verdict: a run that counted unflushed messages as promised
// must be caught losing one.
inline void check_negative_control(const char* kind, const crash_run_result& r) {
  MESSAGE(std::string(kind) << " negative control: " << r.failures << " of " << r.images << " images caught; e.g. "
                            << r.first_failure);
  CHECK(r.failures > 0);
  CHECK(r.first_failure.find("lost promised message") != std::string::npos);
}

// Runs `run(level, seed, points, images_per_point)` at per_commit and group_commit, two
// seeds each ($SHMQ_CRASH_POINTS points of $SHMQ_CRASH_IMAGES images), and checks that
// no image broke a promise.
template <class Run>
void check_every_promise(const char* kind, Run&& run) {
  const std::uint64_t points = env_count("SHMQ_CRASH_POINTS", 40);
  const std::uint64_t per_point = env_count("SHMQ_CRASH_IMAGES", 12);
  for (durability level : {durability::per_commit, durability::group_commit}) {
    for (std::uint64_t seed : {1u, 2u}) {
      CAPTURE(static_cast<int>(level));
      CAPTURE(seed);
      const crash_run_result r = run(level, seed, points, per_point);
      INFO("first failure: " << r.first_failure);
      CHECK(r.failures == 0);
      CHECK(r.images == points * per_point);
      CHECK(r.flushes > 0);
      CHECK(r.promised > 0);
      MESSAGE(std::string(kind) << " level " << static_cast<int>(level) << " seed " << seed << ": " << r.images << " images, "
                   << r.flushes << " flushes, " << r.promised << " messages promised");
    }
  }
}

}  // namespace shmq::test

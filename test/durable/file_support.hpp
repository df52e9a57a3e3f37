// Helpers for tests of file-backed channels: a scratch directory that is removed at the
// end, whole-file reads and writes, and the options of a file channel.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include <doctest/doctest.h>

#include "durable/flush.hpp"
#include "shmq/spsc.hpp"
#include "test_support.hpp"

namespace shmq::test {

// A fresh directory under `parent` (/var/tmp: a real filesystem here, see
// docs/durability.md; /dev/shm for images that only recovery reads).
class scratch_dir {
 public:
  explicit scratch_dir(const std::string& parent = "/var/tmp") {
    std::string pattern = parent + "/shmq-durable-XXXXXX";
    std::vector<char> buf(pattern.begin(), pattern.end());
    buf.push_back('\0');
    REQUIRE(::mkdtemp(buf.data()) != nullptr);
    path_ = buf.data();
  }
  ~scratch_dir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  scratch_dir(const scratch_dir&) = delete;
  scratch_dir& operator=(const scratch_dir&) = delete;
  std::string file(const std::string& leaf) const { return path_ + "/" + leaf; }
  const std::string& path() const noexcept { return path_; }

 private:
  std::string path_;
};

inline std::vector<std::byte> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  REQUIRE(in.good());
  std::vector<char> chars((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<std::byte> out(chars.size());
  std::memcpy(out.data(), chars.data(), chars.size());
  return out;
}

inline void write_file(const std::string& path, const std::vector<std::byte>& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  REQUIRE(out.good());
}

inline channel_options file_channel(const std::string& path, durability level, std::size_t capacity = 1u << 16,
                                    std::size_t max_message = 1024) {
  channel_options o;
  o.capacity = capacity;
  o.max_message_size = max_message;
  o.file.path = path;
  o.file.durability = level;
  o.file.group_messages = 8;
  o.file.group_interval = std::chrono::microseconds(500);
  return o;
}

// Sets the boot id the library sees for the scope: a "reboot" for the next attach.
class reboot_guard {
 public:
  explicit reboot_guard(const std::string& id) { detail::set_boot_id_for_test(id); }
  ~reboot_guard() { detail::set_boot_id_for_test(""); }
  reboot_guard(const reboot_guard&) = delete;
  reboot_guard& operator=(const reboot_guard&) = delete;
};

// Changes 1-8 random runs of 1-16 bytes of `image` to random bytes.
inline void mutate_runs(std::vector<std::byte>& image, std::mt19937_64& rng) {
  const unsigned edits = 1 + rng() % 8;
  for (unsigned e = 0; e < edits; ++e) {
    const std::size_t at = rng() % image.size();
    const std::size_t n = 1 + rng() % 16;
    for (std::size_t i = 0; i < n && at + i < image.size(); ++i) image[at + i] = static_cast<std::byte>(rng());
  }
}

// A per-commit producer process's body: pushes stamped messages 1, 2, ... (of up to
// `max_bytes`) and notifies 'c' after each push returned, i.e. once it is durable, until
// it is killed.
// Pushes stamped messages from..from+count-1 (16 to 615 bytes); returns the next seq.
template <class Producer>
std::uint64_t push_stamped(Producer& p, std::uint64_t from, std::uint64_t count) {
  for (std::uint64_t seq = from; seq < from + count; ++seq)
    REQUIRE(p.push_for(make_message(seq, 16 + (seq * 37) % 600), std::chrono::seconds(5)) == status::ok);
  return from + count;
}

template <class Producer, class Options>
int push_until_killed(child_process& self, const char* name, const Options& o, std::uint64_t max_bytes) {
  Producer p(name, o);
  for (std::uint64_t seq = 1;; ++seq) {
    if (p.push_for(make_message(seq, 16 + seq % (max_bytes - 16)), std::chrono::seconds(20)) != status::ok) return 1;
    self.notify('c');
  }
}

// The parent's side: waits until `count` messages are durable.
inline void wait_promised(child_process& producer, std::uint64_t count) {
  std::uint64_t promised = 0;
  while (promised < count && producer.wait_notice() == 'c') ++promised;
  REQUIRE(promised == count);
}

// The sequence number of a stamped message that checks out, or ~0.
inline std::uint64_t stamped_seq(std::span<const std::byte> m) {
  std::uint64_t seq = 0;
  return stamped::check(m, seq) == stamped::verdict::ok ? seq : ~std::uint64_t{0};
}

}  // namespace shmq::test

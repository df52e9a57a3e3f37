// Helpers for tests of file-backed channels: a scratch directory that is removed at the
// end, whole-file reads and writes, and the options of a file channel.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <doctest/doctest.h>

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

// The sequence number of a stamped message that checks out, or ~0.
inline std::uint64_t stamped_seq(std::span<const std::byte> m) {
  std::uint64_t seq = 0;
  return stamped::check(m, seq) == stamped::verdict::ok ? seq : ~std::uint64_t{0};
}

}  // namespace shmq::test

// How messages are cut out of a byte stream and written back into one.
//   lines            one message per line, without its newline
//   length-prefixed  a 4-byte little-endian length, then that many bytes: binary-safe
//   chunk N          (pub) a stream cut into messages of N bytes, the last one shorter
//   raw              (sub) payloads back to back: what pub --chunk was given
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

namespace shmq_cli {

enum class framing { lines, length_prefixed, chunk, raw };

// The framing flags of a pub or sub command (at most one of them; lines by default).
struct framing_flags {
  bool lines = false;
  bool length_prefixed = false;
  std::size_t chunk = 0;  // pub
  bool raw = false;       // sub
  framing chosen() const noexcept;
};
void add_framing_options(CLI::App& command, framing_flags& flags, bool publishing);

// Buffered reads from a descriptor (stdin), for pub.
class input_stream {
 public:
  explicit input_stream(int fd) : fd_(fd), buffer_(1u << 20) {}

  // Up to dst.size() bytes; fewer only at end of input. Throws std::system_error.
  std::size_t read(std::span<std::byte> dst);
  // The next line without its newline; false at end of input. A last line without a
  // newline counts. Throws std::length_error if a line is longer than `max`.
  bool next_line(std::string& line, std::size_t max);

 private:
  bool fill();  // false at end of input
  int fd_;
  std::vector<std::byte> buffer_;
  std::size_t begin_ = 0, end_ = 0;
};

// Writes one message to a descriptor (stdout) in the framing, with as many write()
// calls as it takes; returns only once every byte was written. Throws std::system_error.
void write_message(int fd, framing f, std::span<const std::byte> payload);
// Writes bytes, all of them. Throws std::system_error.
void write_all(int fd, std::span<const std::byte> bytes);

std::uint32_t read_le32(const std::byte* p) noexcept;

}  // namespace shmq_cli

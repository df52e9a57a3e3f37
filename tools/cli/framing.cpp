#include "framing.hpp"

#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <system_error>

namespace shmq_cli {

framing framing_flags::chosen() const noexcept {
  if (length_prefixed) return framing::length_prefixed;
  if (chunk != 0) return framing::chunk;
  if (raw) return framing::raw;
  return framing::lines;
}

void add_framing_options(CLI::App& command, framing_flags& flags, bool publishing) {
  auto* group = command.add_option_group("framing", "how messages are cut from the byte stream (one of)");
  group->add_flag("--lines", flags.lines, "one message per line, newline not included (the default)");
  group->add_flag("--length-prefixed", flags.length_prefixed,
                  "a 4-byte little-endian length, then the bytes (binary-safe)");
  if (publishing)
    group->add_option("--chunk", flags.chunk, "cut the input into messages of N bytes (the last may be shorter)")
        ->check(CLI::Range(std::size_t{1}, std::size_t{1} << 30));
  else
    group->add_flag("--raw", flags.raw, "payloads back to back, nothing between them (the inverse of pub --chunk)");
  group->require_option(0, 1);
}

bool input_stream::fill() {
  if (begin_ == end_) begin_ = end_ = 0;
  if (end_ == buffer_.size()) {  // keep what is unread, at the front
    std::memmove(buffer_.data(), buffer_.data() + begin_, end_ - begin_);
    end_ -= begin_;
    begin_ = 0;
  }
  for (;;) {
    const ssize_t n = ::read(fd_, buffer_.data() + end_, buffer_.size() - end_);
    if (n > 0) {
      end_ += static_cast<std::size_t>(n);
      return true;
    }
    if (n == 0) return false;
    if (errno != EINTR) throw std::system_error(errno, std::generic_category(), "reading the input");
  }
}

std::size_t input_stream::read(std::span<std::byte> dst) {
  std::size_t got = 0;
  while (got < dst.size()) {
    if (begin_ == end_ && !fill()) break;
    const std::size_t n = std::min(dst.size() - got, end_ - begin_);
    std::memcpy(dst.data() + got, buffer_.data() + begin_, n);
    begin_ += n;
    got += n;
  }
  return got;
}

bool input_stream::next_line(std::string& line, std::size_t max) {
  line.clear();
  for (;;) {
    if (begin_ == end_ && !fill()) return !line.empty();
    const auto* start = buffer_.data() + begin_;
    const auto* stop = buffer_.data() + end_;
    const auto* newline = std::find(start, stop, std::byte{'\n'});
    const auto n = static_cast<std::size_t>(newline - start);
    if (line.size() + n > max)
      throw std::length_error("a line is longer than " + std::to_string(max) +
                              " bytes, the channel's max message size");
    line.append(reinterpret_cast<const char*>(start), n);
    begin_ += n;
    if (newline != stop) {
      ++begin_;
      return true;
    }
  }
}

namespace {

void writev_all(int fd, iovec* parts, int count) {
  while (count > 0) {
    const ssize_t n = ::writev(fd, parts, count);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw std::system_error(errno, std::generic_category(), "writing the output");
    }
    auto left = static_cast<std::size_t>(n);
    while (count > 0 && left >= parts->iov_len) {
      left -= parts->iov_len;
      ++parts;
      --count;
    }
    if (count > 0) {
      parts->iov_base = static_cast<char*>(parts->iov_base) + left;
      parts->iov_len -= left;
    }
  }
}

}  // namespace

void write_all(int fd, std::span<const std::byte> bytes) {
  iovec part{const_cast<std::byte*>(bytes.data()), bytes.size()};
  writev_all(fd, &part, 1);
}

void write_message(int fd, framing f, std::span<const std::byte> payload) {
  unsigned char prefix[4];
  const auto size = static_cast<std::uint32_t>(payload.size());
  for (int i = 0; i < 4; ++i) prefix[i] = static_cast<unsigned char>(size >> (8 * i));
  char newline = '\n';
  iovec parts[3];
  int count = 0;
  if (f == framing::length_prefixed) parts[count++] = {prefix, 4};
  parts[count++] = {const_cast<std::byte*>(payload.data()), payload.size()};
  if (f == framing::lines) parts[count++] = {&newline, 1};
  writev_all(fd, parts, count);
}

std::uint32_t read_le32(const std::byte* p) noexcept {
  std::uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v |= static_cast<std::uint32_t>(p[i]) << (8 * i);
  return v;
}

}  // namespace shmq_cli

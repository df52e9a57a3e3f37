// shmq/bridge/envelope.hpp: what shmq-bridge in writes round-trips, and a consumer on
// host B given bytes that are not a whole envelope gets a clear result, never a read
// past the message.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <cstring>
#include <random>
#include <string>
#include <vector>

#include <shmq/bridge/envelope.hpp>

namespace sb = shmq::bridge;

namespace {

std::vector<std::byte> bytes(std::string_view s) {
  std::vector<std::byte> b(s.size());
  std::memcpy(b.data(), s.data(), s.size());
  return b;
}

std::vector<std::byte> wrapped(bool redelivered, std::string_view id, std::string_view body) {
  const auto b = bytes(body);
  std::vector<std::byte> out(sb::envelope_size(id, b.size()));
  sb::write_envelope(out, redelivered, id, b);
  return out;
}

}  // namespace

TEST_CASE("an envelope round-trips its flag, id and body") {
  for (const bool redelivered : {false, true}) {
    const auto m = wrapped(redelivered, "chan@host:42:7", "payload bytes");
    sb::envelope e;
    REQUIRE(sb::parse_envelope(m, e) == sb::envelope_result::ok);
    CHECK(e.redelivered == redelivered);
    CHECK(e.message_id == "chan@host:42:7");
    CHECK(std::string(reinterpret_cast<const char*>(e.body.data()), e.body.size()) == "payload bytes");
  }
  sb::envelope e;
  const auto empty = wrapped(false, "", "");
  REQUIRE(sb::parse_envelope(empty, e) == sb::envelope_result::ok);
  CHECK(e.message_id.empty());
  CHECK(e.body.empty());
}

TEST_CASE("an id over 255 bytes is cut, and the body stays whole") {
  const std::string id(300, 'x');
  const auto m = wrapped(true, id, "b");
  CHECK(m.size() == sb::envelope_header_size + sb::max_message_id_size + 1);
  sb::envelope e;
  REQUIRE(sb::parse_envelope(m, e) == sb::envelope_result::ok);
  CHECK(e.message_id.size() == sb::max_message_id_size);
  CHECK(e.body.size() == 1);
}

TEST_CASE("every truncation of an envelope is refused or parsed within its bytes") {
  const auto m = wrapped(true, "source:1:2", "body");
  for (std::size_t n = 0; n <= m.size(); ++n) {
    sb::envelope e;
    const auto r = sb::parse_envelope(std::span(m).first(n), e);
    if (n < sb::envelope_header_size)
      CHECK(r == sb::envelope_result::too_short);
    else if (n < sb::envelope_header_size + 10)
      CHECK(r == sb::envelope_result::bad_id_length);
    else {
      REQUIRE(r == sb::envelope_result::ok);
      CHECK(e.body.size() == n - sb::envelope_header_size - 10);
    }
  }
}

TEST_CASE("a foreign message or unknown flags are refused") {
  sb::envelope e;
  CHECK(sb::parse_envelope(bytes("not an envelope at all"), e) == sb::envelope_result::bad_magic);
  auto m = wrapped(false, "id", "body");
  m[4] = std::byte{0x80};
  CHECK(sb::parse_envelope(m, e) == sb::envelope_result::bad_flags);
  CHECK(std::string(sb::to_string(sb::envelope_result::bad_flags)) == "unknown envelope flags");
}

TEST_CASE("random bytes after a valid magic never point outside the message") {
  std::mt19937_64 rng(20261202);
  for (int i = 0; i < 20000; ++i) {
    std::vector<std::byte> m(rng() % 300);
    for (auto& b : m) b = static_cast<std::byte>(rng());
    if (m.size() >= 4 && rng() % 2) std::memcpy(m.data(), sb::envelope_magic, 4);
    sb::envelope e;
    if (sb::parse_envelope(m, e) != sb::envelope_result::ok) continue;
    const auto* begin = reinterpret_cast<const char*>(m.data());
    CHECK(e.message_id.data() >= begin);
    CHECK(e.message_id.data() + e.message_id.size() <= begin + m.size());
    CHECK(e.body.data() + e.body.size() == m.data() + m.size());
  }
}

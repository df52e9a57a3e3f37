// The public SPSC API in one process: a producer and a consumer of the same channel may
// live in one process (the role check is per role), which makes every status and error
// reachable deterministically.
#include <set>
#include <string>

#include "test_support.hpp"

namespace {

using namespace std::chrono_literals;
using shmq::channel_options;
using shmq::errc;
using shmq::open_mode;
using shmq::spsc_consumer;
using shmq::spsc_producer;
using shmq::status;
using shmq::test::fill_message;
using shmq::test::make_message;
using shmq::test::message_ok;
using shmq::test::segment_guard;

channel_options small_ring() {
  channel_options o;
  o.capacity = 4096;
  o.max_message_size = 2040;
  return o;
}

// Sends a stamped message of `size` through a loan.
void send(spsc_producer& p, std::uint64_t seq, std::size_t size) {
  shmq::loan l = p.try_loan(size);
  REQUIRE(l.status() == status::ok);
  REQUIRE(l.size() == size);
  fill_message(l.data(), seq);
  l.commit();
}

// Reads one message in place and checks it is message `seq` of `size` bytes.
void expect_message(spsc_consumer& c, std::uint64_t seq, std::size_t size) {
  shmq::view v = c.try_read();
  REQUIRE(v.status() == status::ok);
  CHECK(v.size() == size);
  CHECK(message_ok(v.data(), seq));
}

// Fills the ring with messages until try_push says full; returns how many went in.
std::uint64_t fill_until_full(spsc_producer& p, std::uint64_t first_seq, std::size_t size) {
  std::uint64_t seq = first_seq;
  for (;;) {
    auto m = make_message(seq, size);
    status s = p.try_push(m);
    if (s == status::full) return seq - first_seq;
    REQUIRE(s == status::ok);
    ++seq;
  }
}

template <class Attach>
void expect_error(Attach&& attach, errc expected) {
  try {
    attach();
    FAIL_CHECK("attached, expected " << shmq::make_error_code(expected).message());
  } catch (const shmq::error& e) {
    CHECK(e.code() == expected);
    CHECK(std::string(e.what()).size() > 10);  // says something, not just a code
  }
}

}  // namespace

TEST_SUITE_BEGIN("unit");

TEST_CASE("loan_commit_and_view") {
  segment_guard seg("loan_view");
  spsc_producer p(seg.name(), small_ring());
  spsc_consumer c(seg.name(), small_ring());
  CHECK(p.capacity() == 4096);
  CHECK(c.capacity() == 4096);
  CHECK(p.max_message_size() == 2040);
  CHECK(c.max_message_size() == 2040);

  // Three messages in flight at a time, of changing sizes: the ring wraps many times.
  auto size_of = [](std::uint64_t seq) { return std::size_t{16} + (seq * 7) % 600; };
  for (std::uint64_t seq = 0; seq < 300; ++seq) {
    send(p, seq, size_of(seq));
    if (seq >= 2) expect_message(c, seq - 2, size_of(seq - 2));
  }
  expect_message(c, 298, size_of(298));
  expect_message(c, 299, size_of(299));
  CHECK(c.try_read().status() == status::empty);
}

TEST_CASE("copy_forms") {
  segment_guard seg("copy");
  spsc_producer p(seg.name(), small_ring());
  spsc_consumer c(seg.name(), small_ring());
  std::vector<std::byte> buffer(2040);
  for (std::uint64_t seq = 0; seq < 500; ++seq) {
    const std::size_t size = 16 + (seq * 37) % 1000;
    auto m = make_message(seq, size);
    CHECK(p.try_push(m) == status::ok);
    if (seq % 3 == 0) CHECK(p.push_for(make_message(1000 + seq, 20), 20ms) == status::ok);
    auto r = c.try_pop(buffer);
    REQUIRE(r.status == status::ok);
    CHECK(r.size == size);
    CHECK(message_ok({buffer.data(), r.size}, seq));
    if (seq % 3 == 0) {
      auto r2 = c.pop_for(buffer, 20ms);
      REQUIRE(r2.status == status::ok);
      CHECK(message_ok({buffer.data(), r2.size}, 1000 + seq));
    }
  }
  CHECK(p.push(make_message(7, 64)) == status::ok);
  auto r = c.pop(buffer);
  CHECK(r.status == status::ok);
  CHECK(message_ok({buffer.data(), r.size}, 7));
  CHECK(c.try_pop(buffer).status == status::empty);
}

TEST_CASE("small_and_empty_messages") {
  segment_guard seg("small");
  spsc_producer p(seg.name(), small_ring());
  spsc_consumer c(seg.name(), small_ring());
  for (std::size_t size : {0, 1, 7, 8, 9, 15, 16, 17}) {
    CAPTURE(size);
    send(p, size, size);
    expect_message(c, size, size);
    auto m = make_message(size + 100, size);
    CHECK(p.try_push(m) == status::ok);
    std::vector<std::byte> buffer(size);  // exactly big enough, even 0 bytes
    auto r = c.try_pop(buffer);
    CHECK(r.status == status::ok);
    CHECK(r.size == size);
    CHECK(message_ok(buffer, size + 100));
  }
  // An empty message is a message: it is not "empty" the status.
  CHECK(p.try_push({}) == status::ok);
  shmq::view v = c.try_read();
  CHECK(v.status() == status::ok);
  CHECK(v.size() == 0);
  v.release();
  CHECK(c.try_read().status() == status::empty);
}

TEST_CASE("max_message_size_limits") {
  segment_guard seg("max");
  channel_options o = small_ring();
  o.max_message_size = 1000;
  spsc_producer p(seg.name(), o);
  spsc_consumer c(seg.name(), o);
  send(p, 0, 1000);
  expect_message(c, 0, 1000);

  CHECK(p.try_loan(1001).status() == status::too_large);
  CHECK(p.loan_for(1001, 1ms).status() == status::too_large);
  CHECK(p.loan(1001).status() == status::too_large);  // not a wait: it can never fit
  auto big = make_message(1, 1001);
  CHECK(p.try_push(big) == status::too_large);
  CHECK(p.push_for(big, 1ms) == status::too_large);
  CHECK(p.push(big) == status::too_large);
  // Nothing of the refused messages reached the consumer, and the channel still works.
  CHECK(c.try_read().status() == status::empty);
  send(p, 2, 1000);
  expect_message(c, 2, 1000);

  SUBCASE("the largest a ring allows") {
    segment_guard seg2("max2");
    spsc_producer p2(seg2.name(), small_ring());
    spsc_consumer c2(seg2.name(), small_ring());
    for (std::uint64_t seq = 0; seq < 10; ++seq) {
      // 2040 twice does not fit a 4096 ring (plus the gap): one at a time.
      send(p2, seq, 2040);
      expect_message(c2, seq, 2040);
    }
    CHECK(p2.try_loan(2041).status() == status::too_large);
  }
}

TEST_CASE("pop_into_a_small_buffer_leaves_the_message") {
  segment_guard seg("smallbuf");
  spsc_producer p(seg.name(), small_ring());
  spsc_consumer c(seg.name(), small_ring());
  send(p, 0, 300);
  send(p, 1, 20);
  std::vector<std::byte> small(299);
  auto r = c.try_pop(small);
  CHECK(r.status == status::too_large);
  CHECK(r.size == 300);  // the size needed
  CHECK(c.pop_for(small, 1ms).status == status::too_large);
  CHECK(c.pop(small).status == status::too_large);
  // Still there, intact, and no view is considered outstanding.
  expect_message(c, 0, 300);
  std::vector<std::byte> big(300);
  r = c.try_pop(big);
  CHECK(r.status == status::ok);
  CHECK(message_ok({big.data(), r.size}, 1));
}

TEST_CASE("loan_without_commit_is_aborted") {
  segment_guard seg("abort");
  spsc_producer p(seg.name(), small_ring());
  spsc_consumer c(seg.name(), small_ring());

  SUBCASE("destroyed") {
    {
      shmq::loan l = p.try_loan(100);
      REQUIRE(l);
      fill_message(l.data(), 99);
    }
  }
  SUBCASE("abort()") {
    shmq::loan l = p.try_loan(100);
    REQUIRE(l);
    fill_message(l.data(), 99);
    l.abort();
    CHECK_FALSE(l);
    l.commit();  // a no-op now
  }
  SUBCASE("overwritten by move assignment") {
    shmq::loan l = p.try_loan(100);
    REQUIRE(l);
    fill_message(l.data(), 99);
    l = shmq::loan{};
  }
  CHECK(c.try_read().status() == status::empty);
  send(p, 0, 50);
  expect_message(c, 0, 50);
  CHECK(c.try_read().status() == status::empty);
}

TEST_CASE("loan_is_movable") {
  segment_guard seg("moveloan");
  spsc_producer p(seg.name(), small_ring());
  spsc_consumer c(seg.name(), small_ring());
  shmq::loan a = p.try_loan(64);
  REQUIRE(a);
  shmq::loan b = std::move(a);
  CHECK_FALSE(a);  // NOLINT(bugprone-use-after-move): the moved-from state is specified
  REQUIRE(b);
  fill_message(b.data(), 0);
  a.commit();  // moved-from: must not publish anything
  CHECK(c.try_read().status() == status::empty);
  b.commit();
  expect_message(c, 0, 64);
}

TEST_CASE("commit_fewer_bytes_than_loaned") {
  segment_guard seg("partial");
  spsc_producer p(seg.name(), small_ring());
  spsc_consumer c(seg.name(), small_ring());
  shmq::loan l = p.try_loan(1000);
  REQUIRE(l);
  fill_message(l.data().first(40), 0);
  l.commit(40);
  CHECK_FALSE(l);
  send(p, 1, 30);
  expect_message(c, 0, 40);
  expect_message(c, 1, 30);
  // More than loaned is clamped to the loan.
  shmq::loan m = p.try_loan(24);
  REQUIRE(m);
  fill_message(m.data(), 2);
  m.commit(5000);
  expect_message(c, 2, 24);
}

TEST_CASE("one_loan_and_one_view_at_a_time") {
  segment_guard seg("busy");
  spsc_producer p(seg.name(), small_ring());
  spsc_consumer c(seg.name(), small_ring());
  {
    shmq::loan first = p.try_loan(32);
    REQUIRE(first);
    CHECK(p.try_loan(32).status() == status::busy);
    CHECK(p.loan_for(32, 1ms).status() == status::busy);
    CHECK(p.loan(32).status() == status::busy);
    auto m = make_message(5, 32);
    CHECK(p.try_push(m) == status::busy);
    CHECK(p.push_for(m, 1ms) == status::busy);
    CHECK(p.push(m) == status::busy);
    fill_message(first.data(), 0);
    first.commit();
    CHECK(p.try_loan(32).status() == status::ok);  // free again (and aborted at once)
  }
  send(p, 1, 32);
  {
    shmq::view first = c.try_read();
    REQUIRE(first);
    CHECK(message_ok(first.data(), 0));
    CHECK(c.try_read().status() == status::busy);
    CHECK(c.read_for(1ms).status() == status::busy);
    CHECK(c.read().status() == status::busy);
    std::vector<std::byte> buffer(64);
    CHECK(c.try_pop(buffer).status == status::busy);
    CHECK(c.pop_for(buffer, 1ms).status == status::busy);
    // Moving the view keeps it outstanding; releasing the new owner frees it.
    shmq::view moved = std::move(first);
    CHECK(c.try_read().status() == status::busy);
    moved.release();
  }
  expect_message(c, 1, 32);
}

TEST_CASE("inline_and_library_paths_share_one_loan_and_one_view") {
  // spsc_producer / spsc_consumer try an inline path first (shmq/detail/record_ring.hpp);
  // calls through the base class always go to the library. Whichever handed out the
  // loan or the view, the other path must see it as busy.
  segment_guard seg("paths");
  spsc_producer p(seg.name(), small_ring());
  spsc_consumer c(seg.name(), small_ring());
  auto& library_p = static_cast<shmq::basic_producer<shmq::detail::spsc_producer_impl>&>(p);
  auto& library_c = static_cast<shmq::basic_consumer<shmq::detail::spsc_consumer_impl>&>(c);
  {
    shmq::loan first = library_p.try_loan(32);
    REQUIRE(first);
    CHECK(p.try_loan(32).status() == status::busy);
    CHECK(p.loan(32).status() == status::busy);
    fill_message(first.data(), 0);
    first.commit();
  }
  {
    shmq::loan first = p.try_loan(32);
    REQUIRE(first);
    CHECK(library_p.try_loan(32).status() == status::busy);
    fill_message(first.data(), 1);
    first.commit();
  }
  {
    shmq::view first = library_c.try_read();
    REQUIRE(first);
    CHECK(message_ok(first.data(), 0));
    CHECK(c.try_read().status() == status::busy);
    CHECK(c.read().status() == status::busy);
  }
  {
    shmq::view first = c.try_read();
    REQUIRE(first);
    CHECK(message_ok(first.data(), 1));
    CHECK(library_c.try_read().status() == status::busy);
  }
  // A message kept by a too-small pop comes back first, whichever path reads next.
  send(p, 2, 32);
  std::vector<std::byte> small(8);
  CHECK(c.try_pop(small).status == status::too_large);
  {
    shmq::view kept = c.try_read();
    REQUIRE(kept);
    CHECK(message_ok(kept.data(), 2));
    CHECK(c.try_read().status() == status::busy);
  }
  // After a close, no inline loan: the producer says closed.
  p.close();
  CHECK(p.try_loan(32).status() == status::closed);
  CHECK(c.try_read().status() == status::closed);
}

TEST_CASE("view_move_assignment_releases_the_old_view") {
  segment_guard seg("viewmove");
  spsc_producer p(seg.name(), small_ring());
  spsc_consumer c(seg.name(), small_ring());
  send(p, 0, 32);
  send(p, 1, 32);
  shmq::view v = c.try_read();
  REQUIRE(v);
  CHECK(message_ok(v.data(), 0));
  v = shmq::view{};  // releases message 0
  shmq::view w = c.try_read();
  REQUIRE(w);
  CHECK(message_ok(w.data(), 1));
}

TEST_CASE("timeouts") {
  segment_guard seg("timeouts");
  spsc_producer p(seg.name(), small_ring());
  spsc_consumer c(seg.name(), small_ring());
  std::vector<std::byte> buffer(2040);

  SUBCASE("empty ring") {
    CHECK(c.try_read().status() == status::empty);
    CHECK(c.read_for(1ms).status() == status::timed_out);
    CHECK(c.read_for(0ms).status() == status::timed_out);
    CHECK(c.try_pop(buffer).status == status::empty);
    CHECK(c.pop_for(buffer, 5ms).status == status::timed_out);
  }
  SUBCASE("full ring") {
    const std::uint64_t sent = fill_until_full(p, 0, 100);
    CHECK(sent > 0);
    CHECK(p.try_loan(100).status() == status::full);
    CHECK(p.loan_for(100, 1ms).status() == status::timed_out);
    auto m = make_message(sent, 100);
    CHECK(p.push_for(m, 5ms) == status::timed_out);
    CHECK(p.push_for(m, 0ms) == status::timed_out);
    // Nothing was lost or added by the refused sends.
    for (std::uint64_t seq = 0; seq < sent; ++seq) {
      auto r = c.try_pop(buffer);
      REQUIRE(r.status == status::ok);
      CHECK(message_ok({buffer.data(), r.size}, seq));
    }
    CHECK(c.try_pop(buffer).status == status::empty);
    CHECK(p.push_for(m, 20ms) == status::ok);
  }
  SUBCASE("a timed wait still succeeds when data is there") {
    send(p, 0, 16);
    shmq::view v = c.read_for(1ms);
    CHECK(v.status() == status::ok);
  }
}

TEST_CASE("close_drains_then_reports_closed") {
  segment_guard seg("close");
  spsc_consumer c(seg.name(), small_ring());
  std::vector<std::byte> buffer(2040);
  {
    spsc_producer p(seg.name(), small_ring());
    for (std::uint64_t seq = 0; seq < 6; ++seq) send(p, seq, 100);
    p.close();
  }
  // Everything committed before close() is still delivered, by every form.
  expect_message(c, 0, 100);
  {
    shmq::view v = c.read_for(10ms);
    REQUIRE(v.status() == status::ok);
    CHECK(message_ok(v.data(), 1));
  }
  {
    shmq::view v = c.read();
    REQUIRE(v.status() == status::ok);
    CHECK(message_ok(v.data(), 2));
  }
  auto r = c.try_pop(buffer);
  REQUIRE(r.status == status::ok);
  CHECK(message_ok({buffer.data(), r.size}, 3));
  r = c.pop_for(buffer, 10ms);
  REQUIRE(r.status == status::ok);
  CHECK(message_ok({buffer.data(), r.size}, 4));
  r = c.pop(buffer);
  REQUIRE(r.status == status::ok);
  CHECK(message_ok({buffer.data(), r.size}, 5));

  // Then closed, from every form, again and again; the blocking ones return at once.
  for (int i = 0; i < 2; ++i) {
    CHECK(c.try_read().status() == status::closed);
    CHECK(c.read_for(20ms).status() == status::closed);
    CHECK(c.read().status() == status::closed);
    CHECK(c.try_pop(buffer).status == status::closed);
    CHECK(c.pop_for(buffer, 20ms).status == status::closed);
    CHECK(c.pop(buffer).status == status::closed);
  }
}

TEST_CASE("close_with_an_empty_ring") {
  segment_guard seg("close_empty");
  spsc_producer p(seg.name(), small_ring());
  spsc_consumer c(seg.name(), small_ring());
  CHECK(c.try_read().status() == status::empty);
  p.close();
  CHECK(c.try_read().status() == status::closed);
  CHECK(c.read().status() == status::closed);
  // Closed is final for this producer: nothing can follow the end of the stream.
  CHECK(p.try_push(make_message(0, 40)) == status::closed);
  CHECK(p.loan(40).status() == status::closed);
  CHECK(c.try_read().status() == status::closed);
}

TEST_CASE("new_producer_reopens_a_closed_channel") {
  segment_guard seg("reopen");
  spsc_consumer c(seg.name(), small_ring());
  {
    spsc_producer p(seg.name(), small_ring());
    send(p, 0, 40);
    p.close();
  }
  expect_message(c, 0, 40);
  CHECK(c.try_read().status() == status::closed);
  {
    spsc_producer p(seg.name(), small_ring());
    // Reopened: not closed any more, just empty until the new producer sends.
    CHECK(c.try_read().status() == status::empty);
    CHECK(c.read_for(1ms).status() == status::timed_out);
    send(p, 1, 40);
    send(p, 2, 40);
    expect_message(c, 1, 40);
    p.close();
  }
  // The stream went on where it stopped: no loss, no repeat across the reopen.
  expect_message(c, 2, 40);
  CHECK(c.try_read().status() == status::closed);

  SUBCASE("a producer closed without a consumer reading yet") {
    spsc_producer p(seg.name(), small_ring());
    send(p, 3, 40);
    expect_message(c, 3, 40);
  }
}

TEST_CASE("messages_sent_before_the_consumer_attached_are_delivered") {
  segment_guard seg("early");
  spsc_producer p(seg.name(), small_ring());
  const std::uint64_t sent = fill_until_full(p, 0, 200);
  REQUIRE(sent > 3);
  spsc_consumer c(seg.name(), small_ring());
  std::vector<std::byte> buffer(2040);
  for (std::uint64_t seq = 0; seq < sent; ++seq) {
    auto r = c.try_pop(buffer);
    REQUIRE(r.status == status::ok);
    CHECK(r.size == 200);
    CHECK(message_ok({buffer.data(), r.size}, seq));
  }
  CHECK(c.try_pop(buffer).status == status::empty);
}

TEST_CASE("consumer_reattach_continues_the_stream") {
  segment_guard seg("reattach");
  spsc_producer p(seg.name(), small_ring());
  for (std::uint64_t seq = 0; seq < 10; ++seq) send(p, seq, 64);
  {
    spsc_consumer c(seg.name(), small_ring());
    for (std::uint64_t seq = 0; seq < 4; ++seq) expect_message(c, seq, 64);
  }
  // A new consumer starts where the last one released, not at the start or the end.
  spsc_consumer c(seg.name(), small_ring());
  for (std::uint64_t seq = 4; seq < 10; ++seq) expect_message(c, seq, 64);
  CHECK(c.try_read().status() == status::empty);
}

TEST_CASE("endpoints_are_movable") {
  segment_guard seg("moveendpoints");
  spsc_producer p(seg.name(), small_ring());
  spsc_consumer c(seg.name(), small_ring());
  spsc_producer p2 = std::move(p);
  spsc_consumer c2 = std::move(c);
  send(p2, 0, 32);
  expect_message(c2, 0, 32);
}

TEST_CASE("invalid_options") {
  segment_guard seg("options");
  auto with = [](std::size_t capacity, std::size_t max) {
    channel_options o;
    o.capacity = capacity;
    o.max_message_size = max;
    return o;
  };
  const channel_options bad[] = {
      with(3000, 100),                   // not a power of two
      with(4096 + 8, 100),               // not a power of two
      with(2048, 100),                   // below 4 KiB
      with(0, 0),                        // zero
      with(std::size_t{1} << 31, 100),   // above 1 GiB
      with(4096, 2041),                  // message over capacity / 2 - 8
      with(1u << 20, (1u << 19)),        // same rule, bigger ring
  };
  for (const auto& o : bad) {
    CAPTURE(o.capacity);
    CAPTURE(o.max_message_size);
    for (open_mode mode : {open_mode::create, open_mode::open_or_create}) {
      channel_options m = o;
      m.open = mode;
      expect_error([&] { spsc_producer p(seg.name(), m); }, errc::invalid_argument);
      expect_error([&] { spsc_consumer c(seg.name(), m); }, errc::invalid_argument);
    }
    CHECK_FALSE(shmq::segment_exists(seg.name()));  // refused before creating anything
  }
  // The limits themselves are fine.
  spsc_producer p(seg.name(), with(4096, 2040));
  segment_guard seg2("options_max");
  spsc_consumer c(seg2.name(), with(1u << 30, (1u << 29) - 8));
  CHECK(c.capacity() == (1u << 30));
}

TEST_CASE("names") {
  CHECK(shmq::valid_name("a"));
  CHECK(shmq::valid_name("Az09._-"));
  CHECK(shmq::valid_name("x."));
  CHECK(shmq::valid_name(std::string(200, 'n')));
  CHECK_FALSE(shmq::valid_name(""));
  CHECK_FALSE(shmq::valid_name(".hidden"));
  CHECK_FALSE(shmq::valid_name(std::string(201, 'n')));
  const char* bad[] = {"", ".x", "a/b", "/a", "a b", "a\nb", "..", "caf\xc3\xa9", "a*", "a:b"};
  for (const char* name : bad) {
    CAPTURE(name);
    CHECK_FALSE(shmq::valid_name(name));
    expect_error([&] { spsc_producer p(name); }, errc::invalid_name);
    expect_error([&] { spsc_consumer c(name); }, errc::invalid_name);
    expect_error([&] { shmq::remove_segment(name); }, errc::invalid_name);
    expect_error([&] { shmq::segment_exists(name); }, errc::invalid_name);
  }
  expect_error([&] { spsc_consumer c(std::string(201, 'n')); }, errc::invalid_name);
  {
    // The longest valid name works end to end (the OS name is "shmq." + 200 characters).
    std::string longest = shmq::test::unique_name("longest");
    longest.resize(200, 'x');
    struct cleanup {
      std::string name;
      ~cleanup() { shmq::remove_segment(name); }
    } remove_it{longest};
    spsc_producer p(longest, small_ring());
    spsc_consumer c(longest, small_ring());
    send(p, 0, 16);
    expect_message(c, 0, 16);
    CHECK(shmq::segment_exists(longest));
  }
  // An embedded NUL would cut the OS name short; it must be refused, not truncated.
  expect_error([&] { spsc_consumer c(std::string("ab\0cd", 5)); }, errc::invalid_name);
}

TEST_CASE("open_modes") {
  segment_guard seg("modes");
  channel_options open = small_ring();
  open.open = open_mode::open;
  open.open_timeout = 20ms;
  channel_options create = small_ring();
  create.open = open_mode::create;

  expect_error([&] { spsc_consumer c(seg.name(), open); }, errc::not_found);
  expect_error([&] { spsc_producer p(seg.name(), open); }, errc::not_found);
  CHECK_FALSE(shmq::segment_exists(seg.name()));

  spsc_producer p(seg.name(), create);
  expect_error([&] { spsc_consumer c(seg.name(), create); }, errc::already_exists);
  spsc_consumer c(seg.name(), open);
  send(p, 0, 16);
  expect_message(c, 0, 16);
}

TEST_CASE("one_producer_and_one_consumer_per_channel") {
  segment_guard seg("roles");
  {
    spsc_producer p(seg.name(), small_ring());
    expect_error([&] { spsc_producer again(seg.name(), small_ring()); }, errc::role_taken);
    spsc_consumer c(seg.name(), small_ring());
    expect_error([&] { spsc_consumer again(seg.name(), small_ring()); }, errc::role_taken);
    // The refused attaches changed nothing.
    send(p, 0, 16);
    expect_message(c, 0, 16);
  }
  // Roles are given back when the endpoints go.
  spsc_producer p(seg.name(), small_ring());
  spsc_consumer c(seg.name(), small_ring());
  send(p, 1, 16);
  expect_message(c, 1, 16);
}

TEST_CASE("options_mismatch") {
  segment_guard seg("mismatch");
  spsc_producer p(seg.name(), small_ring());
  channel_options other = small_ring();
  other.capacity = 8192;
  expect_error([&] { spsc_consumer c(seg.name(), other); }, errc::options_mismatch);
  other = small_ring();
  other.max_message_size = 1000;
  expect_error([&] { spsc_consumer c(seg.name(), other); }, errc::options_mismatch);
  // open_mode::open takes the channel as it is.
  other.open = open_mode::open;
  spsc_consumer c(seg.name(), other);
  CHECK(c.capacity() == 4096);
  CHECK(c.max_message_size() == 2040);
}

TEST_CASE("segment_permissions") {
  struct stat st {};
  auto mode_of = [&](const segment_guard& seg) {
    REQUIRE(::stat(seg.path().c_str(), &st) == 0);
    return st.st_mode & 07777;
  };
  // umask must not change what the options ask for.
  struct umask_guard {
    mode_t saved = ::umask(077);
    ~umask_guard() { ::umask(saved); }
  } restore_umask;
  SUBCASE("default 0600") {
    segment_guard seg("perm_default");
    spsc_producer p(seg.name(), small_ring());
    CHECK(mode_of(seg) == 0600);
  }
  SUBCASE("custom 0640 under umask 077") {
    segment_guard seg("perm_custom");
    channel_options o = small_ring();
    o.mode = 0640;
    spsc_consumer c(seg.name(), o);
    CHECK(mode_of(seg) == 0640);
  }
  SUBCASE("group set at creation") {
    segment_guard seg("perm_group");
    channel_options o = small_ring();
    o.mode = 0660;
    o.group = 65534;  // nogroup: any gid root may give
    spsc_producer p(seg.name(), o);
    CHECK(mode_of(seg) == 0660);
    CHECK(st.st_gid == 65534u);
  }
  SUBCASE("custom 0666 under umask 022") {
    ::umask(022);
    segment_guard seg("perm_wide");
    channel_options o = small_ring();
    o.mode = 0666;
    spsc_producer p(seg.name(), o);
    CHECK(mode_of(seg) == 0666);
  }
}

TEST_CASE("remove_segment_and_segment_exists") {
  segment_guard seg("remove");
  CHECK_FALSE(shmq::segment_exists(seg.name()));
  CHECK_FALSE(shmq::remove_segment(seg.name()));
  {
    spsc_producer p(seg.name(), small_ring());
    CHECK(shmq::segment_exists(seg.name()));
  }
  // Dropping the endpoints does not remove the segment: the next attach finds it.
  CHECK(shmq::segment_exists(seg.name()));
  CHECK(shmq::remove_segment(seg.name()));
  CHECK_FALSE(shmq::segment_exists(seg.name()));
  CHECK_FALSE(shmq::remove_segment(seg.name()));
}

TEST_CASE("removed_segment_keeps_working_for_attached_endpoints") {
  segment_guard seg("removed");
  spsc_producer p(seg.name(), small_ring());
  spsc_consumer c(seg.name(), small_ring());
  send(p, 0, 32);
  REQUIRE(shmq::remove_segment(seg.name()));
  CHECK_FALSE(shmq::segment_exists(seg.name()));
  send(p, 1, 32);
  expect_message(c, 0, 32);
  expect_message(c, 1, 32);

  // The next attach creates a fresh channel under the old name; the two never mix.
  spsc_consumer fresh(seg.name(), small_ring());
  CHECK(fresh.try_read().status() == status::empty);
  spsc_producer fresh_p(seg.name(), small_ring());
  send(fresh_p, 100, 32);
  send(p, 2, 32);
  expect_message(fresh, 100, 32);
  expect_message(c, 2, 32);
  CHECK(fresh.try_read().status() == status::empty);
  CHECK(c.try_read().status() == status::empty);
}

// Through the public API: a consumer caught up exactly where the record tag wraps to 0
// (stream position 2^35) must see an empty ring, not a message nobody sent. Positions are
// set directly rather than by streaming 32 GiB.
TEST_CASE("channel_tag_wrap_after_32_gib") {
  segment_guard seg("tagwrap");
  { spsc_producer creator(seg.name(), small_ring()); }
  const std::uint64_t wrap = std::uint64_t{1} << 35;
  {
    shmq::test::raw_segment raw(seg.name());
    raw.control().head.store(wrap - 72);  // three 24-byte records before the wrap
    raw.control().tail.store(wrap - 72);
  }
  spsc_producer p(seg.name(), small_ring());
  spsc_consumer c(seg.name(), small_ring());
  for (std::uint64_t seq = 0; seq < 3; ++seq) {
    send(p, seq, 16);
    expect_message(c, seq, 16);
  }
  // Caught up at the wrap position, with nothing sent: must be empty.
  {
    shmq::view v = c.try_read();
    CHECK(v.status() == status::empty);
    CHECK(v.size() == 0);
  }
  send(p, 3, 16);
  expect_message(c, 3, 16);
  CHECK(c.try_read().status() == status::empty);
}

TEST_CASE("status_and_error_texts") {
  const status all[] = {status::ok,     status::empty,     status::full, status::timed_out,
                        status::closed, status::too_large, status::busy, status::corrupt};
  std::set<std::string> names;
  for (status s : all) names.insert(shmq::to_string(s));
  CHECK(names.size() == 8);
  CHECK(std::string(shmq::to_string(status::timed_out)) == "timed_out");
  CHECK(std::string(shmq::error_category().name()) == "shmq");
  std::set<std::string> messages;
  for (int e = static_cast<int>(errc::not_found); e <= static_cast<int>(errc::system_error); ++e)
    messages.insert(shmq::make_error_code(static_cast<errc>(e)).message());
  // Every code has its own text.
  CHECK(messages.size() ==
        static_cast<std::size_t>(static_cast<int>(errc::system_error) - static_cast<int>(errc::not_found) + 1));
  shmq::error err(errc::corrupt, "x");
  CHECK(err.code() == errc::corrupt);
  CHECK(err.code() != errc::truncated);
  CHECK(err.code().category() == shmq::error_category());
}

TEST_SUITE_END();

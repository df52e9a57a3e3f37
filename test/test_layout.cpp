// The shared-memory layout is a contract between processes built at different times:
// every size and offset here is pinned by number, not by what the compiler computes
// today, so a change to layout.hpp fails here first.
#include <cstddef>
#include <ios>
#include <type_traits>

#include "spsc_ring.hpp"
#include "test_support.hpp"

namespace {

using namespace shmq::detail;

// Pinned outside any function so that a layout change fails the build, not just a run.
static_assert(sizeof(segment_header) == 256);
static_assert(offsetof(segment_header, magic) == 0);
static_assert(offsetof(segment_header, layout_version) == 8);
static_assert(offsetof(segment_header, header_size) == 12);
static_assert(offsetof(segment_header, abi_fingerprint) == 16);
static_assert(offsetof(segment_header, total_size) == 24);
static_assert(offsetof(segment_header, kind) == 32);
static_assert(offsetof(segment_header, creator_pid) == 36);
static_assert(offsetof(segment_header, control_offset) == 40);
static_assert(offsetof(segment_header, control_size) == 48);
static_assert(offsetof(segment_header, data_offset) == 56);
static_assert(offsetof(segment_header, data_size) == 64);
static_assert(offsetof(segment_header, registry_offset) == 72);
static_assert(offsetof(segment_header, registry_size) == 80);
static_assert(offsetof(segment_header, state) == 88);

// The hot indices each sit at the start of their own 128-byte block (two cache lines,
// because of the adjacent-line prefetcher), and so do the two wait words.
// The wait words carry their tables of readiness handles behind the word itself
// (2304 bytes each), so the cold fields start after both.
static_assert(sizeof(wait_word) == 2304 && alignof(wait_word) == 128);
static_assert(offsetof(wait_word, armed) == 128 && offsetof(wait_word, keys) == 256);
static_assert(sizeof(spsc_control) == 4992);
static_assert(alignof(spsc_control) == 128);
static_assert(offsetof(spsc_control, tail) == 0);
static_assert(offsetof(spsc_control, head) == 128);
static_assert(offsetof(spsc_control, data_ready) == 256);
static_assert(offsetof(spsc_control, space_ready) == 2560);
static_assert(offsetof(spsc_control, capacity) == 4864);
static_assert(offsetof(spsc_control, max_message_size) == 4872);
static_assert(offsetof(spsc_control, closed) == 4880);
static_assert(offsetof(spsc_control, producer_pid) == 4884);
static_assert(offsetof(spsc_control, consumer_pid) == 4888);
static_assert(offsetof(wait_word, word) == 0);

// Every atomic another process touches must be lock-free: a lock would live in one
// process's memory and protect nothing across processes.
static_assert(std::atomic<std::uint64_t>::is_always_lock_free);
static_assert(std::atomic<std::uint32_t>::is_always_lock_free);
static_assert(std::atomic_ref<std::uint64_t>::is_always_lock_free);
static_assert(std::atomic_ref<std::uint32_t>::is_always_lock_free);
static_assert(sizeof(std::atomic<std::uint64_t>) == 8 && sizeof(std::atomic<std::uint32_t>) == 4);
static_assert(std::is_trivially_copyable_v<std::uint64_t>);

// The fingerprint of the layout these tests were written against. It is pinned at run
// time, not with static_assert, so a deliberate layout change fails this one check (and
// says what to do) instead of the whole build.
constexpr std::uint64_t pinned_fingerprint = 0xe2b792a3c217c859ull;

}  // namespace

TEST_SUITE_BEGIN("unit");

TEST_CASE("layout_constants") {
  // "SHMQSEG1" read as a little-endian word: a hex dump of a segment starts with it.
  const char text[] = "SHMQSEG1";
  std::uint64_t magic = 0;
  std::memcpy(&magic, text, 8);
  CHECK(segment_magic == magic);
  CHECK(layout_version == 8);
  CHECK(state_initializing == 0);
  CHECK(state_ready != 0);
  CHECK(state_ready != 0xffffffffu);
  CHECK(static_cast<std::uint32_t>(channel_kind::spsc) == 1);
  CHECK(min_capacity == 4096);
  CHECK(max_capacity == (1ull << 30));
}

TEST_CASE("abi_fingerprint_is_stable_and_nonzero") {
  constexpr std::uint64_t at_compile_time = abi_fingerprint();
  static_assert(at_compile_time != 0);
  CHECK(abi_fingerprint() == at_compile_time);
  // What the library writes into a segment is what this translation unit computes: the
  // library and its users agree on the layout.
  shmq::test::segment_guard seg("fingerprint");
  { shmq::spsc_producer p(seg.name()); }
  shmq::test::raw_segment raw(seg.name());
  CHECK(raw.header().abi_fingerprint == abi_fingerprint());
  CHECK(raw.header().layout_version == layout_version);
  CHECK(raw.header().magic == segment_magic);
  CHECK(raw.header().header_size == sizeof(segment_header));
  CHECK(raw.header().kind == static_cast<std::uint32_t>(channel_kind::spsc));
  CHECK(raw.header().creator_pid == static_cast<std::uint32_t>(::getpid()));
  CHECK(raw.header().control_offset == 256);
  CHECK(raw.header().control_size == sizeof(spsc_control));
  CHECK(raw.header().data_offset == 5248);  // 256 + 4992, already 128-aligned
  CHECK(raw.header().data_size == (1u << 20));
  CHECK(raw.header().total_size == 5248 + (1u << 20));
  CHECK(raw.header().state.load() == state_ready);
  CHECK(raw.control().capacity == (1u << 20));
  CHECK(raw.control().max_message_size == (64u << 10));
  INFO("the shared-memory layout changed: if that is deliberate, bump layout_version when "
       "it breaks compatibility and update pinned_fingerprint to 0x"
       << std::hex << abi_fingerprint());
  CHECK(abi_fingerprint() == pinned_fingerprint);
}

TEST_CASE("record_helpers") {
  SUBCASE("record_size: 8-byte commit word plus payload, rounded up to 8") {
    CHECK(record_size(0) == 8);
    CHECK(record_size(1) == 16);
    CHECK(record_size(7) == 16);
    CHECK(record_size(8) == 16);
    CHECK(record_size(9) == 24);
    CHECK(record_size(16) == 24);
    CHECK(record_size(2040) == 2048);
    for (std::uint64_t n = 0; n < 1000; ++n) {
      CHECK(record_size(n) % record_alignment == 0);
      CHECK(record_size(n) >= n + record_header_size);
      CHECK(record_size(n) < n + record_header_size + record_alignment);
    }
  }
  SUBCASE("record_tag: 32 bits of position / 8") {
    CHECK(record_tag(0) == 0);
    CHECK(record_tag(8) == 1);
    CHECK(record_tag(4096) == 512);
    CHECK(record_tag(4096) != record_tag(0));  // the same offset a lap later
    CHECK(record_tag(std::uint64_t{1} << 35) == 0);  // wraps every 32 GiB of stream
  }
  SUBCASE("commit_word: tag high, padding flag bit 31, committed flag bit 30, length low") {
    CHECK(padding_flag == (1ull << 31));
    CHECK(committed_flag == (1ull << 30));
    CHECK(length_mask == (1ull << 30) - 1);
    CHECK(commit_word(0, 0, false) == committed_flag);
    CHECK(commit_word(16, 5, false) == ((2ull << 32) | committed_flag | 5));
    CHECK(commit_word(16, 5, true) == ((2ull << 32) | padding_flag | committed_flag | 5));
    const std::uint64_t w = commit_word(4088, 2040, false);
    CHECK(static_cast<std::uint32_t>(w >> 32) == record_tag(4088));
    CHECK((w & length_mask) == 2040);
    CHECK((w & padding_flag) == 0);
  }
  SUBCASE("record_at: a committed word with the position's tag, and nothing else") {
    for (std::uint64_t pos : {std::uint64_t{0}, std::uint64_t{8}, std::uint64_t{4096},
                              (std::uint64_t{1} << 35) - 8, std::uint64_t{1} << 35,
                              std::uint64_t{1} << 40}) {
      CAPTURE(pos);
      CHECK(record_at(commit_word(pos, 0, false), pos));
      CHECK(record_at(commit_word(pos, 100, true), pos));
      // The word the producer clears ahead of itself is never a record, at any
      // position, including those where the tag is 0.
      CHECK_FALSE(record_at(0, pos));
      CHECK_FALSE(record_at(commit_word(pos, 0, false) & ~committed_flag, pos));
      CHECK_FALSE(record_at(commit_word(pos + 8, 0, false), pos));
      CHECK_FALSE(record_at(commit_word(pos + 4096, 0, false), pos));  // next lap
    }
  }
  SUBCASE("max_payload_for: half the ring less one commit word") {
    CHECK(max_payload_for(4096) == 2040);
    CHECK(max_payload_for(1u << 20) == (1u << 19) - 8);
    // The worst case must fit in an empty ring at any offset: padding of one record
    // less 8 bytes, the record, and the 8-byte gap.
    for (std::uint64_t cap = min_capacity; cap <= max_capacity; cap *= 2) {
      const std::uint64_t r = record_size(max_payload_for(cap));
      CHECK(r - record_alignment + r + record_header_size <= cap);
    }
  }
}

TEST_CASE("positions_valid") {
  using shmq::detail::positions_valid;
  CHECK(positions_valid(0, 0, 4096));
  CHECK(positions_valid(8, 4096 + 8, 4096));
  CHECK_FALSE(positions_valid(16, 8, 4096));        // head past tail
  CHECK_FALSE(positions_valid(0, 4096 + 8, 4096));  // more than a ring in flight
  CHECK_FALSE(positions_valid(4, 8, 4096));         // misaligned head
  CHECK_FALSE(positions_valid(8, 12, 4096));        // misaligned tail
}

TEST_SUITE_END();

// libFuzzer target: a valid segment image of one channel kind, patched by the input,
// written to a shm object, then opened and used with try_ operations only.
//
// The property under test (docs/design.md, "Segment"): whatever a segment holds, an endpoint
// either refuses it (shmq::error) or works inside its own mapping. To make "inside"
// checkable, the library's mappings of the fuzzed object are wrapped (-Wl,--wrap=mmap64):
// each one gets a PROT_NONE page on either side, and the bytes between the object's
// end and the end of its last page are ASan-poisoned. Every view and loan handed out
// must also lie in the segment's data area, and a view may not be larger than the
// channel's maximum.
//
// Input:
//   byte 0   bits 0-1 channel kind (spsc, mpmc, pubsub block, pubsub overwrite)
//            bit 2    image: 0 fresh (just created), 1 used (wrapped, skips, groups)
//            bit 3    resize the object by the signed 16-bit delta in bytes 1-2
//            bit 4    after resizing, rewrite the header's total_size and data_size
//            bit 5    attach the producer before the consumers
//            bit 6    pub/sub: the group subscriber joins a new group, not the image's
//            bit 7    pub/sub: the private subscriber starts at newest with history
//   byte 3   number of operations (mod 65), followed by that many operation bytes
//   then     patches: offset (2 bytes LE, mod image size), n, then
//            n < 128: n bytes written at offset
//            n >= 128: 8 bytes added to the 64-bit word at offset & ~7
#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <optional>
#include <span>
#include <string>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

#include "fuzz_support.hpp"
#include "layout.hpp"
#include "shmq/channel_stats.hpp"
#include "shmq/mpmc.hpp"
#include "shmq/pubsub.hpp"
#include "shmq/segment.hpp"
#include "shmq/spsc.hpp"
#include "shmq/status.hpp"

namespace {

using namespace shmq::fuzz;

// ---- valid images, built once per process through the public API ----

enum class kind : std::uint8_t { spsc, mpmc, pubsub_block, pubsub_overwrite };

std::string pid_name(const char* what) { return std::string("fuzz-") + what + "-" + std::to_string(::getpid()); }

std::vector<std::byte> read_object(const std::string& name) {
  const std::string path = "/dev/shm/shmq." + name;
  const int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) fail("cannot open a freshly built segment");
  struct stat st {};
  if (::fstat(fd, &st) != 0) fail("cannot stat a freshly built segment");
  std::vector<std::byte> bytes(static_cast<std::size_t>(st.st_size));
  if (::pread(fd, bytes.data(), bytes.size(), 0) != static_cast<ssize_t>(bytes.size()))
    fail("cannot read a freshly built segment");
  ::close(fd);
  return bytes;
}

std::vector<std::byte> message(std::size_t size, std::uint8_t seed) {
  std::vector<std::byte> m(size);
  for (std::size_t i = 0; i < size; ++i) m[i] = static_cast<std::byte>(seed + i);
  return m;
}

template <class Consumer>
void read_some(Consumer& c, int n) {
  for (int i = 0; i < n; ++i) (void)c.try_read();  // the view is released at once
}

// 4 KiB ring, 256-byte messages. Used: wrapped more than once, padding records, records
// waiting to be read.
void build_spsc(const std::string& name, bool used) {
  shmq::channel_options o;
  o.capacity = 4096;
  o.max_message_size = 256;
  o.open = shmq::open_mode::create;
  shmq::spsc_producer p(name, o);
  o.open = shmq::open_mode::open;
  shmq::spsc_consumer c(name, o);
  if (!used) return;
  const std::size_t sizes[] = {200, 37, 256, 0, 120, 8, 255};
  for (int round = 0; round < 3; ++round) {
    for (std::size_t i = 0; p.try_push(message(sizes[i % 7], static_cast<std::uint8_t>(i))) == shmq::status::ok; ++i) {
    }
    read_some(c, 9);
  }
  shmq::loan l = p.try_loan(100);  // aborted: nothing published
}

// 8 slots of 48 bytes. Used: tickets past one lap, a skip slot, messages waiting.
void build_mpmc(const std::string& name, bool used) {
  shmq::mpmc_options o;
  o.slots = 8;
  o.max_message_size = 48;
  o.max_producers = 2;
  o.max_consumers = 2;
  o.open = shmq::open_mode::create;
  shmq::mpmc_producer p(name, o);
  o.open = shmq::open_mode::open;
  shmq::mpmc_consumer c(name, o);
  if (!used) return;
  for (std::uint8_t i = 0; i < 6; ++i) (void)p.try_push(message(i * 9u, i));
  read_some(c, 4);
  { shmq::loan l = p.try_loan(10); }  // a skip slot
  for (std::uint8_t i = 0; i < 4; ++i) (void)p.try_push(message(48 - i, i));
  read_some(c, 2);
}

// 8 slots of 48 bytes, 2 publishers, 2 subscribers, 3 groups. Used: an idle named
// group "g1" behind the stream (lapped under overwrite), a freed private group, a skip.
void build_pubsub(const std::string& name, bool used, shmq::overflow_policy policy) {
  shmq::pubsub_options o;
  o.slots = 8;
  o.max_message_size = 48;
  o.policy = policy;
  o.max_publishers = 2;
  o.max_subscribers = 2;
  o.max_groups = 3;
  o.open = shmq::open_mode::create;
  shmq::publisher p(name, o);
  if (!used) return;
  o.open = shmq::open_mode::open;
  shmq::subscriber g1(name, o, {.group = "g1", .start = shmq::start_from::oldest});
  for (std::uint8_t i = 0; i < 5; ++i) (void)p.try_push(message(i * 11u, i));
  read_some(g1, 3);
  {
    shmq::subscriber mine(name, o, {.start = shmq::start_from::oldest});
    read_some(mine, 1);
  }
  { shmq::loan l = p.try_loan(5); }  // a skip
  const int more = policy == shmq::overflow_policy::overwrite ? 14 : 5;
  for (int i = 0; i < more; ++i) (void)p.try_push(message(static_cast<std::size_t>(i) % 49, 7));
}

const std::vector<std::byte>& image(kind k, bool used) {
  static std::array<std::optional<std::vector<std::byte>>, 8> images;
  auto& slot = images[static_cast<std::size_t>(k) * 2 + (used ? 1 : 0)];
  if (!slot) {
    const std::string name = pid_name("image");
    shmq::remove_segment(name);
    switch (k) {
      case kind::spsc: build_spsc(name, used); break;
      case kind::mpmc: build_mpmc(name, used); break;
      case kind::pubsub_block: build_pubsub(name, used, shmq::overflow_policy::block); break;
      case kind::pubsub_overwrite: build_pubsub(name, used, shmq::overflow_policy::overwrite); break;
    }
    slot = read_object(name);
    shmq::remove_segment(name);
  }
  return *slot;
}

// ---- the shm object ----

class fuzz_object {
 public:
  explicit fuzz_object(const std::vector<std::byte>& img) : name_(pid_name("segment")) {
    const std::string os = "/shmq." + name_;
    ::shm_unlink(os.c_str());
    const int fd = ::shm_open(os.c_str(), O_RDWR | O_CREAT | O_EXCL, 0600);
    if (fd < 0) fail("cannot create the fuzz object");
    if (::ftruncate(fd, static_cast<off_t>(img.size())) != 0) fail("cannot size the fuzz object");
    if (!img.empty() && ::pwrite(fd, img.data(), img.size(), 0) != static_cast<ssize_t>(img.size()))
      fail("cannot write the fuzz object");
    ::close(fd);
    data_offset_ = load<std::uint64_t>(img, offsetof(shmq::detail::segment_header, data_offset));
  }
  ~fuzz_object() { ::shm_unlink(("/shmq." + name_).c_str()); }
  fuzz_object(const fuzz_object&) = delete;
  fuzz_object& operator=(const fuzz_object&) = delete;

  const std::string& name() const noexcept { return name_; }

  // Does [p, p + n) lie in the data area of one of the endpoints' mappings?
  bool in_data_area(const std::byte* p, std::size_t n) const noexcept {
    return shmq::fuzz::in_data_area(data_offset_, p, n);
  }

 private:
  std::string name_;
  std::uint64_t data_offset_ = 0;
};

// ---- operations ----

std::uint64_t sink;  // keeps the reads of every byte a view shows

void check_view(const fuzz_object& obj, const shmq::view& v, std::size_t max) {
  if (!v) return;
  if (v.size() > max) fail("a view larger than the channel's maximum");
  if (!obj.in_data_area(v.data().data(), v.size())) fail("a view outside the data area");
  for (std::byte b : v.data()) sink += static_cast<std::uint8_t>(b);
}

void check_loan(const fuzz_object& obj, const shmq::loan& l) {
  if (!l) return;
  if (!obj.in_data_area(l.data().data(), l.size())) fail("a loan outside the data area");
  std::memset(l.data().data(), 0xa5, l.size());
}

// Sizes from 0 to about 1.3 times the maximum, so too_large is reached too.
std::size_t op_size(std::uint8_t op, std::size_t max) noexcept { return (op >> 3) * (max + 8) / 24; }

// Runs the operations against one writer and up to three readers (two attach at the
// start, the third only when an operation asks: one more than the images have room for).
// An endpoint that cannot attach (shmq::error) is simply absent; operations on it do
// nothing. Operation byte, by bits 0-2:
//   0  try_read on reader r = bits 3-4 (3 means 0); keep the view if bit 5
//   1  try_pop on reader r into a buffer of bits 5-7 sixths of the maximum
//   2  try_push, 3 try_loan + commit (half of it if bit 7), 4 try_loan, then abort it or
//      keep it (bit 3); sizes from bits 3-7
//   5  close, 6 release the views and commit the loan held
//   7  detach (bit 5) or (re)attach reader r, or the writer if bits 3-4 are 3
template <class Producer, class Consumer, class MakeProducer, class MakeConsumer>
void exercise(const fuzz_object& obj, std::span<const std::uint8_t> ops, bool producer_first,
              MakeProducer make_producer, MakeConsumer make_consumer) {
  std::optional<Producer> producer;
  std::array<std::optional<Consumer>, 3> readers;
  // Declared after the endpoints: destroyed before them.
  std::array<shmq::view, 3> held;
  shmq::loan held_loan;

  const auto attach_producer = [&](bool attach) {
    held_loan.abort();
    producer.reset();
    if (!attach) return;
    guard_next_mappings = true;
    try {
      producer.emplace(make_producer());
    } catch (const shmq::error&) {
    }
    guard_next_mappings = false;
  };
  const auto attach_reader = [&](std::size_t i, bool attach) {
    held[i].release();
    readers[i].reset();
    if (!attach) return;
    guard_next_mappings = true;
    try {
      readers[i].emplace(make_consumer(i));
    } catch (const shmq::error&) {
    }
    guard_next_mappings = false;
  };

  if (producer_first) attach_producer(true);
  attach_reader(0, true);
  attach_reader(1, true);
  if (!producer_first) attach_producer(true);

  for (const std::uint8_t op : ops) {
    const std::size_t r = ((op >> 3) & 3) % 3;
    switch (op & 7) {
      case 0:  // zero-copy read; keep the view (bit 5) or check and release it
        if (readers[r]) {
          shmq::view v = readers[r]->try_read();
          check_view(obj, v, readers[r]->max_message_size());
          if (op & 0x20) {
            held[r] = std::move(v);
          } else {
            sink += v.intact();
          }
        }
        break;
      case 1:  // copying read into an exactly sized buffer (ASan sees any overflow)
        if (readers[r]) {
          std::vector<std::byte> buffer((op >> 5) * (readers[r]->max_message_size() + 8) / 6);
          const shmq::pop_result res = readers[r]->try_pop(buffer);
          if (res.status == shmq::status::ok && res.size > buffer.size()) fail("pop reports more than it copied");
          sink += res.missed;
        }
        break;
      case 2:  // copying write
        if (producer) {
          const auto m = message(op_size(op, producer->max_message_size()), op);
          sink += static_cast<std::uint64_t>(producer->try_push(m));
        }
        break;
      case 3:  // loan, fill, commit all (bit 7 clear) or part of it
        if (producer) {
          shmq::loan l = producer->try_loan(op_size(op, producer->max_message_size()));
          check_loan(obj, l);
          l.commit(op & 0x80 ? l.size() / 2 : l.size());
        }
        break;
      case 4:  // loan, fill, then keep it (bit 3) or abort it
        if (producer) {
          shmq::loan l = producer->try_loan(op_size(op, producer->max_message_size()));
          check_loan(obj, l);
          if (op & 0x08) held_loan = std::move(l);
        }
        break;
      case 5:
        if (producer) producer->close();
        break;
      case 6:
        for (shmq::view& v : held) v.release();
        held_loan.commit();
        break;
      case 7:  // detach (bit 5), or (re)attach over the state the operations left
        if (((op >> 3) & 3) == 3) {
          attach_producer((op & 0x20) == 0);
        } else {
          attach_reader(r, (op & 0x20) == 0);
        }
        break;
    }
  }
}

void run(kind k, std::uint8_t flags, const fuzz_object& obj, std::span<const std::uint8_t> ops) {
  const bool producer_first = (flags & 0x20) != 0;
  const std::string& name = obj.name();
  // What shmq stat and shmq top read, through the same checks, before anyone attaches.
  guard_next_mappings = true;
  try {
    sink += shmq::read_channel_stats(name).fill;
  } catch (const shmq::error&) {
  }
  guard_next_mappings = false;
  switch (k) {
    case kind::spsc: {
      shmq::channel_options o;
      o.open = shmq::open_mode::open;
      o.open_timeout = std::chrono::milliseconds(0);
      o.spin = std::chrono::nanoseconds(0);
      exercise<shmq::spsc_producer, shmq::spsc_consumer>(
          obj, ops, producer_first, [&] { return shmq::spsc_producer(name, o); },
          // A second consumer is refused (role_taken) while the first one is attached.
          [&](std::size_t) { return shmq::spsc_consumer(name, o); });
      break;
    }
    case kind::mpmc: {
      shmq::mpmc_options o;
      o.open = shmq::open_mode::open;
      o.open_timeout = std::chrono::milliseconds(0);
      o.spin = std::chrono::nanoseconds(0);
      exercise<shmq::mpmc_producer, shmq::mpmc_consumer>(
          obj, ops, producer_first, [&] { return shmq::mpmc_producer(name, o); },
          [&](std::size_t) { return shmq::mpmc_consumer(name, o); });
      break;
    }
    case kind::pubsub_block:
    case kind::pubsub_overwrite: {
      shmq::pubsub_options o;
      o.open = shmq::open_mode::open;
      o.open_timeout = std::chrono::milliseconds(0);
      o.spin = std::chrono::nanoseconds(0);
      const shmq::subscription mine = (flags & 0x80) ? shmq::subscription{.history = 3}
                                                    : shmq::subscription{.start = shmq::start_from::oldest};
      const shmq::subscription grouped{.group = (flags & 0x40) ? "g2" : "g1", .start = shmq::start_from::oldest};
      // Readers 1 and 2 are members of the same group.
      exercise<shmq::publisher, shmq::subscriber>(
          obj, ops, producer_first, [&] { return shmq::publisher(name, o); },
          [&](std::size_t i) { return shmq::subscriber(name, o, i == 0 ? mine : grouped); });
      break;
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  input in{data, size};
  const std::uint8_t flags = in.byte();
  const std::uint8_t delta_lo = in.byte(), delta_hi = in.byte();
  const auto k = static_cast<kind>(flags & 3);
  std::vector<std::byte> img = image(k, (flags & 0x04) != 0);

  const std::size_t op_count = std::min<std::size_t>(in.byte() % 65, in.n);
  const std::span<const std::uint8_t> ops(in.p, op_count);
  in.p += op_count;
  in.n -= op_count;

  if (flags & 0x08) {
    const auto delta = static_cast<std::int16_t>(delta_lo | delta_hi << 8);
    const auto resized = static_cast<std::int64_t>(img.size()) + delta;
    img.resize(static_cast<std::size_t>(std::max<std::int64_t>(resized, 0)));
    if (flags & 0x10) {
      using shmq::detail::segment_header;
      store<std::uint64_t>(img, offsetof(segment_header, total_size), img.size());
      const auto data_offset = load<std::uint64_t>(img, offsetof(segment_header, data_offset));
      if (data_offset <= img.size())
        store<std::uint64_t>(img, offsetof(segment_header, data_size), img.size() - data_offset);
    }
  }
  apply_patches(img, in);

  const fuzz_object obj(img);
  run(k, flags, obj, ops);
  return 0;
}

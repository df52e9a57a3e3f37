// libFuzzer target: a real file channel image (docs/durability.md, "File format and
// validation") patched by the input, written to a file in /dev/shm, then opened through
// the public API twice: as in the same boot (the page cache trusted, no recovery), and
// as after a reboot (a test boot id: recovery from the checkpoints and the seals). A
// consumer reads every message, then a producer attaches and sends one more.
//
// The property under test: whatever the file holds, an endpoint either refuses it
// (shmq::error) or works inside its own mapping, and after a reboot it delivers only
// messages whose stamp (sequence number + checksum, demo/stamped_message.hpp) checks
// out. In the same boot the records are trusted as they are in /dev/shm (no seal is
// checked on a read), so there only the views are checked: inside the file's data area
// (the mappings are guarded, fuzz_support.hpp) and no larger than the maximum.
//
// Input:
//   byte 0   bits 0-3 the channel kind: an index into `kinds` (mod its size): SPSC,
//                     MPMC, pub/sub
//            bit 4    image: 0 fresh (just created), 1 used (wrapped, released, unread)
//            bit 5    resize the file by the signed 16-bit delta in bytes 1-2
//            bit 6    after the patches, make both checkpoints' CRCs check out again, so
//                     that recovery starts from what the patches wrote into them
//   then     patches (fuzz_support.hpp, apply_patches)
// Another kind is one more entry in `kinds`: a builder, a reader and where its
// checkpoints are.
#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <optional>
#include <span>
#include <string>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

#include "durable/crc32c.hpp"
#include "durable/flush.hpp"
#include "fuzz_support.hpp"
#include "layout.hpp"
#include "shmq/mpmc.hpp"
#include "shmq/pubsub.hpp"
#include "shmq/spsc.hpp"
#include "shmq/status.hpp"
#include "stamped_message.hpp"

namespace {

using namespace shmq::fuzz;

std::string file_path(const char* what) {
  return std::string("/dev/shm/shmq-fuzz-file-") + what + "-" + std::to_string(::getpid());
}

std::vector<std::byte> read_whole(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  struct stat st {};
  if (fd < 0 || ::fstat(fd, &st) != 0) fail("cannot read a freshly built file image");
  std::vector<std::byte> bytes(static_cast<std::size_t>(st.st_size));
  if (::pread(fd, bytes.data(), bytes.size(), 0) != static_cast<ssize_t>(bytes.size()))
    fail("cannot read a freshly built file image");
  ::close(fd);
  return bytes;
}

void write_whole(const std::string& path, const std::vector<std::byte>& img) {
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) fail("cannot create the fuzzed file");
  if (!img.empty() && ::pwrite(fd, img.data(), img.size(), 0) != static_cast<ssize_t>(img.size()))
    fail("cannot write the fuzzed file");
  ::close(fd);
}

std::uint64_t next_seq = 1;

std::vector<std::byte> stamped_message(std::size_t size) {
  std::vector<std::byte> m(std::max(size, shmq::stamped::header_size));
  shmq::stamped::fill(m, next_seq++);
  return m;
}

// ---- valid images, built once per process through the public API ----

// 16 KiB ring, 256-byte messages, group commit. Used: wrapped more than once, messages
// released (durably, and the last one not synced) and unreleased.
shmq::channel_options spsc_options(const std::string& path) {
  shmq::channel_options o;
  o.capacity = 16384;
  o.max_message_size = 256;
  o.file.path = path;
  o.file.durability = shmq::durability::group_commit;
  o.file.group_messages = 4;
  return o;
}

void build_spsc(const std::string& path, bool used) {
  shmq::channel_options o = spsc_options(path);
  shmq::spsc_producer p("fuzz-file", o);
  shmq::spsc_consumer c("fuzz-file", o);
  if (!used) return;
  const std::size_t sizes[] = {200, 37, 256, 16, 120, 24, 255};
  for (int round = 0; round < 5; ++round) {
    for (std::size_t i = 0; i < 40 && p.try_push(stamped_message(sizes[i % 7])) == shmq::status::ok; ++i) {
    }
    if (p.sync() != shmq::status::ok) fail("building the SPSC image: sync");
    for (int k = 0; k < 30; ++k) (void)c.try_read();
    if (c.sync() != shmq::status::ok) fail("building the SPSC image: consumer sync");
  }
  (void)c.try_read();  // released when the endpoint closes, not synced
}

// 8 whole-page slots of up to 200 bytes, group commit. Used: tickets past one lap,
// messages released (durably, and the last one not synced) and unreleased.
shmq::mpmc_options mpmc_options(const std::string& path) {
  shmq::mpmc_options o;
  o.slots = 8;
  o.max_message_size = 200;
  o.max_producers = 2;
  o.max_consumers = 2;
  o.file.path = path;
  o.file.durability = shmq::durability::group_commit;
  o.file.group_messages = 4;
  return o;
}

void build_mpmc(const std::string& path, bool used) {
  shmq::mpmc_options o = mpmc_options(path);
  shmq::mpmc_producer p("fuzz-file", o);
  shmq::mpmc_consumer c("fuzz-file", o);
  if (!used) return;
  for (int round = 0; round < 3; ++round) {
    for (int i = 0; i < 6; ++i) (void)p.try_push(stamped_message(16 + static_cast<std::size_t>(i) * 31));
    if (p.sync() != shmq::status::ok) fail("building the MPMC image: sync");
    for (int k = 0; k < 5; ++k) (void)c.try_read();
    if (c.sync() != shmq::status::ok) fail("building the MPMC image: consumer sync");
  }
  (void)c.try_read();
}

// 8 whole-page slots of up to 200 bytes, 2 named groups, group commit. Used: group "g"
// behind the stream by a few messages, group "h" further behind, and a private
// subscriber that left.
constexpr std::uint32_t pubsub_groups = 3;  // "g", "h" and a private one

shmq::pubsub_options pubsub_options(const std::string& path) {
  shmq::pubsub_options o;
  o.slots = 8;
  o.max_message_size = 200;
  o.max_publishers = 2;
  o.max_subscribers = 4;
  o.max_groups = pubsub_groups;
  o.file.path = path;
  o.file.durability = shmq::durability::group_commit;
  o.file.group_messages = 4;
  return o;
}

shmq::subscription member_of(const char* group) {
  shmq::subscription how;
  how.group = group;
  how.start = shmq::start_from::oldest;
  return how;
}

void build_pubsub(const std::string& path, bool used) {
  const shmq::pubsub_options o = pubsub_options(path);
  shmq::publisher p("fuzz-file", o);
  shmq::subscriber g("fuzz-file", o, member_of("g")), h("fuzz-file", o, member_of("h"));
  if (!used) return;
  {
    shmq::subscriber mine("fuzz-file", o);
    for (int round = 0; round < 3; ++round) {
      for (int i = 0; i < 4; ++i) (void)p.try_push(stamped_message(16 + static_cast<std::size_t>(i) * 37));
      if (p.sync() != shmq::status::ok) fail("building the pub/sub image: sync");
      for (int k = 0; k < 4; ++k) (void)g.try_read();
      for (int k = 0; k < 3; ++k) (void)h.try_read();
      (void)mine.try_read();
      if (g.sync() != shmq::status::ok || h.sync() != shmq::status::ok)
        fail("building the pub/sub image: subscriber sync");
    }
  }
  for (int i = 0; i < 3; ++i) (void)p.try_push(stamped_message(100));
  (void)g.try_read();
}

// ---- opening and reading ----

std::uint64_t sink;  // keeps the reads of every byte a view shows

// Reads every message a consumer of the file at `o` hands out (at most twice what the
// channel can hold), then a producer sends one more and the consumer reads on.
template <class Producer, class Consumer, class Options, class... ConsumerArgs>
void open_and_read(Options o, std::uint64_t data_offset, std::size_t holds, bool after_reboot,
                   const ConsumerArgs&... consumer_args) {
  o.open = shmq::open_mode::open;
  o.open_timeout = std::chrono::milliseconds(0);
  o.spin = std::chrono::nanoseconds(0);
  std::optional<Consumer> consumer;
  std::optional<Producer> producer;
  const auto attach = [&](auto& endpoint, const auto&... args) {
    guard_next_mappings = true;
    try {
      endpoint.emplace("fuzz-file", o, args...);
    } catch (const shmq::error&) {
    }
    guard_next_mappings = false;
  };
  const auto read_all = [&] {
    for (std::size_t k = 0;; ++k) {
      shmq::view v = consumer->try_read();
      if (!v) return;
      if (k > 2 * holds) fail("more messages than the channel holds, twice over");
      if (v.size() > consumer->max_message_size()) fail("a view larger than the channel's maximum");
      if (!in_data_area(data_offset, v.data().data(), v.size())) fail("a view outside the data area");
      for (std::byte b : v.data()) sink += static_cast<std::uint8_t>(b);
      std::uint64_t seq = 0;
      if (after_reboot && shmq::stamped::check(v.data(), seq) != shmq::stamped::verdict::ok)
        fail("a message whose stamp does not check out, after a reboot");
    }
  };
  attach(consumer, consumer_args...);
  if (consumer) read_all();
  attach(producer);
  if (producer) {
    sink += static_cast<std::uint64_t>(producer->try_push(stamped_message(100)));
    sink += static_cast<std::uint64_t>(producer->sync());
  }
  if (consumer) read_all();
}

void read_spsc(const std::string& path, std::uint64_t data_offset, bool after_reboot) {
  open_and_read<shmq::spsc_producer, shmq::spsc_consumer>(spsc_options(path), data_offset, 16384 / 8, after_reboot);
}

void read_mpmc(const std::string& path, std::uint64_t data_offset, bool after_reboot) {
  open_and_read<shmq::mpmc_producer, shmq::mpmc_consumer>(mpmc_options(path), data_offset, 8, after_reboot);
}

// Where a kind's two checkpoint slots lie in a valid image (lib/durable/checkpoint.hpp),
// and how many bytes of the kind's follow each file_checkpoint.
struct checkpoint_slots {
  std::uint64_t offset;  // of slot 0
  std::uint64_t payload_size;
};

checkpoint_slots spsc_checkpoints(const std::vector<std::byte>& img) {
  using shmq::detail::segment_header;
  return {load<std::uint64_t>(img, offsetof(segment_header, control_offset)) + shmq::detail::file_checkpoint_offset, 0};
}

// A slotted file's are the two slots before its message slots.
checkpoint_slots slotted_checkpoints(const std::vector<std::byte>& img, std::uint64_t payload_size) {
  using shmq::detail::segment_header;
  const std::uint64_t data_offset = load<std::uint64_t>(img, offsetof(segment_header, data_offset));
  return {data_offset - 2 * shmq::detail::slotted_checkpoint_stride(payload_size), payload_size};
}
checkpoint_slots mpmc_checkpoints(const std::vector<std::byte>& img) { return slotted_checkpoints(img, 0); }
// Each holds every named group's floor.
checkpoint_slots pubsub_checkpoints(const std::vector<std::byte>& img) {
  return slotted_checkpoints(img, pubsub_groups * sizeof(shmq::detail::pubsub_group_checkpoint));
}

void read_pubsub(const std::string& path, std::uint64_t data_offset, bool after_reboot) {
  // A member of the named group the image keeps across a reboot.
  open_and_read<shmq::publisher, shmq::subscriber>(pubsub_options(path), data_offset, 8, after_reboot, member_of("g"));
}

struct file_kind {
  void (*build)(const std::string& path, bool used);
  void (*read)(const std::string& path, std::uint64_t data_offset, bool after_reboot);
  checkpoint_slots (*checkpoints)(const std::vector<std::byte>& valid_image);
};

constexpr file_kind kinds[] = {
    {build_spsc, read_spsc, spsc_checkpoints},
    {build_mpmc, read_mpmc, mpmc_checkpoints},
    {build_pubsub, read_pubsub, pubsub_checkpoints},
};
constexpr std::size_t kind_count = sizeof kinds / sizeof kinds[0];

// Makes both checkpoint slots check out (the CRCs of lib/durable/checkpoint.cpp) with
// whatever sequence, head and boot id they hold now.
void reseal_checkpoints(std::vector<std::byte>& img, checkpoint_slots slots) {
  using shmq::detail::file_checkpoint;
  const std::uint64_t stride = shmq::detail::slotted_checkpoint_stride(slots.payload_size);
  for (std::uint64_t i = 0; i < 2; ++i) {
    const std::uint64_t at = slots.offset + i * stride;
    if (at > img.size() || img.size() - at < sizeof(file_checkpoint) + slots.payload_size) continue;
    file_checkpoint c;
    std::memcpy(&c, img.data() + at, sizeof c);
    c.boot_id[sizeof c.boot_id - 1] = '\0';
    c.payload_crc = shmq::detail::crc32c(0, img.data() + at + sizeof c, slots.payload_size);
    c.crc = shmq::detail::crc32c(0, &c, offsetof(file_checkpoint, crc));
    std::memcpy(img.data() + at, &c, sizeof c);
  }
}

const std::vector<std::byte>& image(std::size_t k, bool used) {
  static std::array<std::optional<std::vector<std::byte>>, 2 * kind_count> images;
  auto& slot = images[k * 2 + (used ? 1 : 0)];
  if (!slot) {
    const std::string path = file_path("image");
    ::unlink(path.c_str());
    kinds[k].build(path, used);
    slot = read_whole(path);
    ::unlink(path.c_str());
    // The harness knows where the checkpoints are: resealing changes no written slot.
    auto resealed = *slot;
    const checkpoint_slots where = kinds[k].checkpoints(*slot);
    reseal_checkpoints(resealed, where);
    unsigned written = 0;
    for (std::uint64_t i = 0; i < 2; ++i) {
      const std::uint64_t at = where.offset + i * shmq::detail::slotted_checkpoint_stride(where.payload_size);
      if (load<std::uint64_t>(*slot, at) == 0) continue;  // never written: sequence 0
      ++written;
      if (std::memcmp(resealed.data() + at, slot->data() + at, sizeof(shmq::detail::file_checkpoint)) != 0)
        fail("a checkpoint slot is not where the harness expects it");
    }
    if (written == 0) fail("no checkpoint where the harness expects one");
  }
  return *slot;
}

// The fuzzed file: written from the image, removed at the end.
class fuzz_file {
 public:
  explicit fuzz_file(const std::vector<std::byte>& img) : path_(file_path("input")) { write_whole(path_, img); }
  ~fuzz_file() { ::unlink(path_.c_str()); }
  fuzz_file(const fuzz_file&) = delete;
  fuzz_file& operator=(const fuzz_file&) = delete;
  const std::string& path() const noexcept { return path_; }

 private:
  std::string path_;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  input in{data, size};
  const std::uint8_t flags = in.byte();
  const std::uint8_t delta_lo = in.byte(), delta_hi = in.byte();
  const std::size_t k = (flags & 15) % kind_count;
  const std::vector<std::byte>& valid = image(k, (flags & 0x10) != 0);
  std::vector<std::byte> img = valid;
  if (flags & 0x20) {
    const auto delta = static_cast<std::int16_t>(delta_lo | delta_hi << 8);
    const auto resized = static_cast<std::int64_t>(img.size()) + delta;
    img.resize(static_cast<std::size_t>(std::max<std::int64_t>(resized, 0)));
  }
  apply_patches(img, in);
  if (flags & 0x40) reseal_checkpoints(img, kinds[k].checkpoints(valid));
  const auto data_offset = load<std::uint64_t>(img, offsetof(shmq::detail::segment_header, data_offset));

  {
    // The same boot: the header's boot id is this one's.
    const fuzz_file f(img);
    kinds[k].read(f.path(), data_offset, false);
  }
  {
    const fuzz_file f(img);  // afresh: the first open may have changed it
    shmq::detail::set_boot_id_for_test("fuzz-file-later-boot");
    kinds[k].read(f.path(), data_offset, true);
    shmq::detail::set_boot_id_for_test("");
  }
  return 0;
}

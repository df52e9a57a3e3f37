// Durable file-backed SPSC channels and MPMC queues (docs/durability.md), with their
// floor in the same run.
//   floor_fdatasync_append_latency: write() of the message appended to a plain file, then
//       fdatasync(): what one message made durable costs with no queue at all.
//   durable_spsc_commit_latency: a per-commit channel's commit(), which returns once the
//       message is on stable storage (the consumer, untimed, drains it in between).
//   durable_spsc_throughput_{shm,none,group}: the two-process stream of
//       shmq_spsc_throughput through /dev/shm, a file at level none, and a file with group
//       commit, all by this one harness.
//   durable_mpmc_commit_latency, durable_mpmc_throughput_{shm,none,group}: the same for
//       an MPMC queue, one producer and one consumer (slots of whole pages at levels
//       that flush; about 16 MiB of them).
//   durable_pubsub_commit_latency, durable_pubsub_release_latency,
//       durable_pubsub_throughput_{shm,none,group}: the same for a pub/sub channel, one
//       publisher and one member of a named group (whose releases are checkpointed; the
//       release latency is a per-commit member's release(), a flushed checkpoint).
// Files go in $SHMQ_BENCH_DIR (default /var/tmp, which must be a real filesystem, not
// tmpfs: check with `stat -f -c %T /var/tmp`).
#include <fcntl.h>
#include <unistd.h>

#include <bit>
#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <system_error>
#include <vector>

#include "shmq/mpmc.hpp"
#include "shmq/pubsub.hpp"
#include "shmq/spsc.hpp"
#include "shmq_exchange.hpp"
#include "suites.hpp"

namespace shmq_bench {

namespace {

class bench_dir {
 public:
  bench_dir() {
    const char* parent = std::getenv("SHMQ_BENCH_DIR");
    std::string pattern = std::string(parent != nullptr ? parent : "/var/tmp") + "/shmq-bench-XXXXXX";
    if (::mkdtemp(pattern.data()) == nullptr) throw std::system_error(errno, std::generic_category(), "mkdtemp");
    path_ = pattern;
  }
  ~bench_dir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  std::string file(const char* leaf) const { return path_ + "/" + leaf; }

 private:
  std::string path_;
};

long env_or(const char* name, long fallback) {
  const char* v = std::getenv(name);
  return v != nullptr ? std::atol(v) : fallback;
}

shmq::channel_options durable_options(const std::string& path, shmq::durability level) {
  shmq::channel_options o;
  // 16 MiB: under group commit the producer reuses bytes only once their release is
  // durable, so the ring must hold more than one checkpoint flush's latency of traffic
  // (4 ms here at times: docs/durability.md, "Figures"). The /dev/shm and none streams
  // use the same size ($SHMQ_BENCH_CAPACITY to try others).
  o.capacity = static_cast<std::size_t>(env_or("SHMQ_BENCH_CAPACITY", 16 << 20));
  o.max_message_size = 64u << 10;
  o.file.path = path;
  o.file.durability = level;
  // Group commit as benchmarked: a flush every 10 ms (or 2^20 messages, which at these
  // rates never comes first); $SHMQ_BENCH_GROUP_MESSAGES, $SHMQ_BENCH_GROUP_US to try others.
  o.file.group_messages = static_cast<std::uint32_t>(env_or("SHMQ_BENCH_GROUP_MESSAGES", 1 << 20));
  o.file.group_interval = std::chrono::microseconds(env_or("SHMQ_BENCH_GROUP_US", 10000));
  return o;
}

void floor_fdatasync_append(benchmark::State& state) {
  const auto bytes = static_cast<std::size_t>(state.range(0));
  bench_dir dir;
  const std::string path = dir.file("append.log");
  const int fd = ::open(path.c_str(), O_CREAT | O_WRONLY | O_APPEND | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) throw std::system_error(errno, std::generic_category(), "open");
  const payload message(bytes);
  std::vector<std::byte> buf(bytes);
  std::vector<std::int64_t> samples;
  std::uint64_t seq = 0;
  for (auto _ : state) {
    message.write(buf.data(), seq++);
    const auto start = bench_clock::now();
    if (::write(fd, buf.data(), bytes) != static_cast<ssize_t>(bytes) || ::fdatasync(fd) != 0) {
      state.SkipWithError("write or fdatasync failed");
      break;
    }
    samples.push_back(std::chrono::nanoseconds(bench_clock::now() - start).count());
  }
  ::close(fd);
  // One-way already: report_one_way halves round trips, so give it twice the time.
  for (auto& s : samples) s *= 2;
  if (!state.error_occurred()) report_one_way(state, samples);
}

// The MPMC queue's: slots of `bytes`, as many as make about 16 MiB in whole pages.
shmq::mpmc_options durable_mpmc_options(const std::string& path, shmq::durability level, std::size_t bytes) {
  shmq::mpmc_options o;
  o.max_message_size = bytes;
  const std::size_t page_slot = (bytes + 32 + 4095) / 4096 * 4096;  // header, seal, payload
  o.slots = std::bit_floor(std::max<std::size_t>(16, (16u << 20) / page_slot));
  o.file.path = path;
  o.file.durability = level;
  o.file.group_messages = static_cast<std::uint32_t>(env_or("SHMQ_BENCH_GROUP_MESSAGES", 1 << 20));
  o.file.group_interval = std::chrono::microseconds(env_or("SHMQ_BENCH_GROUP_US", 10000));
  return o;
}

// Pub/sub: the same slots as the MPMC queue's.
shmq::pubsub_options durable_pubsub_options(const std::string& path, shmq::durability level, std::size_t bytes) {
  const shmq::mpmc_options m = durable_mpmc_options(path, level, bytes);
  shmq::pubsub_options o;
  o.max_message_size = m.max_message_size;
  o.slots = m.slots;
  o.file = m.file;
  return o;
}

// A member of the named group "bench": its position is what a pub/sub file keeps.
struct group_member : shmq::subscriber {
  group_member(std::string_view name, const shmq::pubsub_options& o) : subscriber(name, o, member_of()) {}
  static shmq::subscription member_of() {
    shmq::subscription how;
    how.group = "bench";
    return how;
  }
};

shmq::channel_options per_commit_options(const std::string& path, shmq::channel_options*, std::size_t) {
  return durable_options(path, shmq::durability::per_commit);
}
shmq::mpmc_options per_commit_options(const std::string& path, shmq::mpmc_options*, std::size_t bytes) {
  return durable_mpmc_options(path, shmq::durability::per_commit, bytes);
}
shmq::pubsub_options per_commit_options(const std::string& path, shmq::pubsub_options*, std::size_t bytes) {
  return durable_pubsub_options(path, shmq::durability::per_commit, bytes);
}

template <class Producer, class Consumer, class Options>
void durable_commit_latency(benchmark::State& state) {
  const auto bytes = static_cast<std::size_t>(state.range(0));
  bench_dir dir;
  const Options o = per_commit_options(dir.file("per-commit.shmq"), static_cast<Options*>(nullptr), bytes);
  Producer out("bench-per-commit", o);
  Consumer in("bench-per-commit", o);
  const payload message(bytes);
  std::vector<std::int64_t> samples;
  std::uint64_t seq = 0;
  for (auto _ : state) {
    const auto start = bench_clock::now();
    shmq::loan l = out.loan_for(bytes, std::chrono::seconds(10));
    if (!l) {
      state.SkipWithError("loan failed");
      break;
    }
    message.write(l.data().data(), seq++);
    if (l.commit() != shmq::status::ok) {
      state.SkipWithError("commit failed");
      break;
    }
    samples.push_back(std::chrono::nanoseconds(bench_clock::now() - start).count() * 2);
    shmq::view v = in.try_read();  // untimed: the release makes its own checkpoint
    if (!v || v.size() != bytes) {
      state.SkipWithError("the message did not arrive");
      break;
    }
  }
  if (!state.error_occurred()) report_one_way(state, samples);
}

// A per-commit group member's release(): one flushed checkpoint of the group table.
void durable_pubsub_release_latency(benchmark::State& state) {
  const auto bytes = static_cast<std::size_t>(state.range(0));
  bench_dir dir;
  const shmq::pubsub_options o = per_commit_options(dir.file("release.shmq"), static_cast<shmq::pubsub_options*>(nullptr), bytes);
  shmq::publisher out("bench-release", o);
  group_member in("bench-release", o);
  const payload message(bytes);
  std::vector<std::byte> buf(bytes);
  std::vector<std::int64_t> samples;
  std::uint64_t seq = 0;
  for (auto _ : state) {
    message.write(buf.data(), seq++);
    if (out.push_for(buf, std::chrono::seconds(10)) != shmq::status::ok) {  // untimed
      state.SkipWithError("push failed");
      break;
    }
    shmq::view v = in.try_read();
    if (!v || v.size() != bytes) {
      state.SkipWithError("the message did not arrive");
      break;
    }
    const auto start = bench_clock::now();
    v.release();
    samples.push_back(std::chrono::nanoseconds(bench_clock::now() - start).count() * 2);
  }
  if (!state.error_occurred()) report_one_way(state, samples);
}

template <shmq::durability Level, bool File>
void durable_pubsub_throughput(benchmark::State& state) {
  bench_dir dir;
  auto o = durable_pubsub_options(dir.file("stream.shmq"), Level, static_cast<std::size_t>(state.range(0)));
  if (!File) o.file = {};
  time_one_way_stream<shmq::publisher, group_member>(state, o);
}

template <shmq::durability Level, bool File>
void durable_spsc_throughput(benchmark::State& state) {
  bench_dir dir;
  auto o = durable_options(dir.file("stream.shmq"), Level);
  if (!File) o.file = {};
  time_one_way_stream<shmq::spsc_producer, shmq::spsc_consumer>(state, o);
}

template <shmq::durability Level, bool File>
void durable_mpmc_throughput(benchmark::State& state) {
  bench_dir dir;
  auto o = durable_mpmc_options(dir.file("stream.shmq"), Level, static_cast<std::size_t>(state.range(0)));
  if (!File) o.file = {};
  time_one_way_stream<shmq::mpmc_producer, shmq::mpmc_consumer>(state, o);
}

}  // namespace

void register_durable_suite() {
  // Kernel-paced: each durable message costs a device flush (milliseconds on a VM disk).
  for (std::int64_t bytes : {64, 1024, 4096}) {
    register_guarded("floor_fdatasync_append_latency", floor_fdatasync_append, 400)->Arg(bytes);
    register_guarded("durable_spsc_commit_latency",
                     durable_commit_latency<shmq::spsc_producer, shmq::spsc_consumer, shmq::channel_options>, 400)
        ->Arg(bytes);
    register_guarded("durable_mpmc_commit_latency",
                     durable_commit_latency<shmq::mpmc_producer, shmq::mpmc_consumer, shmq::mpmc_options>, 400)
        ->Arg(bytes);
    register_guarded("durable_pubsub_commit_latency",
                     durable_commit_latency<shmq::publisher, group_member, shmq::pubsub_options>, 400)
        ->Arg(bytes);
    register_guarded("durable_pubsub_release_latency", durable_pubsub_release_latency, 400)->Arg(bytes);
  }
  register_side_by_side({throughput_family("durable_spsc_throughput_shm",
                                           durable_spsc_throughput<shmq::durability::none, false>, pace::cache),
                         throughput_family("durable_spsc_throughput_none",
                                           durable_spsc_throughput<shmq::durability::none, true>, pace::cache),
                         throughput_family("durable_spsc_throughput_group",
                                           durable_spsc_throughput<shmq::durability::group_commit, true>,
                                           pace::cache),
                         throughput_family("durable_mpmc_throughput_shm",
                                           durable_mpmc_throughput<shmq::durability::none, false>, pace::cache),
                         throughput_family("durable_mpmc_throughput_none",
                                           durable_mpmc_throughput<shmq::durability::none, true>, pace::cache),
                         throughput_family("durable_mpmc_throughput_group",
                                           durable_mpmc_throughput<shmq::durability::group_commit, true>,
                                           pace::cache),
                         throughput_family("durable_pubsub_throughput_shm",
                                           durable_pubsub_throughput<shmq::durability::none, false>, pace::cache),
                         throughput_family("durable_pubsub_throughput_none",
                                           durable_pubsub_throughput<shmq::durability::none, true>, pace::cache),
                         throughput_family("durable_pubsub_throughput_group",
                                           durable_pubsub_throughput<shmq::durability::group_commit, true>,
                                           pace::cache)});
}

}  // namespace shmq_bench

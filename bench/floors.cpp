// The floors the shmq numbers are judged against: what the hardware and the kernel can
// do at best, with no queue at all.
//   floor_spin_latency:      two cache lines bounced between the processes.
//   floor_futex_latency:     one shared-futex wake-up per direction, nothing else.
//   floor_memcpy_throughput: one core copying the messages into a cache-resident ring.
#include <sys/mman.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <new>
#include <system_error>
#include <vector>

#include "futex.hpp"
#include "measure.hpp"
#include "suites.hpp"

namespace shmq_bench {

namespace {

// An object in an anonymous MAP_SHARED mapping, made before fork: parent and child
// then share it without any name.
template <class T>
class shared_object {
 public:
  shared_object() {
    void* p = ::mmap(nullptr, sizeof(T), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) throw std::system_error(errno, std::generic_category(), "mmap");
    object_ = new (p) T{};
  }
  ~shared_object() {
    object_->~T();
    ::munmap(object_, sizeof(T));
  }
  shared_object(const shared_object&) = delete;
  shared_object& operator=(const shared_object&) = delete;

  T* operator->() const noexcept { return object_; }

 private:
  T* object_;
};

// Each word alone on its 128-byte pair of lines, as shmq's indices are: the adjacent
// line prefetcher then never drags the other side's line along.
template <class Word>
struct alignas(128) lone_word {
  std::atomic<Word> value{0};
};

template <class Word>
struct word_pair {
  lone_word<Word> to_child;
  lone_word<Word> to_parent;
};
static_assert(sizeof(word_pair<std::uint64_t>) == 256);

void floor_spin_latency(benchmark::State& state) {
  shared_object<word_pair<std::uint64_t>> lines;
  const std::int64_t rounds = round_trips(state);
  peer child(state, [&](const control_link& link) {
    if (!signal_ready(link)) return 1;
    for (std::uint64_t seq = 1; seq <= static_cast<std::uint64_t>(rounds); ++seq) {
      // No pause instruction: the floor is the fastest a poller can notice the line.
      while (lines->to_child.value.load(std::memory_order_acquire) != seq) {
      }
      lines->to_parent.value.store(seq, std::memory_order_release);
    }
    return 0;
  });
  if (!child.wait_ready()) return;
  std::uint64_t seq = 0;
  time_round_trips(state, [&] {
    lines->to_child.value.store(++seq, std::memory_order_release);
    while (lines->to_parent.value.load(std::memory_order_acquire) != seq) {
    }
    return true;
  });
  child.finish();
}

// Every round trip is two FUTEX_WAKEs and (unless the answer is already there) two
// FUTEX_WAITs, on shared futexes like shmq's: the cost of a sleeping reader.
void floor_futex_latency(benchmark::State& state) {
  using shmq::detail::futex_wait;
  using shmq::detail::futex_wake_all;
  constexpr auto forever = shmq::detail::clock::time_point::max();
  shared_object<word_pair<std::uint32_t>> words;
  const std::int64_t rounds = round_trips(state);
  auto await = [&](std::atomic<std::uint32_t>& word, std::uint32_t seq) {
    for (std::uint32_t seen; (seen = word.load(std::memory_order_acquire)) != seq;)
      futex_wait(word, seen, forever);
  };
  auto post = [&](std::atomic<std::uint32_t>& word, std::uint32_t seq) {
    word.store(seq, std::memory_order_release);
    futex_wake_all(word);
  };
  peer child(state, [&](const control_link& link) {
    if (!signal_ready(link)) return 1;
    for (std::int64_t i = 1; i <= rounds; ++i) {
      const auto seq = static_cast<std::uint32_t>(i);
      await(words->to_child.value, seq);
      post(words->to_parent.value, seq);
    }
    return 0;
  });
  if (!child.wait_ready()) return;
  std::uint32_t seq = 0;
  time_round_trips(state, [&] {
    post(words->to_child.value, ++seq);
    await(words->to_parent.value, seq);
    return true;
  });
  child.finish();
}

// One core, no peer: the rate at which messages can be written into a ring the size
// of shmq's default (1 MiB), which stays in cache as the shmq ring does.
void floor_memcpy_throughput(benchmark::State& state) {
  constexpr std::size_t ring_bytes = 1u << 20;
  place_parent(state);
  const auto bytes = static_cast<std::size_t>(state.range(0));
  const payload message(bytes);
  std::vector<std::byte> source(bytes);
  message.write(source.data(), 0);
  std::vector<std::byte> ring(ring_bytes);
  std::size_t offset = 0;
  // The ring escapes and memory is clobbered after each copy: the copies must happen,
  // though nobody reads them (clang drops them otherwise).
  benchmark::DoNotOptimize(ring.data());
  benchmark::DoNotOptimize(source.data());
  const auto start = bench_clock::now();
  for (auto _ : state) {
    std::memcpy(ring.data() + offset, source.data(), bytes);
    benchmark::ClobberMemory();
    offset += bytes;
    if (offset + bytes > ring_bytes) offset = 0;
  }
  report_rate(state, static_cast<std::uint64_t>(state.iterations()), bytes,
              bench_clock::now() - start);
}

}  // namespace

sized_family spin_latency_floor() {
  return latency_family("floor_spin_latency", floor_spin_latency, pace::cache);
}

sized_family memcpy_throughput_floor() {
  return throughput_family("floor_memcpy_throughput", floor_memcpy_throughput, pace::cache);
}

sized_family futex_latency_floor() {
  return latency_family("floor_futex_latency", floor_futex_latency, pace::kernel);
}

void register_kernel_floors() { register_side_by_side({futex_latency_floor(), shmq_spsc_latency_fd(), shmq_spsc_latency_asio()}); }

}  // namespace shmq_bench

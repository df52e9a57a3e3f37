// The other process of a two-sided benchmark: fork, CPU placement, control pipes and
// reaping. Every cross-process benchmark starts its peer through here, so all of them
// run on the same two CPUs and use the same start and stop handshakes.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <deque>
#include <functional>
#include <string>
#include <string_view>

#include <benchmark/benchmark.h>

namespace shmq_bench {

// The two CPUs a run uses: the first two of the affinity mask the program started
// with. Equal when only one CPU is available.
struct cpu_placement {
  int parent;
  int child;
};
const cpu_placement& placement();

// Pins the calling (parent) process to its CPU, and labels the run when both sides
// have to share one CPU, since such numbers are not comparable with the others.
void place_parent(benchmark::State& state);

// A name no other run or benchmark uses (pid and a counter), for segments and queues.
std::string unique_name(std::string_view what);

// One end of the pipes between the parent and its peer. Small fixed-size records,
// blocking; used to start and stop a measurement, never inside the timed part.
class control_link {
 public:
  control_link() = default;
  control_link(int in, int out) noexcept : in_(in), out_(out) {}

  bool send_bytes(const void* data, std::size_t size) const noexcept;
  bool receive_bytes(void* data, std::size_t size) const noexcept;  // false at EOF too
  template <class T>
  bool send(const T& value) const noexcept {
    return send_bytes(&value, sizeof value);
  }
  template <class T>
  bool receive(T& value) const noexcept {
    return receive_bytes(&value, sizeof value);
  }
  void close() noexcept;

 private:
  int in_ = -1;
  int out_ = -1;
};

// Child side: tells the parent that setup (attach, open, ...) is done.
bool signal_ready(const control_link& link) noexcept;

// A forked peer process. The child pins itself to `cpu` (by default the placement's
// child CPU), runs `body` and _exit()s
// with body's result (an exception is exit status 3): it never returns into the
// benchmark library, whose state it shares a copy of.
class peer {
 public:
  using body_fn = std::function<int(const control_link&)>;

  peer(benchmark::State& state, body_fn body, int cpu = placement().child);
  ~peer();  // a child still running here (the parent gave up on it) is killed and reaped
  peer(const peer&) = delete;
  peer& operator=(const peer&) = delete;

  const control_link& link() const noexcept { return link_; }

  // Waits for signal_ready(). On false the run is already marked failed.
  bool wait_ready();
  // Closes the link and reaps the child (killed first if the run has failed). On
  // false (it did not exit 0) the run is marked failed.
  bool finish();

 private:
  benchmark::State& state_;
  control_link link_;
  pid_t pid_ = -1;
};

// Several peers of one run (the many-process benchmarks), readied and reaped together.
// Each holds the parent's ends of the earlier ones' control pipes, which is harmless:
// a peer never waits for EOF from the parent, and a failed run kills them all.
class peer_group {
 public:
  explicit peer_group(benchmark::State& state) : state_(state) {}

  peer& add(peer::body_fn body, int cpu) { return peers_.emplace_back(state_, std::move(body), cpu); }
  std::size_t size() const noexcept { return peers_.size(); }
  peer& operator[](std::size_t i) noexcept { return peers_[i]; }

  bool wait_ready();  // all of them; stops at the first failure
  bool finish();      // all of them; false if any failed

 private:
  benchmark::State& state_;
  std::deque<peer> peers_;  // a deque never moves a peer, which cannot be moved
};

}  // namespace shmq_bench

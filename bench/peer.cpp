#include "peer.hpp"

#include <fcntl.h>
#include <sched.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <exception>
#include <system_error>

namespace shmq_bench {

namespace {

// A benchmark that hangs (a peer stuck or dead while the parent spins) must not stall
// the whole run forever: the alarm ends the program with a message instead.
constexpr unsigned watchdog_seconds = 180;

extern "C" void on_watchdog(int) {
  static const char message[] = "shmq-bench: a benchmark ran past the watchdog; giving up\n";
  ssize_t ignored = ::write(STDERR_FILENO, message, sizeof message - 1);
  (void)ignored;
  ::_exit(2);
}

cpu_placement first_two_cpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (::sched_getaffinity(0, sizeof set, &set) != 0) return {0, 0};
  int found[2] = {-1, -1};
  int n = 0;
  for (int cpu = 0; cpu < CPU_SETSIZE && n < 2; ++cpu)
    if (CPU_ISSET(cpu, &set)) found[n++] = cpu;
  if (n == 0) return {0, 0};
  return {found[0], n == 2 ? found[1] : found[0]};
}

void pin_to(int cpu) noexcept {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  if (::sched_setaffinity(0, sizeof set, &set) != 0) std::perror("shmq-bench: sched_setaffinity");
}

void make_pipe(int fds[2]) {
  if (::pipe2(fds, O_CLOEXEC) != 0) throw std::system_error(errno, std::generic_category(), "pipe2");
}

[[noreturn]] void run_child(int cpu, const control_link& link,
                            const peer::body_fn& body, pid_t parent) noexcept {
  // Die with the parent: a child left spinning on a shared line would skew every
  // benchmark that runs after it.
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (::getppid() != parent) ::_exit(4);
  pin_to(cpu);
  int status = 3;
  try {
    status = body(link);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "shmq-bench peer: %s\n", e.what());
  } catch (...) {
    std::fprintf(stderr, "shmq-bench peer: unknown exception\n");
  }
  ::_exit(status);
}

}  // namespace

const cpu_placement& placement() {
  // Taken before the first pin_to: afterwards the process mask holds one CPU only.
  static const cpu_placement cpus = first_two_cpus();
  return cpus;
}

void place_parent(benchmark::State& state) {
  const cpu_placement& cpus = placement();
  if (cpus.parent == cpus.child)
    state.SetLabel("single CPU " + std::to_string(cpus.parent) + ": both sides share it");
  pin_to(cpus.parent);
}

std::string unique_name(std::string_view what) {
  static std::atomic<unsigned> counter{0};
  return "shmq-bench-" + std::to_string(::getpid()) + "-" + std::to_string(counter++) + "-" +
         std::string(what);
}

bool control_link::send_bytes(const void* data, std::size_t size) const noexcept {
  const auto* p = static_cast<const char*>(data);
  while (size > 0) {
    const ssize_t n = ::write(out_, p, size);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    p += n;
    size -= static_cast<std::size_t>(n);
  }
  return true;
}

bool control_link::receive_bytes(void* data, std::size_t size) const noexcept {
  auto* p = static_cast<char*>(data);
  while (size > 0) {
    const ssize_t n = ::read(in_, p, size);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    p += n;
    size -= static_cast<std::size_t>(n);
  }
  return true;
}

void control_link::close() noexcept {
  if (in_ >= 0) ::close(in_);
  if (out_ >= 0) ::close(out_);
  in_ = out_ = -1;
}

bool signal_ready(const control_link& link) noexcept { return link.send(char{'r'}); }

peer::peer(benchmark::State& state, body_fn body, int cpu) : state_(state) {
  place_parent(state);
  int to_child[2];
  int to_parent[2];
  make_pipe(to_child);
  try {
    make_pipe(to_parent);
  } catch (...) {
    ::close(to_child[0]);
    ::close(to_child[1]);
    throw;
  }
  const pid_t parent = ::getpid();
  pid_ = ::fork();
  if (pid_ < 0) {
    const int e = errno;
    for (int fd : {to_child[0], to_child[1], to_parent[0], to_parent[1]}) ::close(fd);
    throw std::system_error(e, std::generic_category(), "fork");
  }
  if (pid_ == 0) {
    ::close(to_child[1]);
    ::close(to_parent[0]);
    run_child(cpu, control_link(to_child[0], to_parent[1]), body, parent);
  }
  ::close(to_child[0]);
  ::close(to_parent[1]);
  link_ = control_link(to_parent[0], to_child[1]);
  std::signal(SIGALRM, on_watchdog);
  ::alarm(watchdog_seconds);
}

peer::~peer() {
  if (pid_ > 0) {
    ::kill(pid_, SIGKILL);
    int status = 0;
    while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
  }
  link_.close();
  ::alarm(0);
}

bool peer::wait_ready() {
  char byte = 0;
  if (link_.receive(byte) && byte == 'r') return true;
  state_.SkipWithError("the peer process failed during setup (see its message on stderr)");
  return false;
}

bool peer::finish() {
  // After a failure the child may wait for a message that never comes.
  if (state_.error_occurred()) ::kill(pid_, SIGKILL);
  link_.close();  // a child still waiting on the link sees EOF
  int status = 0;
  pid_t r;
  while ((r = ::waitpid(pid_, &status, 0)) < 0 && errno == EINTR) {
  }
  pid_ = -1;
  if (state_.error_occurred()) return false;
  if (r > 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0) return true;
  std::string why = "the peer process ";
  if (r > 0 && WIFEXITED(status))
    why += "exited with status " + std::to_string(WEXITSTATUS(status));
  else if (r > 0 && WIFSIGNALED(status))
    why += "was killed by signal " + std::to_string(WTERMSIG(status));
  else
    why += "could not be reaped";
  state_.SkipWithError(why.c_str());
  return false;
}

bool peer_group::wait_ready() {
  for (peer& p : peers_)
    if (!p.wait_ready()) return false;
  return true;
}

bool peer_group::finish() {
  bool all = true;
  for (peer& p : peers_) all &= p.finish();
  return all;
}

}  // namespace shmq_bench

// Flush failures made by libfiu (test/durable/fiu_main.cpp puts its POSIX preload in
// place): the real msync / fsync of libc returns EIO, as the kernel's would, on the
// library's own calls; the test hook of lib/durable/flush.hpp is not used here. What
// must follow (docs/durability.md, "Test method"): the endpoint that saw the failure
// reports io_error from then on, even once the calls work again, and never flushes as if
// the data were safe; a later attach, from another process in the same boot, is refused
// with errc::io_failed; a creation whose fsync failed leaves no ready file.
#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <fcntl.h>
#include <fiu-control.h>
#include <sys/mman.h>
#include <unistd.h>

#include "durable/file_support.hpp"
#include "test_support.hpp"

namespace shmq::test {
namespace {

// Makes the libc call behind a libfiu POSIX point ("posix/mm/msync",
// "posix/io/sync/fsync") fail with EIO for the scope: its calls numbered first ..
// first + count - 1 (from 1; count 0: all from first on). Every call is counted, from
// any thread. One at a time (libfiu's external callback takes no context).
class libc_failure {
 public:
  explicit libc_failure(const char* point, unsigned first = 1, unsigned count = 0)
      : point_(point), first_(first), last_(count == 0 ? ~0u : first + count - 1), caller_(::gettid()) {
    REQUIRE(active.exchange(this) == nullptr);
    REQUIRE(fiu_enable_external(point, 1, reinterpret_cast<void*>(std::intptr_t{EIO}), 0, &decide) == 0);
  }
  ~libc_failure() {
    fiu_disable(point_);
    active.store(nullptr);
  }
  libc_failure(const libc_failure&) = delete;
  libc_failure& operator=(const libc_failure&) = delete;

  // From here on the calls reach the kernel again (and are still counted).
  void stop_failing() noexcept { last_.store(0); }
  unsigned calls() const noexcept { return calls_.load(); }
  unsigned failed() const noexcept { return failed_.load(); }
  // Whether a failed call came from another thread than the one that made this object.
  bool failed_on_another_thread() const noexcept { return elsewhere_.load(); }

 private:
  // Called by the preload's wrapper before each real call: 1 makes it fail, with errno
  // from the failinfo given to fiu_enable_external (EIO).
  static int decide(const char*, int*, void**, unsigned*) {
    libc_failure* f = active.load();
    if (f == nullptr) return 0;
    const unsigned n = f->calls_.fetch_add(1) + 1;
    if (n < f->first_ || n > f->last_.load()) return 0;
    f->failed_.fetch_add(1);
    if (::gettid() != f->caller_) f->elsewhere_.store(true);
    return 1;
  }

  static inline std::atomic<libc_failure*> active{nullptr};
  const char* point_;
  const unsigned first_;
  std::atomic<unsigned> last_;
  const pid_t caller_;
  std::atomic<unsigned> calls_{0}, failed_{0};
  std::atomic<bool> elsewhere_{false};
};

channel_options opened(channel_options o) {
  o.open = open_mode::open;
  return o;
}

// In a forked child (another process, the same boot): attaching as `Endpoint` must be
// refused with errc::io_failed, naming the failed flush. 0 if so.
template <class Endpoint>
int attach_refused_elsewhere(const std::string& name, const channel_options& o) {
  child_process child([&](child_process&) {
    try {
      Endpoint e(name, opened(o));
      return 1;
    } catch (const error& e) {
      if (e.code() != errc::io_failed) {
        std::fprintf(stderr, "refused, but not as io_failed: %s\n", e.what());
        return 2;
      }
      return contains(e.what(), "flush") && contains(e.what(), std::strerror(EIO)) ? 0 : 3;
    }
  });
  return child.wait();
}

// A channel at `o`'s path works: a message pushed is read back intact.
void check_works(const std::string& name, const channel_options& o) {
  spsc_producer p(name, o);
  spsc_consumer c(name, o);
  REQUIRE(p.try_push(make_message(77, 100)) == status::ok);
  REQUIRE(p.sync() == status::ok);
  view v = c.try_read();
  REQUIRE(v);
  CHECK(stamped_seq(v.data()) == 77);
}

}  // namespace

TEST_SUITE_BEGIN("durable");

TEST_CASE("libfiu_makes_libcs_own_msync_and_fsync_fail") {
  // The preload is in place: a plain call fails as the kernel's would, and only while
  // the point is enabled.
  scratch_dir dir;
  const int fd = ::open(dir.file("probe").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  REQUIRE(fd >= 0);
  REQUIRE(::ftruncate(fd, 4096) == 0);
  void* m = ::mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  REQUIRE(m != MAP_FAILED);
  {
    libc_failure f("posix/mm/msync", 1, 1);
    errno = 0;
    CHECK(::msync(m, 4096, MS_SYNC) == -1);
    CHECK(errno == EIO);
    CHECK(::msync(m, 4096, MS_SYNC) == 0);
    CHECK(f.calls() == 2);
  }
  {
    libc_failure f("posix/io/sync/fsync", 1, 1);
    errno = 0;
    CHECK(::fsync(fd) == -1);
    CHECK(errno == EIO);
    CHECK(::fsync(fd) == 0);
  }
  ::munmap(m, 4096);
  ::close(fd);
}

TEST_CASE("libfiu_a_per_commit_producer_whose_msync_failed_never_takes_a_later_flush_for_durable") {
  scratch_dir dir;
  const channel_options o = file_channel(dir.file("pc.shmq"), durability::per_commit, 1u << 16, 256);
  {
    spsc_producer p("fiu-pc", o);
    REQUIRE(p.try_push(make_message(1, 64)) == status::ok);
    libc_failure f("posix/mm/msync", 1, 1);  // the commit's msync, and no other
    CHECK(p.try_push(make_message(2, 64)) == status::io_error);  // committed, not durable
    CHECK(f.failed() == 1);
    CHECK_FALSE(f.failed_on_another_thread());
    // msync works again (Linux reports a writeback error once): it must not be believed,
    // nor even tried.
    const unsigned calls = f.calls();
    CHECK(p.try_push(make_message(3, 64)) == status::io_error);
    CHECK(p.sync() == status::io_error);
    loan l = p.try_loan(8);
    CHECK(l.status() == status::io_error);
    CHECK(f.calls() == calls);
  }
  CHECK(attach_refused_elsewhere<spsc_producer>("fiu-pc", o) == 0);
  CHECK(attach_refused_elsewhere<spsc_consumer>("fiu-pc", o) == 0);
}

TEST_CASE("libfiu_a_group_commit_producers_failed_background_flush_shows_from_sync") {
  scratch_dir dir;
  const channel_options o = file_channel(dir.file("gc.shmq"), durability::group_commit, 1u << 16, 256);
  {
    spsc_producer p("fiu-gc", o);
    REQUIRE(p.try_push(make_message(1, 64)) == status::ok);
    REQUIRE(p.sync() == status::ok);
    {
      libc_failure f("posix/mm/msync");  // every msync while in scope
      CHECK(p.try_push(make_message(2, 64)) == status::ok);  // committed; not promised yet
      CHECK(p.sync() == status::io_error);
      CHECK(f.failed() >= 1);
      CHECK(f.failed_on_another_thread());  // the flush thread's
    }
    CHECK(p.try_push(make_message(3, 64)) == status::io_error);
    CHECK(p.sync() == status::io_error);
  }
  CHECK(attach_refused_elsewhere<spsc_producer>("fiu-gc", o) == 0);
  CHECK(attach_refused_elsewhere<spsc_consumer>("fiu-gc", o) == 0);
}

TEST_CASE("libfiu_a_consumers_failed_checkpoint_flush_poisons_it") {
  scratch_dir dir;
  const channel_options o = file_channel(dir.file("ck.shmq"), durability::group_commit, 1u << 16, 256);
  {
    spsc_producer p("fiu-ck", o);
    spsc_consumer c("fiu-ck", o);
    for (std::uint64_t seq = 1; seq <= 3; ++seq) REQUIRE(p.try_push(make_message(seq, 64)) == status::ok);
    REQUIRE(p.sync() == status::ok);
    {
      // Enabled before the release, so the checkpoint that holds it is flushed under it.
      libc_failure f("posix/mm/msync");
      {
        view v = c.try_read();
        REQUIRE(v);
        CHECK(stamped_seq(v.data()) == 1);
      }
      CHECK(c.sync() == status::io_error);
      CHECK(f.failed() >= 1);
    }
    CHECK(c.try_read().status() == status::io_error);
    CHECK(c.sync() == status::io_error);
  }
  CHECK(attach_refused_elsewhere<spsc_consumer>("fiu-ck", o) == 0);
}

TEST_CASE("libfiu_a_creation_whose_fsync_failed_leaves_no_ready_file") {
  // The creator fsyncs the file, then its directory, then marks it ready and flushes
  // the header (msync). A failure of any of them is a clear io_failed, and no one can
  // attach to what it left; open_or_create then makes a working channel.
  struct step {
    const char* point;
    unsigned call;
    const char* what;
  };
  const step steps[] = {{"posix/io/sync/fsync", 1, "syncing its file"},
                        {"posix/io/sync/fsync", 2, "syncing its directory"},
                        {"posix/mm/msync", 1, "syncing its header"}};
  for (const step& s : steps) {
    const std::string step_name = s.what;
    CAPTURE(step_name);
    scratch_dir dir;
    channel_options o = file_channel(dir.file("new.shmq"), durability::per_commit, 1u << 16, 256);
    o.open = open_mode::create;
    {
      libc_failure f(s.point, s.call, 1);
      try {
        spsc_producer p("fiu-new", o);
        FAIL("created although its ", s.point, " failed");
      } catch (const error& e) {
        CHECK(e.code() == errc::io_failed);
        CHECK(contains(e.what(), s.what));
        CHECK(contains(e.what(), std::strerror(EIO)));
      }
      CHECK(f.failed() == 1);
    }
    child_process child([&](child_process&) {
      try {
        spsc_consumer c("fiu-new", opened(o));
        return 1;
      } catch (const error&) {
        return 0;
      }
    });
    CHECK(child.wait() == 0);
    channel_options again = o;
    again.open = open_mode::open_or_create;
    check_works("fiu-new", again);
  }
}

TEST_SUITE_END();

}  // namespace shmq::test

#include "segment.hpp"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <sys/mman.h>
#include <thread>
#include <unistd.h>

#include <boost/interprocess/exceptions.hpp>

#include "durable/flush.hpp"
#include "registry.hpp"
#include "shmq/segment.hpp"
#include "shmq/status.hpp"

namespace bip = boost::interprocess;

namespace shmq {

bool valid_name(std::string_view name) noexcept {
  if (name.empty() || name.size() > 200 || name.front() == '.') return false;
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

bool remove_segment(std::string_view name) {
  return bip::shared_memory_object::remove(detail::os_name(name).c_str());
}

bool segment_exists(std::string_view name) {
  int fd = ::shm_open(detail::os_name(name).c_str(), O_RDONLY, 0);
  if (fd >= 0) {
    ::close(fd);
    return true;
  }
  return errno != ENOENT;  // EACCES: it exists, we just may not look inside
}

}  // namespace shmq

namespace shmq::detail {

namespace {

constexpr std::uint64_t block_alignment = 128;

constexpr std::uint64_t round_up(std::uint64_t v, std::uint64_t a) noexcept {
  return (v + a - 1) / a * a;
}

[[noreturn]] void fail(errc e, const std::string& name, const std::string& what) {
  throw error(e, "shmq segment '" + name + "': " + what);
}

[[noreturn]] void fail_os(const bip::interprocess_exception& ex, const std::string& name,
                          const char* doing) {
  int err = ex.get_native_error();
  switch (err) {
    case ENOENT: fail(errc::not_found, name, "does not exist");
    case EEXIST: fail(errc::already_exists, name, "already exists");
    case EACCES:
    case EPERM: fail(errc::permission_denied, name, std::string("permission denied while ") + doing);
    default:
      fail(errc::system_error, name, std::string(doing) + ": " + ex.what() + " (" +
                                         std::strerror(err) + ")");
  }
}

std::uint64_t object_size(const bip::shared_memory_object& shm, const std::string& name) {
  bip::offset_t size = 0;
  if (!shm.get_size(size) || size < 0) fail(errc::system_error, name, "cannot read its size");
  return static_cast<std::uint64_t>(size);
}

std::uint64_t load_magic(const segment_header& h) noexcept {
  // The creator may be writing the magic right now; read it as an atomic.
  return std::atomic_ref<std::uint64_t>(const_cast<std::uint64_t&>(h.magic))
      .load(std::memory_order_relaxed);
}

const char* kind_label(std::uint32_t kind) noexcept {
  switch (static_cast<channel_kind>(kind)) {
    case channel_kind::spsc: return "an SPSC channel";
    case channel_kind::mpmc: return "an MPMC queue";
    case channel_kind::pubsub: return "a pub/sub channel";
    default: return "an unknown kind of channel";
  }
}

// Everything an opener checks once the header says ready. Offsets are checked with
// subtractions so that no sum of hostile values can overflow.
void validate_header(const segment_header& h, std::uint64_t size, channel_kind kind,
                     const std::string& name, bool file) {
  if (h.magic != segment_magic) fail(errc::not_shmq, name, "not a shmq segment (bad magic)");
  if (h.layout_version != layout_version)
    fail(errc::version_mismatch, name,
         "layout version " + std::to_string(h.layout_version) + ", this build reads version " +
             std::to_string(layout_version));
  if (h.abi_fingerprint != abi_fingerprint())
    fail(errc::abi_mismatch, name, "built with another struct layout (ABI fingerprint differs)");
  if (h.header_size != sizeof(segment_header)) fail(errc::corrupt, name, "bad header size");
  if (h.kind < static_cast<std::uint32_t>(channel_kind::spsc) ||
      h.kind > static_cast<std::uint32_t>(channel_kind::pubsub))
    fail(errc::corrupt, name, "unknown channel kind " + std::to_string(h.kind));
  if (kind != channel_kind::any && h.kind != static_cast<std::uint32_t>(kind))
    fail(errc::kind_mismatch, name,
         std::string("holds ") + kind_label(h.kind) + ", not " + kind_label(static_cast<std::uint32_t>(kind)));
  if (h.total_size > size)
    fail(errc::truncated, name,
         "truncated: " + std::to_string(size) + " bytes, header says " +
             std::to_string(h.total_size));
  if (h.total_size != size) fail(errc::corrupt, name, "size does not match its header");
  if (size > max_segment_size) fail(errc::corrupt, name, "larger than any shmq segment");
  bool ok = h.control_offset >= sizeof(segment_header) && h.control_offset % block_alignment == 0 &&
            h.control_offset <= size && h.control_size <= size - h.control_offset &&
            h.data_offset % block_alignment == 0 && h.data_offset >= h.control_offset &&
            h.data_offset - h.control_offset >= h.control_size && h.data_offset <= size &&
            h.data_size == size - h.data_offset && h.registry_offset == 0 &&
            h.registry_size == 0;
  if (!ok) fail(errc::corrupt, name, "header offsets out of range");
  if (!file) {
    if (h.file_format != 0) fail(errc::kind_mismatch, name, "holds a file-backed channel's image");
    return;
  }
  if (h.file_format != file_format_v1) fail(errc::corrupt, name, "not a shmq channel file (bad file format)");
  if (h.control_offset != file_control_offset) fail(errc::corrupt, name, "control block not where a file keeps it");
  if (h.durability > static_cast<std::uint32_t>(shmq::durability::per_commit))
    fail(errc::corrupt, name, "unknown durability level " + std::to_string(h.durability));
  if (h.group_messages < 1 || h.group_messages > (1u << 20) || h.group_interval_ns > 10'000'000'000ull)
    fail(errc::corrupt, name, "group commit settings out of range");
}

}  // namespace

std::string os_name(std::string_view name) {
  if (!valid_name(name))
    throw error(errc::invalid_name,
                "shmq: invalid segment name '" + std::string(name) +
                    "' (1-200 characters of [A-Za-z0-9._-], not starting with '.')");
  return "shmq." + std::string(name);
}

segment::segment(std::string name, bip::shared_memory_object shm, bip::mapped_region region)
    : name_(std::move(name)),
      shm_(std::move(shm)),
      region_(std::move(region)),
      base_(static_cast<std::byte*>(region_.get_address())),
      size_(region_.get_size()) {}

segment::segment(std::string name, std::string path, mapped_file file)
    : name_(std::move(name)), path_(std::move(path)), file_(std::move(file)), base_(file_.base()),
      size_(file_.size()) {}

namespace {

void write_header(segment_header& h, channel_kind kind, segment_geometry geometry, std::uint64_t control_offset,
                  std::uint64_t data_offset) noexcept {
  h.magic = segment_magic;
  h.layout_version = layout_version;
  h.header_size = sizeof(segment_header);
  h.abi_fingerprint = abi_fingerprint();
  h.total_size = data_offset + geometry.data_size;
  h.kind = static_cast<std::uint32_t>(kind);
  h.creator_pid = static_cast<std::uint32_t>(::getpid());
  h.control_offset = control_offset;
  h.control_size = geometry.control_size;
  h.data_offset = data_offset;
  h.data_size = geometry.data_size;
}

}  // namespace

segment segment::create_file(const std::string& path, std::string_view label, channel_kind kind,
                             segment_geometry geometry, unsigned mode, long group, const file_options& file) {
  std::string shown(label);
  const std::uint64_t control_offset = file_control_offset;  // the header alone in its sector
  const std::uint64_t data_offset = round_up(control_offset + geometry.control_size, block_alignment);
  const std::uint64_t total = data_offset + geometry.data_size;
  const int fd = create_channel_file(path, shown, mode, group);
  // Before sizing it: an opener that sees a size and no holder knows the creator died.
  hold_lock(fd, creator_lock);
  try {
    preallocate_channel_file(fd, path, shown, total);
    segment s(shown, path, map_channel_file(fd, total, shown));
    segment_header& h = s.header();
    write_header(h, kind, geometry, control_offset, data_offset);
    h.durability = static_cast<std::uint32_t>(file.durability);
    h.file_format = file_format_v1;
    h.group_messages = file.group_messages;
    h.group_interval_ns = static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(file.group_interval).count());
    s.prefault();
    return s;
  } catch (...) {
    ::unlink(path.c_str());
    throw;
  }
}

void segment::sync_all() const {
  if (const int e = flush_file(fd(), base_, size_); e != 0)
    fail(errc::io_failed, name_, std::string("syncing its file: ") + std::strerror(e));
  try {
    sync_directory(path_, name_);
  } catch (const error& e) {
    // The directory not made durable: a failed flush like the file's.
    if (e.code() != errc::system_error) throw;
    throw error(errc::io_failed, e.what());
  }
}

void segment::sync_header() const {
  if (const int e = flush_pages(fd(), base_, size_, 0, sizeof(segment_header)); e != 0)
    fail(errc::io_failed, name_, std::string("syncing its header: ") + std::strerror(e));
}

void segment::prefault() const noexcept {
  // Fault every page in now, not one by one on the first lap round a ring (measured:
  // p999 latency 2-3 us instead of 0.1-0.15 us until the first lap is done). Best
  // effort: older kernels lack it and nothing depends on it. Only after the size was
  // checked, so a hostile sparse object cannot make us allocate all of it.
  ::madvise(base_, size_, MADV_POPULATE_WRITE);
}

segment segment::create(std::string_view name, channel_kind kind, segment_geometry geometry,
                        unsigned mode, long group) {
  std::string os = os_name(name);
  const std::uint64_t control_offset = round_up(sizeof(segment_header), block_alignment);
  const std::uint64_t data_offset = round_up(control_offset + geometry.control_size, block_alignment);
  const std::uint64_t total = data_offset + geometry.data_size;

  bip::shared_memory_object shm;
  try {
    // Boost fchmods after O_CREAT|O_EXCL, so the mode is exact, whatever the umask.
    shm = bip::shared_memory_object(bip::create_only, os.c_str(), bip::read_write,
                                    bip::permissions(mode & 07777));
  } catch (const bip::interprocess_exception& ex) {
    fail_os(ex, std::string(name), "creating it");
  }
  // Before anyone can use it: a group the creator may not give is a clear error.
  if (group >= 0 && ::fchown(shm.get_mapping_handle().handle, static_cast<uid_t>(-1), static_cast<gid_t>(group)) != 0) {
    const int err = errno;
    bip::shared_memory_object::remove(os.c_str());
    fail(err == EPERM ? errc::permission_denied : errc::system_error, std::string(name),
         "cannot give it group " + std::to_string(group) + ": " + std::strerror(err));
  }
  // Before sizing it: an opener that sees a size and no holder knows the creator died.
  hold_lock(shm.get_mapping_handle().handle, creator_lock);
  try {
    shm.truncate(static_cast<bip::offset_t>(total));
    bip::mapped_region region(shm, bip::read_write);
    segment s(std::string(name), std::move(shm), std::move(region));
    // ftruncate zero-filled the object; write the header, state stays initializing.
    write_header(s.header(), kind, geometry, control_offset, data_offset);
    s.prefault();
    return s;
  } catch (const bip::interprocess_exception& ex) {
    bip::shared_memory_object::remove(os.c_str());
    fail_os(ex, std::string(name), "sizing or mapping it");
  }
}

void segment::mark_ready() noexcept {
  // Publishes the header and control block written before it; openers acquire it.
  header().state.store(state_ready, std::memory_order_release);
  drop_lock(fd(), creator_lock);  // after the store: never free while still initializing
  futex_wake_all(header().state);
}

namespace {

// Waits for the creator to mark `s` ready (up to `deadline`), then validates its header.
void await_ready(const segment& s, std::uint64_t size, channel_kind kind, const std::string& shown,
                 clock::time_point deadline) {
  segment_header& h = s.header();
  for (;;) {
    // Acquires the header and control block published by mark_ready().
    std::uint32_t state = h.state.load(std::memory_order_acquire);
    if (state == state_ready) {
      validate_header(h, size, kind, shown, s.file_backed());
      return;
    }
    std::uint64_t magic = load_magic(h);
    if (magic != 0 && magic != segment_magic)
      fail(errc::not_shmq, shown, "not a shmq segment (bad magic)");
    if (state != state_initializing) fail(errc::corrupt, shown, "bad state word");
    // Lock first, state again after it: the creator drops the lock after it is ready.
    if (!held_elsewhere(s.fd(), creator_lock) && h.state.load(std::memory_order_acquire) == state_initializing)
      fail(errc::abandoned, shown,
           "its creator (pid " +
               std::to_string(std::atomic_ref<std::uint32_t>(h.creator_pid).load(std::memory_order_relaxed)) +
               ") died while setting it up; opening it with open_or_create replaces it, or remove it "
               "(shmq rm)");
    if (clock::now() >= deadline)
      fail(errc::not_ready, shown,
           "its creator (pid " +
               std::to_string(std::atomic_ref<std::uint32_t>(h.creator_pid)
                                  .load(std::memory_order_relaxed)) +
               ") did not finish setting it up in time");
    futex_wait(h.state, state, std::min(deadline, clock::now() + std::chrono::milliseconds(10)));
  }
}

// Between the creator's open and its sizing there is nothing to wait on: poll.
bool still_empty(std::uint64_t size, const std::string& shown, clock::time_point deadline) {
  if (size != 0) {
    if (size < sizeof(segment_header))
      fail(errc::truncated, shown,
           "truncated: " + std::to_string(size) + " bytes, smaller than a segment header");
    return false;
  }
  if (clock::now() >= deadline) fail(errc::not_ready, shown, "still empty: its creator never sized it");
  std::this_thread::sleep_for(std::chrono::milliseconds(1));
  return true;
}

}  // namespace

segment segment::open(std::string_view name, channel_kind kind, std::chrono::milliseconds timeout) {
  std::string os = os_name(name);
  std::string shown(name);
  const auto deadline = clock::now() + timeout;
  for (;;) {
    bip::shared_memory_object shm;
    try {
      shm = bip::shared_memory_object(bip::open_only, os.c_str(), bip::read_write);
    } catch (const bip::interprocess_exception& ex) {
      fail_os(ex, shown, "opening it");
    }
    const std::uint64_t size = object_size(shm, shown);
    if (still_empty(size, shown, deadline)) continue;
    bip::mapped_region region;
    try {
      region = bip::mapped_region(shm, bip::read_write, 0, static_cast<std::size_t>(size));
    } catch (const bip::interprocess_exception& ex) {
      fail_os(ex, shown, "mapping it");
    }
    segment s(shown, std::move(shm), std::move(region));
    await_ready(s, size, kind, shown, deadline);
    s.prefault();
    return s;
  }
}

segment segment::open_file(const std::string& path, std::string_view label, channel_kind kind,
                           std::chrono::milliseconds timeout) {
  std::string shown(label);
  const auto deadline = clock::now() + timeout;
  for (;;) {
    const int fd = open_channel_file(path, shown);
    std::uint64_t size = 0;
    try {
      size = file_size(fd, shown);
      if (size > max_segment_size) fail(errc::corrupt, shown, "its file is larger than any shmq segment");
      if (still_empty(size, shown, deadline)) {
        ::close(fd);
        continue;
      }
    } catch (...) {
      ::close(fd);
      throw;
    }
    segment s(shown, path, map_channel_file(fd, size, shown));
    await_ready(s, size, kind, shown, deadline);
    // Its creator synced it; if it died just after marking it ready, this opener's
    // promises must not rest on a ready state still only in the page cache.
    s.sync_header();
    s.prefault();
    return s;
  }
}

}  // namespace shmq::detail

// A mapped shmq segment: creation, opening with header validation, removal.
// Channel kinds lay out their control block and data area inside it.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include <boost/interprocess/mapped_region.hpp>
#include <boost/interprocess/shared_memory_object.hpp>

#include "durable/mapped_file.hpp"
#include "fence.hpp"
#include "layout.hpp"
#include "shmq/options.hpp"
#include "shmq/segment.hpp"
#include "shmq/status.hpp"

namespace shmq::detail {

std::string os_name(std::string_view name);  // "shmq.<name>"; throws invalid_name

struct segment_geometry {
  std::uint64_t control_size;
  std::uint64_t data_size;
};

class segment {
 public:
  // Creates the object (exclusive), sizes and maps it, and writes the header with
  // state = initializing. The caller sets up the control block, then calls mark_ready().
  // Throws errc::already_exists if the name is taken.
  static segment create(std::string_view name, channel_kind kind, segment_geometry geometry,
                        unsigned mode, long group);

  // Opens and validates the header: magic, version, ABI fingerprint, kind, sizes and
  // offsets. Waits up to `timeout` for a creator that is still setting it up.
  static segment open(std::string_view name, channel_kind kind,
                      std::chrono::milliseconds timeout);

  // The same in a regular file at `path` (shmq/durability.hpp): created exclusively,
  // preallocated, its durability settings in the header. `label` names it in messages.
  static segment create_file(const std::string& path, std::string_view label, channel_kind kind,
                             segment_geometry geometry, unsigned mode, long group, const file_options& file);
  static segment open_file(const std::string& path, std::string_view label, channel_kind kind,
                           std::chrono::milliseconds timeout);

  void mark_ready() noexcept;
  void prefault() const noexcept;
  // File-backed only; throw errc::io_failed.
  void sync_all() const;
  void sync_header() const;
  bool file_backed() const noexcept { return static_cast<bool>(file_); }
  const std::string& path() const noexcept { return path_; }  // file-backed only

  segment_header& header() const noexcept { return *reinterpret_cast<segment_header*>(base_); }
  std::byte* at(std::uint64_t offset) const noexcept { return base_ + offset; }
  std::uint64_t size() const noexcept { return size_; }
  const std::string& name() const noexcept { return name_; }
  // The open descriptor, kept for the segment's life: participant locks live on it.
  int fd() const noexcept { return file_ ? file_.fd() : shm_.get_mapping_handle().handle; }

 private:
  segment(std::string name, boost::interprocess::shared_memory_object shm,
          boost::interprocess::mapped_region region);
  segment(std::string name, std::string path, mapped_file file);

  std::string name_;
  std::string path_;
  boost::interprocess::shared_memory_object shm_;
  boost::interprocess::mapped_region region_;
  mapped_file file_;
  std::byte* base_ = nullptr;
  std::uint64_t size_ = 0;
};

struct attached_segment {
  segment seg;
  bool created;
};

// Creates the segment (running init on it before marking it ready) or opens the one
// that exists, as the endpoint options say.
template <class Init>
attached_segment attach_file_segment(std::string_view name, channel_kind kind, segment_geometry geometry,
                                     const endpoint_options& options, Init&& init);

template <class Init>
attached_segment attach_segment(std::string_view name, channel_kind kind, segment_geometry geometry,
                                const endpoint_options& options, Init&& init) {
  enable_light_fences();
  if (!options.file.path.empty()) return attach_file_segment(name, kind, geometry, options, init);
  const bool may_create = options.open != open_mode::open;
  for (bool replaced = false;; replaced = true) {
    if (may_create) {
      try {
        segment s = segment::create(name, kind, geometry, options.mode, options.group);
        init(s);
        s.mark_ready();
        return {std::move(s), true};
      } catch (const error& e) {
        if (options.open == open_mode::create || e.code() != errc::already_exists) throw;
      }
      if (!replaced && options.if_stale == stale_segment::replace && inspect_segment(name).stale) {
        remove_segment(name);  // and create it afresh
        continue;
      }
    }
    try {
      return {segment::open(name, kind, options.open_timeout), false};
    } catch (const error& e) {
      // A half-built segment never carried a message: nothing to recover, so
      // open_or_create replaces it whatever if_stale says.
      if (!may_create || replaced || e.code() != errc::abandoned) throw;
    }
    remove_segment(name);
  }
}

// File-backed: the same, except that stale_segment::replace does not apply (a file's
// messages are what it is for). The creator makes the file durable before it is ready.
template <class Init>
attached_segment attach_file_segment(std::string_view name, channel_kind kind, segment_geometry geometry,
                                     const endpoint_options& options, Init&& init) {
  const std::string& path = options.file.path;
  const bool may_create = options.open != open_mode::open;
  for (bool replaced = false;; replaced = true) {
    if (may_create) {
      try {
        segment s = segment::create_file(path, name, kind, geometry, options.mode, options.group, options.file);
        try {
          init(s);
          s.sync_all();  // file and directory on stable storage, still initializing
          s.mark_ready();
          s.sync_header();  // ready on stable storage before anyone can promise a message
        } catch (...) {
          // Never leave a file behind whose creation failed: after a failed flush of
          // the ready header, an opener's own flush of it would succeed (Linux reports a
          // writeback error once) and be taken for durable. (An opener that attached
          // between mark_ready and the failure keeps an unlinked file.)
          remove_channel_file(path);
          throw;
        }
        return {std::move(s), true};
      } catch (const error& e) {
        if (options.open == open_mode::create || e.code() != errc::already_exists) throw;
      }
    }
    try {
      return {segment::open_file(path, name, kind, options.open_timeout), false};
    } catch (const error& e) {
      if (!may_create || replaced || e.code() != errc::abandoned) throw;
    }
    remove_channel_file(path);  // half-built: it never held a message
  }
}

}  // namespace shmq::detail

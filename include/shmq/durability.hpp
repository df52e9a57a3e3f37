// File-backed, durable channels (docs/durability.md): the endpoint options that put a
// channel in a file on a real filesystem instead of /dev/shm, and how durable it is.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace shmq {

// Chosen when the file is created, stored in it, and used by every endpoint after.
//   none          the page cache only: messages and positions survive a process crash
//                 (as in /dev/shm), not a power loss or a reboot;
//   group_commit  a flush every group_messages commits (or releases), or at the first one
//                 group_interval after the last flush, run by a background thread of the
//                 endpoint while it goes on; sync() returns once everything committed
//                 (released) before it is on stable storage;
//   per_commit    commit() returns only once the message is on stable storage; a
//                 consumer's release() only once its position is.
// After a power loss, whatever the level, a consumer is never handed a record that does
// not check out (CRC32C and position of every record are verified when the file opens).
enum class durability : std::uint32_t { none = 0, group_commit = 1, per_commit = 2 };

struct file_options {
  // Non-empty: the channel lives in this file (created with open_mode create or
  // open_or_create). The endpoint's name then only labels it in error messages.
  std::string path;
  shmq::durability durability = durability::none;
  std::uint32_t group_messages = 64;                   // 1 to 1 << 20
  std::chrono::microseconds group_interval{1000};      // up to 10 s
};

}  // namespace shmq

// A snapshot of one channel for people and tools (shmq stat, shmq top): its shape, how
// full it is, its positions, who is attached and the counters. Read through the same
// validation as an endpoint's attach; nothing is written to the segment.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "shmq/segment.hpp"

namespace shmq {

struct group_stats {
  std::string name;          // empty: a private subscription
  std::string state;         // "active" (has members) or "idle" (a named group nobody is in)
  std::uint32_t members = 0;
  std::uint64_t position = 0;  // the next sequence the group hands out
  std::uint64_t lag = 0;       // published and not yet handed out to it
  bool orphan = false;         // keeps a dead member's message for the next member
};

struct channel_stats {
  std::string name;
  std::string kind;    // "spsc", "mpmc", "pubsub"
  std::uint64_t segment_size = 0;  // bytes of the whole segment
  std::string policy;  // pubsub: "block" or "overwrite"; empty otherwise
  // What capacity, fill, positions, committed and delivered count: "bytes" (SPSC, whose
  // records vary in size) or "messages" (slots of MPMC and pub/sub).
  std::string unit;
  std::uint64_t capacity = 0;  // ring bytes (SPSC) or slots
  std::uint64_t max_message_size = 0;
  std::uint64_t fill = 0;            // committed and not yet released (pub/sub: by the slowest group)
  std::uint64_t write_position = 0;  // SPSC tail, MPMC enqueue_pos, pub/sub claim_pos
  std::uint64_t read_position = 0;   // SPSC head, MPMC dequeue_pos, pub/sub slowest group
  bool closed = false;
  std::vector<participant> participants;
  std::vector<group_stats> groups;  // pub/sub only
  // Since the segment was created. committed: what producers took (MPMC: tickets, aborted
  // loans included); delivered: what consumers released (pub/sub: handed out to every group).
  std::uint64_t committed = 0;
  std::uint64_t delivered = 0;
  std::uint64_t redelivered = 0;  // messages handed out again after their consumer died
  std::uint64_t missed = 0;       // pub/sub overwrite: messages subscribers lost to lapping
};

// Throws shmq::error: invalid_name, not_found, or why the segment cannot be read
// (not_shmq, version_mismatch, corrupt, not_ready, abandoned, ...).
channel_stats read_channel_stats(std::string_view name);

}  // namespace shmq

// Publish/subscribe between processes, with consumer groups.
//
// Every subscription receives every message published after it subscribed. A
// subscription may name a group: all the group's members together receive every
// message once, competing for them like consumers of a work queue. Each group, and each
// private (unnamed) subscription, receives the whole stream.
//
// When a subscriber is slow, the channel's overflow_policy decides:
//   block      publishers wait for the slowest active group; nothing is lost.
//   overwrite  publishers never wait for subscribers. A lapped subscriber is told how
//              many messages it missed (view::missed, pop_result::missed) and goes on
//              from the oldest message still in the ring. In-place readers check
//              view::intact() after reading.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "shmq/endpoint.hpp"

namespace shmq {

namespace detail {
struct publisher_impl;
struct subscriber_impl;
}  // namespace detail

enum class overflow_policy : std::uint32_t { block = 0, overwrite = 1 };

struct pubsub_options : endpoint_options {
  // Used when this endpoint creates the channel; compared with the segment when
  // open_or_create finds it exists (a difference is errc::options_mismatch).
  std::size_t slots = 1024;             // a power of two, 2 to 2^24
  std::size_t max_message_size = 1024;  // per slot; slots * (size + 16) <= 1 GiB
  overflow_policy policy = overflow_policy::block;
  std::uint32_t max_publishers = 16;   // 1 to 1024; one more is errc::limit_reached
  std::uint32_t max_subscribers = 16;  // subscriber endpoints, group members included
  std::uint32_t max_groups = 16;       // groups, private subscriptions included
};

enum class start_from { newest, oldest };

struct subscription {
  std::string group;  // empty: private; else up to 47 characters of [A-Za-z0-9._-]
  // Where a new group (or private subscription) starts: after the newest message, or
  // at the oldest still in the ring. An existing group goes on from where it is.
  start_from start = start_from::newest;
  std::size_t history = 0;  // with newest: also the last `history` messages still there
};

class publisher : public basic_producer<detail::publisher_impl> {
 public:
  explicit publisher(std::string_view name, const pubsub_options& options = {});
  // Subscriber endpoints attached right now (a snapshot; they come and go).
  std::size_t subscribers() const noexcept;
};

class subscriber : public basic_consumer<detail::subscriber_impl> {
 public:
  explicit subscriber(std::string_view name, const pubsub_options& options = {},
                      const subscription& how = {});
  // Messages this subscriber lost to overwriting since it attached.
  std::uint64_t missed_total() const noexcept;
};

}  // namespace shmq

// A many-to-many work queue between processes: any number of producers and consumers
// (up to the limits set at creation) share one channel, and each message goes to
// exactly one consumer. Messages wait in the queue for a consumer, whenever it comes.
// Slots are fixed-size; loan/commit and in-place reads work as for SPSC.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "shmq/endpoint.hpp"

namespace shmq {

namespace detail {
struct mpmc_producer_impl;
struct mpmc_consumer_impl;
}  // namespace detail

struct mpmc_options : endpoint_options {
  // Used when this endpoint creates the channel; compared with the segment when
  // open_or_create finds it exists (a difference is errc::options_mismatch).
  std::size_t slots = 1024;               // a power of two, 2 to 2^24
  std::size_t max_message_size = 1024;    // per slot; slots * (size + 16) <= 1 GiB
  std::uint32_t max_producers = 16;       // 1 to 1024; one more is errc::limit_reached
  std::uint32_t max_consumers = 16;       // 1 to 1024
};

class mpmc_producer : public basic_producer<detail::mpmc_producer_impl> {
 public:
  explicit mpmc_producer(std::string_view name, const mpmc_options& options = {});
  std::size_t slots() const noexcept;
};

class mpmc_consumer : public basic_consumer<detail::mpmc_consumer_impl> {
 public:
  explicit mpmc_consumer(std::string_view name, const mpmc_options& options = {});
  std::size_t slots() const noexcept;
};

}  // namespace shmq

// A single-producer single-consumer channel between two processes.
//
// One channel lives in one named segment. Either side may attach first; the first one
// creates the segment. Messages are variable-size records written in place (loan ->
// write -> commit) and read in place (read -> use -> release). Messages committed
// before the consumer attached wait for it.
#pragma once

#include <cstddef>
#include <string_view>

#include "shmq/endpoint.hpp"

namespace shmq {

namespace detail {
struct spsc_producer_impl;
struct spsc_consumer_impl;
}  // namespace detail

struct channel_options : endpoint_options {
  // Used when this endpoint creates the channel; compared with the segment when
  // open_or_create finds it exists (a difference is errc::options_mismatch).
  std::size_t capacity = 1u << 20;           // ring bytes: a power of two, 4 KiB to 1 GiB
  std::size_t max_message_size = 64u << 10;  // at most capacity / 2 - 8 bytes
};

// The channel's one producer. Throws shmq::error (errc::role_taken if another live
// process is the producer).
class spsc_producer : public basic_producer<detail::spsc_producer_impl> {
 public:
  explicit spsc_producer(std::string_view name, const channel_options& options = {});
  std::size_t capacity() const noexcept;
};

// The channel's one consumer. Throws shmq::error.
class spsc_consumer : public basic_consumer<detail::spsc_consumer_impl> {
 public:
  explicit spsc_consumer(std::string_view name, const channel_options& options = {});
  std::size_t capacity() const noexcept;
};

}  // namespace shmq

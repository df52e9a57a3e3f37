// A single-producer single-consumer channel between two processes.
//
// One channel lives in one named segment. Either side may attach first; the first one
// creates the segment. Messages are variable-size records written in place (loan ->
// write -> commit) and read in place (read -> use -> release).
//
// Every operation has three forms: try_x (never waits), x_for (waits up to a timeout),
// and x (waits as long as it takes). A waiting side spins for options::spin, then sleeps
// on a shared futex; the other side only makes a wake-up syscall when someone sleeps.
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <span>
#include <string_view>

#include "shmq/status.hpp"

namespace shmq {

namespace detail {
struct spsc_producer_impl;
struct spsc_consumer_impl;
}  // namespace detail

enum class open_mode {
  create,          // fail with errc::already_exists if the name is taken
  open,            // fail with errc::not_found if there is no such segment
  open_or_create,  // whichever is needed; the usual choice
};

struct channel_options {
  // Used when this endpoint creates the channel; checked against the segment when it
  // opens one (a different capacity or max_message_size is errc::options_mismatch).
  std::size_t capacity = 1u << 20;           // ring bytes: a power of two, 4 KiB to 1 GiB
  std::size_t max_message_size = 64u << 10;  // at most capacity / 2 - 8 bytes
  unsigned mode = 0600;                      // permission bits of a new segment

  // Per endpoint, never stored in the segment.
  open_mode open = open_mode::open_or_create;
  std::chrono::milliseconds open_timeout{1000};  // wait for a creator that is mid-setup
  std::chrono::nanoseconds spin{std::chrono::microseconds(50)};  // spin before sleeping
};

class spsc_producer;
class spsc_consumer;

// A writable region inside the ring. commit() publishes it; destroying an uncommitted
// loan aborts it, and the bytes are never seen by the consumer.
class loan {
 public:
  loan() = default;
  loan(loan&& other) noexcept;
  loan& operator=(loan&& other) noexcept;
  ~loan();

  explicit operator bool() const noexcept { return status_ == status::ok; }
  shmq::status status() const noexcept { return status_; }
  std::span<std::byte> data() const noexcept { return {data_, size_}; }
  std::size_t size() const noexcept { return size_; }

  void commit() noexcept { commit(size_); }
  void commit(std::size_t used) noexcept;  // publish only the first `used` bytes (<= size)
  void abort() noexcept;

 private:
  friend class spsc_producer;
  loan(detail::spsc_producer_impl* owner, std::byte* data, std::size_t size) noexcept
      : owner_(owner), data_(data), size_(size), status_(status::ok) {}
  explicit loan(shmq::status s) noexcept : status_(s) {}

  detail::spsc_producer_impl* owner_ = nullptr;
  std::byte* data_ = nullptr;
  std::size_t size_ = 0;
  shmq::status status_ = status::empty;
};

// A read-only view of a message in the ring. The bytes stay valid until release() or
// the view's destruction, which hands the space back to the producer.
class view {
 public:
  view() = default;
  view(view&& other) noexcept;
  view& operator=(view&& other) noexcept;
  ~view();

  explicit operator bool() const noexcept { return status_ == status::ok; }
  shmq::status status() const noexcept { return status_; }
  std::span<const std::byte> data() const noexcept { return {data_, size_}; }
  std::size_t size() const noexcept { return size_; }

  void release() noexcept;

 private:
  friend class spsc_consumer;
  view(detail::spsc_consumer_impl* owner, const std::byte* data, std::size_t size) noexcept
      : owner_(owner), data_(data), size_(size), status_(status::ok) {}
  explicit view(shmq::status s) noexcept : status_(s) {}

  detail::spsc_consumer_impl* owner_ = nullptr;
  const std::byte* data_ = nullptr;
  std::size_t size_ = 0;
  shmq::status status_ = status::empty;
};

struct pop_result {
  shmq::status status;
  std::size_t size;  // bytes of the message; with status::too_large, the size needed
};

class spsc_producer {
 public:
  // Attaches as the channel's one producer. Throws shmq::error. A producer attaching
  // to a closed channel reopens it: the stream goes on where it stopped.
  explicit spsc_producer(std::string_view name, const channel_options& options = {});
  spsc_producer(spsc_producer&&) noexcept;
  spsc_producer& operator=(spsc_producer&&) noexcept;
  ~spsc_producer();

  // One loan at a time: a second one while the first is alive gives status::busy.
  [[nodiscard]] shmq::loan try_loan(std::size_t size);
  [[nodiscard]] shmq::loan loan_for(std::size_t size, std::chrono::nanoseconds timeout);
  [[nodiscard]] shmq::loan loan(std::size_t size);

  // Copying sends: loan, copy, commit.
  [[nodiscard]] status try_push(std::span<const std::byte> message);
  [[nodiscard]] status push_for(std::span<const std::byte> message,
                                std::chrono::nanoseconds timeout);
  [[nodiscard]] status push(std::span<const std::byte> message);

  // End of stream: the consumer reads what is left, then gets status::closed.
  void close() noexcept;

  std::size_t max_message_size() const noexcept;
  std::size_t capacity() const noexcept;

 private:
  using time_point = std::chrono::steady_clock::time_point;
  shmq::loan loan_until(std::size_t size, time_point deadline);
  status push_until(std::span<const std::byte> message, time_point deadline);

  std::unique_ptr<detail::spsc_producer_impl> impl_;
};

class spsc_consumer {
 public:
  // Attaches as the channel's one consumer. Throws shmq::error. Messages committed
  // before it attached are waiting for it.
  explicit spsc_consumer(std::string_view name, const channel_options& options = {});
  spsc_consumer(spsc_consumer&&) noexcept;
  spsc_consumer& operator=(spsc_consumer&&) noexcept;
  ~spsc_consumer();

  // Zero-copy: one view at a time; a second one while the first is alive is status::busy.
  [[nodiscard]] view try_read();
  [[nodiscard]] view read_for(std::chrono::nanoseconds timeout);
  [[nodiscard]] view read();

  // Copying receives. A message larger than `buffer` is left in place and reported as
  // status::too_large with its size.
  [[nodiscard]] pop_result try_pop(std::span<std::byte> buffer);
  [[nodiscard]] pop_result pop_for(std::span<std::byte> buffer,
                                   std::chrono::nanoseconds timeout);
  [[nodiscard]] pop_result pop(std::span<std::byte> buffer);

  std::size_t max_message_size() const noexcept;
  std::size_t capacity() const noexcept;

 private:
  using time_point = std::chrono::steady_clock::time_point;
  view read_until(time_point deadline);
  pop_result pop_until(std::span<std::byte> buffer, time_point deadline);

  std::unique_ptr<detail::spsc_consumer_impl> impl_;
};

}  // namespace shmq

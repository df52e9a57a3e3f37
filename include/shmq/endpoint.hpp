// The operations every producer and every consumer has, whatever the channel kind.
// Each comes in three forms: try_x (never waits), x_for (waits up to a timeout) and x
// (waits as long as it takes). A waiting side spins for endpoint_options::spin, then
// sleeps on a shared futex; the other side makes a wake-up syscall only if someone sleeps.
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <span>

#include "shmq/loan.hpp"
#include "shmq/options.hpp"
#include "shmq/readiness.hpp"
#include "shmq/status.hpp"

namespace shmq {

template <class Impl>
class basic_producer {
 public:
  basic_producer(basic_producer&&) noexcept;
  basic_producer& operator=(basic_producer&&) noexcept;
  ~basic_producer();

  // One loan at a time: a second one while the first is alive gives status::busy.
  [[nodiscard]] shmq::loan try_loan(std::size_t size);
  [[nodiscard]] shmq::loan loan_for(std::size_t size, std::chrono::nanoseconds timeout);
  [[nodiscard]] shmq::loan loan(std::size_t size);

  // Copying sends: loan, copy, commit.
  [[nodiscard]] status try_push(std::span<const std::byte> message);
  [[nodiscard]] status push_for(std::span<const std::byte> message, std::chrono::nanoseconds timeout);
  [[nodiscard]] status push(std::span<const std::byte> message);

  // End of stream: consumers read what is left, then get status::closed. A producer
  // that attaches later reopens the channel.
  void close() noexcept;

  // Returns once every message this producer committed before the call is on stable
  // storage (a durable file channel, shmq/durability.hpp): ok, or status::io_error if a
  // flush failed (then never ok again). Elsewhere there is nothing to flush: ok.
  [[nodiscard]] status sync();

  std::size_t max_message_size() const noexcept;

  // Event loops (shmq/readiness.hpp): the descriptor to watch for reading, made on first
  // call, closed with the endpoint; and arm(size), which asks for a wake when there may
  // be room for a message of `size` bytes. Throws shmq::error if the descriptor cannot
  // be made (errc::system_error, e.g. out of descriptors; errc::limit_reached).
  int native_handle();
  [[nodiscard]] arm_result arm(std::size_t size);

 protected:
  explicit basic_producer(std::unique_ptr<Impl> impl) noexcept;
  std::unique_ptr<Impl> impl_;

 private:
  using time_point = std::chrono::steady_clock::time_point;
  shmq::loan loan_until(std::size_t size, time_point deadline);
  status push_until(std::span<const std::byte> message, time_point deadline);
};

template <class Impl>
class basic_consumer {
 public:
  basic_consumer(basic_consumer&&) noexcept;
  basic_consumer& operator=(basic_consumer&&) noexcept;
  ~basic_consumer();

  // Zero-copy: one view at a time; a second one while the first is alive is status::busy.
  [[nodiscard]] view try_read();
  [[nodiscard]] view read_for(std::chrono::nanoseconds timeout);
  [[nodiscard]] view read();

  // Copying receives. A message larger than `buffer` is left in place and reported as
  // status::too_large with its size.
  [[nodiscard]] pop_result try_pop(std::span<std::byte> buffer);
  [[nodiscard]] pop_result pop_for(std::span<std::byte> buffer, std::chrono::nanoseconds timeout);
  [[nodiscard]] pop_result pop(std::span<std::byte> buffer);

  // Returns once every release this consumer made before the call is on stable storage
  // (a durable file channel): after a power loss it is not handed those messages again.
  // ok, or status::io_error if a flush failed. Elsewhere: ok.
  [[nodiscard]] status sync();

  std::size_t max_message_size() const noexcept;
  // Messages this consumer received with view::redelivered() set.
  std::uint64_t redeliveries() const noexcept;

  // Event loops (shmq/readiness.hpp): the descriptor to watch for reading, made on first
  // call, closed with the endpoint; and arm(), which asks for a wake when a message may
  // be there, the stream ends, or a liveness check is due. Throws shmq::error if the
  // descriptor cannot be made (errc::system_error, e.g. out of descriptors;
  // errc::limit_reached).
  int native_handle();
  [[nodiscard]] arm_result arm();

 protected:
  explicit basic_consumer(std::unique_ptr<Impl> impl) noexcept;
  std::unique_ptr<Impl> impl_;

 private:
  using time_point = std::chrono::steady_clock::time_point;
  view read_until(time_point deadline);
  pop_result pop_until(std::span<std::byte> buffer, time_point deadline);
};

}  // namespace shmq

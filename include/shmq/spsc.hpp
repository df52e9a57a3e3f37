// A single-producer single-consumer channel between two processes.
//
// One channel lives in one named segment. Either side may attach first; the first one
// creates the segment. Messages are variable-size records written in place (loan ->
// write -> commit) and read in place (read -> use -> release). Messages committed
// before the consumer attached wait for it.
#pragma once

#include <chrono>
#include <cstddef>
#include <string_view>
#include <utility>

#include "shmq/detail/record_ring.hpp"
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
//
// The loans and reads below try an inline fast path first (shmq/detail/record_ring.hpp)
// and call the library only when it cannot decide: they behave exactly as
// basic_producer's and basic_consumer's, only cheaper while traffic flows.
class spsc_producer : public basic_producer<detail::spsc_producer_impl> {
 public:
  explicit spsc_producer(std::string_view name, const channel_options& options = {});
  spsc_producer(spsc_producer&& o) noexcept
      : basic_producer(std::move(o)), writer_(std::exchange(o.writer_, nullptr)) {}
  spsc_producer& operator=(spsc_producer&& o) noexcept {
    basic_producer::operator=(std::move(o));
    writer_ = std::exchange(o.writer_, nullptr);
    return *this;
  }

  [[nodiscard]] shmq::loan try_loan(std::size_t size) {
    if (shmq::loan l = fast_loan(size)) return l;
    return basic_producer::try_loan(size);
  }
  [[nodiscard]] shmq::loan loan_for(std::size_t size, std::chrono::nanoseconds timeout) {
    if (shmq::loan l = fast_loan(size)) return l;
    return basic_producer::loan_for(size, timeout);
  }
  [[nodiscard]] shmq::loan loan(std::size_t size) {
    if (shmq::loan l = fast_loan(size)) return l;
    return basic_producer::loan(size);
  }

  std::size_t capacity() const noexcept;

 private:
  shmq::loan fast_loan(std::size_t size) noexcept {
    return writer_ != nullptr ? writer_->try_fast_loan(size) : shmq::loan{};
  }
  detail::record_writer* writer_;
};

// The channel's one consumer. Throws shmq::error.
class spsc_consumer : public basic_consumer<detail::spsc_consumer_impl> {
 public:
  explicit spsc_consumer(std::string_view name, const channel_options& options = {});
  spsc_consumer(spsc_consumer&& o) noexcept
      : basic_consumer(std::move(o)), reader_(std::exchange(o.reader_, nullptr)) {}
  spsc_consumer& operator=(spsc_consumer&& o) noexcept {
    basic_consumer::operator=(std::move(o));
    reader_ = std::exchange(o.reader_, nullptr);
    return *this;
  }

  [[nodiscard]] view try_read() {
    if (view v = fast_read()) return v;
    return basic_consumer::try_read();
  }
  [[nodiscard]] view read_for(std::chrono::nanoseconds timeout) {
    if (view v = fast_read()) return v;
    return basic_consumer::read_for(timeout);
  }
  [[nodiscard]] view read() {
    if (view v = fast_read()) return v;
    return basic_consumer::read();
  }

  std::size_t capacity() const noexcept;

 private:
  view fast_read() noexcept { return reader_ != nullptr ? reader_->try_fast_read() : view{}; }
  detail::record_reader* reader_;
};

}  // namespace shmq

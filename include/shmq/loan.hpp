// loan: a writable message in place in a ring; view: a readable one. Both are RAII:
// an uncommitted loan is aborted, and a view is released, when destroyed. Neither may
// outlive the endpoint that made it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <utility>

#include "shmq/status.hpp"

namespace shmq {

namespace detail {
class loan_owner {
 public:
  virtual shmq::status commit_loan(std::uint64_t ticket, std::size_t used) noexcept = 0;
  virtual void abort_loan(std::uint64_t ticket) noexcept = 0;

 protected:
  ~loan_owner() = default;
};
class view_owner {
 public:
  virtual void release_view(std::uint64_t ticket) noexcept = 0;
  virtual bool view_intact(std::uint64_t ticket) const noexcept = 0;

 protected:
  ~view_owner() = default;
};
struct access;
}  // namespace detail

class loan {
 public:
  loan() = default;
  loan(loan&& o) noexcept { *this = std::move(o); }
  loan& operator=(loan&& o) noexcept {
    if (this != &o) {
      abort();
      owner_ = std::exchange(o.owner_, nullptr);
      ticket_ = o.ticket_;
      data_ = o.data_;
      size_ = o.size_;
      status_ = std::exchange(o.status_, status::empty);
    }
    return *this;
  }
  ~loan() { abort(); }

  explicit operator bool() const noexcept { return status_ == status::ok; }
  shmq::status status() const noexcept { return status_; }
  std::span<std::byte> data() const noexcept { return {data_, size_}; }
  std::size_t size() const noexcept { return size_; }

  // Publishes the first `used` bytes (all of them by default). ok, or status::io_error
  // on a durable file channel whose flush failed (shmq/durability.hpp); status::empty
  // if there was no loan.
  shmq::status commit() noexcept { return commit(size_); }
  shmq::status commit(std::size_t used) noexcept {
    shmq::status s = shmq::status::empty;
    if (owner_ != nullptr) s = std::exchange(owner_, nullptr)->commit_loan(ticket_, used < size_ ? used : size_);
    status_ = status::empty;
    return s;
  }
  // The consumer never sees an aborted loan.
  void abort() noexcept {
    if (owner_ != nullptr) std::exchange(owner_, nullptr)->abort_loan(ticket_);
    status_ = status::empty;
  }

 private:
  friend struct detail::access;
  detail::loan_owner* owner_ = nullptr;
  std::uint64_t ticket_ = 0;
  std::byte* data_ = nullptr;
  std::size_t size_ = 0;
  shmq::status status_ = status::empty;
};

class view {
 public:
  view() = default;
  view(view&& o) noexcept { *this = std::move(o); }
  view& operator=(view&& o) noexcept {
    if (this != &o) {
      release();
      owner_ = std::exchange(o.owner_, nullptr);
      ticket_ = o.ticket_;
      data_ = o.data_;
      size_ = o.size_;
      missed_ = o.missed_;
      redelivered_ = o.redelivered_;
      status_ = std::exchange(o.status_, status::empty);
    }
    return *this;
  }
  ~view() { release(); }

  explicit operator bool() const noexcept { return status_ == status::ok; }
  shmq::status status() const noexcept { return status_; }
  std::span<const std::byte> data() const noexcept { return {data_, size_}; }
  std::size_t size() const noexcept { return size_; }

  // Messages this reader lost just before this one (publish/subscribe with the
  // overwrite policy only; always 0 elsewhere).
  std::uint64_t missed() const noexcept { return missed_; }

  // At-least-once delivery: true if a consumer that died holding this message may have
  // seen it already (it was taken but never released). Counted by the consumer's
  // redeliveries().
  bool redelivered() const noexcept { return redelivered_; }

  // Under the overwrite policy a publisher may reuse the slot while it is being read.
  // Check intact() after using data(): false means the bytes were overwritten and must
  // be discarded (the loss is reported as missed() on the next message). Always true
  // for other channels.
  bool intact() const noexcept { return owner_ == nullptr || owner_->view_intact(ticket_); }

  void release() noexcept {
    if (owner_ != nullptr) std::exchange(owner_, nullptr)->release_view(ticket_);
    status_ = status::empty;
  }

 private:
  friend struct detail::access;
  detail::view_owner* owner_ = nullptr;
  std::uint64_t ticket_ = 0;
  const std::byte* data_ = nullptr;
  std::size_t size_ = 0;
  std::uint64_t missed_ = 0;
  bool redelivered_ = false;
  shmq::status status_ = status::empty;
};

struct pop_result {
  shmq::status status;
  std::size_t size;         // bytes of the message; with status::too_large, the size needed
  std::uint64_t missed = 0;  // as view::missed()
  bool redelivered = false;  // as view::redelivered()
};

namespace detail {
struct access {
  static shmq::loan make_loan(loan_owner* owner, std::uint64_t ticket, std::byte* data, std::size_t size) noexcept {
    shmq::loan l;
    l.owner_ = owner;
    l.ticket_ = ticket;
    l.data_ = data;
    l.size_ = size;
    l.status_ = status::ok;
    return l;
  }
  static shmq::loan failed_loan(shmq::status s) noexcept {
    shmq::loan l;
    l.status_ = s;
    return l;
  }
  static shmq::view make_view(view_owner* owner, std::uint64_t ticket, const std::byte* data,
                              std::size_t size, std::uint64_t missed, bool redelivered) noexcept {
    shmq::view v;
    v.owner_ = owner;
    v.ticket_ = ticket;
    v.data_ = data;
    v.size_ = size;
    v.missed_ = missed;
    v.redelivered_ = redelivered;
    v.status_ = status::ok;
    return v;
  }
  // Detaches a view without releasing it: its owner hands the same message out again.
  template <class Owner>
  static void keep(shmq::view& v, Owner& owner) noexcept {
    owner.keep(v.ticket_);
    v.owner_ = nullptr;
    v.status_ = status::empty;
  }
  static shmq::view failed_view(shmq::status s) noexcept {
    shmq::view v;
    v.status_ = s;
    return v;
  }
};
}  // namespace detail

}  // namespace shmq

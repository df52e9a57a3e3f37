// shmq endpoints in Boost.Asio (Boost 1.74, header-only): asynchronous reads, loans,
// pushes and pops with any completion token (a callback, use_future, use_awaitable),
// and callback subscriptions. Built on the readiness descriptor (shmq/readiness.hpp):
// each operation tries, arms, and waits on the descriptor with async_wait, so a thread
// can serve many channels, sockets and timers at once. Timeouts are Asio timers that
// call cancel(). An operation that finds its message or room at once may complete
// inside the call that started it (up to 64 in a row per endpoint, then once through a
// post): a handler must not expect to run later. docs/event-loops.md has the details.
//
//   shmq::asio::endpoint jobs(io.get_executor(), shmq::mpmc_consumer("jobs"));
//   shmq::view v = co_await shmq::asio::async_read(jobs, use_awaitable);  // throws at the end
// With use_awaitable, an operation that finds its message or room at once returns it
// from a plain coroutine, without building the composed operation. async_wait is the
// reactor style: wait, then drain with try_read() (no await per message).
#pragma once

#include <utility>  // first: Boost 1.74's awaitable.hpp uses std::exchange without it

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/compose.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>  // empty where coroutines are off (clang 14)
#include <boost/system/error_code.hpp>
#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstring>
#include <functional>
#include <memory>
#include <span>
#include <type_traits>
#include <string>
#include <utility>

#include "shmq/endpoint.hpp"

namespace shmq::asio {

namespace net = boost::asio;
using error_code = boost::system::error_code;

// shmq::status as a Boost error code; status::ok is no error.
class status_category_impl final : public boost::system::error_category {
 public:
  const char* name() const noexcept override { return "shmq.status"; }
  std::string message(int value) const override { return to_string(static_cast<shmq::status>(value)); }
};
inline const boost::system::error_category& status_category() noexcept {
  static const status_category_impl category;
  return category;
}
inline error_code make_error_code(shmq::status s) noexcept {
  return s == shmq::status::ok ? error_code() : error_code(static_cast<int>(s), status_category());
}

namespace detail {
// What pending operations share with their endpoint: whether it still exists, and how
// many times it was cancelled, so an operation resumed after either gives up without
// touching it.
struct endpoint_life {
  bool alive = true;
  std::uint64_t cancels = 0;
};
template <class Endpoint>
struct wait_loop;
}  // namespace detail

// An shmq endpoint bound to an executor. It owns the endpoint. Closing, cancelling or
// destroying it completes pending operations with net::error::operation_aborted.
// One thread at a time, as for the endpoint itself.
template <class Endpoint>
class endpoint {
 public:
  endpoint(net::any_io_executor executor, Endpoint e)
      : endpoint_(std::move(e)), descriptor_(executor, endpoint_.native_handle()) {}
  ~endpoint() {
    life_->alive = false;
    error_code ignored;
    descriptor_.cancel(ignored);
    (void)descriptor_.release();  // the shmq endpoint owns the descriptor and closes it
  }
  endpoint(const endpoint&) = delete;
  endpoint& operator=(const endpoint&) = delete;

  Endpoint& get() noexcept { return endpoint_; }
  Endpoint* operator->() noexcept { return &endpoint_; }
  net::any_io_executor get_executor() noexcept { return descriptor_.get_executor(); }

  void cancel() {
    ++life_->cancels;
    error_code ignored;
    descriptor_.cancel(ignored);
  }
  // cancel(); then a producer also closes its stream (consumers read what is left).
  void close() {
    cancel();
    if constexpr (requires { endpoint_.close(); }) endpoint_.close();
  }

 private:
  template <class>
  friend struct detail::wait_loop;
  static constexpr unsigned inline_burst = 64;
  Endpoint endpoint_;
  net::posix::stream_descriptor descriptor_;
  unsigned inline_left_ = inline_burst;
  std::shared_ptr<detail::endpoint_life> life_ = std::make_shared<detail::endpoint_life>();
};

namespace detail {

// The loop of shmq/readiness.hpp as a composed operation: `attempt(endpoint&, result&)`
// gives true once the operation is done (result set, error in ec), false for "nothing
// yet"; `arm(endpoint&)` is the endpoint's arm.
struct no_result {};  // operations that complete with an error code alone

template <class Token>
struct is_use_awaitable : std::false_type {};
#if defined(BOOST_ASIO_HAS_CO_AWAIT)
template <class Executor>
struct is_use_awaitable<net::use_awaitable_t<Executor>> : std::true_type {
  using executor_type = Executor;
};
#endif

template <class E>
struct wait_loop {
  template <class Result, class Attempt, class Arm>
  struct op {
    endpoint<E>* ep;
    std::shared_ptr<endpoint_life> life;
    std::uint64_t cancels;
    Attempt attempt;
    Arm arm;
    error_code ec{};
    Result result{};
    enum { starting, waiting, delivering } state = starting;

    template <class Self>
    static void finish(Self& self, error_code e, Result&& r) {
      if constexpr (std::is_same_v<Result, no_result>)
        self.complete(e);
      else
        self.complete(e, std::move(r));
    }

    template <class Self>
    void operator()(Self& self, error_code wait_error = {}) {
      if (state == delivering) return finish(self, ec, std::move(result));
      if (state == waiting && (wait_error || !life->alive || life->cancels != cancels))
        return finish(self, net::error::operation_aborted, Result{});
      for (;;) {
        if (attempt(ep->endpoint_, result, ec)) break;
        if (arm(ep->endpoint_) == arm_result::ready) continue;
        state = waiting;
        ep->inline_left_ = endpoint<E>::inline_burst;
        ep->descriptor_.async_wait(net::posix::stream_descriptor::wait_read, std::move(self));
        return;
      }
      if (state == waiting) return finish(self, ec, std::move(result));
      // Found at once. Up to inline_burst such completions in a row run inline (a stream
      // costs no trip through the reactor per message); then one goes through a post,
      // so other work gets its turn and a chain of callbacks cannot grow the stack.
      if (ep->inline_left_ > 0) {
        --ep->inline_left_;
        return finish(self, ec, std::move(result));
      }
      ep->inline_left_ = endpoint<E>::inline_burst;
      state = delivering;
      net::post(ep->get_executor(), std::move(self));
    }
  };

  template <class Result, class Signature, class Token, class Attempt, class Arm>
  static auto compose(endpoint<E>& ep, Token&& token, Attempt attempt, Arm arm) {
    return net::async_compose<Token, Signature>(
        op<Result, Attempt, Arm>{&ep, ep.life_, ep.life_->cancels, std::move(attempt), std::move(arm)}, token,
        ep.descriptor_);
  }

#if defined(BOOST_ASIO_HAS_CO_AWAIT)
  // use_awaitable: a first attempt in a plain coroutine, which completes without the
  // composed operation when it finds its message or room (within the inline budget).
  template <class Result, class Signature, class Executor, class Attempt, class Arm>
  static net::awaitable<Result, Executor> first_attempt(endpoint<E>& ep, Attempt attempt, Arm arm) {
    if (ep.inline_left_ > 0) {
      Result result{};
      error_code ec;
      if (attempt(ep.endpoint_, result, ec)) {
        --ep.inline_left_;
        if (ec) throw boost::system::system_error(ec);
        co_return result;
      }
    }
    co_return co_await compose<Result, Signature>(ep, net::use_awaitable_t<Executor>{}, std::move(attempt),
                                                  std::move(arm));
  }
#endif

  template <class Result, class Signature, class Token, class Attempt, class Arm>
  static auto start(endpoint<E>& ep, Token&& token, Attempt attempt, Arm arm) {
#if defined(BOOST_ASIO_HAS_CO_AWAIT)
    if constexpr (is_use_awaitable<std::decay_t<Token>>::value && !std::is_same_v<Result, no_result>) {
      using executor_type = typename is_use_awaitable<std::decay_t<Token>>::executor_type;
      return first_attempt<Result, Signature, executor_type>(ep, std::move(attempt), std::move(arm));
    } else
#endif
      return compose<Result, Signature>(ep, std::forward<Token>(token), std::move(attempt), std::move(arm));
  }
};

inline auto consumer_arm() {
  return [](auto& c) { return c.arm(); };
}

}  // namespace detail

// void(error_code, shmq::view): a message, or the status that ended the wait.
template <class C, class Token>
auto async_read(endpoint<C>& ep, Token&& token) {
  return detail::wait_loop<C>::template start<shmq::view, void(error_code, shmq::view)>(
      ep, std::forward<Token>(token),
      [](C& c, shmq::view& out, error_code& ec) {
        shmq::view v = c.try_read();
        if (v.status() == shmq::status::empty) return false;
        ec = make_error_code(v.status());
        if (v) out = std::move(v);
        return true;
      },
      detail::consumer_arm());
}

// void(error_code, shmq::pop_result): a copy into `buffer` (which must outlive the
// operation); too_large leaves the message in place, as pop() does.
template <class C, class Token>
auto async_pop(endpoint<C>& ep, std::span<std::byte> buffer, Token&& token) {
  return detail::wait_loop<C>::template start<shmq::pop_result, void(error_code, shmq::pop_result)>(
      ep, std::forward<Token>(token),
      [buffer](C& c, shmq::pop_result& out, error_code& ec) {
        shmq::pop_result r = c.try_pop(buffer);
        if (r.status == shmq::status::empty) return false;
        ec = make_error_code(r.status);
        out = r;
        return true;
      },
      detail::consumer_arm());
}

// void(error_code, shmq::loan): room for `size` bytes, waiting on back-pressure.
template <class P, class Token>
auto async_loan(endpoint<P>& ep, std::size_t size, Token&& token) {
  return detail::wait_loop<P>::template start<shmq::loan, void(error_code, shmq::loan)>(
      ep, std::forward<Token>(token),
      [size](P& p, shmq::loan& out, error_code& ec) {
        shmq::loan l = p.try_loan(size);
        if (l.status() == shmq::status::full) return false;
        ec = make_error_code(l.status());
        if (l) out = std::move(l);
        return true;
      },
      [size](P& p) { return p.arm(size); });
}

// void(error_code): `message` (which must outlive the operation) copied and committed.
template <class P, class Token>
auto async_push(endpoint<P>& ep, std::span<const std::byte> message, Token&& token) {
  return detail::wait_loop<P>::template start<detail::no_result, void(error_code)>(
      ep, std::forward<Token>(token),
      [message](P& p, detail::no_result&, error_code& ec) {
        const shmq::status s = p.try_push(message);
        if (s == shmq::status::full) return false;
        ec = make_error_code(s);
        return true;
      },
      [size = message.size()](P& p) { return p.arm(size); });
}


// void(error_code): completes once the endpoint's try_ operation may succeed (a message
// or the end of the stream there; for a producer, room for `size` bytes), without taking
// anything: the reactor style of a socket's async_wait(wait_read). A coroutine that
// drains a stream with try_read() after each wait pays no await per message (see
// shmq_spsc_throughput_asio_drain in bench/); the try may still find nothing (another
// consumer was first, a liveness tick), so it loops.
template <class C, class Token>
auto async_wait(endpoint<C>& ep, Token&& token) {
  return detail::wait_loop<C>::template compose<detail::no_result, void(error_code)>(
      ep, std::forward<Token>(token),
      [tries = 0](C&, detail::no_result&, error_code&) mutable { return tries++ > 0; },
      detail::consumer_arm());
}
template <class P, class Token>
auto async_wait(endpoint<P>& ep, std::size_t size, Token&& token) {
  return detail::wait_loop<P>::template compose<detail::no_result, void(error_code)>(
      ep, std::forward<Token>(token),
      [tries = 0](P&, detail::no_result&, error_code&) mutable { return tries++ > 0; },
      [size](P& p) { return p.arm(size); });
}

// A callback subscription (returned by subscribe): move-only; unsubscribes when
// destroyed or on unsubscribe(), after which on_end gets operation_aborted.
class subscription {
 public:
  subscription() = default;
  template <class Stop>
  explicit subscription(Stop stop) : stop_(std::make_shared<std::function<void()>>(std::move(stop))) {}
  subscription(subscription&&) noexcept = default;
  subscription& operator=(subscription&& o) noexcept {
    if (this != &o) {
      unsubscribe();
      stop_ = std::move(o.stop_);
    }
    return *this;
  }
  ~subscription() { unsubscribe(); }
  void unsubscribe() {
    if (stop_) std::exchange(stop_, nullptr)->operator()();
  }

 private:
  std::shared_ptr<std::function<void()>> stop_;
};

namespace detail {
// The state of one subscription, kept alive by the pending read's handler.
template <class C, class OnMessage, class OnEnd>
struct subscriber_loop : std::enable_shared_from_this<subscriber_loop<C, OnMessage, OnEnd>> {
  endpoint<C>& ep;
  OnMessage on_message;
  OnEnd on_end;
  net::steady_timer held;  // while on_message keeps a view: when to look again
  std::chrono::milliseconds backoff{1};
  bool stopped = false;

  subscriber_loop(endpoint<C>& e, OnMessage m, OnEnd end)
      : ep(e), on_message(std::move(m)), on_end(std::move(end)), held(e.get_executor()) {}

  void next() {
    async_read(ep, [self = this->shared_from_this()](error_code ec, shmq::view v) { self->handle(ec, std::move(v)); });
  }
  void handle(error_code ec, shmq::view v) {
    if (stopped) return;
    if (ec == make_error_code(shmq::status::busy)) {
      // on_message kept the last view: one view at a time per endpoint, so wait for
      // its release, looking again after 1, 2, 4 ... up to 100 ms.
      held.expires_after(backoff);
      backoff = std::min(backoff * 2, std::chrono::milliseconds(100));
      held.async_wait([self = this->shared_from_this()](error_code e) {
        if (!e && !self->stopped) self->next();
      });
      return;
    }
    if (ec) {
      stopped = true;
      on_end(ec);
      return;
    }
    backoff = std::chrono::milliseconds(1);
    on_message(std::move(v));  // released when on_message returns, unless it keeps it
    next();
  }
  void stop() {
    if (stopped) return;
    stopped = true;
    held.cancel();
    ep.cancel();
    net::post(ep.get_executor(), [self = this->shared_from_this()] { self->on_end(net::error::operation_aborted); });
  }
};
}  // namespace detail

// Runs on_message(shmq::view) for every message of `consumer`, on its executor, until
// the stream ends (on_end(error_code) with closed, producer_gone, corrupt) or the
// returned subscription goes (on_end(operation_aborted)). `consumer` must outlive the
// subscription, and nothing else may read from it meanwhile.
template <class C, class OnMessage, class OnEnd>
subscription subscribe(endpoint<C>& consumer, OnMessage on_message, OnEnd on_end) {
  auto loop = std::make_shared<detail::subscriber_loop<C, OnMessage, OnEnd>>(consumer, std::move(on_message),
                                                                           std::move(on_end));
  loop->next();
  return subscription([weak = std::weak_ptr(loop)] {
    if (auto l = weak.lock()) l->stop();
  });
}

}  // namespace shmq::asio

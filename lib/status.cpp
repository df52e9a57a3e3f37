#include "shmq/status.hpp"

#include "shmq/readiness.hpp"

namespace shmq {

const char* to_string(status s) noexcept {
  switch (s) {
    case status::ok: return "ok";
    case status::empty: return "empty";
    case status::full: return "full";
    case status::timed_out: return "timed_out";
    case status::closed: return "closed";
    case status::producer_gone: return "producer_gone";
    case status::too_large: return "too_large";
    case status::busy: return "busy";
    case status::corrupt: return "corrupt";
    case status::io_error: return "io_error";
  }
  return "unknown";
}

const char* to_string(arm_result r) noexcept {
  return r == arm_result::armed ? "armed" : r == arm_result::ready ? "ready" : "unknown";
}

namespace {
class category final : public std::error_category {
 public:
  const char* name() const noexcept override { return "shmq"; }
  std::string message(int e) const override {
    switch (static_cast<errc>(e)) {
      case errc::not_found: return "segment not found";
      case errc::already_exists: return "segment already exists";
      case errc::permission_denied: return "permission denied";
      case errc::invalid_name: return "invalid segment name";
      case errc::invalid_argument: return "invalid argument";
      case errc::not_shmq: return "not a shmq segment";
      case errc::version_mismatch: return "segment layout version mismatch";
      case errc::abi_mismatch: return "segment ABI fingerprint mismatch";
      case errc::kind_mismatch: return "segment holds another kind of channel";
      case errc::options_mismatch: return "channel exists with other options";
      case errc::truncated: return "segment truncated";
      case errc::corrupt: return "segment corrupt";
      case errc::not_ready: return "segment not ready";
      case errc::role_taken: return "role already taken";
      case errc::limit_reached: return "participant limit reached";
      case errc::system_error: return "system error";
      case errc::abandoned: return "segment abandoned half-built";
      case errc::io_failed: return "a flush to stable storage failed";
    }
    return "unknown shmq error";
  }
};
}  // namespace

const std::error_category& error_category() noexcept {
  static const category c;
  return c;
}

std::error_code make_error_code(errc e) noexcept { return {static_cast<int>(e), error_category()}; }

}  // namespace shmq

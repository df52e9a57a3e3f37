#include "channel.hpp"

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <thread>

#include "shmq/channel_stats.hpp"
#include "shmq/segment.hpp"
#include "shmq/status.hpp"

namespace shmq_cli {

namespace {

// The kind's own options for a channel that may not exist yet: open_or_create with the
// shape given, or open (take it as it is) when it exists.
template <class Options>
Options options_for(const channel_shape& shape, bool exists) {
  Options o;
  o.when_producer_gone = shmq::when_producer_gone::report;  // a dead pub must not hang sub
  if (exists) {
    o.open = shmq::open_mode::open;
    return o;
  }
  if constexpr (std::is_same_v<Options, shmq::channel_options>) {
    o.capacity = shape.capacity;
    // A small ring lowers the default to the most it can hold (capacity / 2 - 8).
    if (shape.capacity / 2 > 8) o.max_message_size = std::min(o.max_message_size, shape.capacity / 2 - 8);
  } else {
    o.slots = shape.slots;
    if constexpr (std::is_same_v<Options, shmq::pubsub_options>)
      o.policy = shape.policy == "overwrite" ? shmq::overflow_policy::overwrite : shmq::overflow_policy::block;
  }
  if (shape.max_message_size != 0) o.max_message_size = shape.max_message_size;
  return o;
}

// A file channel: the file and, for one this creates, the level (an existing file keeps
// its own, whatever the options say).
template <class Options>
Options with_file(Options o, const channel_shape& shape) {
  if (shape.file.empty()) return o;
  o.file.path = shape.file;
  o.file.durability = shape.durability == "per-commit"     ? shmq::durability::per_commit
                      : shape.durability == "group-commit" ? shmq::durability::group_commit
                                                           : shmq::durability::none;
  return o;
}

bool exists(const std::string& name, const channel_shape& shape) {
  if (!shape.file.empty()) return std::filesystem::exists(shape.file);
  return shmq::segment_exists(name);
}

template <class Options>
Options options_of(const channel_shape& shape, const std::string& name) {
  return with_file(options_for<Options>(shape, exists(name, shape)), shape);
}

}  // namespace

CLI::Option* add_channel_options(CLI::App& command, std::string& name, channel_shape& shape) {
  command.add_option("NAME", name, "channel name")->required();
  CLI::Option* kind = command.add_option("--kind", shape.kind, "channel kind, when this creates the channel (an existing one is opened as it is)")
      ->check(CLI::IsMember({"spsc", "queue", "pubsub"}))
      ->default_str("spsc");
  command.add_option("--capacity", shape.capacity, "spsc ring bytes (power of two, 4 KiB to 1 GiB)")->default_str("1048576");
  command.add_option("--slots", shape.slots, "queue/pubsub slots (power of two)")->default_str("1024");
  command.add_option("--max-message-size", shape.max_message_size,
                     "largest message (default: 65536 for spsc, or capacity / 2 - 8 if less; 1024 for queue and pubsub)");
  command.add_option("--policy", shape.policy, "pubsub: what a full ring does to publishers")
      ->check(CLI::IsMember({"block", "overwrite"}))
      ->default_str("block");
  command.add_option("--file", shape.file,
                     "keep the channel in this file on a real filesystem instead of /dev/shm; "
                     "NAME then only labels it");
  command.add_option("--durability", shape.durability,
                     "a new file channel's level: none (page cache), group-commit, per-commit (docs/durability.md)")
      ->check(CLI::IsMember({"none", "group-commit", "per-commit"}))
      ->default_str("none");
  return kind;
}

std::string channel_kind_of(const std::string& name, const channel_shape& shape, bool kind_given) {
  if (!shape.file.empty()) return shape.kind;  // opening it checks the file's kind
  // A creator may still be setting the segment up: wait as long as an endpoint would
  // (endpoint_options::open_timeout), polling, since the tool has nothing to wait on.
  const auto deadline = std::chrono::steady_clock::now() + shmq::endpoint_options{}.open_timeout;
  std::string kind;
  for (;;) {
    try {
      kind = shmq::read_channel_stats(name).kind;
      break;
    } catch (const shmq::error& e) {
      if (e.code() == shmq::errc::not_found) return shape.kind;
      if (e.code() != shmq::errc::not_ready || std::chrono::steady_clock::now() > deadline) throw;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  if (kind == "mpmc") kind = "queue";
  if (kind_given && kind != shape.kind)
    throw shmq::error(shmq::errc::kind_mismatch,
                      "channel '" + name + "' exists as a " + kind + " channel, not " + shape.kind);
  return kind;
}

any_producer open_producer(const std::string& name, const channel_shape& shape, bool kind_given) {
  const std::string kind = channel_kind_of(name, shape, kind_given);
  if (kind == "queue") return shmq::mpmc_producer(name, options_of<shmq::mpmc_options>(shape, name));
  if (kind == "pubsub") return shmq::publisher(name, options_of<shmq::pubsub_options>(shape, name));
  return shmq::spsc_producer(name, options_of<shmq::channel_options>(shape, name));
}

any_consumer open_consumer(const std::string& name, const channel_shape& shape, bool kind_given,
                           const shmq::subscription& how) {
  const std::string kind = channel_kind_of(name, shape, kind_given);
  if (kind != "pubsub" && (!how.group.empty() || how.start != shmq::start_from::newest || how.history != 0))
    throw shmq::error(shmq::errc::invalid_argument,
                      "--group, --from and --history are for pubsub channels; '" + name + "' is " + kind);
  if (kind == "queue") return shmq::mpmc_consumer(name, options_of<shmq::mpmc_options>(shape, name));
  if (kind == "pubsub") return shmq::subscriber(name, options_of<shmq::pubsub_options>(shape, name), how);
  return shmq::spsc_consumer(name, options_of<shmq::channel_options>(shape, name));
}

std::size_t max_message_size(const any_producer& p) {
  return std::visit([](const auto& e) { return e.max_message_size(); }, p);
}

}  // namespace shmq_cli

// The channel a pub or sub command works on, whatever its kind: created with the shape
// the command line gives, or opened as the segment says it is.
#pragma once

#include <cstddef>
#include <string>
#include <variant>

#include <CLI/CLI.hpp>

#include "shmq/mpmc.hpp"
#include "shmq/pubsub.hpp"
#include "shmq/spsc.hpp"

namespace shmq_cli {

// What `--kind` and the shape options say; used only when the channel does not exist yet.
struct channel_shape {
  std::string kind = "spsc";        // spsc, queue, pubsub
  std::size_t capacity = 1u << 20;  // spsc ring bytes
  std::size_t slots = 1024;         // queue, pubsub
  std::size_t max_message_size = 0;  // 0: the kind's default
  std::string policy = "block";     // pubsub
  std::string file;                 // non-empty: a file-backed channel (docs/durability.md)
  std::string durability = "none";  // a file channel's level, when this creates it
};

// Adds the NAME argument and --kind, --capacity, --slots, --max-message-size, --policy,
// --file and --durability to a subcommand; returns --kind (whether it was given matters).
CLI::Option* add_channel_options(CLI::App& command, std::string& name, channel_shape& shape);

using any_producer = std::variant<shmq::spsc_producer, shmq::mpmc_producer, shmq::publisher>;
using any_consumer = std::variant<shmq::spsc_consumer, shmq::mpmc_consumer, shmq::subscriber>;

// The kind of the segment `name` holds ("spsc", "queue", "pubsub"), or shape.kind if there
// is none (or the channel is a file: its kind is checked when it is opened). Throws shmq::error if the segment cannot be read, or if --kind was given and
// differs (`kind_given`).
std::string channel_kind_of(const std::string& name, const channel_shape& shape, bool kind_given);

// Throws shmq::error. An existing channel is opened as it is; a new one is created.
any_producer open_producer(const std::string& name, const channel_shape& shape, bool kind_given);
any_consumer open_consumer(const std::string& name, const channel_shape& shape, bool kind_given,
                           const shmq::subscription& how);

std::size_t max_message_size(const any_producer& p);

}  // namespace shmq_cli

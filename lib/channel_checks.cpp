#include "channel_checks.hpp"

#include "layout.hpp"

namespace shmq::detail {

void fail_channel(errc e, std::string_view name, const std::string& what) {
  throw error(e, "shmq channel '" + std::string(name) + "': " + what);
}

void check_slot_options(std::string_view name, std::uint64_t slots, std::uint64_t max_message,
                        std::uint64_t limit_a, std::uint64_t limit_b) {
  if (slots < 2 || slots > max_slots || (slots & (slots - 1)) != 0)
    fail_channel(errc::invalid_argument, name,
                 "slots " + std::to_string(slots) + " is not a power of two from 2 to 2^24");
  if (max_message > max_slot_bytes || slot_size_for(max_message) * slots > max_slot_bytes)
    fail_channel(errc::invalid_argument, name,
                 "slots * (max_message_size + 16) is over 1 GiB");
  if (limit_a < 1 || limit_a > max_endpoints || limit_b < 1 || limit_b > max_endpoints)
    fail_channel(errc::invalid_argument, name, "endpoint limits must be from 1 to 1024");
}

bool slot_fields_valid(std::uint64_t slots, std::uint64_t slot_size, std::uint64_t max_message,
                       std::uint64_t data_size, bool file, bool whole_pages) noexcept {
  const std::uint64_t wanted = file ? file_slot_size_for(max_message, whole_pages) : slot_size_for(max_message);
  return slots >= 2 && slots <= max_slots && (slots & (slots - 1)) == 0 &&
         max_message <= max_slot_bytes && slot_size == wanted && slot_size <= max_slot_bytes / slots &&
         slot_size * slots == data_size;
}

void check_file_options(std::string_view name, const file_options& file) {
  if (file.durability > durability::per_commit || file.group_messages < 1 || file.group_messages > (1u << 20) ||
      file.group_interval.count() < 0 || file.group_interval > std::chrono::seconds(10))
    fail_channel(errc::invalid_argument, name, "durability settings out of range (shmq/durability.hpp)");
}

void check_same(std::string_view name, const char* field, std::uint64_t in_segment,
                std::uint64_t requested) {
  if (in_segment != requested)
    fail_channel(errc::options_mismatch, name,
                 std::string("exists with ") + field + " " + std::to_string(in_segment) + ", not " +
                     std::to_string(requested) + " (open it with open_mode::open, or remove it)");
}

}  // namespace shmq::detail

// Attach-time checks shared by the channel kinds: option validation before creating,
// and control-block validation after opening (never trust the segment).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "shmq/durability.hpp"
#include "shmq/status.hpp"

namespace shmq::detail {

[[noreturn]] void fail_channel(errc e, std::string_view name, const std::string& what);

// Creation options of a slotted ring (MPMC, pub/sub): throws errc::invalid_argument.
void check_slot_options(std::string_view name, std::uint64_t slots, std::uint64_t max_message,
                        std::uint64_t endpoint_limit_a, std::uint64_t endpoint_limit_b);

// The same values as read from a segment: true if they describe a possible ring whose
// data area is `data_size` bytes.
// `file`: a file channel's slots (file_slot_size_for), in whole pages if `whole_pages`.
bool slot_fields_valid(std::uint64_t slots, std::uint64_t slot_size, std::uint64_t max_message,
                       std::uint64_t data_size, bool file = false, bool whole_pages = false) noexcept;

// A file channel's durability settings (shmq/durability.hpp): throws errc::invalid_argument.
void check_file_options(std::string_view name, const file_options& file);

// Throws errc::options_mismatch naming the first differing field.
void check_same(std::string_view name, const char* field, std::uint64_t in_segment,
                std::uint64_t requested);

}  // namespace shmq::detail

// Who is attached: each endpoint holds one slot, a word with its pid (0 = free), in a
// fixed table in the control block. A slot whose pid no longer exists is taken over.
// (Pid reuse can make a dead holder look alive; see the README's limits.)
#pragma once

#include <atomic>
#include <cstdint>
#include <span>

namespace shmq::detail {

// Index of the claimed slot, or -1 if every slot belongs to a live process.
int claim_slot(std::span<std::atomic<std::uint32_t>> slots) noexcept;
void release_slot(std::atomic<std::uint32_t>& slot) noexcept;
bool process_alive(std::uint32_t pid) noexcept;

}  // namespace shmq::detail

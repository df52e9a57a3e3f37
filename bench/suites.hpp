// What each file of benchmarks provides: families that main() registers side by side
// with what they are compared with (register_side_by_side: the floor, SPSC, pub/sub
// and MPMC at one message size, then the next size), and whole suites it registers
// after them. Registration order is run order. On a shared or virtual machine
// conditions drift over a run (a vCPU moved by the host changes cache-to-cache latency
// several-fold, even mid-run), and a ratio is only meaningful between numbers taken
// under the same conditions, so compared numbers are taken seconds apart.
#pragma once

#include "fan.hpp"

namespace shmq_bench {

// floors.cpp
sized_family spin_latency_floor();       // floor_spin_latency
sized_family memcpy_throughput_floor();  // floor_memcpy_throughput
sized_family futex_latency_floor();      // floor_futex_latency
void register_kernel_floors();  // floor_futex_latency, shmq_spsc_latency_fd and _asio, every size

// shmq_asio.cpp
sized_family shmq_spsc_latency_asio();  // beside the futex floor
sized_family shmq_spsc_stream_asio();        // shmq_spsc_throughput_asio, beside shmq_spsc_throughput
sized_family shmq_spsc_stream_asio_drain();  // shmq_spsc_throughput_asio_drain, the same

// shmq_spsc.cpp
sized_family shmq_spsc_latency_busy();
sized_family shmq_spsc_latency_block();
sized_family shmq_spsc_latency_fd();  // through the readiness descriptor, beside the futex floor
sized_family shmq_spsc_stream();  // shmq_spsc_throughput
void register_shmq_spsc_idle_cpu();

// shmq_pubsub.cpp, shmq_mpmc.cpp
sized_family shmq_pubsub_latency();                        // shmq_pubsub_latency/1
sized_family shmq_pubsub_stream(const fan_shape& shape);   // shmq_pubsub_throughput/<S>
sized_family shmq_mpmc_stream(const fan_shape& shape);     // shmq_mpmc_throughput/<P>x<C>

// durable.cpp: file-backed channels and their fdatasync floor
void register_durable_suite();

// baselines_fd.cpp, baselines_mq.cpp
void register_fd_baselines();
void register_queue_baselines();  // POSIX and Boost message queues, but for these two:
sized_family boost_mq_stream();   // baseline_boost_mq_throughput
sized_family boost_mq_work_queue(const fan_shape& shape);  // baseline_boost_mq_throughput/<P>x<C>

}  // namespace shmq_bench

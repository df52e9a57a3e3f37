#include "fan.hpp"

#include <string>
#include <vector>

namespace shmq_bench {

namespace {

// Messages per run, whatever the shape: a shape with more processes moves the same
// stream, so its rates compare directly. A few hundred milliseconds each, as the
// two-process streams (measure.cpp), but fewer messages than those get: there are 15
// runs per family, and with more processes than CPUs a run lasts as long as the
// scheduler makes it (four subscribers folding 64 KiB each share one CPU).
std::int64_t fan_iterations(std::int64_t bytes, pace p) {
  if (p == pace::cache) {
    if (bytes <= 64) return 4'000'000;
    if (bytes <= 1024) return 1'000'000;
    if (bytes <= 4096) return 500'000;
    return 50'000;
  }
  if (bytes <= 64) return 1'000'000;
  if (bytes <= 1024) return 400'000;
  if (bytes <= 4096) return 200'000;
  return 40'000;
}

std::string placement_label(const fan_shape& shape) {
  const cpu_placement& cpus = placement();
  const std::string processes = std::to_string(shape.producers + shape.consumers) + " processes";
  if (cpus.parent == cpus.child)
    return "single CPU " + std::to_string(cpus.parent) + ": all " + processes + " share it";
  if (shape.producers == 1 && shape.consumers == 1) return {};
  return "oversubscribed: " + processes + " on 2 CPUs (" + std::to_string(shape.producers) +
         " on CPU " + std::to_string(cpus.parent) + ", " + std::to_string(shape.consumers) +
         " on CPU " + std::to_string(cpus.child) + ")";
}

// The reports against the stream of `messages` messages; an error message, or null.
const char* check_reports(const std::vector<stream_report>& reports, std::uint64_t messages,
                          const payload& message, delivery kind) {
  const std::uint64_t fold = message.expected_fold(messages);
  if (kind == delivery::to_each) {
    for (const stream_report& r : reports)
      if (r.messages != messages || r.fold != fold)
        return "a subscriber's count or checksum does not match what was published";
    return nullptr;
  }
  stream_report total{};
  for (const stream_report& r : reports) {
    total.messages += r.messages;
    total.fold += r.fold;
  }
  if (total.messages != messages || total.fold != fold)
    return "the consumers' total count or checksum does not match what was sent";
  return nullptr;
}

}  // namespace

sized_family fan_family(const char* name, fan_fn fn, const fan_shape& shape, pace p) {
  return [=](std::int64_t bytes) {
    register_guarded(std::string(name) + "/" + shape.name,
                     [fn, shape](benchmark::State& state) { fn(state, shape); },
                     fan_iterations(bytes, p))
        ->Arg(bytes);
  };
}

void time_fan(benchmark::State& state, const fan_shape& shape, const fan_transfer& transfer) {
  const cpu_placement& cpus = placement();
  peer_group consumers(state);
  peer_group producers(state);
  for (int i = 0; i < shape.consumers; ++i) consumers.add(transfer.consumer, cpus.child);
  for (int i = 0; i < shape.producers; ++i) producers.add(transfer.producer, cpus.parent);
  // After the peers: the first one labels a single-CPU run on its own.
  if (const std::string label = placement_label(shape); !label.empty()) state.SetLabel(label);
  if (!consumers.wait_ready() || !producers.wait_ready()) return;
  transfer.setup_done();

  const auto bytes = static_cast<std::size_t>(state.range(0));
  const payload message(bytes);
  const auto messages = static_cast<std::uint64_t>(state.max_iterations);
  const auto parts = static_cast<std::uint64_t>(shape.producers);
  std::vector<stream_report> reports(consumers.size());
  bench_clock::duration elapsed{};
  // One batch of all the iterations: the whole transfer is the timed unit.
  while (state.KeepRunningBatch(state.max_iterations)) {
    const auto start = bench_clock::now();
    for (std::uint64_t k = 0; k < parts; ++k) {
      const std::uint64_t first = messages * k / parts;
      if (!producers[k].link().send(fan_share{first, messages * (k + 1) / parts - first})) {
        state.SkipWithError("a producer process did not take its share");
        break;
      }
    }
    std::uint64_t sent = 0;
    for (std::uint64_t k = 0; k < parts && !state.error_occurred(); ++k) {
      std::uint64_t count = 0;
      if (!producers[k].link().receive(count)) state.SkipWithError("a producer process failed");
      sent += count;
    }
    if (state.error_occurred()) break;
    transfer.end_stream();
    for (std::size_t k = 0; k < consumers.size(); ++k)
      if (!consumers[k].link().receive(reports[k])) {
        state.SkipWithError("a consumer process did not report");
        break;
      }
    elapsed = bench_clock::now() - start;
    if (!state.error_occurred() && sent != messages)
      state.SkipWithError("the producers sent a different number of messages than asked");
  }
  if (!state.error_occurred()) {
    if (const char* wrong = check_reports(reports, messages, message, transfer.kind)) {
      state.SkipWithError(wrong);
    } else if (transfer.kind == delivery::to_each) {
      report_rate(state, messages * consumers.size(), bytes, elapsed);
      state.counters["publish_per_s"] = benchmark::Counter(
          static_cast<double>(messages) / std::chrono::duration<double>(elapsed).count());
    } else {
      report_rate(state, messages, bytes, elapsed);
    }
  }
  producers.finish();
  consumers.finish();
}

}  // namespace shmq_bench

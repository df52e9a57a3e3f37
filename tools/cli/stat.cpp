// shmq stat NAME and shmq top: one channel, or every segment, once or refreshed with
// rates per second (as AeronStat shows counters). Reads go through the library's
// validation (shmq::read_channel_stats), so a hostile segment is an error line, never a
// crash.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <exception>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "commands.hpp"
#include "duration.hpp"
#include "json.hpp"
#include "shmq/channel_stats.hpp"
#include "shmq/status.hpp"
#include "stats_format.hpp"

namespace shmq_cli {

namespace {

using clock = std::chrono::steady_clock;

struct watch_settings {
  bool watch = false;
  bool json = false;
  std::string interval = "1s";
  std::uint64_t iterations = 0;  // 0: until interrupted
};

void add_watch_options(CLI::App& cmd, watch_settings& w, bool watch_flag) {
  if (watch_flag) cmd.add_flag("--watch", w.watch, "refresh every --interval, with rates per second");
  cmd.add_option("--interval", w.interval, "time between refreshes")->check(duration_check())->default_str("1s");
  cmd.add_option("--iterations", w.iterations, "stop after N refreshes (default: until interrupted)");
  cmd.add_flag("--json", w.json, "one JSON object per refresh, for scripts");
}

// A refresh on a terminal redraws the screen; into a pipe it appends.
void begin_frame(bool watching) {
  if (watching && ::isatty(STDOUT_FILENO)) std::fputs("\033[H\033[2J", stdout);
}

void print(const std::string& text) {
  std::fputs(text.c_str(), stdout);
  std::fflush(stdout);
}

// Calls frame(rates_known_since) every interval, `iterations` times (0: forever).
template <class Frame>
void refresh(const watch_settings& w, Frame&& frame) {
  const auto interval = *parse_duration(w.interval);
  for (std::uint64_t i = 0; w.iterations == 0 || i < w.iterations; ++i) {
    if (i > 0) std::this_thread::sleep_for(interval);  // a display refresh, not a handshake
    frame();
  }
}

struct previous {
  shmq::channel_stats stats;
  clock::time_point at;
};

// The rates since the last snapshot of the same channel, and remembers this one.
std::optional<stats_rates> next_rates(std::optional<previous>& last, const shmq::channel_stats& now) {
  const auto at = clock::now();
  std::optional<stats_rates> r;
  if (last && last->stats.kind == now.kind)
    r = rates_between(last->stats, now, std::chrono::duration<double>(at - last->at).count());
  last = previous{now, at};
  return r;
}

int stat(const std::string& name, const watch_settings& w) {
  std::optional<previous> last;
  try {
    watch_settings once = w;
    if (!w.watch) once.iterations = 1;
    refresh(once, [&] {
      const shmq::channel_stats s = shmq::read_channel_stats(name);
      const std::optional<stats_rates> r = next_rates(last, s);
      begin_frame(w.watch);
      print(w.json ? stats_json(s, r ? &*r : nullptr) + "\n" : stats_text(s, r ? &*r : nullptr) + (w.watch ? "\n" : ""));
    });
    return 0;
  } catch (const std::exception& e) {
    return fail("stat", e.what());
  }
}

int top(const watch_settings& w) {
  std::map<std::string, previous> last;
  try {
    refresh(w, [&] {
      std::string text = top_header(), channels, problems;
      for (const shmq::segment_info& seg : shmq::list_segments()) {
        try {
          const shmq::channel_stats s = shmq::read_channel_stats(seg.name);
          std::optional<previous> before;
          if (auto it = last.find(s.name); it != last.end()) before = it->second;
          const std::optional<stats_rates> r = next_rates(before, s);
          last.insert_or_assign(s.name, *before);
          text += top_line(s, r ? &*r : nullptr);
          channels += (channels.empty() ? "" : ",") + stats_json(s, r ? &*r : nullptr);
        } catch (const shmq::error& e) {
          if (e.code() == shmq::errc::not_found) continue;  // removed while we looked
          text += top_problem_line(seg.name, e.what());
          problems += (problems.empty() ? "" : ",") + json_object().text("name", seg.name).text("problem", e.what()).str();
        }
      }
      begin_frame(true);
      print(w.json ? "{\"channels\":[" + channels + "],\"unreadable\":[" + problems + "]}\n" : text + "\n");
    });
    return 0;
  } catch (const std::exception& e) {
    return fail("top", e.what());
  }
}

}  // namespace

void add_stat_command(CLI::App& app, runner& run) {
  auto name = std::make_shared<std::string>();
  auto w = std::make_shared<watch_settings>();
  CLI::App* cmd = app.add_subcommand("stat", "a channel's kind, capacity, fill, positions, participants, groups and counters");
  cmd->add_option("NAME", *name, "channel name")->required();
  add_watch_options(*cmd, *w, true);
  cmd->callback([name, w, &run] { run = [name, w] { return stat(*name, *w); }; });
}

void add_top_command(CLI::App& app, runner& run) {
  auto w = std::make_shared<watch_settings>();
  CLI::App* cmd = app.add_subcommand("top", "every segment, refreshed with rates per second");
  add_watch_options(*cmd, *w, false);
  cmd->callback([w, &run] { run = [w] { return top(*w); }; });
}

}  // namespace shmq_cli

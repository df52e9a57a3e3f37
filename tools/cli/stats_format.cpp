#include "stats_format.hpp"

#include <algorithm>
#include <cstdio>

#include "json.hpp"

namespace shmq_cli {

namespace {

double per_second(std::uint64_t before, std::uint64_t now, double seconds) {
  return now >= before && seconds > 0 ? static_cast<double>(now - before) / seconds : 0;
}

std::string scaled(double v, const char* unit) {
  static constexpr struct {
    double scale;
    const char* prefix;
  } prefixes[] = {{1e9, "G"}, {1e6, "M"}, {1e3, "k"}};
  char text[48];
  for (const auto& p : prefixes)
    if (v >= p.scale) {
      std::snprintf(text, sizeof text, "%.2f %s%s", v / p.scale, p.prefix, unit);
      return text;
    }
  std::snprintf(text, sizeof text, "%.0f %s", v, unit);
  return text;
}

std::string format(const char* fmt, auto... args) {
  char text[512];
  std::snprintf(text, sizeof text, fmt, args...);
  return text;
}

unsigned long long ull(std::uint64_t v) { return static_cast<unsigned long long>(v); }

double fill_percent(const shmq::channel_stats& s) {
  return s.capacity == 0 ? 0 : 100.0 * static_cast<double>(s.fill) / static_cast<double>(s.capacity);
}

std::uint64_t max_lag(const shmq::channel_stats& s) {
  std::uint64_t lag = 0;
  for (const auto& g : s.groups) lag = std::max(lag, g.lag);
  return lag;
}

std::string participants_json(const shmq::channel_stats& s) {
  std::string out = "[";
  for (const auto& p : s.participants) {
    if (out.size() > 1) out += ',';
    out += json_object().text("role", p.role).number("pid", p.pid).boolean("alive", p.alive).str();
  }
  return out + "]";
}

std::string groups_json(const shmq::channel_stats& s, const stats_rates* rates) {
  std::string out = "[";
  for (std::size_t i = 0; i < s.groups.size(); ++i) {
    const auto& g = s.groups[i];
    json_object o;
    o.text("name", g.name).text("state", g.state).number("members", g.members).number("position", g.position)
        .number("lag", g.lag).boolean("orphan", g.orphan);
    if (rates != nullptr && i < rates->groups.size() && rates->groups[i]) o.real("delivered_per_s", *rates->groups[i]);
    out += (out.size() > 1 ? "," : "") + o.str();
  }
  return out + "]";
}

}  // namespace

stats_rates rates_between(const shmq::channel_stats& before, const shmq::channel_stats& now, double seconds) {
  stats_rates r;
  r.committed = per_second(before.committed, now.committed, seconds);
  r.delivered = per_second(before.delivered, now.delivered, seconds);
  r.redelivered = per_second(before.redelivered, now.redelivered, seconds);
  r.missed = per_second(before.missed, now.missed, seconds);
  for (std::size_t i = 0; i < now.groups.size(); ++i) {
    const bool same = i < before.groups.size() && before.groups[i].name == now.groups[i].name;
    r.groups.push_back(same ? std::optional(per_second(before.groups[i].position, now.groups[i].position, seconds))
                            : std::nullopt);
  }
  return r;
}

std::string stats_text(const shmq::channel_stats& s, const stats_rates* rates) {
  const char* unit = s.unit.c_str();
  std::string out = format("%s: %s%s%s, segment %llu bytes%s\n", s.name.c_str(), s.kind.c_str(),
                           s.policy.empty() ? "" : " ", s.policy.c_str(), ull(s.segment_size),
                           s.closed ? ", closed" : "");
  out += format("  capacity      %llu %s, max message %llu bytes\n", ull(s.capacity), unit, ull(s.max_message_size));
  out += format("  fill          %llu %s (%.1f%%)\n", ull(s.fill), unit, fill_percent(s));
  out += format("  positions     write %llu, read %llu\n", ull(s.write_position), ull(s.read_position));
  out += format("  counters      committed %llu, delivered %llu %s; redelivered %llu, missed %llu messages\n",
                ull(s.committed), ull(s.delivered), unit, ull(s.redelivered), ull(s.missed));
  if (rates != nullptr) {
    const char* per = s.unit == "bytes" ? "B/s" : "msg/s";
    out += "  rates         committed " + scaled(rates->committed, per) + ", delivered " +
           scaled(rates->delivered, per) + ", redelivered " + scaled(rates->redelivered, "/s") + ", missed " +
           scaled(rates->missed, "/s") + "\n";
  }
  out += s.participants.empty() ? "  participants  none\n" : "  participants\n";
  for (const auto& p : s.participants)
    out += format("    %-10s  pid %-8u  %s\n", p.role.c_str(), p.pid, p.alive ? "alive" : "dead");
  if (s.kind == "pubsub") {
    out += s.groups.empty() ? "  groups        none\n"
                            : "  groups\n    NAME                STATE   MEMBERS  POSITION        LAG  ORPHAN  RATE\n";
    for (std::size_t i = 0; i < s.groups.size(); ++i) {
      const auto& g = s.groups[i];
      const bool rate = rates != nullptr && i < rates->groups.size() && rates->groups[i];
      out += format("    %-18s  %-6s  %7u  %8llu  %9llu  %-6s  %s\n", g.name.empty() ? "(private)" : g.name.c_str(),
                    g.state.c_str(), g.members, ull(g.position), ull(g.lag), g.orphan ? "yes" : "no",
                    rate ? scaled(*rates->groups[i], "msg/s").c_str() : "-");
    }
  }
  return out;
}

std::string stats_json(const shmq::channel_stats& s, const stats_rates* rates) {
  json_object o;
  o.text("name", s.name).text("kind", s.kind).text("policy", s.policy).text("unit", s.unit)
      .number("segment_size", s.segment_size).number("capacity", s.capacity)
      .number("max_message_size", s.max_message_size).number("fill", s.fill)
      .number("write_position", s.write_position).number("read_position", s.read_position)
      .boolean("closed", s.closed).field("participants", participants_json(s))
      .field("groups", groups_json(s, rates))
      .field("counters", json_object().number("committed", s.committed).number("delivered", s.delivered)
                             .number("redelivered", s.redelivered).number("missed", s.missed).str());
  if (rates != nullptr)
    o.field("rates", json_object().real("committed_per_s", rates->committed).real("delivered_per_s", rates->delivered)
                         .real("redelivered_per_s", rates->redelivered).real("missed_per_s", rates->missed).str());
  return o.str();
}

std::string top_header() {
  return format("%-28s  %-6s  %6s  %14s  %14s  %10s  %s\n", "NAME", "KIND", "FILL", "COMMITTED/s", "DELIVERED/s",
                "MAX LAG", "PARTICIPANTS");
}

std::string top_line(const shmq::channel_stats& s, const stats_rates* rates) {
  std::string who;
  for (const auto& p : s.participants)
    who += (who.empty() ? "" : ", ") + p.role + " " + std::to_string(p.pid) + (p.alive ? "" : " (dead)");
  const char* per = s.unit == "bytes" ? "B/s" : "msg/s";
  return format("%-28s  %-6s  %5.1f%%  %14s  %14s  %10s  %s\n", s.name.c_str(), s.kind.c_str(), fill_percent(s),
                rates ? scaled(rates->committed, per).c_str() : "-", rates ? scaled(rates->delivered, per).c_str() : "-",
                s.kind == "pubsub" ? std::to_string(max_lag(s)).c_str() : "-", who.empty() ? "-" : who.c_str());
}

std::string top_problem_line(const std::string& name, const std::string& problem) {
  return format("%-28s  %-6s  %s\n", name.c_str(), "?", problem.c_str());
}

}  // namespace shmq_cli

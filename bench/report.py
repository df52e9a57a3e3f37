#!/usr/bin/env python3
"""Markdown report of one shmq-bench run.

usage: report.py BENCH.json [--strict] [--plot FILE.png]

Reads the JSON that `shmq-bench --benchmark_out=BENCH.json` (or
--benchmark_format=json, or `shmq bench --json`) writes, and prints every benchmark's
counters next to its floor at the same message size, then the project's targets with
PASS or FAIL. --strict exits with status 1 when a target fails or cannot be computed.
--plot draws the latency distributions (64 B) and the throughput by message size into
FILE.png with gnuplot and bench/plot.gp, as `shmq bench --plot` does.
"""

import json
import os
import statistics
import subprocess
import sys
import tempfile

LATENCY_FLOOR = "floor_spin_latency"
THROUGHPUT_FLOOR = "floor_memcpy_throughput"


def split_name(name):
    """("family", bytes or None) of "family/bytes", where the family may carry a shape
    ("shmq_mpmc_throughput/2x2/64", "shmq_pubsub_latency/1/64"); suffixes such as
    "/iterations:N/real_time" are dropped."""
    parts = [p for p in name.split("/") if ":" not in p and not p.endswith("_time")]
    if len(parts) > 1 and parts[-1].isdigit():
        return "/".join(parts[:-1]), int(parts[-1])
    return "/".join(parts), None


def load(path):
    """{(family, bytes or None): {"counters": {...}, "error": str|None, "label": str}},
    plus the family order of the file. Repetitions are folded into their median."""
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    runs, order = {}, []
    for b in data.get("benchmarks", []):
        if b.get("run_type", "iteration") != "iteration":
            continue  # aggregates: recomputed below from the repetitions themselves
        family, size = split_name(b.get("run_name", b["name"]))
        if family not in order:
            order.append(family)
        entry = runs.setdefault((family, size), {"samples": [], "error": None, "label": ""})
        if b.get("error_occurred"):
            entry["error"] = b.get("error_message", "error")
            continue
        entry["label"] = b.get("label", entry["label"])
        entry["samples"].append(b)
    for entry in runs.values():
        names = {k for s in entry["samples"] for k, v in s.items() if isinstance(v, (int, float))}
        entry["counters"] = {
            k: statistics.median(s[k] for s in entry["samples"] if k in s) for k in names
        }
    return data.get("context", {}), runs, order


def counter(runs, family, size, name):
    entry = runs.get((family, size))
    if not entry or entry["error"] or name not in entry["counters"]:
        return None
    return entry["counters"][name]


def ratio(a, b):
    return None if a is None or not b else a / b


def fmt_ns(value):
    if value is None:
        return "–"
    for scale, unit in ((1e6, "ms"), (1e3, "µs")):
        if value >= scale:
            return f"{value / scale:.2f} {unit}"
    return f"{value:.1f} ns"


def fmt_rate(value, unit):
    if value is None:
        return "–"
    for scale, prefix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if value >= scale:
            return f"{value / scale:.2f} {prefix}{unit}"
    return f"{value:.2f} {unit}"


def fmt_plain(value):
    return "–" if value is None else f"{value:.3g}"


def fmt_ratio(value):
    return "–" if value is None else f"{value:.2f}×"


def table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def status_of(entry):
    if entry["error"]:
        return f"ERROR: {entry['error']}"
    return entry["label"]


def shaped(family):
    """True for the many-process families: "name/<PxC>" or "name/<S>"."""
    return "/" in family


def rows_of(runs, order, kind, many=None):
    """(family, size, entry) for the families with `kind` in their name ("_latency",
    "_throughput"), in file order, by size; with `many` True or False, only the
    many-process families or only the others."""
    for family in order:
        if kind in family and (many is None or shaped(family) == many):
            for size in sorted(s for f, s in runs if f == family and s is not None):
                yield family, size, runs[(family, size)]


def latency_rows(runs, order):
    rows = []
    for family, size, entry in rows_of(runs, order, "_latency"):
        p = [counter(runs, family, size, k) for k in ("p50_ns", "p99_ns", "p999_ns", "max_ns")]
        floor = counter(runs, LATENCY_FLOOR, size, "p50_ns")
        rows.append([f"{family}/{size}"] + [fmt_ns(v) for v in p]
                    + [fmt_ratio(ratio(p[0], floor)), status_of(entry)])
    return rows


def throughput_rows(runs, order):
    rows = []
    for family, size, entry in rows_of(runs, order, "_throughput", many=False):
        msgs = counter(runs, family, size, "msgs_per_s")
        rate = counter(runs, family, size, "bytes_per_s")
        floor = counter(runs, THROUGHPUT_FLOOR, size, "bytes_per_s")
        rows.append([f"{family}/{size}", fmt_rate(msgs, "/s"), fmt_rate(rate, "B/s"),
                     fmt_ratio(ratio(rate, floor)), status_of(entry)])
    return rows


def one_to_one(family):
    """The two-process stream a many-process family is compared with."""
    return "baseline_boost_mq_throughput" if family.startswith("baseline_boost_mq") \
        else "shmq_spsc_throughput"


def many_rows(runs, order):
    rows = []
    for family, size, entry in rows_of(runs, order, "_throughput", many=True):
        msgs = counter(runs, family, size, "msgs_per_s")
        rate = counter(runs, family, size, "bytes_per_s")
        publish = counter(runs, family, size, "publish_per_s")
        base = one_to_one(family)
        rows.append([f"{family}/{size}", fmt_rate(msgs, "/s"), fmt_rate(rate, "B/s"),
                     fmt_rate(publish, "/s"),
                     fmt_ratio(ratio(msgs, counter(runs, base, size, "msgs_per_s"))),
                     status_of(entry)])
    return rows


def targets(runs):
    """(description, value, goal text, passed or None when it cannot be computed)"""
    def p50(family):
        return counter(runs, family, 64, "p50_ns")

    busy = ratio(p50("shmq_spsc_latency_busy"), p50(LATENCY_FLOOR))
    block = ratio(p50("shmq_spsc_latency_block"), p50(LATENCY_FLOOR))
    shmq_msgs = counter(runs, "shmq_spsc_throughput", 64, "msgs_per_s")
    vs_boost = ratio(shmq_msgs, counter(runs, "baseline_boost_mq_throughput", 64, "msgs_per_s"))
    big = ratio(counter(runs, "shmq_spsc_throughput", 65536, "bytes_per_s"),
                counter(runs, THROUGHPUT_FLOOR, 65536, "bytes_per_s"))
    idle = counter(runs, "shmq_spsc_idle_cpu", None, "cpu_ms_per_s")
    mpmc = ratio(counter(runs, "shmq_mpmc_throughput/1x1", 64, "msgs_per_s"), shmq_msgs)
    pubsub = ratio(p50("shmq_pubsub_latency/1"), p50("shmq_spsc_latency_busy"))
    mpmc_boost = ratio(counter(runs, "shmq_mpmc_throughput/2x2", 64, "msgs_per_s"),
                       counter(runs, "baseline_boost_mq_throughput/2x2", 64, "msgs_per_s"))

    def check(value, ok):
        return None if value is None else ok(value)

    return [
        ("shmq_spsc_latency_busy/64 p50 / floor_spin_latency/64 p50", fmt_ratio(busy), "≤ 1.3",
         check(busy, lambda v: v <= 1.3)),
        ("shmq_spsc_latency_block/64 p50 / floor_spin_latency/64 p50", fmt_ratio(block), "≤ 1.5",
         check(block, lambda v: v <= 1.5)),
        ("shmq_spsc_throughput/64 msgs_per_s / baseline_boost_mq_throughput/64", fmt_ratio(vs_boost),
         "≥ 20", check(vs_boost, lambda v: v >= 20)),
        ("shmq_spsc_throughput/64 msgs_per_s", fmt_rate(shmq_msgs, " msg/s"), "≥ 15 M",
         check(shmq_msgs, lambda v: v >= 15e6)),
        ("shmq_spsc_throughput/65536 bytes_per_s / floor_memcpy_throughput/65536", fmt_ratio(big),
         "≥ 0.5", check(big, lambda v: v >= 0.5)),
        ("shmq_spsc_idle_cpu cpu_ms_per_s", fmt_plain(idle), "< 10", check(idle, lambda v: v < 10)),
        ("shmq_mpmc_throughput/1x1/64 msgs_per_s / shmq_spsc_throughput/64", fmt_ratio(mpmc),
         "≥ 0.5", check(mpmc, lambda v: v >= 0.5)),
        ("shmq_pubsub_latency/1/64 p50 / shmq_spsc_latency_busy/64 p50", fmt_ratio(pubsub),
         "≤ 1.5", check(pubsub, lambda v: v <= 1.5)),
        ("shmq_mpmc_throughput/2x2/64 msgs_per_s / baseline_boost_mq_throughput/2x2/64",
         fmt_ratio(mpmc_boost), "≥ 10", check(mpmc_boost, lambda v: v >= 10)),
    ]


# What --plot draws, (family, one-word title), where the run has them.
PLOT_LATENCY = [(LATENCY_FLOOR, "spin-floor"), ("shmq_spsc_latency_busy", "shmq-SPSC-polling"),
                ("shmq_spsc_latency_block", "shmq-SPSC-blocking"),
                ("shmq_pubsub_latency/1", "shmq-pubsub"), ("floor_futex_latency", "futex-floor")]
PLOT_THROUGHPUT = [("shmq_spsc_throughput", "shmq-SPSC"), ("shmq_mpmc_throughput/1x1", "shmq-MPMC-1x1"),
                   ("baseline_boost_mq_throughput", "Boost-message_queue"),
                   (THROUGHPUT_FLOOR, "memcpy-floor")]
CDF_POINTS = [("min_ns", 0.0), ("p10_ns", 0.10), ("p25_ns", 0.25), ("p50_ns", 0.50),
              ("p75_ns", 0.75), ("p90_ns", 0.90), ("p99_ns", 0.99), ("p999_ns", 0.999),
              ("p9999_ns", 0.9999), ("max_ns", 1.0)]


def plot(runs, png):
    """Writes the data files bench/plot.gp reads and runs gnuplot on them."""
    script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "plot.gp")
    with tempfile.TemporaryDirectory(prefix="shmq-plot-") as tmp:
        latency, titles = os.path.join(tmp, "latency.dat"), []
        with open(latency, "w", encoding="utf-8") as f:
            for family, title in PLOT_LATENCY:
                points = [(counter(runs, family, 64, k), q) for k, q in CDF_POINTS]
                points = [(v, q) for v, q in points if v is not None]
                if points:
                    titles.append(title)
                    f.write(f"# {title}\n" + "".join(f"{v} {q}\n" for v, q in points) + "\n\n")
        series = [(fam, t) for fam, t in PLOT_THROUGHPUT
                  if any(f == fam and s is not None for f, s in runs)]
        sizes = sorted({s for f, s in runs if s is not None and any(f == fam for fam, _ in series)})
        throughput = os.path.join(tmp, "throughput.dat")
        with open(throughput, "w", encoding="utf-8") as f:
            f.write("bytes " + " ".join(t for _, t in series) + "\n")
            for size in sizes:
                values = [counter(runs, fam, size, "bytes_per_s") for fam, _ in series]
                f.write(f"{size} " + " ".join("NaN" if v is None else str(v) for v in values) + "\n")
        if not titles or not series:
            raise RuntimeError("the run has no latency or no throughput results to plot")
        def quoted(text):  # a gnuplot single-quoted string
            return "'" + text.replace("'", "''") + "'"
        settings = (f"out={quoted(png)}; latency={quoted(latency)}; latency_titles={quoted(' '.join(titles))}; "
                    f"throughput={quoted(throughput)}; throughput_columns={len(series) + 1}")
        subprocess.run(["gnuplot", "-e", settings, script], check=True)


def main(argv):
    args, png = [], None
    rest = iter(argv[1:])
    for a in rest:
        if a == "--plot":
            png = next(rest, None)
            if png is None:
                print(__doc__.strip(), file=sys.stderr)
                return 2
        elif a != "--strict":
            args.append(a)
    if len(args) != 1:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    context, runs, order = load(args[0])
    if png is not None:
        plot(runs, png)

    print("# shmq-bench report\n")
    print(f"{context.get('date', '?')} · {context.get('host_name', '?')} · "
          f"{context.get('num_cpus', '?')} CPUs at {context.get('mhz_per_cpu', '?')} MHz · "
          f"load {context.get('load_avg', '?')}\n")

    print("## Latency, one-way (round trip / 2)\n")
    print(table(["benchmark", "p50", "p99", "p999", "max", f"p50 / {LATENCY_FLOOR}", "note"],
                latency_rows(runs, order)))
    print("\n## Throughput\n")
    print(table(["benchmark", "messages/s", "bytes/s", f"bytes / {THROUGHPUT_FLOOR}", "note"],
                throughput_rows(runs, order)))

    many = many_rows(runs, order)
    if many:
        print("\n## Many processes: MPMC work queue (P producers x C consumers) and "
              "pub/sub (S subscribers)\n")
        print("messages/s and bytes/s count deliveries (pub/sub: published × S); "
              "publish/s is messages published per second.\n")
        print(table(["benchmark", "messages/s", "bytes/s", "publish/s",
                     "messages / 1-to-1 stream", "note"], many))
        print(f"\nNote: this machine has {context.get('num_cpus', '?')} CPUs. Producers "
              "share one CPU and consumers the other, so the 2x2 and 4x4 runs and the pub/sub "
              "runs with S ≥ 2 have more processes than CPUs: they measure the scheduler "
              "(time slices, futex sleeps and wake-ups) as much as the queue. The 1-to-1 "
              "stream is shmq_spsc_throughput for shmq and baseline_boost_mq_throughput for "
              "Boost, at the same size.")

    idle = runs.get(("shmq_spsc_idle_cpu", None))
    if idle:
        print("\n## Idle consumer\n")
        print(table(["benchmark", "cpu_ms_per_s", "note"],
                    [["shmq_spsc_idle_cpu",
                      fmt_plain(counter(runs, "shmq_spsc_idle_cpu", None, "cpu_ms_per_s")),
                      status_of(idle)]]))

    print("\n## Targets\n")
    rows, failed = [], False
    for what, value, goal, passed in targets(runs):
        verdict = "PASS" if passed else ("FAIL" if passed is not None else "MISSING")
        failed |= not passed
        rows.append([what, value, goal, verdict])
    print(table(["target", "value", "goal", "result"], rows))
    print("\nThe 2x2 target compares two runs with more processes than CPUs on this "
          f"{context.get('num_cpus', '?')}-CPU machine: both sides are scheduled as much as "
          "they queue.")
    below = [f"{family}/{size}" for family, size, _ in rows_of(runs, order, "_latency")
             if family.startswith("shmq_")
             and (ratio(counter(runs, family, size, "p50_ns"),
                        counter(runs, LATENCY_FLOOR, size, "p50_ns")) or 1) < 0.95]
    if below:
        print(f"\nWarning: p50 below the {LATENCY_FLOOR} floor for {', '.join(below)}: the floor "
              "was measured under other conditions (machine noise); rerun before trusting "
              "latency ratios.")
    return 1 if failed and "--strict" in argv else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

#!/usr/bin/python3
"""The push gateway against the usual aiohttp client, in one run, on one sink.

The sink (build/demo/push/shmq-push-sink, no faults) runs on CPU 0; the clients run one
at a time on CPU 1: shmq-push-enqueue filling the queue while one shmq-push-gateway
worker delivers, then bench/push/aiohttp_client.py sending the same number of pushes.
Each in two modes: all at once (throughput) and paced at --rate pushes/s (latency below
saturation). For each it prints pushes/s of wall time, CPU seconds of the client
processes (gateway: worker + enqueue, from /proc and wait4; aiohttp: its own getrusage
over the sending), pushes per CPU-second, and the enqueue-to-delivery latency the sink
measured (p50, p99, max; enqueue = the record's commit into the queue for the gateway,
the task's creation for aiohttp; CLOCK_MONOTONIC on both sides).

  bench/push/run.py [--build build] [--count 50000] [--rounds 2]
"""
import argparse
import json
import os
import queue
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TICK = os.sysconf("SC_CLK_TCK")


def proc_cpu(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime, stime


def wait_rusage(p):
    _, status, usage = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode != 0:
        raise SystemExit("run.py: %s exited %d" % (p.args, p.returncode))
    return usage.ru_utime + usage.ru_stime


def percentile(sorted_values, q):
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


class Sink:
    def __init__(self, build, work, endpoints):
        self.records = os.path.join(work, "records.txt")
        self.ports = os.path.join(work, "ports.txt")
        self.lines = queue.Queue()
        self.proc = subprocess.Popen(
            ["taskset", "-c", "0", os.path.join(build, "demo/push/shmq-push-sink"), "--endpoints", str(endpoints),
             "--ports-out", self.ports, "--records", self.records], stdout=subprocess.PIPE, text=True)
        threading.Thread(target=self.read, daemon=True).start()
        self.delivered = 0
        while self.lines.get() != "ready":
            pass

    def read(self):
        for line in self.proc.stdout:
            self.lines.put(line.strip())
        self.lines.put("end")

    def wait_delivered(self, n):
        while self.delivered < n:
            line = self.lines.get(timeout=300)
            if line == "end":
                raise SystemExit("run.py: the sink ended")
            if line.startswith("delivered "):
                self.delivered = int(line.split()[1])
        return time.monotonic()

    def stop(self):
        self.proc.terminate()
        self.proc.wait()
        latencies = {}
        with open(self.records) as f:
            for line in f:
                push_id, _, _, answer, _, _, latency = line.split()
                if answer == "ok":
                    latencies.setdefault(int(push_id), int(latency))
        return latencies


def run_gateway(args, sink, queue_name, first, count, rate):
    enqueue = os.path.join(args.build, "demo/push/shmq-push-enqueue")
    worker = subprocess.Popen(["taskset", "-c", "1", os.path.join(args.build, "demo/push/shmq-push-gateway"),
                               "--queue", queue_name, "--lanes", str(args.lanes)], stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, text=True)
    if worker.stdout.readline().strip() != "ready":  # its consumers are attached: start-up is not measured
        raise SystemExit("run.py: the gateway did not start")
    cpu0 = proc_cpu(worker.pid)
    start = time.monotonic()
    producer = subprocess.Popen(["taskset", "-c", "1", enqueue, "--queue", queue_name, "--ports", sink.ports,
                                 "--count", str(count), "--first-id", str(first)] +
                                (["--rate", str(rate)] if rate else []))
    producer_cpu = wait_rusage(producer)
    end = sink.wait_delivered(sink.delivered_target)
    worker_cpu = proc_cpu(worker.pid) - cpu0
    worker.terminate()
    worker.wait()
    return {"wall_s": end - start, "cpu_s": worker_cpu + producer_cpu, "worker_cpu_s": worker_cpu,
            "enqueue_cpu_s": producer_cpu}


def run_aiohttp(args, sink, work, first, count, rate):
    dump = os.path.join(work, "pushes-%d.bin" % first)
    subprocess.run([os.path.join(args.build, "demo/push/shmq-push-enqueue"), "--ports", sink.ports, "--count",
                    str(count), "--first-id", str(first), "--dump", dump], check=True)
    out = subprocess.run(["taskset", "-c", "1", "/usr/bin/python3", os.path.join(HERE, "aiohttp_client.py"),
                          "--pushes", dump, "--concurrency", str(args.lanes)] +
                         (["--rate", str(rate)] if rate else []), check=True, capture_output=True, text=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    if result["failures"]:
        raise SystemExit("run.py: aiohttp client: %d pushes failed" % result["failures"])
    sink.wait_delivered(sink.delivered_target)
    return {"wall_s": result["wall_s"], "cpu_s": result["cpu_s"]}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build", default="build")
    parser.add_argument("--count", type=int, default=50000, help="pushes per throughput run")
    parser.add_argument("--endpoints", type=int, default=1000)
    parser.add_argument("--lanes", type=int, default=64, help="in flight: gateway lanes, aiohttp semaphore")
    parser.add_argument("--rate", type=int, default=500, help="pushes/s of the paced runs")
    parser.add_argument("--paced-count", type=int, default=10000)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="shmq-push-bench-")
    queue_name = "push-bench-%d" % os.getpid()
    sink = Sink(args.build, work, args.endpoints)
    runs = []
    first = 0
    try:
        for _ in range(args.rounds):
            for mode, count, rate in (("throughput", args.count, 0), ("paced", args.paced_count, args.rate)):
                for client in ("gateway", "aiohttp"):
                    sink.delivered_target = first + count
                    if client == "gateway":
                        r = run_gateway(args, sink, queue_name, first, count, rate)
                    else:
                        r = run_aiohttp(args, sink, work, first, count, rate)
                    r.update(client=client, mode=mode, first=first, count=count)
                    runs.append(r)
                    first += count
    finally:
        latencies = sink.stop()
        for name in (queue_name, queue_name + ".dead"):
            try:
                os.unlink("/dev/shm/shmq." + name)
            except FileNotFoundError:
                pass
    print("%-8s %-10s %7s %9s %7s %12s %8s %8s %8s" % ("client", "mode", "pushes", "pushes/s", "cpu_s",
                                                       "pushes/cpu-s", "p50_ms", "p99_ms", "max_ms"))
    for r in runs:
        lat = sorted(latencies[i] for i in range(r["first"], r["first"] + r["count"]))
        if len(lat) != r["count"]:
            raise SystemExit("run.py: %s %s: %d of %d pushes delivered" % (r["client"], r["mode"], len(lat),
                                                                         r["count"]))
        r.update(pushes_per_s=r["count"] / r["wall_s"], pushes_per_cpu_s=r["count"] / r["cpu_s"],
                 p50_ms=percentile(lat, 0.50) / 1e6, p99_ms=percentile(lat, 0.99) / 1e6, max_ms=lat[-1] / 1e6)
        print("%-8s %-10s %7d %9.0f %7.2f %12.0f %8.2f %8.2f %8.2f" % (
            r["client"], r["mode"], r["count"], r["pushes_per_s"], r["cpu_s"], r["pushes_per_cpu_s"], r["p50_ms"],
            r["p99_ms"], r["max_ms"]))
    for mode in ("throughput", "paced"):
        g = [r for r in runs if r["client"] == "gateway" and r["mode"] == mode]
        a = [r for r in runs if r["client"] == "aiohttp" and r["mode"] == mode]
        per_cpu = sum(x["pushes_per_cpu_s"] for x in g) / len(g) / (sum(x["pushes_per_cpu_s"] for x in a) / len(a))
        per_s = sum(x["pushes_per_s"] for x in g) / len(g) / (sum(x["pushes_per_s"] for x in a) / len(a))
        p99 = [sum(x["p99_ms"] for x in c) / len(c) for c in (g, a)]
        if mode == "throughput":
            print("%s: gateway / aiohttp: pushes/s x%.1f, pushes per CPU-second x%.1f" % (mode, per_s, per_cpu))
        else:  # both are held to the rate: only CPU and latency can differ
            print("%s at %d/s: gateway / aiohttp: pushes per CPU-second x%.1f; p99 %.2f ms vs %.2f ms"
                  % (mode, args.rate, per_cpu, p99[0], p99[1]))
    for name in os.listdir(work):  # the records and the dumps are large; keep the results
        os.unlink(os.path.join(work, name))
    with open(os.path.join(work, "results.json"), "w") as f:
        json.dump(runs, f, indent=1)
    print("runs: " + os.path.join(work, "results.json"), file=sys.stderr)


if __name__ == "__main__":
    main()

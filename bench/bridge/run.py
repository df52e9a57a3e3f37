"""The bridge benchmark, in one run against one private broker (test/bridge/broker.py):

  direct   a rabbitmq-c publisher (persistent, confirm window W) -> queue -> a rabbitmq-c
           consumer (prefetch, multiple acks): the baseline;
  bridged  producer -> shmq channel A -> shmq-bridge out (confirm window W) -> queue ->
           shmq-bridge in (--envelope) -> shmq channel B -> consumer.

For 64 B and 4 KiB messages it measures throughput (as fast as the publisher goes) and
latency (paced at a fixed rate, well below both throughputs, so that the percentiles are
the path's and not a queue's), and prints bridged / direct ratios. The publishing side is
pinned to CPU 0 and the consuming side to CPU 1 (the broker is not pinned).

    /usr/bin/python3 bench/bridge/run.py --build build
"""
import argparse
import json
import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "test", "bridge"))
import broker  # noqa: E402

WINDOW = 64  # the confirm window of both publishers; bridge-bench-peer's channels allow 64 consumers
PREFETCH, ACK_EVERY = 256, 64
SLOT_BYTES = 8192  # room for a 4 KiB message and its envelope; bridge-bench-peer's channels use it


class Bench:
    def __init__(self, args, node):
        self.args, self.node = args, node
        self.peer = os.path.join(args.build, "bench", "bridge", "bridge-bench-peer")
        self.bridge = args.bridge or os.path.join(args.build, "tools", "shmq-bridge")
        self.form = "raw" if args.raw else "envelope"
        # sides: the publishing side (publisher, or producer and bridge out) on CPU 0, the
        # consuming side on CPU 1. split: the AMQP clients (direct publisher and consumer, or
        # the two bridges) share CPU 1 in both paths, the shmq ends CPU 0. none: unpinned.
        self.cpus = {"sides": {"publish": 0, "out": 0, "produce": 0, "consume": 1, "in": 1, "receive": 1},
                     "split": {"publish": 1, "out": 1, "produce": 0, "consume": 1, "in": 1, "receive": 0},
                     "none": {}}[args.layout]
        self.step, self.steps = 0, 2 * (args.repeat + 1)
        self.tag = str(os.getpid())

    def progress(self, what):
        self.step += 1
        print("[%d/%d] %s" % (self.step, self.steps, what), file=sys.stderr, flush=True)

    def spawn(self, cpu, args, **kw):
        return subprocess.Popen((["taskset", "-c", str(cpu)] if cpu is not None else []) + args, **kw)

    def result(self, proc, what):
        out, _ = proc.communicate(timeout=self.args.timeout)
        if proc.returncode != 0:
            raise RuntimeError("%s failed (%d)" % (what, proc.returncode))
        return json.loads(out.strip().splitlines()[-1])

    def direct(self, size, count, rate):
        queue = "bench-direct-%d-%s-%g" % (size, self.tag, rate)
        consumer = self.spawn(self.cpus.get("consume"), [self.peer, "amqp-consume", self.node.url, queue, str(count), str(PREFETCH),
                                  str(ACK_EVERY)], stdout=subprocess.PIPE, text=True)
        publisher = self.spawn(self.cpus.get("publish"), [self.peer, "amqp-publish", self.node.url, queue, str(count), str(size),
                                   str(WINDOW), str(rate)], stdout=subprocess.PIPE, text=True)
        pub = self.result(publisher, "amqp-publish")
        return pub, self.result(consumer, "amqp-consume")

    def start_bridges(self, size):
        a, b = "benchA%d%s" % (size, self.tag), "benchB%d%s" % (size, self.tag)
        queue = "bench-bridged-%d-%s" % (size, self.tag)
        common = ["--url", self.node.url, "--queue", queue, "--max-message-size", str(SLOT_BYTES)]
        self.log = open(os.path.join(self.node.dir, "bridges-%d.log" % size), "w")
        self.channels = (a, b)
        self.bridges = [
            self.spawn(self.cpus.get("in"), [self.bridge, "in", b, *common, "--prefetch", str(PREFETCH), "--ack-every",
                           str(ACK_EVERY)] + ([] if self.args.raw else ["--envelope"]), stderr=self.log),
            self.spawn(self.cpus.get("out"), [self.bridge, "out", a, *common, "--routing-key", queue, "--confirm-window",
                           str(WINDOW)], stderr=self.log),
        ]

    def stop_bridges(self):
        for p in self.bridges:
            p.send_signal(signal.SIGTERM)
        for p in self.bridges:
            p.wait(timeout=30)
        self.log.close()
        for n in self.channels:
            try:
                os.unlink("/dev/shm/shmq." + n)  # the segment of channel n
            except OSError:
                pass

    def bridged(self, size, count, rate):
        a, b = self.channels
        consumer = self.spawn(self.cpus.get("receive"), [self.peer, "shmq-consume", b, str(count), self.form], stdout=subprocess.PIPE, text=True)
        producer = self.spawn(self.cpus.get("produce"), [self.peer, "shmq-produce", a, str(count), str(size), str(rate)])
        if producer.wait(timeout=self.args.timeout) != 0:
            raise RuntimeError("shmq-produce failed")
        return self.result(consumer, "shmq-consume")

    def run(self):
        a = self.args
        self.direct(64, 2000, 0)  # warm-up: the first queue of a fresh node is slower
        rows = []
        paced = int(a.rate * a.seconds)
        for size in (64, 4096):
            self.start_bridges(size)
            try:
                # Alternating, so that both paths see the same noise; the ratio is the
                # median of the pairs'.
                pubs, conss, bts, ratios = [], [], [], []
                for rep in range(a.repeat):
                    pub, cons = self.direct(size, a.count, 0)
                    bt = self.bridged(size, a.count, 0)
                    pubs.append(pub["msgs_per_s"])
                    conss.append(cons["msgs_per_s"])
                    bts.append(bt["msgs_per_s"])
                    ratios.append(bts[-1] / pubs[-1])
                    self.progress("%d B, throughput %d/%d: direct publisher %.0f msg/s, bridged %.0f msg/s (%.2f)"
                                  % (size, rep + 1, a.repeat, pubs[-1], bts[-1], ratios[-1]))
                _, lat = self.direct(size, paced, a.rate)
                bl = self.bridged(size, paced, a.rate)
                self.progress("%d B, latency at %g msg/s: direct p50 %.0f p99 %.0f us, bridged p50 %.0f p99 %.0f us"
                              % (size, a.rate, lat["p50_us"], lat["p99_us"], bl["p50_us"], bl["p99_us"]))
            finally:
                self.stop_bridges()
            rows.append((size, median(pubs), median(conss), median(bts), median(ratios), lat, bl))
        print("\nmedians of %d alternating runs of %d messages; latency: %d messages at %g msg/s"
              % (a.repeat, a.count, paced, a.rate))
        print("%-6s %-8s %12s %10s %10s %10s" % ("size", "path", "msg/s", "MB/s", "p50 us", "p99 us"))
        for size, pub, cons, bt, ratio, lat, bl in rows:
            for name, thr, l in (("direct", pub, lat), ("bridged", bt, bl)):
                print("%-6d %-8s %12.0f %10.2f %10.0f %10.0f" % (size, name, thr, thr * size / 1e6, l["p50_us"], l["p99_us"]))
        print()
        ok = True
        for size, pub, cons, bt, ratio, lat, bl in rows:
            ok = ok and ratio >= 0.8
            print("%4d B: bridged / direct publisher throughput %.2f (direct end to end %.0f msg/s); "
                  "latency p50 %.2fx p99 %.2fx" % (size, ratio, cons, bl["p50_us"] / lat["p50_us"], bl["p99_us"] / lat["p99_us"]))
        print("target bridged >= 0.8 x direct: %s" % ("met" if ok else "MISSED"))
        return 0 if ok else 1


def median(xs):
    xs = sorted(xs)
    return xs[len(xs) // 2] if len(xs) % 2 else (xs[len(xs) // 2 - 1] + xs[len(xs) // 2]) / 2


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default="build", help="the meson build directory")
    ap.add_argument("--count", type=int, default=10000, help="messages per throughput run")
    ap.add_argument("--rate", type=float, default=1000, help="messages per second in the latency runs")
    ap.add_argument("--seconds", type=float, default=3, help="length of each latency run")
    ap.add_argument("--repeat", type=int, default=5, help="alternating throughput runs of each path")
    ap.add_argument("--bridge", help="another shmq-bridge to measure (default: the build's)")
    ap.add_argument("--raw", action="store_true", help="bridge in without --envelope")
    ap.add_argument("--layout", choices=("sides", "split", "none"), default="sides",
                    help="sides: publishing side on CPU 0, consuming side on CPU 1; split: AMQP clients "
                         "on CPU 1, shmq ends on CPU 0; none: no pinning")
    ap.add_argument("--timeout", type=float, default=120, help="bound on each run")
    args = ap.parse_args()
    t0 = time.monotonic()
    with broker.Broker() as node:
        rc = Bench(args, node).run()
    print("(%.0f s in all)" % (time.monotonic() - t0), file=sys.stderr)
    return rc


if __name__ == "__main__":
    sys.exit(main())

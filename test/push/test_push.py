#!/usr/bin/python3
"""The push gateway end to end: PUSH_COUNT pushes (100,000) to 1,000 endpoints of one
shmq-push-sink, delivered by 4 shmq-push-gateway workers while the sink answers 5 % of
attempts 503 and drops 1 % of connections after reading the request. At fixed points of
progress (distinct pushes answered 2xx) a worker is SIGKILLed and a new one started, and
one is SIGSTOPped and later continued. At the end:

- every push reached its endpoint (the right port), body checksum intact, and was
  answered 2xx, except those the sink's plan failed R times in a row;
- the dead-letter queue holds exactly those (computed here from the plan's hash, not
  from what the gateway did), each with reason failed_attempts after R attempts;
- a push answered 2xx more than once was redelivered after a kill (its later deliveries
  carry the redelivered flag), and there are at most kills x lanes of them;
- duplicates and ambiguous retries (a request the sink read and then dropped, sent again)
  are counted and printed.

A second test sends a quarter of 200 pushes to a port that refuses connections, a quarter
to one that accepts and never answers (a 500 ms timeout per attempt), and three records
that are not push requests (through `shmq pub`): the first two kinds are dead-lettered
after 4 attempts with no HTTP status, the records as malformed, the rest delivered.

Everything waits on events (the sink's progress lines, the dead-letter reader's lines,
process exits); a watchdog (SIGALRM) fails a run that hangs.
"""
import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import unittest
from collections import defaultdict

BIN = os.environ.get("SHMQ_PUSH_BIN", os.path.join(os.path.dirname(__file__), "../../build/demo/push"))
SHMQ_CLI = os.environ.get("SHMQ", os.path.join(os.path.dirname(__file__), "../../build/tools/shmq"))
COUNT = int(os.environ.get("PUSH_COUNT", "100000"))
ENDPOINTS = int(os.environ.get("PUSH_ENDPOINTS", "1000"))
WORKERS = 4
LANES = 16
ATTEMPTS = 3
FAIL = 0.05
DROP = 0.01
SEED = 20261202
WATCHDOG_S = int(os.environ.get("PUSH_WATCHDOG_S", "150"))

MASK = (1 << 64) - 1


def mix(x):
    """splitmix64's finalizer, as demo/stamped_message.hpp has it."""
    x = (x + 0x9E3779B97F4A7C15) & MASK
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & MASK
    return x ^ (x >> 31)


def planned_answer(push_id, attempt):
    """demo/push/fault_plan.hpp's decide(), written again: 'ok', '503' or 'drop'."""
    u = mix((mix(push_id ^ SEED) + attempt) & MASK) % 1_000_000
    if u < round(FAIL * 1_000_000):
        return "503"
    if u < round(FAIL * 1_000_000) + round(DROP * 1_000_000):
        return "drop"
    return "ok"


def expected_dead(count):
    return {i for i in range(count) if all(planned_answer(i, a) != "ok" for a in range(ATTEMPTS))}


class Watchdog(Exception):
    pass


def line_reader(name, stream, events):
    try:
        for line in stream:
            events.put((name, line.rstrip("\n")))
    except ValueError:  # closed by tearDown
        return
    events.put((name, None))


class PushRun(unittest.TestCase):
    """Starts the programs and cleans up after them; the logs stay when a test failed."""

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="shmq-push-")
        self.queue = "push-test-%d-%s" % (os.getpid(), self._testMethodName[5:12])
        self.procs = []
        self.logs = []
        self.events = queue.Queue()
        self.progress = "none"
        self.passed = False
        self.started = 0
        self.ready = set()

    def tearDown(self):
        for p in self.procs:
            if p.poll() is None:
                p.kill()
                p.wait()
            if p.stdout:
                p.stdout.close()
        for log in self.logs:
            log.close()
        for name in (self.queue, self.queue + ".dead"):
            try:
                os.unlink("/dev/shm/shmq." + name)
            except FileNotFoundError:
                pass
        if self.passed:
            shutil.rmtree(self.dir)
        else:
            print("push: logs kept in " + self.dir, file=sys.stderr)

    def path(self, name):
        return os.path.join(self.dir, name)

    def start(self, args, name=None, stdout=None):
        log = open(self.path((name or os.path.basename(args[0])) + ".log"), "ab")
        self.logs.append(log)
        p = subprocess.Popen(args, stdout=stdout if stdout else log, stderr=log, text=stdout is not None)
        self.procs.append(p)
        if stdout:
            threading.Thread(target=line_reader, args=(name, p.stdout, self.events), daemon=True).start()
        return p

    def start_worker(self, n, attempts=ATTEMPTS, timeout_ms=20000):
        self.started += 1
        name = "worker%d.%d" % (n, self.started)
        p = self.start([os.path.join(BIN, "shmq-push-gateway"), "--queue", self.queue, "--lanes", str(LANES),
                        "--attempts", str(attempts), "--timeout-ms", str(timeout_ms), "--backoff-ms", "1",
                        "--backoff-max-ms", "20"], name=name, stdout=subprocess.PIPE)
        p.name = name
        return p

    def stop_workers(self, workers):
        """SIGTERM each once it has said it is ready (attached, its signals handled); each must exit 0."""
        while not all(w.name in self.ready for w in workers):
            self.next_event()
        for w in workers:
            w.send_signal(signal.SIGTERM)
            self.assertEqual(w.wait(), 0, "%s failed" % w.name)

    def start_sink(self, endpoints, *options):
        """The sink, once it listens; its ports and the file its records go to."""
        records = self.path("records.txt")
        ports_file = self.path("ports.txt")
        sink = self.start([os.path.join(BIN, "shmq-push-sink"), "--endpoints", str(endpoints), "--ports-out",
                           ports_file, "--records", records] + list(options), name="sink", stdout=subprocess.PIPE)
        while True:
            name, line = self.next_event()
            if name == "sink":
                self.assertIsNotNone(line, "the sink ended before it was ready")
                if line == "ready":
                    break
        with open(ports_file) as f:
            ports = [int(x) for x in f.read().split()]
        self.assertEqual(len(ports), endpoints)
        return sink, ports, records

    def start_dead_reader(self):
        return self.start([os.path.join(BIN, "shmq-push-dead-letters"), "--queue", self.queue], name="dead",
                          stdout=subprocess.PIPE)

    def enqueue(self, ports_file, first, count, name):
        return self.start([os.path.join(BIN, "shmq-push-enqueue"), "--queue", self.queue, "--ports", ports_file,
                           "--count", str(count), "--first-id", str(first)], name=name)

    def under_watchdog(self, run):
        def on_alarm(*_):
            raise Watchdog()
        signal.signal(signal.SIGALRM, on_alarm)
        signal.alarm(WATCHDOG_S)
        try:
            run()
            self.passed = True
        except Watchdog:
            self.fail("watchdog: no end after %d s; last progress: %s" % (WATCHDOG_S, self.progress))
        finally:
            signal.alarm(0)

    def next_event(self):
        try:
            name, line = self.events.get(timeout=1.0)  # a bound per wait, so the watchdog gets its turn
        except queue.Empty:
            return None, None
        if name.startswith("worker") and line == "ready":
            self.ready.add(name)
        return name, line


class PushGatewayTest(PushRun):
    def test_push_gateway(self):
        self.under_watchdog(self.run_and_check)

    def run_and_check(self):
        sink, ports, records = self.start_sink(ENDPOINTS, "--fail", str(FAIL), "--drop", str(DROP), "--slow",
                                               "0.002", "--slow-ms", "30", "--seed", str(SEED))
        dead_reader = self.start_dead_reader()
        workers = [self.start_worker(n) for n in range(WORKERS)]
        half = COUNT // 2
        producers = [self.enqueue(self.path("ports.txt"), first, n, "enqueue%d" % k)
                     for k, (first, n) in enumerate([(0, half), (half, COUNT - half)])]

        # Faults, by progress (distinct pushes answered 2xx).
        plan = [(0.15, "kill", 0), (0.30, "stop", 1), (0.31, "cont", 1), (0.40, "kill", 2), (0.60, "kill", 3),
                (0.80, "kill", 0)]
        kills = 0
        delivered = 0
        self.progress = "none"
        dead_lines = []
        while delivered + len(set(dead_lines)) < COUNT:
            name, line = self.next_event()
            if name == "sink":
                self.assertIsNotNone(line, "the sink died")
                if line.startswith("delivered "):
                    delivered = int(line.split()[1])
                    self.progress = "%s, %d dead letters, %d kills" % (line, len(dead_lines), kills)
            elif name == "dead":
                self.assertIsNotNone(line, "the dead-letter reader died")
                fields = line.split()
                self.assertEqual(fields[0], "dead", line)
                self.assertNotEqual(fields[1], "-", "a malformed record: " + line)
                self.assertEqual(fields[2:4], ["failed_attempts", str(ATTEMPTS)], line)
                dead_lines.append(int(fields[1]))
            while plan and delivered >= plan[0][0] * COUNT:
                _, action, n = plan.pop(0)
                if action == "kill":
                    workers[n].kill()
                    workers[n].wait()
                    workers[n] = self.start_worker(n)
                    kills += 1
                elif action == "stop":
                    workers[n].send_signal(signal.SIGSTOP)
                else:
                    workers[n].send_signal(signal.SIGCONT)
        self.assertEqual(plan, [], "faults left over: the run ended early")
        for p in producers:
            self.assertEqual(p.wait(), 0, "a producer failed")
        self.stop_workers(workers)
        dead_reader.kill()
        dead_reader.wait()
        sink.send_signal(signal.SIGTERM)
        self.assertEqual(sink.wait(), 0)
        for log in self.logs:
            log.flush()
            with open(log.name, errors="replace") as f:
                text = f.read()
            for bad in ("Sanitizer", "runtime error:", "lane failed", "lane stops", "malformed"):
                self.assertNotIn(bad, text, os.path.basename(log.name))
        self.check(records, ports, dead_lines, kills)

    def check(self, records, ports, dead_lines, kills):
        by_id = defaultdict(list)
        with open(records) as f:
            for line in f:
                push_id, attempt, port, answer, checksum_ok, redelivered, _latency = line.split()
                by_id[int(push_id)].append((int(attempt), int(port), answer, checksum_ok == "1", redelivered == "1"))
        self.assertTrue(set(by_id) <= set(range(COUNT)), "the sink got pushes nobody enqueued")
        dead = expected_dead(COUNT)
        self.assertGreater(len(dead), 0, "the plan should make some pushes fail every attempt")
        self.assertEqual(set(dead_lines), dead, "the dead letters are not the pushes that failed %d times" % ATTEMPTS)
        dead_duplicates = len(dead_lines) - len(set(dead_lines))
        if kills == 0:
            self.assertEqual(dead_duplicates, 0)

        duplicates = 0
        ambiguous = 0
        for push_id in range(COUNT):
            got = by_id.get(push_id)
            self.assertTrue(got, "push %d never reached its endpoint" % push_id)
            for attempt, port, answer, checksum_ok, _ in got:
                self.assertTrue(checksum_ok, "push %d: the body's checksum failed" % push_id)
                self.assertEqual(port, ports[push_id % ENDPOINTS], "push %d went to the wrong endpoint" % push_id)
                self.assertEqual(answer, planned_answer(push_id, attempt), "push %d: the sink strayed" % push_id)
            oks = [r for r in got if r[2] == "ok"]
            if push_id in dead:
                self.assertEqual(oks, [], "push %d was dead-lettered and delivered" % push_id)
                self.assertEqual({r[0] for r in got}, set(range(ATTEMPTS)), "push %d: not all attempts" % push_id)
            else:
                self.assertTrue(oks, "push %d was never answered 2xx" % push_id)
                self.assertLess(max(r[0] for r in got), ATTEMPTS)
            if len(oks) > 1:
                duplicates += len(oks) - 1
                self.assertTrue(any(r[4] for r in oks), "push %d delivered twice, never redelivered" % push_id)
            seen = defaultdict(int)
            for r in got:
                seen[r[0]] += 1
            ambiguous += sum(n - 1 for a, n in seen.items() if planned_answer(push_id, a) == "drop")
        self.assertLessEqual(duplicates, kills * LANES, "more duplicates than the killed workers held")
        requests = sum(len(v) for v in by_id.values())
        print("push: %d pushes, %d endpoints, %d workers x %d lanes, %d kills; %d requests; dead letters %d "
              "(expected %d, %d duplicated); 2xx duplicates %d (bound %d); ambiguous retries %d"
              % (COUNT, ENDPOINTS, WORKERS, LANES, kills, requests, len(set(dead_lines)), len(dead), dead_duplicates,
                 duplicates, kills * LANES, ambiguous), file=sys.stderr)


class UnreachableAndMalformedTest(PushRun):
    """Endpoints that refuse connections or never answer, and records that are not pushes."""

    def test_refused_silent_and_malformed(self):
        self.under_watchdog(self.refused_silent_and_malformed)

    def refused_silent_and_malformed(self):
        sink, ports, records = self.start_sink(2)
        refused = socket.socket()  # bound, never listening: connecting to it is refused
        refused.bind(("127.0.0.1", 0))
        silent = socket.socket()  # listening, never reading: every attempt times out
        silent.bind(("127.0.0.1", 0))
        silent.listen(1024)
        for s in (refused, silent):
            self.addCleanup(s.close)
        refused_port, silent_port = (str(s.getsockname()[1]) for s in (refused, silent))
        ports_file = self.path("mixed-ports.txt")
        with open(ports_file, "w") as f:
            f.write("%d\n%s\n%d\n%s\n" % (ports[0], refused_port, ports[1], silent_port))
        dead_reader = self.start_dead_reader()
        workers = [self.start_worker(n, attempts=4, timeout_ms=500) for n in range(2)]
        count = 200  # push i goes to endpoint i % 4: 50 to each
        producer = self.enqueue(ports_file, 0, count, "enqueue")
        self.assertEqual(producer.wait(), 0)
        garbage = subprocess.run([SHMQ_CLI, "pub", self.queue, "--kind", "queue", "--no-close"],
                                 input=b"not a push\nx\n\x00\n", capture_output=True)
        self.assertEqual(garbage.returncode, 0, garbage.stderr)
        delivered, dead_lines = 0, []
        while delivered < count // 2 or len(dead_lines) < count // 2 + 3:
            name, line = self.next_event()
            if name in ("sink", "dead"):
                self.assertIsNotNone(line, "%s ended" % name)
            if name == "sink" and line.startswith("delivered "):
                delivered = int(line.split()[1])
            elif name == "dead":
                dead_lines.append(line.split())
        self.stop_workers(workers)
        sink.send_signal(signal.SIGTERM)
        self.assertEqual(sink.wait(), 0)
        self.assertEqual(delivered, count // 2)
        malformed = [d for d in dead_lines if d[1] == "-"]
        self.assertEqual(malformed, [["dead", "-", "malformed", "0", "0", "-", "-"]] * 3)
        failed = sorted(int(d[1]) for d in dead_lines if d[1] != "-")
        self.assertEqual(failed, [i for i in range(count) if i % 2 == 1])
        for d in dead_lines:
            if d[1] != "-":
                i = int(d[1])
                where = [refused_port, "/hook/1"] if i % 4 == 1 else [silent_port, "/hook/3"]
                self.assertEqual(d[2:7], ["failed_attempts", "4", "0"] + where, d)
        with open(records) as f:
            got = {int(line.split()[0]) for line in f}
        self.assertEqual(got, {i for i in range(count) if i % 2 == 0}, "the sink got other requests")


if __name__ == "__main__":
    unittest.main()

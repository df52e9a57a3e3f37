"""End to end through a real RabbitMQ: producer -> shmq channel A -> shmq-bridge out ->
broker -> shmq-bridge in -> shmq channel B -> consumer, with, one at a time: bridge out
SIGKILLed and restarted, bridge in SIGKILLed and restarted, the broker stopped and
started, the consumer on B SIGKILLed and restarted. Every message is stamped (sequence
number and checksum); every one must arrive intact, and duplicates are counted."""
import os
import signal
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import broker  # noqa: E402

BRIDGE = os.environ["SHMQ_BRIDGE"]
PEER = os.environ["SHMQ_BRIDGE_PEER"]
COUNT = int(os.environ.get("SHMQ_BRIDGE_TEST_COUNT", "20000"))
WATCHDOG = 150  # seconds, a generous bound that turns a hang into a failure


class BridgeTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="shmq-bridge-test-")
        self.broker = broker.Broker()
        self.broker.start()
        tag = "%d" % os.getpid()
        self.a, self.b, self.queue = "bridgeA" + tag, "bridgeB" + tag, "shmq-bridge-test-" + tag
        self.procs = {}
        self.seen = os.path.join(self.tmp, "seen")

    def tearDown(self):
        for p in self.procs.values():
            if p.poll() is None:
                p.kill()
            p.wait()
        self.broker.close()
        for n in (self.a, self.b):
            try:
                os.unlink("/dev/shm/" + n)
            except OSError:
                pass

    def spawn(self, key, args):
        log = open(os.path.join(self.tmp, key + ".log"), "a")
        self.procs[key] = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)

    def bridge_out(self):
        self.spawn("out", [BRIDGE, "out", self.a, "--url", self.broker.url, "--routing-key", self.queue,
                           "--queue", self.queue, "--confirm-window", "16", "--stats"])

    def bridge_in(self):
        self.spawn("in", [BRIDGE, "in", self.b, "--url", self.broker.url, "--queue", self.queue,
                          "--prefetch", "256", "--stats"])

    def consumer(self):
        self.spawn("consumer", [PEER, "consume", self.b, str(COUNT), self.seen])

    def kill(self, key):
        self.procs[key].send_signal(signal.SIGKILL)
        self.procs[key].wait()

    def lines(self):
        try:
            with open(self.seen) as f:
                return sum(1 for _ in f)
        except OSError:
            return 0

    def wait_progress(self, n):
        deadline = time.monotonic() + WATCHDOG
        while self.lines() < n:
            self.assertLess(time.monotonic(), deadline, "no progress past %d of %d\n%s" % (self.lines(), n, self.logs()))
            time.sleep(0.05)  # polling the consumer's progress, not a synchronisation

    def logs(self):
        out = ""
        for k in ("out", "in", "consumer"):
            try:
                with open(os.path.join(self.tmp, k + ".log")) as f:
                    out += "--- %s\n%s" % (k, f.read()[-2000:])
            except OSError:
                pass
        return out

    def test_every_message_through_faults(self):
        self.bridge_out()
        self.bridge_in()
        self.consumer()
        self.spawn("producer", [PEER, "produce", self.a, str(COUNT), "64"])
        self.wait_progress(COUNT // 5)
        self.kill("out")
        self.bridge_out()
        self.wait_progress(2 * COUNT // 5)
        self.kill("in")
        self.bridge_in()
        self.wait_progress(3 * COUNT // 5)
        self.broker.stop()
        self.broker.start()
        self.wait_progress(3 * COUNT // 5 + 100)
        self.kill("consumer")
        self.consumer()
        rc = self.procs["consumer"].wait(timeout=WATCHDOG)
        self.assertEqual(rc, 0, self.logs())
        self.assertEqual(self.procs["producer"].wait(timeout=WATCHDOG), 0)
        seen = {}
        with open(self.seen) as f:
            for line in f:
                s, r = line.split()
                seen[int(s)] = seen.get(int(s), 0) + 1
        self.assertEqual(sorted(seen), list(range(COUNT)), "a message is missing")
        dups = sum(c - 1 for c in seen.values())
        print("all %d messages arrived intact; %d duplicates (after the faults)" % (COUNT, dups))
        out = self.logs()
        self.assertIn("connected to amqp://guest:***@", out)
        self.assertNotIn("guest:guest", out, "the password was printed")


if __name__ == "__main__":
    unittest.main()

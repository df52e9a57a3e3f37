"""End to end through a real RabbitMQ: producer -> shmq channel A -> shmq-bridge out ->
broker -> shmq-bridge in (--envelope) -> shmq channel B -> consumer, with, one at a time:
bridge out SIGKILLed and restarted, bridge in SIGKILLed and restarted, the broker stopped
and started, the consumer on B SIGKILLed and restarted. Then the same, briefly, between
pub/sub channels (bridge out a member of a group, bridge in a publisher) through kills of
both bridges. Every message is stamped (sequence number and checksum); every one must
arrive intact, and a copy of a message is unflagged at most once: every duplicate is
flagged redelivered (by the envelope or by the ring)."""
import os
import shutil
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
PUBSUB_COUNT = 1000  # under the ring's 1024 slots: a group with no live member gates nobody (docs/limits.md)
WATCHDOG = 150  # seconds, a generous bound that turns a hang into a failure


class BridgeTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.broker = broker.Broker()
        cls.broker.start()

    @classmethod
    def tearDownClass(cls):
        cls.broker.close()

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="shmq-bridge-test-")
        tag = "%d%s" % (os.getpid(), self._testMethodName[5:10])
        self.a, self.b, self.queue = "bridgeA" + tag, "bridgeB" + tag, "shmq-bridge-test-" + tag
        self.procs, self.files = {}, []
        self.seen = os.path.join(self.tmp, "seen")
        self.kind = "mpmc"
        self.b_slots = 1024

    def tearDown(self):
        for p in self.procs.values():
            if p.poll() is None:
                p.kill()
            p.wait()
        for f in self.files:
            f.close()
        shutil.rmtree(self.tmp, ignore_errors=True)
        for n in (self.a, self.b):
            try:
                os.unlink("/dev/shm/shmq." + n)  # the segment of channel n
            except OSError:
                pass

    def spawn(self, key, args):
        log = open(os.path.join(self.tmp, key + ".log"), "a")
        self.files.append(log)
        self.procs[key] = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)

    def pubsub(self):
        return ["--pubsub"] if self.kind == "pubsub" else []

    def bridge_out(self):
        self.spawn("out", [BRIDGE, "out", self.a, "--url", self.broker.url, "--routing-key", self.queue,
                           "--queue", self.queue, "--confirm-window", "16", "--stats"] + self.pubsub())

    def bridge_in(self):
        self.spawn("in", [BRIDGE, "in", self.b, "--url", self.broker.url, "--queue", self.queue,
                          "--prefetch", "256", "--envelope", "--stats", "--slots", str(self.b_slots)] + self.pubsub())

    def consumer(self, count=COUNT):
        self.spawn("consumer", [PEER, "consume", self.kind, self.b, str(count), self.seen, str(self.b_slots)])

    def producer(self, count=COUNT):
        self.spawn("producer", [PEER, "produce", self.kind, self.a, str(count), "64"])

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

    def wait_log(self, key, text):
        deadline = time.monotonic() + WATCHDOG
        while True:
            with open(os.path.join(self.tmp, key + ".log")) as f:
                if text in f.read():
                    return
            self.assertLess(time.monotonic(), deadline, "%s never said '%s'\n%s" % (key, text, self.logs()))
            time.sleep(0.05)  # polling a log, not a synchronisation

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
        self.producer()
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
        self.check_delivery(COUNT)
        out = self.logs()
        self.assertIn("connected to amqp://guest:***@", out)
        self.assertNotIn("guest:guest", out, "the password was printed")

    def test_pubsub_group_through_bridge_kills(self):
        self.kind = "pubsub"
        self.b_slots = 64  # channel B wraps many times over: a message written to nobody would be lost
        self.bridge_in()
        self.bridge_out()  # a group on A: the producer waits for it
        self.producer(PUBSUB_COUNT)
        # Bridge in has nobody to publish to on B: it must hold the messages, not ack them.
        self.wait_log("in", "waiting for a subscriber on channel")
        self.consumer(PUBSUB_COUNT)
        self.wait_progress(PUBSUB_COUNT // 3)
        self.kill("out")  # its 16 members' messages go to the next members, flagged
        self.bridge_out()
        self.wait_progress(2 * PUBSUB_COUNT // 3)
        self.kill("in")
        self.bridge_in()
        self.check_delivery(PUBSUB_COUNT)

    def check_delivery(self, count):
        rc = self.procs["consumer"].wait(timeout=WATCHDOG)
        self.assertEqual(rc, 0, self.logs())
        self.assertEqual(self.procs["producer"].wait(timeout=WATCHDOG), 0)
        unflagged, copies, ids = {}, {}, {}
        with open(self.seen) as f:
            for line in f:
                s, flagged, message_id = line.split()
                s = int(s)
                copies[s] = copies.get(s, 0) + 1
                unflagged[s] = unflagged.get(s, 0) + (flagged == "0")
                # A message id (SOURCE:PID:N) names one message, whichever copy.
                self.assertEqual(ids.setdefault(message_id, s), s, "message id %s names two messages" % message_id)
        self.assertEqual(sorted(copies), list(range(count)), "a message is missing")
        unflagged_dups = [s for s, n in unflagged.items() if n > 1]
        self.assertEqual(unflagged_dups, [], "duplicates that were not flagged redelivered")
        dups = sum(n - 1 for n in copies.values())
        flagged = sum(copies[s] - unflagged[s] for s in copies)
        print("%s: all %d messages arrived intact; %d duplicates, %d copies flagged redelivered, "
              "no unflagged duplicate" % (self.kind, count, dups, flagged))


if __name__ == "__main__":
    unittest.main()

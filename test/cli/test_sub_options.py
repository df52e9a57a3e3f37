"""shmq sub's options: --json, --count, --timeout, --group, --from oldest, --history, and
what a sub killed by SIGPIPE leaves: the message it was writing is not lost, the next
consumer gets it flagged redelivered."""

import json
import os
import signal
import subprocess
import unittest

from support import HANG_GUARD_S, SHMQ, channel_test, run, start_subscriber, stat_json


def json_lines(output):
    return [json.loads(line) for line in output.decode().splitlines()]


class sub_options(channel_test):
    def test_json_shows_text_or_base64(self):
        name = self.channel("json")
        run("pub", name, "--length-prefixed", input=b"\x02\x00\x00\x00hi\x02\x00\x00\x00\x00\xff", check=0)
        out = json_lines(run("sub", name, "--json", check=0).stdout)
        self.assertEqual(out[0], {"size": 2, "flags": [], "missed": 0, "redelivered": False, "text": "hi"})
        self.assertEqual(out[1]["base64"], "AP8=")
        self.assertNotIn("text", out[1])

    def test_count_stops_early_and_leaves_the_rest(self):
        name = self.channel("count")
        run("pub", name, input=b"a\nb\nc\nd\n", check=0)
        self.assertEqual(run("sub", name, "--count", "2", check=0).stdout, b"a\nb\n")
        self.assertEqual(run("sub", name, check=0).stdout, b"c\nd\n")

    def test_timeout_fails_when_nothing_comes(self):
        name = self.channel("timeout")
        run("pub", name, "--no-close", input=b"only\n", check=0)
        p = run("sub", name, "--timeout", "50ms")
        self.assertExit(p, 1)
        self.assertEqual(p.stdout, b"only\n")
        self.assertIn(b"no message within 50ms", p.stderr)

    def test_queue_consumers_share_nothing_twice(self):
        name = self.channel("queue")
        run("pub", name, "--kind", "queue", "--no-close", input=b"".join(b"%d\n" % i for i in range(100)), check=0)
        first = run("sub", name, "--count", "30", check=0).stdout.split()
        run("pub", name, input=b"", check=0)  # close: the rest, then the end
        rest = run("sub", name, check=0).stdout.split()
        self.assertEqual(sorted(int(x) for x in first + rest), list(range(100)))

    def test_group_members_share_the_stream(self):
        name = self.channel("group")
        shape = ["--kind", "pubsub", "--slots", "16"]
        members = [start_subscriber(name, *shape, "--group", "workers") for _ in range(2)]
        everyone = start_subscriber(name, *shape)
        run("pub", name, *shape, input=b"".join(b"%d\n" % i for i in range(200)), check=0)
        got = []
        for m in members:
            out, _ = m.communicate(timeout=HANG_GUARD_S)
            self.assertEqual(m.returncode, 0)
            got += [int(x) for x in out.split()]
        self.assertEqual(sorted(got), list(range(200)))
        out, _ = everyone.communicate(timeout=HANG_GUARD_S)
        self.assertEqual([int(x) for x in out.split()], list(range(200)))

    def test_from_oldest_and_history(self):
        name = self.channel("history")
        run("pub", name, "--kind", "pubsub", input=b"a\nb\nc\nd\ne\n", check=0)
        self.assertEqual(run("sub", name, "--from", "oldest", check=0).stdout, b"a\nb\nc\nd\ne\n")
        self.assertEqual(run("sub", name, "--history", "2", check=0).stdout, b"d\ne\n")

    def sigpipe_leaves_the_message(self, name, kind, *sub_args):
        run("pub", name, "--kind", kind, "--no-close", input=b"first\nsecond\n", check=0)
        read_end, write_end = os.pipe()
        os.close(read_end)  # nobody will read: the first write raises SIGPIPE
        p = subprocess.run([SHMQ, "sub", name, *sub_args], stdout=write_end, stderr=subprocess.PIPE,
                           timeout=HANG_GUARD_S)
        os.close(write_end)
        self.assertEqual(p.returncode, -signal.SIGPIPE)
        out = json_lines(run("sub", name, *sub_args, "--json", "--count", "2", check=0).stdout)
        self.assertEqual([m["text"] for m in out], ["first", "second"])
        self.assertTrue(out[0]["redelivered"])
        self.assertEqual(out[0]["flags"], ["redelivered"])
        self.assertFalse(out[1]["redelivered"])
        self.assertEqual(stat_json(name)["counters"]["redelivered"], 1)

    def test_sigpipe_spsc(self):
        self.sigpipe_leaves_the_message(self.channel("pipe-spsc"), "spsc")

    def test_sigpipe_queue(self):
        self.sigpipe_leaves_the_message(self.channel("pipe-queue"), "queue")

    def test_sigpipe_pubsub_group(self):
        name = self.channel("pipe-group")
        # The group must exist before the messages are published to it.
        run("sub", name, "--kind", "pubsub", "--group", "g", "--timeout", "1ms")
        self.sigpipe_leaves_the_message(name, "pubsub", "--group", "g")


if __name__ == "__main__":
    unittest.main()

"""shmq stat, top, ls and rm: what they show of a channel, as text and JSON, once and
refreshed."""

import json
import os
import unittest

from support import HANG_GUARD_S, channel_test, run, start_subscriber, stat_json


class stat_and_top(channel_test):
    def test_spsc_fields(self):
        name = self.channel("spsc")
        run("pub", name, "--capacity", "8192", "--no-close", input=b"abc\ndefgh\n", check=0)
        s = stat_json(name)
        self.assertEqual((s["name"], s["kind"], s["unit"], s["capacity"]), (name, "spsc", "bytes", 8192))
        # Two records: an 8-byte commit word each, payloads padded to 8.
        self.assertEqual((s["fill"], s["write_position"], s["read_position"]), (32, 32, 0))
        self.assertEqual(s["counters"], {"committed": 32, "delivered": 0, "redelivered": 0, "missed": 0})
        self.assertFalse(s["closed"])
        self.assertEqual(s["participants"], [])
        text = run("stat", name, check=0).stdout.decode()
        for words in (f"{name}: spsc", "capacity      8192 bytes", "fill          32 bytes", "participants  none"):
            self.assertIn(words, text)

    def test_pubsub_participants_and_groups(self):
        name = self.channel("pubsub")
        shape = ["--kind", "pubsub", "--slots", "16"]
        sub = start_subscriber(name, *shape, "--group", "workers", "--count", "3")
        run("pub", name, *shape, "--no-close", input=b"1\n2\n", check=0)
        s = stat_json(name)
        self.assertEqual((s["kind"], s["policy"], s["unit"], s["capacity"]), ("pubsub", "block", "messages", 16))
        self.assertEqual(s["participants"], [{"role": "subscriber", "pid": sub.pid, "alive": True}])
        self.assertEqual(len(s["groups"]), 1)
        g = s["groups"][0]
        self.assertEqual((g["name"], g["state"], g["members"], g["orphan"]), ("workers", "active", 1, False))
        self.assertEqual(s["counters"]["committed"], 2)
        self.assertEqual(g["lag"], 2 - g["position"])
        text = run("stat", name, check=0).stdout.decode()
        self.assertIn("workers", text)
        self.assertIn(f"subscriber  pid {sub.pid}", text)
        run("pub", name, *shape, input=b"3\n", check=0)
        out, _ = sub.communicate(timeout=HANG_GUARD_S)
        self.assertEqual(out, b"1\n2\n3\n")
        g = stat_json(name)["groups"][0]
        self.assertEqual((g["state"], g["members"], g["lag"]), ("idle", 0, 0))

    def test_queue_counts_messages(self):
        name = self.channel("queue")
        run("pub", name, "--kind", "queue", "--slots", "8", "--no-close", input=b"x\ny\nz\n", check=0)
        run("sub", name, "--count", "1", check=0)
        s = stat_json(name)
        self.assertEqual((s["kind"], s["fill"], s["write_position"], s["read_position"]), ("mpmc", 2, 3, 1))

    def test_watch_adds_rates(self):
        name = self.channel("watch")
        run("pub", name, "--no-close", input=b"a\n", check=0)
        p = run("stat", name, "--watch", "--interval", "1ms", "--iterations", "3", "--json", check=0)
        frames = [json.loads(line) for line in p.stdout.decode().splitlines()]
        self.assertEqual(len(frames), 3)
        self.assertNotIn("rates", frames[0])  # nothing to compare with yet
        self.assertEqual(frames[2]["rates"]["committed_per_s"], 0)
        text = run("stat", name, "--watch", "--interval", "1ms", "--iterations", "2", check=0).stdout.decode()
        self.assertEqual(text.count(f"{name}: spsc"), 2)
        self.assertIn("rates         committed 0 B/s", text)

    def test_top_lists_every_segment(self):
        names = [self.channel("top-a"), self.channel("top-b")]
        for n in names:
            run("pub", n, "--no-close", input=b"a\n", check=0)
        p = run("top", "--json", "--iterations", "2", "--interval", "1ms", check=0)
        frames = [json.loads(line) for line in p.stdout.decode().splitlines()]
        self.assertEqual(len(frames), 2)
        shown = {c["name"]: c for c in frames[1]["channels"]}
        for n in names:
            self.assertIn(n, shown)
            self.assertIn("rates", shown[n])
        text = run("top", "--iterations", "1", check=0).stdout.decode()
        self.assertIn("NAME", text)
        for n in names:
            self.assertIn(n, text)

    def test_ls_and_rm(self):
        name = self.channel("ls")
        run("pub", name, "--no-close", input=b"a\n", check=0)
        self.assertIn(name.encode(), run("ls", check=0).stdout)
        self.assertEqual(run("rm", name, check=0).stdout, f"removed {name}\n".encode())
        self.assertFalse(os.path.exists(f"/dev/shm/shmq.{name}"))
        self.assertExit(run("rm", name), 1)


if __name__ == "__main__":
    unittest.main()

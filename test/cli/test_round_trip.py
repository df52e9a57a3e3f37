"""pub | sub round trips: every framing through every channel kind gives back exactly
what went in, and a large file of random bytes comes back byte-identical (checked by
SHA-256). SHMQ_CLI_ROUND_TRIP_MIB sets that file's size (default 64; 1024 for the 1 GB
run)."""

import hashlib
import os
import random
import subprocess
import tempfile
import unittest

from support import HANG_GUARD_S, SHMQ, channel_test, start_subscriber

KINDS = {  # shape options for each kind; queue and pubsub slots hold 4 KiB messages
    "spsc": ["--kind", "spsc", "--capacity", "65536", "--max-message-size", "4096"],
    "queue": ["--kind", "queue", "--slots", "64", "--max-message-size", "4096"],
    "pubsub": ["--kind", "pubsub", "--slots", "64", "--max-message-size", "4096"],
}
BIG_MIB = int(os.environ.get("SHMQ_CLI_ROUND_TRIP_MIB", "64"))


def length_prefixed(messages):
    return b"".join(len(m).to_bytes(4, "little") + m for m in messages)


class round_trip(channel_test):
    def pipe(self, name, kind, pub_args, sub_args, source, sink):
        """pub NAME < source, sub NAME > sink; both must exit 0. For pub/sub the subscriber
        attaches first (a publisher's messages go to the subscriptions that exist)."""
        shape = KINDS[kind]
        with open(sink, "wb") as out:
            if kind == "pubsub":
                sub = start_subscriber(name, *shape, *sub_args, stdout=out)
            else:
                sub = subprocess.Popen([SHMQ, "sub", name, *shape, *sub_args], stdout=out,
                                       stderr=subprocess.PIPE)
            with open(source, "rb") as src:
                pub = subprocess.run([SHMQ, "pub", name, *shape, *pub_args], stdin=src,
                                     capture_output=True, timeout=HANG_GUARD_S)
            _, err = sub.communicate(timeout=HANG_GUARD_S)
        self.assertEqual(pub.returncode, 0, pub.stderr)
        self.assertEqual(sub.returncode, 0, err)

    def files(self):
        d = tempfile.TemporaryDirectory(prefix="shmq-cli-")
        self.addCleanup(d.cleanup)
        return os.path.join(d.name, "in"), os.path.join(d.name, "out")

    def check_round_trip(self, framing_pub, framing_sub, data):
        for kind in KINDS:
            with self.subTest(kind=kind):
                source, sink = self.files()
                with open(source, "wb") as f:
                    f.write(data)
                self.pipe(self.channel(kind), kind, framing_pub, framing_sub, source, sink)
                with open(sink, "rb") as f:
                    self.assertEqual(f.read(), data)

    def test_lines(self):
        lines = [b"", b"hello", b"a line with spaces", b"x" * 4096] + [str(i).encode() for i in range(2000)]
        self.check_round_trip(["--lines"], ["--lines"], b"\n".join(lines) + b"\n")

    def test_length_prefixed_is_binary_safe(self):
        rng = random.Random(15)
        messages = [b"", b"\n\x00\xff"] + [rng.randbytes(rng.randrange(0, 4097)) for _ in range(500)]
        self.check_round_trip(["--length-prefixed"], ["--length-prefixed"], length_prefixed(messages))

    def test_chunk_and_raw(self):
        data = random.Random(16).randbytes(1_000_003)  # the last chunk is shorter
        self.check_round_trip(["--chunk", "4096"], ["--raw"], data)

    def test_file_channels_keep_messages_after_the_publisher_exits(self):
        """pub into a file-backed channel (--file), exit, then sub reads every line back:
        spsc and queue, at each durability level."""
        data = b"\n".join(str(i).encode() * (i % 7 + 1) for i in range(60)) + b"\n"
        for kind in ("spsc", "queue"):
            for level in ("none", "group-commit", "per-commit"):
                with self.subTest(kind=kind, level=level):
                    d = tempfile.TemporaryDirectory(prefix="shmq-cli-file-", dir="/var/tmp")
                    self.addCleanup(d.cleanup)
                    # A per-commit SPSC message takes a page of the ring: 1 MiB holds 60.
                    shape = [*KINDS[kind], "--file", os.path.join(d.name, "c.shmq")]
                    if kind == "spsc":
                        shape[shape.index("--capacity") + 1] = "1048576"
                    pub = subprocess.run([SHMQ, "pub", "c", *shape, "--durability", level], input=data,
                                         capture_output=True, timeout=HANG_GUARD_S)
                    self.assertEqual(pub.returncode, 0, pub.stderr)
                    sub = subprocess.run([SHMQ, "sub", "c", *shape], capture_output=True, timeout=HANG_GUARD_S)
                    self.assertEqual(sub.returncode, 0, sub.stderr)
                    self.assertEqual(sub.stdout, data)
                    # Opened as another kind: a clear error, not a crash.
                    other = "queue" if kind == "spsc" else "spsc"
                    bad = subprocess.run([SHMQ, "sub", "c", "--kind", other, "--file", shape[-1]],
                                         capture_output=True, timeout=HANG_GUARD_S)
                    self.assertNotEqual(bad.returncode, 0)
                    self.assertIn(b"not an", bad.stderr)

    def test_a_pubsub_file_keeps_a_groups_messages_between_members(self):
        """pub/sub in a file (--file): a member of group g takes the first 10 lines and
        exits; pub sends all 60 and exits; a later member gets the other 50 and the end of
        the stream. At each durability level."""
        lines = [str(i).encode() * (i % 7 + 1) for i in range(60)]
        data = b"\n".join(lines) + b"\n"
        for level in ("none", "group-commit", "per-commit"):
            with self.subTest(level=level):
                d = tempfile.TemporaryDirectory(prefix="shmq-cli-file-", dir="/var/tmp")
                self.addCleanup(d.cleanup)
                shape = [*KINDS["pubsub"], "--file", os.path.join(d.name, "c.shmq"), "--durability", level]
                first = start_subscriber("c", *shape, "--group", "g", "--count", "10")
                pub = subprocess.run([SHMQ, "pub", "c", *shape], input=data, capture_output=True,
                                     timeout=HANG_GUARD_S)
                self.assertEqual(pub.returncode, 0, pub.stderr)
                out, err = first.communicate(timeout=HANG_GUARD_S)
                self.assertEqual(first.returncode, 0, err)
                self.assertEqual(out, b"".join(m + b"\n" for m in lines[:10]))
                rest = subprocess.run([SHMQ, "sub", "c", *shape, "--group", "g"], capture_output=True,
                                      timeout=HANG_GUARD_S)
                self.assertEqual(rest.returncode, 0, rest.stderr)
                self.assertEqual(rest.stdout, b"".join(m + b"\n" for m in lines[10:]))

    def test_large_random_file_is_byte_identical(self):
        """BIG_MIB MiB of random bytes, SPSC, 64 KiB chunks, then length-prefixed."""
        source, sink = self.files()
        digest = hashlib.sha256()
        with open(source, "wb") as f:
            for _ in range(BIG_MIB):
                block = os.urandom(1 << 20)
                digest.update(block)
                f.write(block)
        name = self.channel("big")
        shape = ["--kind", "spsc", "--capacity", str(4 << 20), "--max-message-size", "65536"]
        with open(sink, "wb") as out, open(source, "rb") as src:
            sub = subprocess.Popen([SHMQ, "sub", name, *shape, "--raw"], stdout=out, stderr=subprocess.PIPE)
            pub = subprocess.run([SHMQ, "pub", name, *shape, "--chunk", "65536"], stdin=src,
                                 capture_output=True, timeout=HANG_GUARD_S)
            _, err = sub.communicate(timeout=HANG_GUARD_S)
        self.assertEqual(pub.returncode, 0, pub.stderr)
        self.assertEqual(sub.returncode, 0, err)
        back = hashlib.sha256()
        with open(sink, "rb") as f:
            while block := f.read(1 << 20):
                back.update(block)
        self.assertEqual(back.hexdigest(), digest.hexdigest())


if __name__ == "__main__":
    unittest.main()

"""shmq stat and shmq top on hostile segments: valid segments of every kind with random
bytes overwritten, truncated or extended, and pure garbage. Whatever the segment holds,
they exit 0 (with JSON that parses) or 1 (with an error line), never by a signal.
SHMQ_CLI_FUZZ_CASES sets the number of mutated images per kind (default 150);
SHMQ_CLI_FUZZ_SEED replays a run."""

import json
import os
import random
import subprocess
import unittest

from support import HANG_GUARD_S, SHMQ, channel_test, run

CASES = int(os.environ.get("SHMQ_CLI_FUZZ_CASES", "150"))
SEED = int(os.environ.get("SHMQ_CLI_FUZZ_SEED", str(random.SystemRandom().randrange(1 << 30))))
KINDS = {
    "spsc": ["--kind", "spsc", "--capacity", "4096"],
    "queue": ["--kind", "queue", "--slots", "4", "--max-message-size", "64"],
    "pubsub": ["--kind", "pubsub", "--slots", "4", "--max-message-size", "64"],
}


def shm_path(name):
    return f"/dev/shm/shmq.{name}"


def mutate(image, rng):
    data = bytearray(image)
    what = rng.randrange(6)
    if what == 0:  # a few random bytes anywhere in the header and control blocks
        for _ in range(rng.randrange(1, 9)):
            data[rng.randrange(min(len(data), 8192))] = rng.randrange(256)
    elif what == 1:  # one 64-bit word set to an edge value
        at = rng.randrange(0, min(len(data), 8192) - 8) & ~7
        data[at:at + 8] = rng.choice([0, 1, 2**63, 2**64 - 1, 2**32, 4096, 4095]).to_bytes(8, "little")
    elif what == 2:  # truncated
        del data[rng.randrange(len(data)):]
    elif what == 3:  # extended
        data += bytes(rng.randrange(1, 8192))
    elif what == 4:  # random bytes over a whole range
        at = rng.randrange(len(data))
        n = rng.randrange(1, 512)
        data[at:at + n] = rng.randbytes(min(n, len(data) - at))
    else:  # garbage of a random size
        data = bytearray(rng.randbytes(rng.randrange(0, 16384)))
    return bytes(data)


class hostile_segments(channel_test):
    def check_stat(self, name, image):
        args = ["stat", name, "--json"]
        p = subprocess.run([SHMQ, *args], capture_output=True, timeout=HANG_GUARD_S)
        self.assertIn(p.returncode, (0, 1), f"seed {SEED}: {p.stderr!r}")
        if p.returncode == 0:
            json.loads(p.stdout)
        else:
            self.assertTrue(p.stderr.startswith(b"shmq stat: "), p.stderr)

    def test_mutated_segments(self):
        print(f"\nseed {SEED}", flush=True)
        rng = random.Random(SEED)
        for kind, shape in KINDS.items():
            source = self.channel(kind)
            run("pub", source, *shape, "--no-close", input=b"one\ntwo\nthree\n", check=0)
            with open(shm_path(source), "rb") as f:
                image = f.read()
            target = self.channel(kind + "-bad")
            for case in range(CASES):
                bad = mutate(image, rng)
                with open(shm_path(target), "wb") as f:
                    f.write(bad)
                with self.subTest(kind=kind, case=case):
                    self.check_stat(target, bad)
                    if case % 25 == 0:  # top reads every segment: slower, so now and then
                        p = run("top", "--json", "--iterations", "1")
                        self.assertEqual(p.returncode, 0, f"seed {SEED}: {p.stderr!r}")
                        json.loads(p.stdout)


if __name__ == "__main__":
    unittest.main()

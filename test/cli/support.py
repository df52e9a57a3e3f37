"""What the shmq command tests share: where the binary is, unique channel names that
are removed afterwards, running the command, and handshakes (never sleeps).

The binary is $SHMQ (meson passes it), else build/tools/shmq.
"""

import json
import os
import subprocess
import unittest

SHMQ = os.environ.get("SHMQ") or os.path.join(os.path.dirname(__file__), "..", "..", "build", "tools", "shmq")
# A bound on every wait, so that a hang fails the test instead of stalling the suite;
# never a timing assertion.
HANG_GUARD_S = int(__import__("os").environ.get("SHMQ_CLI_HANG_GUARD_S", "300"))


def run(*args, stdin=None, input=None, check=None):
    """Runs shmq ARGS; returns the CompletedProcess (stdout and stderr as bytes)."""
    p = subprocess.run([SHMQ, *args], stdin=stdin, input=input, capture_output=True,
                       timeout=HANG_GUARD_S)
    if check is not None and p.returncode != check:
        raise AssertionError(f"shmq {' '.join(args)}: exit {p.returncode}, wanted {check}\n"
                             f"stderr: {p.stderr.decode(errors='replace')}")
    return p


def stat_json(name):
    return json.loads(run("stat", name, "--json", check=0).stdout)


def start_subscriber(*args, stdout=subprocess.PIPE):
    """Starts `shmq sub ARGS --ready` and returns once it says it is subscribed."""
    p = subprocess.Popen([SHMQ, "sub", *args, "--ready"], stdout=stdout, stderr=subprocess.PIPE)
    line = p.stderr.readline()
    if line != b"shmq sub: ready\n":
        p.kill()
        raise AssertionError(f"sub did not get ready: {line!r} {p.stderr.read()!r}")
    return p


class channel_test(unittest.TestCase):
    """Gives each test unique channel names (self.channel("x")) and removes them."""

    def setUp(self):
        self._names = []

    def tearDown(self):
        for name in self._names:
            subprocess.run([SHMQ, "rm", name], capture_output=True, timeout=HANG_GUARD_S)

    def channel(self, what):
        name = f"cli-test-{os.getpid()}-{len(self._names)}-{what}"
        self._names.append(name)
        return name

    def assertExit(self, process, status):
        err = process.stderr.decode(errors="replace") if isinstance(process.stderr, bytes) else ""
        self.assertEqual(process.returncode, status, f"stderr: {err}")

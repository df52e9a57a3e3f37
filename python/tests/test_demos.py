"""The Python demos (demo/python/) run briefly, across their real processes: each checks
every message itself and exits non-zero on a loss, a duplicate or a bad checksum."""

import os
import subprocess
import sys

import pytest

DEMOS = os.path.join(os.path.dirname(__file__), "..", "..", "demo", "python")


@pytest.mark.parametrize("demo, args, says", [
    ("pubsub_callbacks.py", ["--count", "3000"], ["dashboard: 3000 ticks, 300 alerts", "logger: 3000 ticks"]),
    ("asyncio_pipeline.py", ["--count", "3000"], ["3000 jobs, each acknowledged once and in order"]),
    ("work_queue.py", ["--count", "3000"], ["3 competing workers", "group billing got all 3000",
                                            "group shipping got all 3000"]),
    ("kill_restart.py", ["--count", "3000", "--kills", "2"], ["killed 2 times with SIGKILL", "0 lost"]),
])
def test_demo(demo, args, says):
    run = subprocess.run([sys.executable, os.path.join(DEMOS, demo), *args], capture_output=True, text=True,
                         timeout=60)
    assert run.returncode == 0, run.stdout + run.stderr
    for line in says:
        assert line in run.stdout, run.stdout
    assert run.stdout.rstrip().endswith(": ok")

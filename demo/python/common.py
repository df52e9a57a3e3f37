"""What the Python demos share: stamped messages, peers started as processes, a watchdog.

A stamped message is a sequence number (8 bytes), a CRC-32 of the rest (4 bytes) and a
payload made from the sequence number, so a peer can tell a lost, doubled, reordered or
torn message from a good one.
"""

import argparse
import os
import signal
import struct
import subprocess
import sys
import zlib

import shmq

HEADER = struct.Struct("<QI")


def stamp(seq, size=64):
    payload = (seq.to_bytes(8, "little") * (size // 8 + 1))[: max(size - HEADER.size, 0)]
    return HEADER.pack(seq, zlib.crc32(payload)) + payload


def check(buf):
    """The sequence number of a stamped message; ValueError if it is damaged."""
    b = memoryview(buf)
    seq, crc = HEADER.unpack_from(b)
    if zlib.crc32(b[HEADER.size:]) != crc:
        raise ValueError(f"message {seq}: bad checksum")
    return seq


def channel_name(demo):
    """A channel name of this run (removed again by remove())."""
    name = f"demo.{demo}.{os.getpid()}"
    shmq.remove_segment(name)
    return name


def remove(*names):
    for n in names:
        shmq.remove_segment(n)


def spawn(script, *args, stdout=None):
    """Starts `python3 script args...` with this interpreter and environment."""
    return subprocess.Popen([sys.executable, script, *map(str, args)], stdout=stdout, text=True)


def wait_all(procs, what):
    """Waits for every process; SystemExit naming the first that failed."""
    codes = [p.wait() for p in procs]
    bad = [c for c in codes if c != 0]
    if bad:
        raise SystemExit(f"{what}: a peer exited with {bad[0]}")


def watchdog(seconds):
    """Ends this process if it is still running after `seconds` (a hang is a failure)."""
    def expired(*_):
        sys.stderr.write(f"{os.path.basename(sys.argv[0])}: still running after {seconds} s: stopping\n")
        os._exit(3)

    signal.signal(signal.SIGALRM, expired)
    signal.alarm(seconds)


def command_line(count, **more):
    """A demo's arguments: --count N, --NAME N for each of `more` (name=default), and
    --peer ARG... with which the demo starts itself as one of its peers. Starts the
    watchdog."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--count", type=int, default=count, help=f"messages (default {count})")
    for key, default in more.items():
        ap.add_argument(f"--{key}", type=int, default=default, help=f"(default {default})")
    ap.add_argument("--peer", nargs="+", metavar="ARG", help="run as a peer (the demo starts them itself)")
    args = ap.parse_args()
    watchdog(120)
    return args

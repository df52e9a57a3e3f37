"""Real timing through the event loop: a consumer idle for many liveness intervals, a
producer stopped with SIGSTOP and continued, a producer killed with SIGKILL while the
consumer waits. The pauses here make idle periods; they synchronise nothing (each side
waits for the other through the channel or a pipe)."""

import asyncio
import os
import signal
import subprocess
import sys

import pytest

import shmq
import stamp

LIVENESS = 0.02  # seconds: every pause below is several of these
OPTS = dict(capacity=1 << 12, max_message_size=256, liveness_interval=LIVENESS, when_producer_gone="report")

PEER = """
import sys, shmq, stamp
p = shmq.SpscProducer(sys.argv[1], capacity=1 << 12, max_message_size=256, liveness_interval=%r)
mode, count = sys.argv[2], int(sys.argv[3])
if mode == "on-request":
    sys.stdin.readline()
for seq in range(count):
    p.send(stamp.make(seq, 100))
print("sent", flush=True)
if mode == "then-hang":
    sys.stdin.readline()  # alive and quiet until killed
p.close()
""" % LIVENESS


def peer(name, mode, count):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([os.path.dirname(__file__)] + sys.path))
    return subprocess.Popen([sys.executable, "-c", PEER, name, mode, str(count)], env=env,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 60))  # the watchdog


def test_idle_for_many_liveness_intervals_then_a_message(name):
    async def main():
        c = shmq.SpscConsumer(name, **OPTS)
        proc = peer(name, "on-request", 1)
        reader = asyncio.ensure_future(c.read_async())
        await asyncio.sleep(10 * LIVENESS)  # ten ticks of the armed descriptor, nothing sent
        assert not reader.done()
        proc.stdin.write("go\n")
        proc.stdin.flush()
        assert stamp.check(await reader) == 0
        assert [m async for m in c] == []  # then the end of the stream
        assert proc.wait(timeout=30) == 0

    run(main())


def test_a_stopped_producer_is_alive_and_resumes(name):
    count = 2000

    async def main():
        c = shmq.SpscConsumer(name, **OPTS)
        proc = peer(name, "stream", count)
        expected = 0
        while expected < 100:
            assert stamp.check(await c.read_async(timeout=30)) == expected
            expected += 1
        proc.send_signal(signal.SIGSTOP)
        try:
            while True:  # take what was sent before it stopped
                msg = await c.read_async(timeout=10 * LIVENESS)
                assert stamp.check(msg) == expected
                expected += 1
        except asyncio.TimeoutError:
            pass  # stopped for ten intervals and more: waited, never reported gone
        finally:
            proc.send_signal(signal.SIGCONT)
        async for msg in c:
            assert stamp.check(msg) == expected
            expected += 1
        assert expected == count
        assert proc.wait(timeout=30) == 0

    run(main())


def test_a_killed_producer_is_reported_to_the_waiting_loop(name):
    async def main():
        c = shmq.SpscConsumer(name, **OPTS)
        proc = peer(name, "then-hang", 5)
        assert [stamp.check(await c.read_async(timeout=30)) for _ in range(5)] == list(range(5))
        assert proc.stdout.readline() == "sent\n"
        reader = asyncio.ensure_future(c.read_async())
        await asyncio.sleep(5 * LIVENESS)  # armed and waiting, the producer alive and quiet
        assert not reader.done()
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        with pytest.raises(shmq.ProducerGoneError):
            await reader  # within a liveness interval or so, through the descriptor's tick

    run(main())

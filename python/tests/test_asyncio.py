"""asyncio on the readiness descriptor: waits, timeouts, cancellation, many channels,
callbacks, and a lost-wake-up stress across processes through the event loop."""

import asyncio
import os
import random
import subprocess
import sys

import pytest

import shmq
import stamp

OPTS = dict(capacity=1 << 12, max_message_size=256)


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 120))  # the watchdog


def test_timeout_and_cancellation_take_nothing(name):
    async def main():
        p = shmq.SpscProducer(name, **OPTS)
        c = shmq.SpscConsumer(name, **OPTS)
        with pytest.raises(asyncio.TimeoutError):
            await c.read_async(timeout=0.05)
        task = asyncio.ensure_future(c.receive_async())
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        p.send(stamp.make(0))
        assert stamp.check(await c.receive_async(timeout=5)) == 0  # nothing half-taken
        # A full ring: send_async waits for room, the consumer makes it.
        n = 0
        while p.try_send(stamp.make(n + 1, 200)):
            n += 1
        sender = asyncio.ensure_future(p.send_async(stamp.make(n + 1, 200)))
        await asyncio.sleep(0.01)
        assert not sender.done()
        for seq in range(1, n + 2):
            assert stamp.check(await c.receive_async(timeout=5)) == seq
            if seq == 1:
                await sender
        p.close()
        assert [m async for m in c] == []

    run(main())


def test_many_channels_on_one_loop_and_callbacks(name):
    async def main():
        names = [f"{name}.{i}" for i in range(4)]
        pubs = [shmq.Publisher(n, slots=16, max_message_size=64) for n in names]
        subs = [shmq.Subscriber(n, slots=16, max_message_size=64) for n in names]
        got = {n: [] for n in names}
        subscriptions = [s.subscribe(lambda m, n=n: got[n].append(stamp.check(m))) for n, s in zip(names, subs)]
        for seq in range(50):
            for p in pubs:
                await p.send_async(stamp.make(seq, 32))
        for p in pubs:
            p.close()
        await asyncio.gather(*(s.done for s in subscriptions))
        assert all(v == list(range(50)) for v in got.values())
        for n in names:
            shmq.remove_segment(n)

    run(main())


PRODUCER = """
import random, sys, time, shmq, stamp
p = shmq.SpscProducer(sys.argv[1], capacity=1 << 12, max_message_size=256)
rng = random.Random(1)
seq = 0
while seq < int(sys.argv[2]):
    for _ in range(min(rng.randint(1, 40), int(sys.argv[2]) - seq)):
        p.send(stamp.make(seq, rng.choice((16, 64, 200))))
        seq += 1
    if rng.random() < 0.3:
        time.sleep(rng.random() * 0.003)
p.close()
"""


def test_lost_wakeup_stress_through_the_loop(name):
    """Bursts and random pauses on both sides; the consumer waits only through the loop."""
    count = 30000

    async def main():
        c = shmq.SpscConsumer(name, **OPTS)
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([os.path.dirname(__file__)] + sys.path))
        proc = subprocess.Popen([sys.executable, "-c", PRODUCER, name, str(count)], env=env)
        rng = random.Random(2)
        expected = 0
        async for msg in c:
            assert stamp.check(msg) == expected
            expected += 1
            if rng.random() < 0.01:
                await asyncio.sleep(rng.random() * 0.003)
        assert proc.wait(timeout=60) == 0
        assert expected == count

    run(main())

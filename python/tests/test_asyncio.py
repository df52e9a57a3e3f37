"""asyncio on the readiness descriptor: waits, timeouts, cancellation, many channels,
callbacks, and a lost-wake-up stress across processes through the event loop."""

import asyncio
import os
import random
import subprocess
import sys
import time

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


def peer(code, *args):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([os.path.dirname(__file__)] + sys.path))
    return subprocess.Popen([sys.executable, "-c", code, *map(str, args)], env=env)


def test_cancelled_send_async_sends_nothing(name):
    async def main():
        p = shmq.SpscProducer(name, **OPTS)
        c = shmq.SpscConsumer(name, **OPTS)
        n = 0
        while p.try_send(stamp.make(n, 200)):
            n += 1
        for how in ("cancel", "timeout"):
            if how == "cancel":
                sender = asyncio.ensure_future(p.send_async(stamp.make(n, 200)))
                for _ in range(3):
                    await asyncio.sleep(0)  # the sender is armed and waits
                sender.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await sender
            else:
                with pytest.raises(asyncio.TimeoutError):
                    await p.send_async(stamp.make(n, 200), timeout=0.01)
            with pytest.raises(asyncio.TimeoutError):
                await p.loan_async(200, timeout=0.01)
        assert [stamp.check(c.try_receive()) for _ in range(n)] == list(range(n))
        assert c.try_receive() is None  # the cancelled and timed-out sends left nothing
        await p.send_async(stamp.make(n, 200))
        assert stamp.check(await c.receive_async(timeout=5)) == n

    run(main())


def test_unsubscribe_leaves_the_rest_for_the_next_reader(name):
    async def main():
        o = dict(slots=64, max_message_size=64)
        pub = shmq.Publisher(name, **o)
        sub = shmq.Subscriber(name, **o)
        seen = []
        subscription = None

        async def callback(msg):
            seen.append(stamp.check(msg))
            if len(seen) == 10:
                subscription.unsubscribe()  # ends after this callback, which runs to its end
            await asyncio.sleep(0)

        subscription = sub.subscribe(callback)
        for seq in range(30):
            await pub.send_async(stamp.make(seq, 32))
        assert await subscription.done is None
        assert seen == list(range(10))
        assert [stamp.check(sub.try_receive()) for _ in range(20)] == list(range(10, 30))
        idle = sub.subscribe(seen.append)
        await asyncio.sleep(0)
        idle.unsubscribe()  # cancels the wait for a message: it takes nothing
        assert await idle.done is None
        pub.send(stamp.make(30, 32))
        assert stamp.check(sub.receive(timeout=5)) == 30

    run(main())


def test_random_cancellation_across_processes_takes_nothing_half(name):
    """A producer process streams; every read here is cancelled or timed out at a random
    moment or completes: the messages that arrive are every message, once, in order."""
    count = 5000

    async def main():
        c = shmq.SpscConsumer(name, **OPTS)
        proc = peer(PRODUCER, name, count, 0)
        rng = random.Random(3)
        expected = cancelled = 0
        while True:
            how = rng.random()
            try:
                if how < 0.3:
                    msg = await c.read_async(timeout=rng.choice((0.00005, 0.0005)))
                else:
                    task = asyncio.ensure_future(c.read_async())
                    done, _ = await asyncio.wait({task}, timeout=rng.choice((0, 0.00005, 0.0005)))
                    if not done:
                        task.cancel()
                    msg = await task
            except (asyncio.CancelledError, asyncio.TimeoutError):
                cancelled += 1
                continue
            except shmq.ClosedError:
                break
            assert stamp.check(msg) == expected
            expected += 1
        assert proc.wait(timeout=60) == 0
        assert expected == count and cancelled > 100

    run(main())


PRODUCER = """
import random, sys, time, shmq, stamp
p = shmq.SpscProducer(sys.argv[1], capacity=1 << 12, max_message_size=256, spin=float(sys.argv[3]))
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


ASYNC_PRODUCER = """
import asyncio, random, sys, shmq, stamp
async def main():
    p = shmq.SpscProducer(sys.argv[1], capacity=1 << 12, max_message_size=256, spin=float(sys.argv[3]))
    rng = random.Random(4)
    for seq in range(int(sys.argv[2])):
        await p.send_async(stamp.make(seq, rng.choice((16, 64, 200))))
        if rng.random() < 0.005:
            await asyncio.sleep(rng.random() * 0.003)
    p.close()
asyncio.run(main())
"""


@pytest.mark.parametrize("spin", [0, 50e-6], ids=["spin=0", "spin=50us"])
def test_lost_wakeup_stress_through_the_loop(name, spin):
    """Bursts and random pauses on both sides; the consumer waits only through the loop
    (with spin=0, every wait arms and goes through the descriptor)."""
    count = 30000

    async def main():
        c = shmq.SpscConsumer(name, spin=spin, **OPTS)
        proc = peer(PRODUCER, name, count, spin)
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


@pytest.mark.parametrize("spin", [0, 50e-6], ids=["spin=0", "spin=50us"])
def test_lost_wakeup_stress_of_back_pressure_through_the_loop(name, spin):
    """The producer process waits for room only through its loop (send_async); the
    consumer here reads in bursts with random pauses."""
    count = 20000
    c = shmq.SpscConsumer(name, spin=spin, **OPTS)
    proc = peer(ASYNC_PRODUCER, name, count, spin)
    rng = random.Random(5)
    expected = 0
    for msg in c:
        assert stamp.check(msg) == expected
        expected += 1
        if rng.random() < 0.01:
            time.sleep(rng.random() * 0.003)  # a pause (not a synchronisation): the ring fills
    assert proc.wait(timeout=60) == 0
    assert expected == count

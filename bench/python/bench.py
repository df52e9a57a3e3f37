#!/usr/bin/env python3
"""Python to Python across two processes: shmq against multiprocessing.Queue, asyncio
streams over a Unix socket and ZeroMQ ipc://, all measured in this run, each side
pinned to its own CPU. Prints a table and the ratios of the targets.

    PYTHONPATH=build/python /usr/bin/python3 bench/python/bench.py [--quick]
"""

import asyncio
import multiprocessing as mp
import os
import socket
import statistics
import sys
import tempfile
import time

import shmq
import zmq

QUICK = "--quick" in sys.argv
N_SMALL = 200_000 if QUICK else 1_000_000
N_BIG = 5_000 if QUICK else 20_000
N_PING = 5_000 if QUICK else 20_000
CPUS = sorted(os.sched_getaffinity(0))[:2]


def pin(i):
    os.sched_setaffinity(0, {CPUS[i % len(CPUS)]})


def run_pair(sender, receiver, *args):
    """Runs sender in a child on CPU 1, receiver here on CPU 0; the receiver's result."""
    child = mp.get_context("fork").Process(target=lambda: (pin(1), sender(*args)))
    pin(0)
    child.start()
    try:
        return receiver(*args)
    finally:
        child.join()


# ---- throughput: (count, size) -> seconds for `count` messages, measured by the receiver

def shmq_send(name, count, size):
    p = shmq.SpscProducer(name, capacity=1 << 24, max_message_size=1 << 17)
    data = bytes(size)
    for _ in range(count):
        p.send(data)
    p.close()


def shmq_recv(name, count, size):
    c = shmq.SpscConsumer(name, capacity=1 << 24, max_message_size=1 << 17)
    first = c.receive()
    t0 = time.perf_counter()
    n = 1
    if size >= 4096:  # zero-copy: read in place, touch the bytes once
        for msg in c:
            memoryview(msg)[-1]
            n += 1
    else:
        receive = c.receive
        try:
            while True:
                receive()
                n += 1
        except shmq.ClosedError:
            pass
    assert n == count, n
    return time.perf_counter() - t0, len(first)


def queue_send(q, count, size):
    data = bytes(size)
    for _ in range(count):
        q.put(data)


def queue_recv(q, count, size):
    q.get()
    t0 = time.perf_counter()
    for _ in range(count - 1):
        q.get()
    return time.perf_counter() - t0, size


def zmq_send(addr, count, size):
    s = zmq.Context.instance().socket(zmq.PUSH)
    s.connect(addr)
    data = bytes(size)
    for _ in range(count):
        s.send(data)
    s.close(linger=-1)


def zmq_recv(addr, count, size):
    s = zmq.Context.instance().socket(zmq.PULL)
    s.bind(addr)
    s.recv()
    t0 = time.perf_counter()
    for _ in range(count - 1):
        s.recv()
    t = time.perf_counter() - t0
    s.close()
    return t, size


def throughput(kind, count, size):
    name = f"bench.py.{os.getpid()}"
    shmq.remove_segment(name)
    try:
        if kind == "shmq":
            t, _ = run_pair(shmq_send, shmq_recv, name, count, size)
        elif kind == "mp.Queue":
            q = mp.get_context("fork").Queue(maxsize=1000)
            t, _ = run_pair(queue_send, queue_recv, q, count, size)
        else:
            addr = f"ipc://{tempfile.gettempdir()}/bench-{os.getpid()}.ipc"
            t, _ = run_pair(zmq_send, zmq_recv, addr, count, size)
    finally:
        shmq.remove_segment(name)
    return (count - 1) / t


# ---- ping-pong latency: microseconds per round trip, p50 and p99

def shmq_echo(name, n, use_async):
    o = dict(capacity=1 << 16, max_message_size=1024)
    back = shmq.SpscProducer(name + ".b", **o)
    there = shmq.SpscConsumer(name + ".a", **o)
    if use_async:
        async def main():
            for _ in range(n):
                await back.send_async(await there.receive_async())
        asyncio.run(main())
    else:
        for _ in range(n):
            back.send(there.receive())


def shmq_ping(name, n, use_async):
    o = dict(capacity=1 << 16, max_message_size=1024)
    there = shmq.SpscProducer(name + ".a", **o)
    back = shmq.SpscConsumer(name + ".b", **o)
    data = bytes(64)
    rtts = []
    if use_async:
        async def main():
            for _ in range(n):
                t0 = time.perf_counter()
                await there.send_async(data)
                await back.receive_async()
                rtts.append(time.perf_counter() - t0)
        asyncio.run(main())
    else:
        for _ in range(n):
            t0 = time.perf_counter()
            there.send(data)
            back.receive()
            rtts.append(time.perf_counter() - t0)
    return rtts


def unix_echo(path, n, _):
    async def main():
        while not os.path.exists(path):
            await asyncio.sleep(0.001)
        r, w = await asyncio.open_unix_connection(path)
        for _ in range(n):
            w.write(await r.readexactly(64))
            await w.drain()
        w.close()
    asyncio.run(main())


def unix_ping(path, n, _):
    rtts = []
    done = asyncio.Event

    async def main():
        finished = asyncio.get_running_loop().create_future()

        async def serve(r, w):
            data = bytes(64)
            for _ in range(n):
                t0 = time.perf_counter()
                w.write(data)
                await w.drain()
                await r.readexactly(64)
                rtts.append(time.perf_counter() - t0)
            finished.set_result(None)

        server = await asyncio.start_unix_server(serve, path)
        await finished
        server.close()
    asyncio.run(main())
    os.unlink(path)
    return rtts


def zmq_echo(addr, n, _):
    s = zmq.Context.instance().socket(zmq.REP)
    s.connect(addr)
    for _ in range(n):
        s.send(s.recv())
    s.close()


def zmq_ping(addr, n, _):
    s = zmq.Context.instance().socket(zmq.REQ)
    s.bind(addr)
    data = bytes(64)
    rtts = []
    for _ in range(n):
        t0 = time.perf_counter()
        s.send(data)
        s.recv()
        rtts.append(time.perf_counter() - t0)
    s.close()
    return rtts


def queue_echo(qs, n, _):
    a, b = qs
    for _ in range(n):
        b.put(a.get())


def queue_ping(qs, n, _):
    a, b = qs
    data = bytes(64)
    rtts = []
    for _ in range(n):
        t0 = time.perf_counter()
        a.put(data)
        b.get()
        rtts.append(time.perf_counter() - t0)
    return rtts


def latency(kind, n):
    name = f"bench.py.{os.getpid()}"
    for s in (".a", ".b"):
        shmq.remove_segment(name + s)
    try:
        if kind in ("shmq", "shmq asyncio"):
            rtts = run_pair(shmq_echo, shmq_ping, name, n, kind == "shmq asyncio")
        elif kind == "asyncio unix socket":
            rtts = run_pair(unix_echo, unix_ping, f"{tempfile.gettempdir()}/bench-{os.getpid()}.sock", n, None)
        elif kind == "zmq ipc":
            rtts = run_pair(zmq_echo, zmq_ping, f"ipc://{tempfile.gettempdir()}/bench-l-{os.getpid()}.ipc", n, None)
        else:
            ctx = mp.get_context("fork")
            rtts = run_pair(queue_echo, queue_ping, (ctx.Queue(), ctx.Queue()), n, None)
    finally:
        for s in (".a", ".b"):
            shmq.remove_segment(name + s)
    q = statistics.quantiles(rtts[len(rtts) // 10:], n=100)
    return q[49] * 1e6, q[98] * 1e6


def main():
    rows = {}
    for kind in ("shmq", "mp.Queue", "zmq ipc"):
        rows[kind] = (throughput(kind, N_SMALL, 64), throughput(kind, N_BIG, 65536))
    print(f"CPUs {CPUS}; {N_SMALL} x 64 B, {N_BIG} x 64 KiB, {N_PING} round trips")
    print(f"{'':22} {'64 B msg/s':>12} {'64 KiB GB/s':>12}")
    for kind, (small, big) in rows.items():
        print(f"{kind:22} {small:12.0f} {big * 65536 / 1e9:12.2f}")
    lat = {k: latency(k, N_PING) for k in ("shmq", "shmq asyncio", "mp.Queue", "zmq ipc", "asyncio unix socket")}
    print(f"\n{'ping-pong 64 B':22} {'p50 us':>10} {'p99 us':>10}")
    for kind, (p50, p99) in lat.items():
        print(f"{kind:22} {p50:10.1f} {p99:10.1f}")
    s, q, z = rows["shmq"], rows["mp.Queue"], rows["zmq ipc"]
    print("\nratios (target)")
    print(f"64 B msg/s shmq / mp.Queue      {s[0] / q[0]:8.1f}x  (>= 20)")
    print(f"64 B msg/s shmq / zmq ipc       {s[0] / z[0]:8.1f}x  (>= 5)")
    print(f"64 KiB B/s shmq / mp.Queue      {s[1] / q[1]:8.1f}x  (>= 10)")
    print(f"asyncio p50 shmq / unix socket  {lat['shmq asyncio'][0] / lat['asyncio unix socket'][0]:8.2f}x  (<= 0.5)")


if __name__ == "__main__":
    main()

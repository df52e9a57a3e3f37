#!/usr/bin/python3
"""The baseline of bench/push/run.py: the same pushes sent the way the usual aiohttp
examples send them. One ClientSession (its default connector: keep-alive, at most 100
connections), one task per push, an asyncio.Semaphore bounding how many are in flight,
asyncio.gather over them all; a push that meets a connection error or a 5xx is tried again
up to --attempts times.

Reads the records shmq-push-enqueue --dump wrote (demo/push/push_request.hpp) before the
clock starts. X-Enqueued-Ns is the time the push's task was made: all at once, or on a
schedule with --rate. Prints one JSON line: pushes, failures, wall_s, cpu_s (user+system
time of this process, all its threads, over the sending only).
"""
import argparse
import asyncio
import json
import resource
import struct
import time

import aiohttp

HEADER = struct.Struct("<QQIHHIIQQ")  # id, record checksum, magic, port, path_len, body_len, 0, enqueued, body_sum


def read_pushes(path):
    pushes = []
    with open(path, "rb") as f:
        data = f.read()
    at = 0
    while at < len(data):
        (size,) = struct.unpack_from("<I", data, at)
        at += 4
        push_id, _, magic, port, path_len, body_len, _, _, body_sum = HEADER.unpack_from(data, at)
        if magic != 0x31485350 or size != HEADER.size + path_len + body_len:
            raise SystemExit("aiohttp_client: %s: not a push record at byte %d" % (path, at))
        text = data[at + HEADER.size:at + size]
        url = "http://127.0.0.1:%d%s" % (port, text[:path_len].decode())
        pushes.append((push_id, url, text[path_len:], str(body_sum)))
        at += size
    return pushes


def cpu_seconds():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


async def send_all(pushes, concurrency, attempts, rate):
    semaphore = asyncio.Semaphore(concurrency)
    failures = 0

    async with aiohttp.ClientSession() as session:
        async def push(push_id, url, body, body_sum, enqueued_ns):
            nonlocal failures
            async with semaphore:
                for attempt in range(attempts):
                    headers = {"Content-Type": "application/json", "X-Push-Id": str(push_id),
                               "X-Push-Attempt": str(attempt), "X-Push-Checksum": body_sum,
                               "X-Enqueued-Ns": str(enqueued_ns)}
                    try:
                        async with session.post(url, data=body, headers=headers) as response:
                            await response.read()
                            if response.status < 500:
                                return
                    except aiohttp.ClientError:
                        pass
                failures += 1

        start = time.monotonic()
        tasks = []
        for n, p in enumerate(pushes):
            if rate:
                delay = start + n / rate - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(push(*p, time.monotonic_ns())))
        await asyncio.gather(*tasks)
    return failures


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pushes", required=True, help="records from shmq-push-enqueue --dump")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--attempts", type=int, default=3)
    parser.add_argument("--rate", type=float, default=0, help="pushes a second (0: all at once)")
    args = parser.parse_args()
    pushes = read_pushes(args.pushes)
    cpu0, wall0 = cpu_seconds(), time.monotonic()
    failures = asyncio.run(send_all(pushes, args.concurrency, args.attempts, args.rate))
    wall, cpu = time.monotonic() - wall0, cpu_seconds() - cpu0
    print(json.dumps({"pushes": len(pushes), "failures": failures, "wall_s": wall, "cpu_s": cpu}), flush=True)


if __name__ == "__main__":
    main()

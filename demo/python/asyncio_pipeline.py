#!/usr/bin/env python3
"""An asyncio producer and consumer with a bounded queue and acknowledgements.

    PYTHONPATH=build/python /usr/bin/python3 demo/python/asyncio_pipeline.py [--count N]

This process is the producer; it starts the consumer as a second process. Jobs go
through an SPSC channel of 4 KiB, about twenty jobs: when the consumer falls behind, the
ring fills and `await jobs.send_async(...)` waits (back-pressure) without blocking the
loop, which meanwhile reads acknowledgements. The consumer handles each job, sends its
acknowledgement on a second channel, and only then releases the job (at-least-once).
The producer also keeps at most WINDOW jobs unacknowledged. At the end it checks that
every job was acknowledged once, in order, and says how often the ring was full.
"""

import asyncio
import os
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
import shmq  # noqa: E402

JOBS = dict(capacity=4096, max_message_size=256)
ACKS = dict(capacity=1 << 16, max_message_size=64)
WINDOW = 64
JOB_SIZE = 200
ACK = struct.Struct("<QI")  # the job's sequence number, the CRC-32 the consumer computed


def consumer(jobs_name, acks_name):
    async def main():
        jobs = shmq.SpscConsumer(jobs_name, **JOBS)
        acks = shmq.SpscProducer(acks_name, **ACKS)
        handled = 0
        async for job in jobs:  # ends at the producer's close()
            seq = common.check(job)
            if handled % 256 == 0:
                await asyncio.sleep(0.002)  # a slow moment: the producer's ring fills
            await acks.send_async(ACK.pack(seq, common.HEADER.unpack_from(job)[1]))
            job.release()  # handled and acknowledged: now it may go
            handled += 1
        acks.close()

    asyncio.run(main())


async def producer(jobs_name, acks_name, count):
    jobs = shmq.SpscProducer(jobs_name, **JOBS)
    acks = shmq.SpscConsumer(acks_name, **ACKS)
    window = asyncio.Semaphore(WINDOW)
    unacked = {}
    stats = {"full": 0, "most_unacked": 0}

    async def send_all():
        for seq in range(count):
            await window.acquire()
            job = common.stamp(seq, JOB_SIZE)
            unacked[seq] = common.HEADER.unpack_from(job)[1]
            stats["most_unacked"] = max(stats["most_unacked"], len(unacked))
            if not jobs.try_send(job):
                stats["full"] += 1
                await jobs.send_async(job)  # waits for room: back-pressure
        jobs.close()

    async def read_acks():
        expected = 0
        async for ack in acks:  # ends when the consumer closes its side
            seq, crc = ACK.unpack(bytes(ack))
            if seq != expected or unacked.pop(seq) != crc:
                raise SystemExit(f"acknowledgement {seq} where {expected} was due")
            expected += 1
            window.release()
        return expected

    _, acked = await asyncio.gather(send_all(), read_acks())
    if acked != count or unacked:
        raise SystemExit(f"{acked} of {count} jobs acknowledged")
    print(f"asyncio_pipeline: {count} jobs, each acknowledged once and in order; the {JOBS['capacity']}-byte ring "
          f"was full {stats['full']} times (send_async waited), at most {stats['most_unacked']} unacknowledged: ok")


def main():
    args = common.command_line(50_000)
    if args.peer:
        return consumer(*args.peer)
    jobs, acks = common.channel_name("jobs"), common.channel_name("acks")
    try:
        peer = common.spawn(__file__, "--peer", jobs, acks)
        asyncio.run(producer(jobs, acks, args.count))
        common.wait_all([peer], "asyncio_pipeline")
    finally:
        common.remove(jobs, acks)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""A consumer killed with SIGKILL and restarted, without losing a message.

    PYTHONPATH=build/python /usr/bin/python3 demo/python/kill_restart.py [--count N] [--kills K]

This process puts N jobs in an SPSC channel and starts a consumer process. The consumer
handles each job, acknowledges it on a second channel (MPMC: every incarnation of the
consumer is one of its producers), and only then releases it. After every N/(K+1)
acknowledgements this process kills the consumer with SIGKILL, wherever it is, and
starts a new one, which takes the dead one's place. A job the dead consumer held and
had not released comes again, flagged `redelivered`. At the end every job has been
acknowledged, and each job acknowledged twice was a flagged redelivery: at-least-once,
with nothing lost.
"""

import os
import signal
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
import shmq  # noqa: E402

JOBS = dict(capacity=1 << 23, max_message_size=128)  # holds every job: puts never wait
ACKS = dict(slots=1024, max_message_size=32)
ACK = struct.Struct("<QB")  # the job's sequence number, whether it came flagged redelivered


def consumer(jobs_name, acks_name):
    jobs = shmq.SpscConsumer(jobs_name, **JOBS)  # takes a dead consumer's place
    acks = shmq.MpmcProducer(acks_name, **ACKS)
    print("ready", flush=True)
    for n, job in enumerate(jobs):  # ends at the producer's close()
        seq = common.check(job)
        if n % 100 == 0:
            time.sleep(0.001)  # some work: the kills land mid-stream
        acks.send(ACK.pack(seq, job.redelivered))
        job.release()  # acknowledged: now it may go


def start(jobs, acks):
    p = common.spawn(__file__, "--peer", jobs, acks, stdout=-1)
    if p.stdout.readline() != "ready\n":
        raise SystemExit("the consumer did not start")
    return p


def main():
    args = common.command_line(30_000, kills=3)
    if args.peer:
        return consumer(*args.peer)
    jobs_name, acks_name = common.channel_name("jobs"), common.channel_name("acks")
    try:
        jobs = shmq.SpscProducer(jobs_name, **JOBS)
        acks = shmq.MpmcConsumer(acks_name, **ACKS)
        for seq in range(args.count):
            jobs.send(common.stamp(seq))
        jobs.close()
        proc = start(jobs_name, acks_name)
        times_acked = [0] * args.count
        flagged = 0
        acked = 0
        kills = 0
        every = args.count // (args.kills + 1)
        while acked < args.count:
            seq, redelivered = ACK.unpack(acks.receive(timeout=30))
            if times_acked[seq] and not redelivered:
                raise SystemExit(f"job {seq} acknowledged twice without the redelivered flag")
            flagged += redelivered
            acked += times_acked[seq] == 0
            times_acked[seq] += 1
            if kills < args.kills and acked >= every * (kills + 1):
                proc.send_signal(signal.SIGKILL)
                proc.wait()
                kills += 1
                proc = start(jobs_name, acks_name)
        common.wait_all([proc], "kill_restart")
        twice = sum(1 for t in times_acked if t > 1)
        print(f"kill_restart: {args.count} jobs, the consumer killed {kills} times with SIGKILL and restarted; "
              f"every job acknowledged; {flagged} came again flagged redelivered, {twice} of them acknowledged "
              "twice; 0 lost: ok")
    finally:
        common.remove(jobs_name, acks_name)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Competing consumers and consumer groups, across processes.

    PYTHONPATH=build/python /usr/bin/python3 demo/python/work_queue.py [--count N]

1. A work queue (MPMC): this process puts N jobs in; three worker processes compete for
   them, and each job reaches exactly one worker.
2. Consumer groups (publish/subscribe): this process publishes N orders; the group
   "billing" (two member processes) and the group "shipping" (two more) each get every
   order once, shared among the group's members.
Each peer checks every message's sequence number and checksum and reports the sequence
numbers it handled; this process checks that nothing was lost or doubled.
"""

import json
import os
import sys
from collections import Counter

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
import shmq  # noqa: E402

QUEUE = dict(slots=256, max_message_size=128)
TOPIC = dict(slots=256, max_message_size=128)


def report(role, consumer):
    """Reads until the end of the stream; prints the sequence numbers as one JSON line."""
    seqs = []
    print("ready", flush=True)
    for msg in consumer:  # ends at the producer's close()
        seqs.append(common.check(msg))
    print(json.dumps({"role": role, "seqs": seqs}), flush=True)


def peer(role, name):
    if role == "worker":
        report(role, shmq.MpmcConsumer(name, **QUEUE))
    else:  # a member of a consumer group
        report(role, shmq.Subscriber(name, group=role.split(":")[0], **TOPIC))


def start(name, roles):
    procs = [common.spawn(__file__, "--peer", role, name, stdout=-1) for role in roles]
    for p in procs:
        if p.stdout.readline() != "ready\n":
            raise SystemExit("a peer did not start")
    return procs


def collect(procs):
    reports = [json.loads(p.stdout.read()) for p in procs]
    common.wait_all(procs, "work_queue")
    return reports


def exactly_once(seqs, count, who):
    doubled = [s for s, n in Counter(seqs).items() if n > 1]
    if doubled or sorted(seqs) != list(range(count)):
        raise SystemExit(f"{who}: {len(seqs)} messages for {count}, doubled {doubled[:5]}")


def main():
    args = common.command_line(60_000)
    if args.peer:
        return peer(*args.peer)
    jobs, orders = common.channel_name("jobs"), common.channel_name("orders")
    try:
        q = shmq.MpmcProducer(jobs, **QUEUE)
        workers = start(jobs, ["worker"] * 3)
        for seq in range(args.count):
            q.send(common.stamp(seq))
        q.close()
        reports = collect(workers)
        exactly_once([s for r in reports for s in r["seqs"]], args.count, "work queue")
        shares = ", ".join(str(len(r["seqs"])) for r in reports)
        print(f"work_queue: {args.count} jobs among 3 competing workers ({shares}), each exactly once: ok")

        pub = shmq.Publisher(orders, **TOPIC)
        members = start(orders, ["billing:1", "billing:2", "shipping:1", "shipping:2"])
        for seq in range(args.count):
            pub.send(common.stamp(seq))
        pub.close()
        reports = collect(members)
        for group in ("billing", "shipping"):
            mine = [r for r in reports if r["role"].startswith(group + ":")]
            exactly_once([s for r in mine for s in r["seqs"]], args.count, group)
            shares = ", ".join(str(len(r["seqs"])) for r in mine)
            print(f"work_queue: group {group} got all {args.count} orders once, shared {shares}: ok")
    finally:
        common.remove(jobs, orders)


if __name__ == "__main__":
    main()

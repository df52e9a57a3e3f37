#!/usr/bin/env python3
"""Publish/subscribe with callbacks, across processes.

    PYTHONPATH=build/python /usr/bin/python3 demo/python/pubsub_callbacks.py [--count N]

This process publishes N ticks on one channel and an alert for every tenth tick on a
second one. Two subscriber processes serve them with `subscriber.subscribe(callback)`
on an asyncio loop: a "dashboard" that follows both channels on its one loop, and a
"logger" that follows the ticks. Each callback checks the sequence number and checksum
of every message; each subscriber reports what it got. The publisher's `block` policy
makes it wait for the slower subscriber; close() ends both streams.
"""

import asyncio
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
import shmq  # noqa: E402

OPTS = dict(slots=64, max_message_size=128)
ALERT_EVERY = 10


def subscriber(role, count, ticks, alerts):
    async def main():
        got = {"ticks": 0, "alerts": 0}

        def on(kind, step):
            def callback(msg):  # runs on the loop for each message; released on return
                seq = common.check(msg)
                if seq != got[kind] * step:
                    raise ValueError(f"{role}: {kind} message {seq} where {got[kind] * step} was due")
                got[kind] += 1
            return callback

        subscriptions = [shmq.Subscriber(ticks, **OPTS).subscribe(on("ticks", 1))]
        if role == "dashboard":  # two channels, one loop
            subscriptions.append(shmq.Subscriber(alerts, **OPTS).subscribe(on("alerts", ALERT_EVERY)))
        print("ready", flush=True)  # joined: what is published from now on reaches us
        await asyncio.gather(*(s.done for s in subscriptions))  # until both streams end
        due = (count, (count + ALERT_EVERY - 1) // ALERT_EVERY if role == "dashboard" else 0)
        if (got["ticks"], got["alerts"]) != due:
            raise SystemExit(f"{role}: got {got}, not {due}")
        print(f"{role}: {got['ticks']} ticks" + (f", {got['alerts']} alerts" if role == "dashboard" else "")
              + ", each in order with a good checksum", flush=True)

    asyncio.run(main())


def main():
    args = common.command_line(100_000)
    if args.peer:
        role, ticks, alerts = args.peer
        return subscriber(role, args.count, ticks, alerts)

    ticks, alerts = common.channel_name("ticks"), common.channel_name("alerts")
    try:
        tick_pub, alert_pub = shmq.Publisher(ticks, **OPTS), shmq.Publisher(alerts, **OPTS)
        subs = [common.spawn(__file__, "--count", args.count, "--peer", role, ticks, alerts, stdout=-1) for role in ("dashboard", "logger")]
        for s in subs:
            if s.stdout.readline() != "ready\n":
                raise SystemExit("a subscriber did not start")
        for seq in range(args.count):
            tick_pub.send(common.stamp(seq))
            if seq % ALERT_EVERY == 0:
                alert_pub.send(common.stamp(seq, 32))
        tick_pub.close()
        alert_pub.close()
        for s in subs:
            sys.stdout.write(s.stdout.read())
        common.wait_all(subs, "pubsub_callbacks")
        print(f"pubsub_callbacks: published {args.count} ticks and {(args.count + ALERT_EVERY - 1) // ALERT_EVERY} "
              "alerts; both subscribers got all of them: ok")
    finally:
        common.remove(ticks, alerts)


if __name__ == "__main__":
    main()

"""A peer process for the cross-process tests: python peer.py ROLE NAME COUNT SIZE."""

import sys

import shmq
import stamp

OPTS = dict(capacity=1 << 16, max_message_size=4096)


def main():
    role, name, count, size = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    if role == "spsc-producer":
        with shmq.SpscProducer(name, **OPTS) as p:
            for seq in range(count):
                with p.loan(size) as buf:
                    memoryview(buf)[:] = stamp.make(seq, size)
            p.close()
    elif role == "mpmc-producer":
        with shmq.MpmcProducer(name, slots=64, max_message_size=256) as p:
            base = int(sys.argv[5])
            for seq in range(base, base + count):
                p.send(stamp.make(seq, size))
    else:
        raise SystemExit(f"unknown role {role}")


if __name__ == "__main__":
    main()

"""The blocking API across real processes, zero-copy, lifetime and misuse."""

import ctypes
import os
import subprocess
import sys

import numpy
import pytest

import shmq
import stamp

HERE = os.path.dirname(__file__)
OPTS = dict(capacity=1 << 16, max_message_size=4096)


def peer(*args):
    return subprocess.Popen([sys.executable, os.path.join(HERE, "peer.py"), *map(str, args)])


def test_spsc_across_processes_in_order_and_intact(name):
    c = shmq.SpscConsumer(name, **OPTS)
    p = peer("spsc-producer", name, 20000, 100)
    expected = 0
    for msg in c:  # ends at the producer's close()
        assert stamp.check(msg) == expected
        expected += 1
    assert p.wait(timeout=60) == 0
    assert expected == 20000


def test_mpmc_competing_consumers_each_message_once(name):
    c1 = shmq.MpmcConsumer(name, slots=64, max_message_size=256)
    c2 = shmq.MpmcConsumer(name, slots=64, max_message_size=256)
    producers = [peer("mpmc-producer", name, 3000, 64, base) for base in (0, 100000)]
    seen = []
    while len(seen) < 6000:
        for c in (c1, c2):
            got = c.try_receive()
            if got is not None:
                seen.append(stamp.check(got))
    assert all(p.wait(timeout=60) == 0 for p in producers)
    assert sorted(seen) == list(range(3000)) + list(range(100000, 103000))


def test_pubsub_groups_history_and_overwrite(name):
    o = dict(slots=8, max_message_size=64)
    pub = shmq.Publisher(name, **o)
    everything = shmq.Subscriber(name, **o)
    w1 = shmq.Subscriber(name, group="workers", **o)
    w2 = shmq.Subscriber(name, group="workers", **o)
    for seq in range(4):
        pub.send(stamp.make(seq, 32))
    assert [stamp.check(everything.receive(timeout=5)) for _ in range(4)] == [0, 1, 2, 3]
    shared = [stamp.check(w.try_receive()) for w in (w1, w2, w1, w2)]
    assert sorted(shared) == [0, 1, 2, 3]
    late = shmq.Subscriber(name, history=2, **o)
    assert [stamp.check(late.receive(timeout=5)) for _ in range(2)] == [2, 3]

    ow = dict(slots=4, max_message_size=64, policy="overwrite")
    n2 = name + ".ow"
    shmq.remove_segment(n2)
    try:
        p2 = shmq.Publisher(n2, **ow)
        slow = shmq.Subscriber(n2, **ow)
        for seq in range(10):
            assert p2.try_send(stamp.make(seq, 32))  # never waits for the subscriber
        m = slow.read(timeout=5)
        assert m.missed > 0 and stamp.check(m) == m.missed
        assert slow.missed_total == m.missed
    finally:
        shmq.remove_segment(n2)


def mappings_of(name):
    """This process's mappings of the channel's segment (one per endpoint; the kernel
    may list one mapping as several adjacent lines), merged."""
    ranges = []
    with open("/proc/self/maps") as f:
        for line in f:
            if line.rstrip().endswith("/dev/shm/shmq." + name):
                lo, hi = line.split()[0].split("-")
                ranges.append([int(lo, 16), int(hi, 16)])
    assert ranges, "segment not mapped"
    ranges.sort()
    merged = [ranges[0]]
    for lo, hi in ranges[1:]:
        if lo == merged[-1][1]:
            merged[-1][1] = hi
        else:
            merged.append([lo, hi])
    return merged


def inside_mapping(name, address, size):
    return any(lo <= address and address + size <= hi for lo, hi in mappings_of(name))


def test_zero_copy_both_ways(name):
    p = shmq.SpscProducer(name, **OPTS)
    c = shmq.SpscConsumer(name, **OPTS)
    loan = p.loan(4096)
    arr = numpy.frombuffer(loan, dtype=numpy.uint8)
    assert inside_mapping(name, arr.ctypes.data, arr.nbytes) and arr.ctypes.data == loan.address
    arr[:] = numpy.arange(4096) % 251  # written in place, in the ring
    del arr
    loan.commit()
    msg = c.read(timeout=5)
    view = numpy.frombuffer(msg, dtype=numpy.uint8)
    assert inside_mapping(name, view.ctypes.data, view.nbytes) and view.ctypes.data == msg.address
    assert memoryview(msg).readonly
    # No copy anywhere: every export is the same ring memory, where the data is.
    assert numpy.frombuffer(memoryview(msg), dtype=numpy.uint8).ctypes.data == msg.address
    assert ctypes.string_at(msg.address, msg.size) == bytes(msg)
    assert (view == numpy.arange(4096) % 251).all()
    del view
    msg.release()


def test_lifetime_and_misuse(name):
    p = shmq.SpscProducer(name, **OPTS)
    c = shmq.SpscConsumer(name, **OPTS)
    p.send(b"one")
    p.send(b"two")
    msg = c.read()
    mv = memoryview(msg)
    with pytest.raises(BufferError):
        msg.release()
    with pytest.raises(shmq.BusyError):  # the first is still exported
        c.read()
    with pytest.raises(BufferError):
        c.detach()
    del mv
    assert c.receive() == b"two"  # asking for the next released the first
    with pytest.raises(ValueError):
        bytes(msg)
    with pytest.raises(ValueError):
        msg.size
    # A memoryview keeps its message alive after every other reference goes.
    p.send(b"three")
    mv = memoryview(c.read())
    assert bytes(mv) == b"three"
    del mv
    # Loans: commit on a clean exit, abort on an exception, BufferError while exported.
    with pytest.raises(RuntimeError):
        with p.loan(5) as buf:
            buf.write(b"never")
            raise RuntimeError
    with p.loan(5) as buf:
        buf.write(b"fives")
    assert c.receive(timeout=5) == b"fives"
    loan = p.loan(3)
    with pytest.raises(shmq.BusyError):
        p.send(b"x")
    mv = memoryview(loan)
    with pytest.raises(BufferError):
        loan.commit()
    mv.release()
    loan.abort()
    with pytest.raises(ValueError):
        memoryview(loan)
    with pytest.raises(shmq.TooLargeError):
        p.send(bytes(5000))
    with pytest.raises(shmq.TimedOutError):
        c.read(timeout=0.05)
    p.detach()
    with pytest.raises(ValueError):
        p.send(b"x")
    c.detach()
    with pytest.raises(ValueError):
        c.try_read()


def test_errors_carry_errc_and_the_cpp_message(name):
    with pytest.raises(shmq.InvalidNameError) as e:
        shmq.SpscConsumer("no spaces")
    assert e.value.errc == shmq.Errc.INVALID_NAME and "no spaces" in str(e.value)
    with pytest.raises(shmq.NotFoundError):
        shmq.MpmcConsumer(name, open="open")
    shmq.SpscProducer(name, **OPTS)
    with pytest.raises(shmq.KindMismatchError):
        shmq.Publisher(name)
    with pytest.raises(TypeError):
        shmq.SpscProducer(name, capacity="big")
    with pytest.raises(ValueError):
        shmq.Publisher(name + "x", policy="sometimes")


def test_ctrl_c_interrupts_a_blocking_read(name):
    code = (
        "import shmq, sys\n"
        f"c = shmq.SpscConsumer({name!r})\n"
        "try:\n    print('ready', flush=True)\n    c.read()\nexcept KeyboardInterrupt:\n    sys.exit(42)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline() == "ready\n"
    proc.send_signal(2)
    assert proc.wait(timeout=10) == 42

"""Misuse gives an exception, never a crash: bad arguments to the fast calls, objects
that were never initialised, a second thread on a busy endpoint, messages and loans
that outlive their endpoint objects or their endpoint's detach()."""

import gc
import threading

import pytest

import shmq
import stamp

OPTS = dict(capacity=1 << 14, max_message_size=256)


def test_bad_arguments(name):
    p = shmq.SpscProducer(name, **OPTS)
    c = shmq.SpscConsumer(name, **OPTS)
    for bad in ("text", 5, None):
        with pytest.raises(TypeError):
            p.send(bad)
        with pytest.raises(TypeError):
            p.try_send(bad)
    with pytest.raises(BufferError):
        p.send(memoryview(b"abcdef")[::2])  # not contiguous
    with pytest.raises(TypeError):
        p.send()
    with pytest.raises(TypeError):
        p.send(b"x", 1.0, 2)
    with pytest.raises(TypeError):
        c.receive(when=1)
    with pytest.raises(TypeError):
        c.receive(timeout="soon")
    with pytest.raises(ValueError):
        c.receive(timeout=-1)
    with pytest.raises(ValueError):
        c.receive(timeout=float("nan"))
    with pytest.raises(TypeError):
        shmq.SpscConsumer.receive(p)  # a producer as the consumer's self
    with pytest.raises(TypeError):
        shmq.MpmcProducer.send(p, b"x")  # another kind of producer
    p.send(stamp.make(7), timeout=1)  # the channel still works
    assert stamp.check(c.receive(timeout=1)) == 7


def test_an_object_never_initialised(name):
    for cls, call in ((shmq.SpscConsumer, lambda o: o.receive()), (shmq.SpscConsumer, lambda o: o.try_receive()),
                      (shmq.SpscConsumer, lambda o: o.try_read()), (shmq.Subscriber, lambda o: o.receive()),
                      (shmq.SpscProducer, lambda o: o.send(b"x")), (shmq.Publisher, lambda o: o.try_send(b"x")),
                      (shmq.SpscProducer, lambda o: o.detach())):
        blank = cls.__new__(cls)
        with pytest.raises((TypeError, RuntimeError)):
            call(blank)


def test_messages_and_loans_come_only_from_endpoints():
    class Sub(shmq.Message):
        pass

    for make in (shmq.Message, shmq.Loan, lambda: shmq.Message.__new__(shmq.Message),
                 lambda: shmq.Loan.__new__(shmq.Loan), Sub):
        with pytest.raises(TypeError):
            make()


def test_a_second_thread_gets_busy_while_the_first_waits(name):
    p = shmq.SpscProducer(name, **OPTS)
    c = shmq.SpscConsumer(name, **OPTS)
    got = []
    t = threading.Thread(target=lambda: got.append(stamp.check(c.receive(timeout=30))))
    t.start()
    while True:  # until the thread is inside its wait (it released the GIL there)
        try:
            assert c.try_receive() is None
        except shmq.BusyError:
            break
    for call in (c.try_read, c.arm, c.native_handle, c.detach, lambda: c.receive(timeout=0)):
        with pytest.raises(shmq.BusyError):  # none races the wait
            call()
    p.send(stamp.make(1))
    t.join(timeout=30)
    assert got == [1]
    assert c.try_receive() is None  # the consumer is usable again


def test_messages_and_loans_outlive_their_endpoint_objects(name):
    p = shmq.SpscProducer(name, **OPTS)
    c = shmq.SpscConsumer(name, **OPTS)
    loan = p.loan(16)
    del p
    gc.collect()
    loan.write(stamp.make(3, 16))  # the loan holds its endpoint
    loan.commit()
    msg = c.read(timeout=5)
    view = memoryview(msg)
    del c, msg
    gc.collect()
    assert stamp.check(view) == 3  # the view holds the message, which holds its endpoint
    view.release()


def test_detach_ends_what_is_out(name):
    p = shmq.SpscProducer(name, **OPTS)
    c = shmq.SpscConsumer(name, **OPTS)
    p.send(b"one")
    msg = c.read(timeout=5)
    c.detach()  # releases the message
    with pytest.raises(ValueError):
        bytes(msg)
    with pytest.raises(ValueError):
        msg.size
    msg.release()  # a released message stays released, quietly
    loan = p.loan(3)
    p.detach()  # aborts the loan
    with pytest.raises(ValueError):
        memoryview(loan)
    with pytest.raises(ValueError):
        loan.commit()
    for call in (lambda: c.receive(), lambda: c.try_receive(), lambda: c.native_handle(),
                 lambda: p.try_send(b"x"), lambda: p.send(b"x"), lambda: p.close()):
        with pytest.raises(ValueError):
            call()
    with shmq.SpscConsumer(name, **OPTS) as again:  # the role is free again
        assert again.try_receive() is None
    assert again.detached

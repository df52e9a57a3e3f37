"""asyncio for shmq endpoints, on the readiness descriptor (loop.add_reader).

Every wait is the contract's loop (docs/event-loops.md): try the non-blocking call; if
the ring is empty (or full), arm(); if armed, await the descriptor becoming readable,
then try again. No thread polls. What is there already is taken at once, with no
reactor pass. Before arming, a wait on a loop with nothing else ready tries for up to
the endpoint's `spin` option (50 us by default, `spin=0` turns it off) with the GIL
released, as a blocking call spins before it sleeps: a peer that answers within that
time costs no wake-up through the kernel. A cancelled or timed-out wait has taken
nothing: every take is one synchronous call, so the message stays for the next read.
"""

import asyncio

from ._errors import ClosedError

# A subscription hands the loop back after this many messages in a row.
_FAIRNESS = 64


def _loop_idle(loop):
    """True when nothing else is ready to run on `loop`: only then may a wait spin.
    CPython's loops keep ready callbacks in `_ready` (with a cancelled one there after
    remove_reader() of a descriptor the last poll found readable); another loop never
    spins."""
    ready = getattr(loop, "_ready", None)
    return ready is not None and all(h.cancelled() for h in ready)


async def _readable(loop, fd):
    fut = loop.create_future()
    loop.add_reader(fd, lambda: fut.done() or fut.set_result(None))
    try:
        await fut
    finally:
        loop.remove_reader(fd)


async def _wait(attempt, spin_attempt, arm, fd):
    loop = asyncio.get_running_loop()
    got = spin_attempt() if _loop_idle(loop) else attempt()
    while got is None:
        if arm():
            await _readable(loop, fd)
        got = attempt()
    return got


def _bounded(wait, timeout):
    return wait if timeout is None else asyncio.wait_for(wait, timeout)


async def read_async(consumer, timeout=None):
    """The next message in place (shmq.Message); asyncio.TimeoutError after `timeout` s."""
    msg = consumer.try_read()
    if msg is not None:
        return msg
    return await _bounded(_wait(consumer.try_read, consumer._spin_read, consumer.arm,
                                consumer.native_handle()), timeout)


async def receive_async(consumer, timeout=None):
    """A copy of the next message (bytes)."""
    data = consumer.try_receive()
    if data is not None:
        return data
    return await _bounded(_wait(consumer.try_receive, consumer._spin_receive, consumer.arm,
                                consumer.native_handle()), timeout)


async def loan_async(producer, size, timeout=None):
    """Room for `size` bytes in place (shmq.Loan), waiting on back-pressure."""
    loan = producer.try_loan(size)
    if loan is not None:
        return loan
    attempt = lambda: producer.try_loan(size)  # noqa: E731
    return await _bounded(_wait(attempt, attempt, lambda: producer.arm(size),
                                producer.native_handle()), timeout)


async def send_async(producer, data, timeout=None):
    """Copies `data` in, waiting on back-pressure."""
    if producer.try_send(data):
        return
    await _bounded(_wait(lambda: producer.try_send(data) or None,
                         lambda: producer._spin_send(data) or None,
                         lambda: producer.arm(memoryview(data).nbytes),
                         producer.native_handle()), timeout)


async def messages(consumer):
    """async for msg in consumer: each message until the end of the stream."""
    while True:
        try:
            msg = await read_async(consumer)
        except ClosedError:
            return
        yield msg


class Subscription:
    """Calls callback(msg) (a function or a coroutine function) for every message of
    `consumer` on the running loop, and releases the message when it returns.

    Messages already there are handed over in a row, without a reactor pass (the loop
    gets a turn every few dozen). A callback that raises stops the subscription (the
    message is released with it). `done` is a future: None at the end of the stream or
    after unsubscribe(), or the exception that stopped it.
    """

    def __init__(self, consumer, callback):
        self._consumer = consumer
        self._callback = callback
        self._stopping = False
        self._waiting = False  # in a wait that takes nothing when cancelled
        self._task = asyncio.get_running_loop().create_task(self._run())
        self.done = self._task

    async def _next(self, in_a_row):
        """The next message, or None at the end of the stream or when unsubscribed."""
        c = self._consumer
        try:
            msg = None if in_a_row == _FAIRNESS else c.try_read()
            if msg is None:
                self._waiting = True
                try:
                    if in_a_row == _FAIRNESS:
                        await asyncio.sleep(0)
                    msg = await read_async(c)
                finally:
                    self._waiting = False
            return msg
        except ClosedError:
            return None
        except asyncio.CancelledError:
            if self._stopping:
                return None
            raise

    async def _run(self):
        in_a_row = 0
        while not self._stopping:
            msg = await self._next(in_a_row)
            if msg is None:
                return
            in_a_row = in_a_row % _FAIRNESS + 1
            result = self._callback(msg)
            if asyncio.iscoroutine(result):
                await result
            msg.release()

    def unsubscribe(self):
        """Stops the subscription: at once if it waits for a message (taking nothing),
        else after the callback that runs now."""
        self._stopping = True
        if self._waiting:
            self._task.cancel()


def subscribe(consumer, callback):
    return Subscription(consumer, callback)


def install(cls_consumers, cls_producers):
    for cls in cls_consumers:
        cls.read_async = read_async
        cls.receive_async = receive_async
        cls.__aiter__ = messages
        cls.subscribe = subscribe
    for cls in cls_producers:
        cls.loan_async = loan_async
        cls.send_async = send_async

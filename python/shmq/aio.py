"""asyncio for shmq endpoints, on the readiness descriptor (loop.add_reader).

Every wait is the contract's loop: try the non-blocking call; if the ring is empty (or
full), arm(); if armed, await the descriptor becoming readable, then try again. No
thread polls. A cancelled wait has taken nothing: the message stays for the next read.
"""

import asyncio

from ._errors import ClosedError


async def _readable(fd):
    loop = asyncio.get_running_loop()
    fut = loop.create_future()
    loop.add_reader(fd, lambda: fut.done() or fut.set_result(None))
    try:
        await fut
    finally:
        loop.remove_reader(fd)


async def _until(attempt, arm, fd, timeout):
    async def loop_():
        while True:
            got = attempt()
            if got is not None:
                return got
            if arm():
                await _readable(fd)

    if timeout is None:
        return await loop_()
    return await asyncio.wait_for(loop_(), timeout)


async def read_async(consumer, timeout=None):
    """The next message in place (shmq.Message); asyncio.TimeoutError after `timeout` s."""
    return await _until(consumer.try_read, consumer.arm, consumer.native_handle(), timeout)


async def receive_async(consumer, timeout=None):
    """A copy of the next message (bytes)."""
    return await _until(consumer.try_receive, consumer.arm, consumer.native_handle(), timeout)


async def loan_async(producer, size, timeout=None):
    """Room for `size` bytes in place (shmq.Loan), waiting on back-pressure."""
    return await _until(lambda: producer.try_loan(size), lambda: producer.arm(size),
                        producer.native_handle(), timeout)


async def send_async(producer, data, timeout=None):
    """Copies `data` in, waiting on back-pressure."""
    n = len(memoryview(data).cast("B"))
    await _until(lambda: True if producer.try_send(data) else None, lambda: producer.arm(n),
                 producer.native_handle(), timeout)


async def messages(consumer):
    """async for msg in consumer: each message until the end of the stream."""
    while True:
        try:
            yield await read_async(consumer)
        except ClosedError:
            return


class Subscription:
    """Calls callback(msg) for every message of `consumer` on the running loop.

    The message is released when the callback returns (at-least-once: a callback that
    raises stops the subscription and leaves that message for the next read). `done` is
    a future: None at the end of the stream, or the exception that stopped it.
    """

    def __init__(self, consumer, callback):
        self._consumer = consumer
        self._callback = callback
        self._task = asyncio.get_running_loop().create_task(self._run())
        self.done = self._task

    async def _run(self):
        c = self._consumer
        async for msg in messages(c):
            result = self._callback(msg)
            if asyncio.iscoroutine(result):
                await result
            msg.release()

    def unsubscribe(self):
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

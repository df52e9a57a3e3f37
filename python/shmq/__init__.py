"""shmq: zero-copy message passing between processes through shared memory.

Channels (the same as the C++ library's): SpscProducer/SpscConsumer,
MpmcProducer/MpmcConsumer (a work queue), Publisher/Subscriber (publish/subscribe with
groups). See docs/python.md.
"""

from ._errors import *  # noqa: F401,F403  (the exceptions first: _shmq raises them)
from ._errors import Errc, Error, Status
from ._shmq import (  # noqa: F401
    Loan,
    Message,
    MpmcConsumer,
    MpmcProducer,
    Publisher,
    SpscConsumer,
    SpscProducer,
    Subscriber,
    remove_segment,
    segment_exists,
    valid_name,
)

__all__ = [
    "SpscProducer", "SpscConsumer", "MpmcProducer", "MpmcConsumer", "Publisher",
    "Subscriber", "Message", "Loan", "Error", "Errc", "Status", "remove_segment",
    "segment_exists", "valid_name",
] + [n for n in dir() if n.endswith("Error") and n != "Error"]

from . import aio as _aio

_aio.install((SpscConsumer, MpmcConsumer, Subscriber), (SpscProducer, MpmcProducer, Publisher))

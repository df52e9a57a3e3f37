"""File-backed channels from Python (docs/durability.md): messages kept in a file after
the producer's process exits, for each channel kind at each level, sync(), and the
errors."""

import os
import subprocess
import sys
import tempfile

import pytest

import shmq
import stamp

HERE = os.path.dirname(__file__)
PRODUCER = """
import sys, shmq, stamp
kind, path, level, count = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
opts = dict(path=path, durability=level, max_message_size=512, group_messages=4, group_interval=0.001)
if kind == "spsc":
    p = shmq.SpscProducer("durable", capacity=1 << 20, **opts)
elif kind == "mpmc":
    p = shmq.MpmcProducer("durable", slots=256, **opts)
else:
    p = shmq.Publisher("durable", slots=256, **opts)
for seq in range(count):
    p.send(stamp.make(seq, 16 + seq % 400))
p.sync()
"""


@pytest.fixture
def path():
    d = tempfile.TemporaryDirectory(prefix="shmq-py-durable-", dir="/var/tmp")
    yield os.path.join(d.name, "channel.shmq")
    d.cleanup()


def open_consumer(kind, path, **opts):
    """The kind's consumer of the file; for pub/sub, a member of the named group "g",
    whose position the file keeps when no member is attached."""
    if kind == "spsc":
        return shmq.SpscConsumer("durable", path=path, **opts)
    if kind == "mpmc":
        return shmq.MpmcConsumer("durable", path=path, **opts)
    return shmq.Subscriber("durable", path=path, group="g", **opts)


@pytest.mark.parametrize("kind", ["spsc", "mpmc", "pubsub"])
@pytest.mark.parametrize("level", ["none", "group_commit", "per_commit"])
def test_a_file_keeps_the_messages_after_the_producer_exits(path, kind, level):
    if kind == "pubsub":
        # A publisher's messages go to the subscriptions that exist: make the group first
        # (this creates the file at the level asked for), then leave it.
        with open_consumer(kind, path, slots=256, max_message_size=512, durability=level,
                           group_messages=4, group_interval=0.001):
            pass
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([HERE, os.environ.get("PYTHONPATH", "")]))
    done = subprocess.run([sys.executable, "-c", PRODUCER, kind, path, level, "150"], env=env, timeout=60)
    assert done.returncode == 0
    assert os.path.getsize(path) > 0
    with open_consumer(kind, path, open="open") as c:
        got = [stamp.check(m) for m in iter(c.try_receive, None)]
        c.sync()
    assert got == list(range(150))
    # Released and synced: a later consumer finds nothing.
    with open_consumer(kind, path, open="open") as c:
        assert c.try_receive() is None


def test_sync_on_a_shared_memory_channel_returns_at_once(name):
    p = shmq.SpscProducer(name, capacity=1 << 16, max_message_size=1024)
    c = shmq.SpscConsumer(name, capacity=1 << 16, max_message_size=1024)
    p.send(b"x")
    assert p.sync() is None
    assert bytes(c.receive(timeout=5)) == b"x"
    assert c.sync() is None


def test_file_options_are_checked(path):
    with pytest.raises(ValueError, match="durability must be one of"):
        shmq.SpscProducer("durable", path=path, durability="sometimes")
    with pytest.raises(shmq.InvalidArgumentError):
        shmq.SpscProducer("durable", path=path, durability="group_commit", group_messages=0)
    with pytest.raises(shmq.NotFoundError):
        shmq.MpmcConsumer("durable", path=path, open="open")
    # The exception a failed flush raises (its cause cannot be made from here).
    assert issubclass(shmq.StorageError, OSError) and issubclass(shmq.StorageError, shmq.Error)

import itertools
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))
import shmq  # noqa: E402

_n = itertools.count()


@pytest.fixture
def name():
    """A fresh channel name, removed afterwards whatever happens."""
    n = f"pytest.{os.getpid()}.{next(_n)}"
    shmq.remove_segment(n)
    yield n
    shmq.remove_segment(n)

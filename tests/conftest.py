import os
import sys
import threading
import time
from pathlib import Path

import pytest
from hypothesis import settings

sys.path.insert(0, str(Path(__file__).parent))

# Shared CI machines are slow and noisy: judge properties, not per-example speed.
settings.register_profile("peerlab", deadline=None, print_blob=True)
settings.load_profile("peerlab")


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.fixture
def no_leaks():
    """Threads and file descriptors are the same before and after the test."""
    threads, fds = threading.active_count(), open_fds()
    yield
    deadline = time.monotonic() + 5
    while (threading.active_count(), open_fds()) != (threads, fds):
        if time.monotonic() > deadline:
            break
        time.sleep(0.01)
    assert threading.active_count() == threads
    assert open_fds() == fds

"""The one way tests wait for something real to happen: poll a condition until a deadline."""

import time


def eventually(condition, what: str, timeout: float = 10.0) -> None:
    """Wait for ``condition()`` to hold, polling; fail naming ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"no {what} within {timeout}s"
        time.sleep(0.01)

"""What the command line shows while it works: progress with a label and an ETA, and tables.

Drawn with rich on a terminal; elsewhere (a pipe, a CI log) progress is a plain line now and
then, so logs stay readable.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

#: Seconds between plain progress lines when the output is not a terminal.
PLAIN_EVERY = 10.0


def stderr() -> Console:
    """A rich console on standard error (progress and warnings go there)."""
    return Console(stderr=True)


@contextmanager
def progress(label: str, total: float, *, quiet: bool = False) -> Iterator[Callable[..., None]]:
    """A progress display for ``total`` units of work; yields ``update(done, note="")``."""
    if quiet:
        yield lambda done, note="": None
        return
    if sys.stderr.isatty():
        columns = (
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            TextColumn("{task.fields[note]}"),
        )
        with Progress(*columns, console=stderr(), transient=False) as bar:
            task = bar.add_task(label, total=total, note="")
            yield lambda done, note="": bar.update(task, completed=done, note=note)
        return
    last = [time.monotonic()]

    def plain(done: float, note: str = "") -> None:
        now = time.monotonic()
        if done >= total or now - last[0] >= PLAIN_EVERY:
            last[0] = now
            print(f"{label}: {done:g}/{total:g} {note}".rstrip(), file=sys.stderr, flush=True)

    yield plain

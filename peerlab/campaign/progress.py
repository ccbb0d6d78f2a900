"""A campaign's progress on stderr, with rich: a live bar on a terminal; elsewhere (a log, CI) a
plain line at every tenth of the runs, so the output stays readable."""

from __future__ import annotations

import datetime
from types import TracebackType

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


class CampaignProgress:
    """Shows ``total`` runs being done under ``label``; silent when ``enabled`` is false."""

    def __init__(
        self, label: str, total: int, *, enabled: bool = True, console: Console | None = None
    ) -> None:
        self.console = console or Console(stderr=True)
        self.enabled = enabled
        self.live = enabled and self.console.is_terminal
        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[failed]} failed"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=self.console,
            disable=not self.live,
        )
        self.task = self.progress.add_task(label, total=total, failed=0)
        self.total = total
        self.failed = 0
        self.shown = 0  # tenths of the runs reported so far, off a terminal

    def __enter__(self) -> CampaignProgress:
        self.progress.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.progress.stop()

    def note(self, text: str) -> None:
        """Print a line (above the bar on a terminal)."""
        if self.enabled:
            self.console.print(text, highlight=False, soft_wrap=True)

    def advance(self, ok: bool) -> None:
        """One more run is done (``ok`` false if it failed)."""
        self.failed += not ok
        self.progress.update(self.task, advance=1, failed=self.failed)
        if self.live or not self.enabled:
            return
        task = self.progress.tasks[0]
        tenths = int(task.completed * 10 // self.total)
        if tenths > self.shown:
            self.shown = tenths
            self.note(self._line(task.completed, task.elapsed or 0.0, task.time_remaining))

    def _line(self, done: float, elapsed: float, remaining: float | None) -> str:
        eta = "-" if remaining is None or done == self.total else _clock(remaining)
        return (
            f"{self.progress.tasks[0].description}: {int(done)}/{self.total} runs, "
            f"{self.failed} failed, {_clock(elapsed)} elapsed, ETA {eta}"
        )


def _clock(seconds: float) -> str:
    return str(datetime.timedelta(seconds=round(seconds)))

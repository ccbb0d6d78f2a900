"""What the command line shows while it works: log lines, progress with a label and an ETA, and
tables.

Drawn with rich on a terminal; elsewhere (a pipe, a CI log) progress is a plain line now and
then, so logs stay readable, and tables are plain aligned text.
"""

from __future__ import annotations

import datetime
import io
import logging
import sys
import time
from types import TracebackType

from rich import box
from rich.console import Console, RenderableType
from rich.progress import BarColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.progress import Progress as RichProgress
from rich.table import Table

#: The logger every part of peerlab logs under.
log = logging.getLogger("peerlab")

#: Seconds at least between two plain progress lines when the output is not a terminal.
PLAIN_EVERY = 10.0

#: Width of tables rendered to text: wide enough that result tables do not wrap.
TEXT_WIDTH = 120


class _StderrHandler(logging.Handler):
    """Writes to ``sys.stderr`` as it is when a record comes, not as it was when logging was
    set up: a live progress bar redirects it to print above the bar."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stderr.write(self.format(record) + "\n")
            sys.stderr.flush()
        except Exception:
            self.handleError(record)


class _Formatter(logging.Formatter):
    """``peerlab: warning: message``: the level in lower case, as command line tools say it."""

    def format(self, record: logging.LogRecord) -> str:
        return f"peerlab: {record.levelname.lower()}: {record.getMessage()}"


def setup_logging(verbosity: int) -> None:
    """Send peerlab's log records to stderr as ``peerlab: LEVEL: message`` lines: errors only
    when ``verbosity`` < 0 (``-q``), then warnings and information, and debug detail when > 0
    (``-v``)."""
    level = logging.ERROR if verbosity < 0 else logging.DEBUG if verbosity > 0 else logging.INFO
    handler = _StderrHandler()
    handler.setFormatter(_Formatter())
    for old in list(log.handlers):
        log.removeHandler(old)
    log.addHandler(handler)
    log.setLevel(level)
    log.propagate = False


def table(*columns: str, header: bool = True, title: str | None = None) -> Table:
    """An empty table in the command line's one style; a column named with a leading ``>`` is
    right-aligned (numbers); with no ``header`` the names only set the alignment."""
    t = Table(
        title=title,
        title_justify="left",
        box=box.SIMPLE_HEAD,
        show_header=header,
        show_edge=False,
        pad_edge=False,
    )
    for name in columns:
        right = name.startswith(">")
        t.add_column(name.removeprefix(">"), justify="right" if right else "left")
    return t


def render(*parts: RenderableType) -> str:
    """``parts`` as plain text (no colour, no terminal codes), one after the other."""
    text = io.StringIO()
    console = Console(
        file=text, width=TEXT_WIDTH, color_system=None, highlight=False, force_jupyter=False
    )
    for i, part in enumerate(parts):
        if i:
            console.print()
        console.print(part, soft_wrap=isinstance(part, str))
    return "\n".join(line.rstrip() for line in text.getvalue().splitlines())


class Progress:
    """Shows ``done`` of ``total`` units of work under ``label``: on a terminal a live bar with
    the count, elapsed time and ETA; elsewhere a plain line when a new tenth of the work is done
    (at most every ``every`` seconds) and when it is all done; nothing when not ``enabled``.

    ``unit`` follows the count (``" runs"``, ``"s"``); ``update`` and ``advance`` take a short
    ``note`` shown beside it (``"2 failed"``).
    """

    def __init__(
        self,
        label: str,
        total: float,
        *,
        unit: str = "",
        enabled: bool = True,
        console: Console | None = None,
        every: float = PLAIN_EVERY,
    ) -> None:
        self.console = console or Console(stderr=True, highlight=False)
        self.label = label
        self.total = total
        self.unit = unit
        self.enabled = enabled
        self.every = every
        self.live = enabled and self.console.is_terminal
        self.done = 0.0
        self._note = ""
        self._bar = RichProgress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            TextColumn("{task.fields[count]}"),
            TextColumn("{task.fields[note]}"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=self.console,
            disable=not self.live,
        )
        self._task = self._bar.add_task(label, total=total, count=self._count(), note="")
        self._started = time.monotonic()
        self._shown_at = self._started
        self._tenths = 0  # tenths of the work reported so far, off a terminal

    def __enter__(self) -> Progress:
        self._bar.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._bar.stop()

    def note(self, text: str) -> None:
        """Print a line (above the bar on a terminal)."""
        if self.enabled:
            self.console.print(text, highlight=False, soft_wrap=True)

    def advance(self, amount: float = 1, note: str | None = None) -> None:
        """``amount`` more units are done."""
        self.update(self.done + amount, note)

    def update(self, done: float, note: str | None = None) -> None:
        """``done`` units are done by now (``note``, if given, replaces the one shown)."""
        self.done = min(done, self.total)
        if note is not None:
            self._note = note
        self._bar.update(self._task, completed=self.done, count=self._count(), note=self._note)
        if self.live or not self.enabled:
            return
        now = time.monotonic()
        tenths = int(self.done * 10 // self.total) if self.total > 0 else 10
        finished = self.done >= self.total
        if tenths > self._tenths and (finished or now - self._shown_at >= self.every):
            self._tenths = tenths
            self._shown_at = now
            self.note(self._line(now - self._started, finished))

    def _count(self) -> str:
        return f"{_number(self.done)}/{_number(self.total)}{self.unit}"

    def _line(self, elapsed: float, finished: bool) -> str:
        remaining = self._bar.tasks[0].time_remaining
        eta = "-" if finished or remaining is None else _clock(remaining)
        note = f", {self._note}" if self._note else ""
        return f"{self.label}: {self._count()}{note}, {_clock(elapsed)} elapsed, ETA {eta}"


def _number(value: float) -> str:
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.1f}"


def _clock(seconds: float) -> str:
    return str(datetime.timedelta(seconds=round(seconds)))

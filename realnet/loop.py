"""A small selectors event loop: readiness callbacks, a timer heap, and a thread-safe inbox."""

from __future__ import annotations

import heapq
import itertools
import logging
import selectors
import socket
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

T = TypeVar("T")

#: Where the real backend logs what went wrong inside it (a child of the command line's logger).
log = logging.getLogger("peerlab.realnet")

#: The longest exception text put in a log line or a connection's reason: a message may quote
#: what a peer sent.
REASON_CHARS = 200


def describe(exc: BaseException) -> str:
    """``Type: message`` of an exception, cut to :data:`REASON_CHARS` characters."""
    text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return text if len(text) <= REASON_CHARS else text[: REASON_CHARS - 3] + "..."


class LoopTimer:
    """Handle of a callback scheduled on an :class:`EventLoop`."""

    __slots__ = ("cancelled", "fn", "when")

    def __init__(self, when: float, fn: Callable[[], None]) -> None:
        self.when = when
        self.fn = fn
        self.cancelled = False

    def cancel(self) -> None:
        """Prevent the callback from running."""
        self.cancelled = True


class EventLoop:
    """One thread running a ``selectors`` loop for any number of transports.

    Everything that touches the loop's sockets or members runs on the loop thread; other threads
    hand work over with :meth:`call_soon_threadsafe` or :meth:`call` (which waits for the result).

    A callback that raises is logged and counted in :attr:`failures`; the exception is not kept
    (its traceback would keep the sockets and buffers of the frames it passed through alive).
    """

    def __init__(self, name: str = "peerlab-loop") -> None:
        self.name = name
        self.selector = selectors.DefaultSelector()
        self._timers: list[tuple[float, int, LoopTimer]] = []
        self._seq = itertools.count()
        self._inbox: deque[Callable[[], None]] = deque()
        self._inbox_lock = threading.Lock()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self.selector.register(self._wake_r, selectors.EVENT_READ, self._drain_wakeup)
        self._thread: threading.Thread | None = None
        self._stopping = False
        self.failures = 0  # callbacks that raised, here or in a transport (see failed)
        self.t0 = time.monotonic()
        #: the latest a timer ran after its time since :meth:`take_lag` (seconds), and when
        self.worst_lag = 0.0
        self.worst_lag_at = 0.0
        #: timers due before this loop time are not counted late (the process was stopped)
        self.lag_since = 0.0
        #: by this loop time everything peers had sent was taken in (see :meth:`caught_up`)
        self._caught_up = 0.0

    # --- time ----------------------------------------------------------------------------

    def now(self) -> float:
        """Seconds since the loop was created (monotonic)."""
        return time.monotonic() - self.t0

    def call_later(self, delay: float, fn: Callable[[], None]) -> LoopTimer:
        """Schedule ``fn`` on the loop thread after ``delay`` seconds (call from the loop)."""
        timer = LoopTimer(self.now() + max(0.0, delay), fn)
        heapq.heappush(self._timers, (timer.when, next(self._seq), timer))
        return timer

    # --- cross-thread --------------------------------------------------------------------

    def call_soon_threadsafe(self, fn: Callable[[], None]) -> None:
        """Run ``fn`` on the loop thread as soon as possible (callable from any thread)."""
        with self._inbox_lock:
            self._inbox.append(fn)
        try:
            self._wake_w.send(b"\0")
        except (BlockingIOError, OSError):
            pass  # the wake-up pipe is full or closed: the loop is already awake or stopping

    def call(self, fn: Callable[[], T], timeout: float = 10.0) -> T:
        """Run ``fn`` on the loop thread and return its result (or raise its exception)."""
        if threading.current_thread() is self._thread:
            return fn()
        future: Future[T] = Future()

        def run() -> None:
            try:
                future.set_result(fn())
            except BaseException as exc:  # handed back to the caller
                future.set_exception(exc)

        self.call_soon_threadsafe(run)
        return future.result(timeout)

    # --- running -------------------------------------------------------------------------

    def start(self) -> EventLoop:
        """Run the loop in a new daemon thread."""
        self._thread = threading.Thread(target=self.run_forever, name=self.name, daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the loop, join its thread and close its selector and wake-up pipe."""
        self._stopping = True
        self.call_soon_threadsafe(lambda: None)
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                raise RuntimeError(f"event loop {self.name} did not stop within {timeout}s")
            self._thread = None
        self.selector.close()
        self._wake_r.close()
        self._wake_w.close()

    def request_stop(self) -> None:
        """Make :meth:`run_forever` return after the current pass (call on the loop thread)."""
        self._stopping = True

    @property
    def stopping(self) -> bool:
        """Whether a stop was requested."""
        return self._stopping

    def run_forever(self) -> None:
        """Run until :meth:`stop`."""
        while not self._stopping:
            self.run_once()

    def run_once(self, max_wait: float = 0.5) -> None:
        """Wait for readiness or the next timer, then run what is due."""
        timeout = max_wait
        if self._timers:
            timeout = min(max_wait, max(0.0, self._timers[0][0] - self.now()))
        if self._inbox:
            timeout = 0.0
        events = self.selector.select(timeout)
        polled = self._caught_up = self.now()
        for key, mask in events:
            self._guard(key.data, mask)
        with self._inbox_lock:
            ready, self._inbox = self._inbox, deque()
        for fn in ready:
            self._guard(fn)
        now = self.now()
        if self._timers and self._timers[0][0] < polled:
            # bytes a link emulation held until a time after the first of these timers are
            # released by them, after this pass read its sockets
            self._caught_up = self._timers[0][0]
        while self._timers and self._timers[0][0] <= now:
            when, _, timer = heapq.heappop(self._timers)
            if not timer.cancelled:
                # how late the loop is: what every member on it feels as a stall
                late = self.now() - when
                if late > self.worst_lag and when >= self.lag_since:
                    self.worst_lag, self.worst_lag_at = late, when
                self._guard(timer.fn)

    def caught_up(self) -> float:
        """The loop time by which the loop had looked at every socket (reading from each that
        had bytes, up to a read's worth) and released what a link emulation on it held: about
        :meth:`now` while the loop keeps up, the start of a stall while its callbacks run late."""
        return self._caught_up

    def take_lag(self) -> tuple[float, float]:
        """The latest a timer ran after its time since the last call (seconds), and the loop
        time it was due; the record starts again."""
        lag = (self.worst_lag, self.worst_lag_at)
        self.worst_lag = self.worst_lag_at = 0.0
        return lag

    def forgive_lag(self) -> None:
        """Do not count as late the timers due until now: the process was stopped (a
        ``SIGSTOP`` is a fault the scenario asked for, not a stall of the loop)."""
        self.lag_since = self.now()

    def failed(self, what: str, exc: BaseException) -> None:
        """Log, once, that ``what`` raised ``exc`` (its traceback too at debug level, as text:
        the record keeps no exception), and count it in :attr:`failures`."""
        self.failures += 1
        detail = describe(exc)
        if log.isEnabledFor(logging.DEBUG):
            detail += "\n" + "".join(traceback.format_exception(exc)).rstrip()
        log.error("%s: %s: %s", self.name, what, detail)

    def _guard(self, fn: Callable[..., Any], *args: Any) -> None:
        try:
            fn(*args)
        except Exception as exc:  # a bug in one callback must not kill every member on the loop
            self.failed("callback failed", exc)

    def _drain_wakeup(self, _mask: int) -> None:
        try:
            while self._wake_r.recv(4096):
                pass
        except (BlockingIOError, OSError):
            pass

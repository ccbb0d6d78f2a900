"""The simulation's clock and event queue: the one module that reaches into SimPy.

SimPy's ``Environment`` is the scheduler. To spare every chunk of bytes in flight a Python call
or two, this module reads its clock attribute and pushes events on its heap directly, as
``Environment.schedule`` would; :func:`check_simpy` verifies, when a clock is made, that the
queue still has the shape that relies on, and fails loudly if a SimPy release changed it.
Members' timers wait in a heap of their own with one SimPy event at the earliest (see
:class:`Clock`), because SimPy cannot take a cancelled event off its queue.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from functools import partial
from heapq import heappop, heappush
from typing import TYPE_CHECKING, Any

import simpy
from simpy.events import NORMAL

from peerlab.collector import cycle_collection_paused

if TYPE_CHECKING:
    from peerlab.sim.events import SimTimer


class Due:
    """A SimPy event that runs its callbacks when the environment reaches it.

    ``Environment.step`` needs of an event only its ``callbacks`` and a true ``_ok``; a
    ``Timeout`` would also run a Python-level ``__init__`` and build an attribute dict. Made
    with no arguments (so no ``__init__`` call either) and given its callbacks after.
    """

    __slots__ = ("callbacks",)
    _ok = True

    callbacks: list[Callable[[Any], None]] | None


class SimPyChanged(RuntimeError):
    """SimPy's event queue no longer has the shape peerlab.sim relies on."""


def check_simpy(env: simpy.Environment) -> None:
    """Raise :class:`SimPyChanged` unless ``env`` keeps its clock in ``_now`` and its queue as a
    heap of ``(time, priority, id, event)`` with ids from ``_eid``, as SimPy 4 does."""
    probe = Due()
    probe.callbacks = []
    try:
        env.schedule(probe, NORMAL, 0)
        entry = env._queue[-1]
        ok = (
            isinstance(env._now, float | int)
            and isinstance(entry, tuple)
            and len(entry) == 4
            and entry[0] == env._now
            and entry[1] == NORMAL
            and isinstance(entry[2], int)
            and entry[3] is probe
            and isinstance(next(env._eid), int)
        )
        env._queue.remove(entry)
    except (AttributeError, IndexError, TypeError, ValueError) as exc:
        raise SimPyChanged(f"SimPy {simpy.__version__}'s Environment changed: {exc}") from None
    if not ok:
        raise SimPyChanged(
            f"SimPy {simpy.__version__} queues events as {entry!r}, not as "
            "(time, priority, id, event): peerlab.sim needs SimPy 4's queue"
        )


class Clock:
    """Simulated time and what happens in it: events at an instant, callbacks after a delay,
    and members' timers."""

    def __init__(self) -> None:
        self.env = simpy.Environment()
        check_simpy(self.env)
        env = self.env
        #: The current simulated time, read without a Python call (a transport reads it for
        #: every frame it carries).
        self.time: Callable[[], float] = partial(getattr, env, "_now")
        self._queue = env._queue
        self._ids = env._eid
        # Members' timers: (due, order made, timer), with a SimPy event only at the earliest.
        # Keepalive ticks and handshake deadlines (most cancelled long before due) would
        # otherwise be half of SimPy's queue, making every chunk dearer to schedule and take.
        self._timers: list[tuple[float, int, SimTimer]] = []
        self._timer_order = itertools.count()
        self._wakes: list[float] = []
        self._wake_callbacks = [self._wake]

    @property
    def now(self) -> float:
        """Simulated seconds since the start."""
        return self.env.now

    def push(self, when: float, event: Due) -> None:
        """Have ``event`` happen at simulated time ``when`` (not before now)."""
        heappush(self._queue, (when, NORMAL, next(self._ids), event))

    def schedule(self, delay: float, fn: Callable[[], None]) -> None:
        """Call ``fn`` after ``delay`` simulated seconds (a SimPy callback, no process)."""
        if delay < 0:
            raise ValueError(f"negative delay {delay}")
        event = Due()
        event.callbacks = [lambda _event: fn()]
        self.env.schedule(event, NORMAL, delay)

    def add_timer(self, delay: float, timer: SimTimer) -> None:
        """Queue a member's timer to fire ``delay`` seconds from now."""
        due = self.env._now + delay
        heappush(self._timers, (due, next(self._timer_order), timer))
        if not self._wakes or due < self._wakes[0]:
            self._wake_at(due)

    def _wake_at(self, due: float) -> None:
        heappush(self._wakes, due)
        event = Due()
        event.callbacks = self._wake_callbacks
        self.push(due, event)  # at ``due`` exactly: now + (due - now) may round

    def _wake(self, _event: Due) -> None:
        """Fire the timers due now, in the order they were made, then wake for the next one.
        Timers made while these fire wait for a wake of their own, after the events queued
        for now already, as on SimPy's queue."""
        now = heappop(self._wakes)
        timers = self._timers
        due = []
        while timers and timers[0][0] <= now:
            due.append(heappop(timers)[2])
        for timer in due:
            if not timer.cancelled:
                timer.transport.dispatch(timer.fire)
        if timers and (not self._wakes or timers[0][0] < self._wakes[0]):
            self._wake_at(timers[0][0])

    @property
    def pending_timers(self) -> int:
        """Members' timers waiting (cancelled ones included until their time)."""
        return len(self._timers)

    @property
    def queued(self) -> list[Any]:
        """The events on SimPy's queue, earliest first (for tests and diagnostics)."""
        return [entry[3] for entry in sorted(self._queue)]

    def run(self, until: float) -> None:
        """Run the simulation up to simulated time ``until``, the cycle collector held off."""
        if until > self.env.now:
            with cycle_collection_paused():
                self.env.run(until=until)

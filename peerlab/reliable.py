"""Reliable delivery's state, kept apart from the member that acts on it.

The contract (README, "Reliable delivery"): a reliable message is delivered at most once to a
receiver that does not restart; it is acknowledged only once delivered; its sender retries it
on a timer and whenever a route to its destination appears, until its deadline, and then
reports it failed; so every reliable message ends acknowledged or reported failed at its sender.

The sender numbers the reliable messages one life sends to one destination 1, 2, 3, ... and
has at most ``window`` numbers between its lowest unsettled one (the *floor*) and the highest
it may send; later messages wait, their deadlines running. Every transmission carries the
floor, so a receiver forgets what lies below it and never holds more than
:data:`WINDOW_MAX` numbers per sender life, however long an acknowledgement is held up. A
message below the floor is settled at its sender (acknowledged, or given up and reported):
the receiver neither delivers nor acknowledges it again.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator
from dataclasses import dataclass, field

from peerlab.transport import TimerHandle
from peerlab.wire import Data, Reliable

#: The most numbers a sender may have open towards one destination (the protocol's bound).
WINDOW_MAX = 4096
#: Lives of one sender a receiver keeps state for; messages of older lives are refused.
LIVES_KEPT = 2


@dataclass(slots=True, eq=False)
class Pending:
    """A reliable message its sender has not settled yet."""

    data: Data
    dst: str
    number: int
    deadline: float
    attempts: int = 0
    timer: TimerHandle | None = None


@dataclass(slots=True)
class _Flow:
    """The reliable messages of one sender life to one destination."""

    next: int = 1
    unsettled: dict[int, Pending] = field(default_factory=dict)  # by number, ascending

    @property
    def floor(self) -> int:
        return next(iter(self.unsettled)) if self.unsettled else self.next


class ReliableSender:
    """The reliable messages one life of a member has sent and not settled, by destination,
    and the destinations some of them wait for a route to."""

    def __init__(self, life: int, window: int) -> None:
        self.life = life
        self.window = window
        self.unrouted: set[str] = set()
        self._flows: dict[str, _Flow] = {}
        self._by_id: dict[str, Pending] = {}

    def __len__(self) -> int:
        return len(self._by_id)

    def __iter__(self) -> Iterator[Pending]:
        return iter(list(self._by_id.values()))

    def get(self, msg_id: str) -> Pending | None:
        """The unsettled message with this id, if any."""
        return self._by_id.get(msg_id)

    def open(self, data: Data, dst: str, deadline: float) -> Pending:
        """Number a new reliable message and hold it until it is settled."""
        flow = self._flows.setdefault(dst, _Flow())
        pending = Pending(data, dst, flow.next, deadline)
        flow.next += 1
        flow.unsettled[pending.number] = pending
        self._by_id[data.msg_id] = pending
        return pending

    def in_window(self, pending: Pending) -> bool:
        """Whether ``pending`` may be transmitted (its number is within the window)."""
        return pending.number < self._flows[pending.dst].floor + self.window

    def stamp(self, pending: Pending) -> Data:
        """The message, carrying its number and its flow's current floor, ready to transmit."""
        floor = self._flows[pending.dst].floor
        pending.data.reliable = Reliable(self.life, pending.number, floor)
        return pending.data

    def settle(self, pending: Pending) -> list[Pending]:
        """Forget a settled message; returns the waiting messages its settling let into the
        window, in order."""
        flow = self._flows[pending.dst]
        before = flow.floor
        del flow.unsettled[pending.number]
        del self._by_id[pending.data.msg_id]
        after = flow.floor
        if after == before:
            return []
        top = after + self.window
        return [p for n, p in flow.unsettled.items() if before + self.window <= n < top]

    def towards(self, dst: str) -> list[Pending]:
        """The unsettled messages to ``dst`` within the window, in order."""
        flow = self._flows.get(dst)
        if flow is None:
            return []
        top = flow.floor + self.window
        return [p for n, p in flow.unsettled.items() if n < top]


class Receipt(enum.Enum):
    """What a receiver makes of a reliable message."""

    NEW = "new"  # deliver it and acknowledge it
    DUPLICATE = "duplicate"  # delivered before: acknowledge it again
    SETTLED = "settled"  # below its sender's floor: neither deliver nor acknowledge
    REFUSED = "refused"  # beyond the window, or from a sender life no longer kept


@dataclass(slots=True)
class _Inbound:
    floor: int = 1
    seen: set[int] = field(default_factory=set)


class ReliableReceiver:
    """What a member remembers of the reliable messages it received, per sender life."""

    def __init__(self) -> None:
        self._lives: dict[str, dict[int, _Inbound]] = {}

    def receive(self, src: str, meta: Reliable) -> Receipt:
        """Judge a reliable message from ``src`` and remember it if it is new."""
        lives = self._lives.setdefault(src, {})
        state = lives.get(meta.life)
        if state is None:
            if len(lives) >= LIVES_KEPT and meta.life < min(lives):
                return Receipt.REFUSED
            state = lives[meta.life] = _Inbound()
            if len(lives) > LIVES_KEPT:
                del lives[min(lives)]
        if meta.floor > state.floor:
            state.floor = meta.floor
            if len(state.seen) > 2 * WINDOW_MAX:  # forget what lies below, now and then
                state.seen = {n for n in state.seen if n >= meta.floor}
        number = meta.seq
        if number < state.floor:
            return Receipt.SETTLED
        if number in state.seen:
            return Receipt.DUPLICATE
        if number >= state.floor + WINDOW_MAX:
            return Receipt.REFUSED
        state.seen.add(number)
        return Receipt.NEW


class ReliableDelivery:
    """One member life's reliable-delivery state: what it sent and what it received."""

    def __init__(self, life: int, window: int) -> None:
        self.sender = ReliableSender(life, window)
        self.receiver = ReliableReceiver()

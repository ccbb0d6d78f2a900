"""Structured events that members emit, and the tracer that collects them.

Every event is ``(time, member, kind, fields)``. Results, convergence checks, plots and the
determinism hash are all built from these events, in both worlds.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Final

CONNECT: Final = "connect"
DISCONNECT: Final = "disconnect"
CONNECT_FAILED: Final = "connect_failed"
ADVERT_IN: Final = "advert_in"
ADVERT_OUT: Final = "advert_out"
ADVERT_REJECTED: Final = "advert_rejected"
ADVERT_EXPIRED: Final = "advert_expired"
FIGHT_BACK: Final = "fight_back"
ROUTE_CHANGE: Final = "route_change"
SEND: Final = "send"
FORWARD: Final = "forward"
DELIVER: Final = "deliver"
DROP: Final = "drop"
RETRY: Final = "retry"
ACKED: Final = "acked"
PROTOCOL_ERROR: Final = "protocol_error"
MISBEHAVED: Final = "misbehaved"
DIAL_REFUSED: Final = "dial_refused"
START: Final = "start"
LEAVE: Final = "leave"
STOP: Final = "stop"

KINDS: Final = frozenset(
    {
        CONNECT,
        DISCONNECT,
        CONNECT_FAILED,
        ADVERT_IN,
        ADVERT_OUT,
        ADVERT_REJECTED,
        ADVERT_EXPIRED,
        FIGHT_BACK,
        ROUTE_CHANGE,
        SEND,
        FORWARD,
        DELIVER,
        DROP,
        RETRY,
        ACKED,
        PROTOCOL_ERROR,
        MISBEHAVED,
        DIAL_REFUSED,
        START,
        LEAVE,
        STOP,
    }
)
#: Kinds emitted once per advert batch; a large network produces many of them.
CHATTY_KINDS: Final = frozenset({ADVERT_IN, ADVERT_OUT})


@dataclass(frozen=True, slots=True)
class TraceEvent:
    """One thing that happened at one member at one time."""

    time: float
    member: str
    kind: str
    fields: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: ``{"t", "member", "kind", **fields}``."""
        return {"t": self.time, "member": self.member, "kind": self.kind, **self.fields}

    def to_json(self) -> str:
        """One canonical JSON line (sorted keys), the unit of the trace hash."""
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"), default=str)


class Tracer:
    """Collects :class:`TraceEvent` objects; optionally filters kinds and forwards to a sink.

    ``kind in tracer.kinds`` says whether events of a kind are recorded, so a caller can skip
    building one nobody wants (a tracer that neither keeps nor forwards wants none).
    """

    def __init__(
        self,
        *,
        kinds: Iterable[str] | None = None,
        keep: bool = True,
        sink: Callable[[TraceEvent], None] | None = None,
    ) -> None:
        if kinds is not None:
            unknown = set(kinds) - KINDS
            if unknown:
                raise ValueError(f"unknown trace kinds {sorted(unknown)}; known: {sorted(KINDS)}")
        wanted = frozenset(kinds) if kinds is not None else KINDS
        self.kinds = wanted if keep or sink is not None else frozenset()
        self.keep = keep
        self.sink = sink
        self.events: list[TraceEvent] = []

    def emit(self, time: float, member: str, kind: str, **fields: Any) -> None:
        """Record one event if its kind is wanted."""
        if kind not in self.kinds:
            return
        event = TraceEvent(time, member, kind, fields)
        if self.keep:
            self.events.append(event)
        if self.sink is not None:
            self.sink(event)

    def of_kind(self, *kinds: str) -> list[TraceEvent]:
        """The recorded events of the given kinds, in order."""
        return [e for e in self.events if e.kind in kinds]

    def digest(self) -> str:
        """SHA-256 of the canonical JSON lines: equal digests mean byte-identical traces."""
        return digest(self.events)


def digest(events: Iterable[TraceEvent]) -> str:
    """SHA-256 of events as canonical JSON lines: equal digests mean byte-identical traces."""
    h = hashlib.sha256()
    for event in events:
        h.update(event.to_json().encode())
        h.update(b"\n")
    return h.hexdigest()

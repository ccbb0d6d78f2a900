"""A run's story over time: members, links, routes and views, kept as compact deltas.

The timeline is built once, when a run ends, from the trace (links and routes), the scenario
events the runner applied (members) and the views the runner sampled while the run went on. It
lives in the results under ``timeline`` (convergence is the results' own ``convergence``), so a
picture of any instant is drawn from the results file alone. Its JSON shape, version
:data:`TIMELINE_VERSION`:

``names``
    every member the run ever had, sorted; ``routes`` and ``views`` refer to members by their
    index in this list.
``members``
    ``[t, member, up, cause]``: a member starting (``up`` true) or stopping; ``cause`` is the
    scenario event (``"start"`` for the members there from the beginning).
``links``
    ``[t, a, b, up, cause]`` with ``a < b``: an established link (both ends hold the
    connection) coming up or going down; ``cause`` is the reason one end gave for a link going
    down, and the last scenario event before it for a link coming up.
``routes``
    ``{member: [[t, dst, next_hop, hops, dst, next_hop, hops, ...], ...]}``: the destinations
    whose route changed at ``t``; ``next_hop`` and ``hops`` are -1 for one no longer reachable.
    A member that (re)starts begins with an empty table.
``views``
    ``{member: [[t, [a, b, ...], [a, b, ...]], ...]}``: the links the member's database came to
    hold (first list, pairs flattened) and stopped holding (second) by ``t``, sampled each time
    the runner polls the network (every 10 ms of a simulated run).
``omitted``
    ``{part: why}`` for a part left out, e.g. views above :data:`VIEW_LIMIT` members.
``hops``
    for each of the results' ``messages``, in order, the time it reached each member of its
    ``path``.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from itertools import compress
from operator import ne
from typing import TYPE_CHECKING, Any, Final

from peerlab import trace as ev
from peerlab.errors import ResultsError, UnknownMember, name_list

if TYPE_CHECKING:
    from peerlab.scenario import Scenario

TIMELINE_VERSION: Final = 1
#: Views are sampled only for runs with at most this many members: a member's view holds every
#: link of the network, so 1,000 members learning 2,000 links each add two million entries.
VIEW_LIMIT: Final = 250
#: The reason a member gives when it closes the second of two connections to one peer: the pair
#: stays linked by the first, so it is no link going down.
DUPLICATE: Final = "duplicate connection"
LIFECYCLE: Final = {
    "crash": False,
    "power_off": False,
    "leave": False,
    "join": True,
    "restart": True,
}

Pair = tuple[str, str]


def _pair(a: str, b: str) -> Pair:
    return (a, b) if a < b else (b, a)


class ViewRecorder:
    """Samples each running member's view (the two-way links its database holds) and keeps
    what changed between samples, per member."""

    def __init__(self, members: int, limit: int = VIEW_LIMIT) -> None:
        self.rows: dict[str, list[tuple[float, list[Pair], list[Pair]]]] = {}
        self.omitted: str | None = None
        if members > limit:
            self.omitted = f"not recorded above {limit} members (this run had {members})"
        # member id -> (the Member object, its database's claims (a list changed in place),
        # a copy of them when last sampled)
        self._last: dict[str, tuple[Any, list[tuple[int, ...]], list[tuple[int, ...]]]] = {}

    def observe(self, members: Mapping[str, Any], t: float) -> None:
        """Sample every member in ``members`` at scenario time ``t``."""
        if self.omitted is not None:
            return
        last = self._last
        for mid, member in members.items():
            seen = last.get(mid)
            if seen is not None and seen[0] is member:
                if seen[1] == seen[2]:  # most members, most of the time: nothing new
                    continue
                old = seen[2]
            else:
                old = []
                db = getattr(member, "db", None)
                if db is None:  # a proxy of a member running in another process
                    self.omitted = "not observable when members run in other processes"
                    self.rows.clear()
                    return
                seen = (member, db.claimed, old)
            claimed = seen[1]
            new = list(claimed)  # claims only grow in length (members are never unnumbered)
            last[mid] = (member, claimed, new)
            padded = old + [()] * (len(new) - len(old))
            changed = list(compress(range(len(new)), map(ne, new, padded)))
            before, after = _edges(padded, changed), _edges(new, changed)
            if before != after:
                ids = member.db.index.ids
                self.rows.setdefault(mid, []).append(
                    (
                        round(t, 6),
                        [(ids[u], ids[v]) for u, v in sorted(after - before)],
                        [(ids[u], ids[v]) for u, v in sorted(before - after)],
                    )
                )


def _edges(claimed: Sequence[tuple[int, ...]], around: Iterable[int]) -> set[tuple[int, int]]:
    """The two-way edges touching the members numbered ``around``."""
    out = set()
    for u in around:
        for v in claimed[u]:
            if v < len(claimed) and u in claimed[v]:
                out.add((u, v) if u < v else (v, u))
    return out


def build_timeline(
    events: Sequence[ev.TraceEvent],
    scenario: Scenario,
    convergence: Sequence[Mapping[str, Any]],
    messages: Sequence[Mapping[str, Any]],
    views: ViewRecorder,
    clock: Callable[[float], float],
) -> dict[str, Any]:
    """The timeline of a run (see the module's docstring); ``clock`` turns a trace time into
    scenario time."""
    events = sorted(events, key=lambda e: e.time)
    members = _lifecycle(scenario, convergence)
    everyone = {m for _, m, _, _ in members}
    for e in events:
        if e.kind == ev.ROUTE_CHANGE:
            everyone.update(x for x in e.fields["delta"][::3])
    names = sorted(everyone)
    number = {m: i for i, m in enumerate(names)}
    routes: dict[str, list[list[float | int]]] = {}
    for e in events:
        if e.kind == ev.ROUTE_CHANGE:
            row: list[float | int] = [clock(e.time)]
            delta = e.fields["delta"]
            for i in range(0, len(delta), 3):
                dst, hop, hops = delta[i : i + 3]
                row += (number[dst], -1, -1) if hop is None else (number[dst], number[hop], hops)
            routes.setdefault(e.member, []).append(row)
    timeline: dict[str, Any] = {
        "version": TIMELINE_VERSION,
        "names": names,
        "members": members,
        "links": _links(events, convergence, clock),
        "routes": routes,
        "views": {
            m: [[t, _flat(added, number), _flat(gone, number)] for t, added, gone in rows]
            for m, rows in sorted(views.rows.items())
        },
        "omitted": {} if views.omitted is None else {"views": views.omitted},
        "hops": _hop_times(events, messages, clock),
    }
    return timeline


def _flat(pairs: Iterable[Pair], number: Mapping[str, int]) -> list[int]:
    return [number[m] for pair in pairs for m in pair]


def _lifecycle(scenario: Scenario, convergence: Sequence[Mapping[str, Any]]) -> list[list[Any]]:
    """Members starting and stopping: the scenario's members at 0, then every join, restart,
    crash, power-off and leave the runner applied (each opened a convergence window; one it
    skipped, such as a crash of a member already down, did not)."""
    windows = Counter((c["at"], c["event"]) for c in convergence)
    rows: list[list[Any]] = [[0.0, m, True, "start"] for m in scenario.members]
    for e in sorted(scenario.events, key=lambda e: (e.at, e.index)):
        label = e.describe()
        if e.kind not in LIFECYCLE or windows[(e.at, label)] == 0:
            continue
        windows[(e.at, label)] -= 1
        member = e.args["member"] if e.kind == "join" else e.args
        rows.append([e.at, member, LIFECYCLE[e.kind], label])
    return rows


def _links(
    events: Sequence[ev.TraceEvent], convergence: Sequence[Mapping[str, Any]], clock: Callable
) -> list[list[Any]]:
    """Established links coming up and going down: a link is up while both ends hold a
    connection to each other."""
    held: set[Pair] = set()  # (member, peer): member holds a connection to peer
    up: set[Pair] = set()
    rows: list[list[Any]] = []
    applied = [c["at"] for c in convergence]  # one window per topology event applied

    def last_event(t: float) -> str:
        i = bisect_right(applied, t)
        return convergence[i - 1]["event"] if i else "start"

    def settle(t: float, a: str, b: str, cause: str | None) -> None:
        pair = _pair(a, b)
        now_up = (a, b) in held and (b, a) in held
        if now_up != (pair in up):
            (up.add if now_up else up.discard)(pair)
            rows.append([t, *pair, now_up, cause or last_event(t)])

    for e in events:
        kind, member = e.kind, e.member
        if kind in (ev.START, ev.STOP):  # a fresh instance holds nothing; a stopped one let go
            t = clock(e.time)
            for a, b in [x for x in held if x[0] == member]:
                held.discard((a, b))
                settle(t, a, b, "restarted" if kind == ev.START else "left")
        elif kind in (ev.CONNECT, ev.DISCONNECT) and e.fields.get("peer"):
            if kind == ev.DISCONNECT and e.fields.get("reason") == DUPLICATE:
                continue
            peer = e.fields["peer"]
            (held.add if kind == ev.CONNECT else held.discard)((member, peer))
            reason = e.fields.get("reason") if kind == ev.DISCONNECT else None
            settle(clock(e.time), member, peer, reason)
    return rows


def _hop_times(
    events: Sequence[ev.TraceEvent], messages: Sequence[Mapping[str, Any]], clock: Callable
) -> list[list[float]]:
    """For each message, when it reached each member of its path."""
    seen: dict[str, list[tuple[float, str]]] = {}
    for e in events:
        if e.kind in (ev.SEND, ev.FORWARD, ev.DELIVER) or (
            e.kind == ev.DROP and not e.fields.get("ack")
        ):
            seen.setdefault(e.fields["msg_id"], []).append((clock(e.time), e.member))
    out = []
    for m in messages:
        times = [m["sent_at"]]
        marks = seen.get(m["id"], [])
        for hop in m["path"][1:]:
            later = [t for t, who in marks if who == hop and t >= times[-1]]
            if not later:
                break
            times.append(later[0])
        if m["delivered_at"] is None and len(times) == len(m["path"]):
            drop = [t for t, who in marks if who == m["path"][-1] and t >= times[-1]]
            times.append(drop[-1] if drop else times[-1])  # when it was given up
        out.append(times)
    return out


class Timeline:
    """What held at any instant of a run, read from its results' ``timeline``."""

    def __init__(self, data: Mapping[str, Any], scenario: str) -> None:
        if data.get("version") != TIMELINE_VERSION:
            raise ResultsError(
                f"results of {scenario!r} hold timeline version {data.get('version')!r}; "
                f"this peerlab reads version {TIMELINE_VERSION}"
            )
        self.scenario = scenario
        self.names: list[str] = data["names"]
        self.members: list[list[Any]] = data["members"]
        self.links: list[list[Any]] = data["links"]
        self.routes: dict[str, list[list[Any]]] = data["routes"]
        self.views: dict[str, list[list[Any]]] = data["views"]
        self.omitted: dict[str, str] = data["omitted"]
        self.hops: list[list[float]] = data["hops"]

    def members_at(self, t: float) -> list[str]:
        """The members running at scenario time ``t``, sorted."""
        running: set[str] = set()
        for when, member, up, _ in self.members:
            if when > t:
                break
            (running.add if up else running.discard)(member)
        return sorted(running)

    def links_at(self, t: float) -> list[Pair]:
        """The links established at scenario time ``t``, as sorted pairs."""
        up: set[Pair] = set()
        for when, a, b, is_up, _ in self.links:
            if when > t:
                break
            (up.add if is_up else up.discard)((a, b))
        return sorted(up)

    def link_changes(self) -> list[float]:
        """The times at which some link came up or went down, ascending, each once."""
        return sorted({row[0] for row in self.links})

    def _since(self, member: str, t: float) -> float:
        """When ``member``, running at ``t``, last started; :class:`UnknownMember` if it was
        not running then."""
        started = None
        for when, who, up, _ in self.members:
            if when > t:
                break
            if who == member:
                started = when if up else None
        if started is None:
            raise UnknownMember(
                f"{member!r} was not running at {t:g}s of {self.scenario!r} "
                f"(running then: {name_list(self.members_at(t))})"
            )
        return started

    def _rows(self, rows: list[list[Any]], member: str, t: float) -> list[list[Any]]:
        """``rows`` of ``member`` from its last start up to ``t``."""
        since = self._since(member, t)
        times = [row[0] for row in rows]
        return rows[bisect_left(times, since) : bisect_right(times, t)]

    def table_at(self, member: str, t: float) -> dict[str, dict[str, Any]]:
        """``member``'s routing table at scenario time ``t``, shaped as the results' tables."""
        names = self.names
        table: dict[str, tuple[str, int] | None] = {}
        for row in self._rows(self.routes.get(member, []), member, t):
            for i in range(1, len(row), 3):
                dst, hop, hops = row[i : i + 3]
                table[names[dst]] = None if hop < 0 else (names[hop], hops)
        return {d: {"next_hop": r[0], "hops": r[1]} for d, r in sorted(table.items()) if r}

    def view_at(self, member: str, t: float) -> set[Pair]:
        """The links ``member`` believed in at scenario time ``t`` (as sampled)."""
        if "views" in self.omitted:
            raise ResultsError(f"views of {self.scenario!r} were {self.omitted['views']}")
        names = self.names
        view: set[Pair] = set()
        for _, added, gone in self._rows(self.views.get(member, []), member, t):
            view.update(_pairs(added, names))
            view.difference_update(_pairs(gone, names))
        return view


def _pairs(flat: Sequence[int], names: Sequence[str]) -> Iterable[Pair]:
    return ((names[flat[i]], names[flat[i + 1]]) for i in range(0, len(flat), 2))

"""The kinds of scenario event: one table that validation, the runner's labels and the docs
read (``scenarios/README.md``'s event table is :func:`markdown_table`).

An event is written ``{at: DURATION, KIND: VALUE}``; each kind's entry says what its value
converts to, whether it changes the topology (the runner then tracks convergence), how it is
labelled, what the runner is given as its ``args``, any check of meaning its value needs
beyond naming known members, and the size of the payloads it sends.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import msgspec
from msgspec import UNSET, UnsetType

from peerlab.scenario.document import KeyPath
from peerlab.scenario.scalars import Bandwidth, Duration, MemberName, NewMember, Text, plain

#: Two members: the ends of a link.
MemberPair = tuple[MemberName, MemberName]
#: Groups of members, as a partition splits them.
GroupList = Annotated[
    list[list[MemberName]], msgspec.Meta(description="a list of groups of member names")
]


class Send(msgspec.Struct, forbid_unknown_fields=True, frozen=True, rename={"sender": "from"}):
    """``send``: one message."""

    sender: MemberName
    to: MemberName
    payload: Text = Text("")
    reliable: bool = False


class Traffic(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """``traffic``: messages between random pairs of live members."""

    count: Annotated[int, msgspec.Meta(ge=1)]
    size: Annotated[int, msgspec.Meta(ge=0)] = 100
    reliable: bool = False


class Join(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """``join``: a new member and the members it dials."""

    member: NewMember
    connect: list[MemberName]


class Partition(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """``partition`` written as a mapping, to make it one-way."""

    groups: GroupList
    one_way: bool = False


class SetLink(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """``set_link``: new parameters for a link (those not given stay as they are)."""

    between: MemberPair
    latency: Duration | UnsetType = UNSET
    jitter: Duration | UnsetType = UNSET
    bandwidth: Bandwidth | UnsetType = UNSET
    loss: Annotated[float, msgspec.Meta(ge=0.0, le=0.99)] | UnsetType = UNSET


#: What a check of meaning reports: the key path below the event's value, and the reason.
Found = Iterator[tuple[KeyPath, str]]


def distinct_pair(pair: MemberPair) -> Found:
    """A link's problem if its two ends are one member."""
    if pair[0] == pair[1]:
        yield (), f"a link needs two different members, got [{pair[0]}, {pair[1]}]"


def _disjoint_groups(value: GroupList | Partition) -> Found:
    groups, where = (value.groups, ("groups",)) if isinstance(value, Partition) else (value, ())
    if len(groups) < 2:
        yield where, "expected a list of at least two groups of members"
    placed: set[str] = set()
    for j, group in enumerate(groups):
        for k, member in enumerate(group):
            if member in placed:
                yield (*where, j, k), f"member {member!r} is in two groups"
            placed.add(member)


def _set_link_checks(value: SetLink) -> Found:
    for where, reason in distinct_pair(value.between):
        yield ("between", *where), reason
    if all(getattr(value, k) is UNSET for k in ("latency", "jitter", "bandwidth", "loss")):
        yield (), "expected at least one of latency, jitter, bandwidth, loss"


def _no_checks(value: Any) -> Found:
    return iter(())


@dataclass(frozen=True)
class EventKind:
    """One kind of event: its name, the type its value converts to, how the value is written
    and what the event does (the docs' table), whether it changes the topology, its label
    from the runner's ``args``, those ``args`` from the converted value, checks of its
    value's meaning, and the payload its messages carry."""

    name: str
    value: Any
    written: str
    doc: str
    topology: bool
    label: Callable[[Any], str]
    args: Callable[[Any], Any] = plain
    check: Callable[[Any], Found] = _no_checks
    #: the key and size in bytes of the payload each of its messages carries, from its args
    payload: Callable[[Any], tuple[str, int]] | None = None


def _link(name: str, doc: str) -> EventKind:
    return EventKind(
        name,
        MemberPair,
        "`[a, b]`",
        doc,
        True,
        lambda a: f"{name} {a[0]}-{a[1]}",
        lambda v: tuple(plain(v)),
        distinct_pair,
    )


def _member(name: str, doc: str) -> EventKind:
    return EventKind(name, MemberName, "member", doc, True, lambda a: f"{name} {a}")


def _partition_args(value: GroupList | Partition) -> dict[str, Any]:
    return plain(value if isinstance(value, Partition) else Partition(value))


def _partition_label(args: dict[str, Any]) -> str:
    arrow = " -/-> " if args["one_way"] else " | "
    return "partition " + arrow.join(",".join(g) for g in args["groups"])


_KINDS = (
    EventKind(
        "send",
        Send,
        "`{from, to, payload?, reliable?}`",
        "`from` sends `payload` (text) to `to`; recorded as dropped `sender_down` if `from` is "
        "not running",
        False,
        lambda a: f"send {a['from']}->{a['to']}",
        payload=lambda a: ("payload", len(a["payload"].encode())),
    ),
    EventKind(
        "traffic",
        Traffic,
        "`{count, size?, reliable?}`",
        "`count` messages of `size` bytes (default 100) between random pairs of live members "
        "(seeded); a payload (here or in `send`) must fit in one 1 MiB frame on the network's "
        "longest path, which `peerlab check` works out",
        False,
        lambda a: f"traffic x{a['count']}",
        payload=lambda a: ("size", a["size"]),
    ),
    _link(
        "link_down",
        "close the connection between a and b (both are told at once); the link stays down",
    ),
    _link("link_cut", "silently cut the path: nobody is told; keepalive finds out"),
    _link("link_up", "restore the link; a dials b"),
    _member("crash", "the process dies: its connections are reset, its state is lost"),
    _member("power_off", "the machine goes dark: nobody is told; keepalive finds out"),
    _member(
        "restart",
        "a crashed or powered-off member comes back with fresh state, same id and address, "
        "and dials its scenario links whose other end is alive",
    ),
    EventKind(
        "join",
        Join,
        "`{member, connect: [...]}`",
        "a new member starts and dials the listed ones",
        True,
        lambda a: f"join {a['member']} -> {','.join(a['connect'])}",
    ),
    _member("leave", "graceful: Bye and a final advert to every neighbour, then gone"),
    _member(
        "pause",
        "the member stops, as a stopped process does: bytes and timers wait, nothing is lost; "
        "peers may find it dead by keepalive; while paused it is left out of the truth the "
        "tables are judged against",
    ),
    _member("resume", "a paused member goes on with everything that waited"),
    EventKind(
        "partition",
        GroupList | Partition,
        "list of groups, or `{groups, one_way}`",
        "members in different groups cannot exchange bytes (held back, as TCP would); links "
        "across die by keepalive; with `one_way: true` only the first group cannot send to "
        "the others",
        True,
        _partition_label,
        _partition_args,
        _disjoint_groups,
    ),
    EventKind(
        "heal",
        Literal[True],
        "`true`",
        "end the partition; links that died are dialled again",
        True,
        lambda a: "heal",
    ),
    EventKind(
        "set_link",
        SetLink,
        "`{between: [a, b], latency?, jitter?, bandwidth?, loss?}`",
        "change the link's parameters from now on, on its open connection too (bytes already "
        "on their way keep their time); those not given stay as they are",
        False,
        lambda a: f"set_link {a['between'][0]}-{a['between'][1]}",
        check=_set_link_checks,
    ),
)

#: Every event kind by name, in the order the docs list them.
EVENTS: dict[str, EventKind] = {kind.name: kind for kind in _KINDS}
EVENT_KINDS: tuple[str, ...] = tuple(EVENTS)
#: The kinds that change the topology: the runner tracks convergence after each.
TOPOLOGY_EVENTS: frozenset[str] = frozenset(k.name for k in _KINDS if k.topology)


def markdown_table() -> str:
    """The event kinds as the Markdown table of ``scenarios/README.md``."""
    rows = [f"| `{k.name}` | {k.written} | {k.doc} |" for k in _KINDS]
    return "\n".join(["| action | value | meaning |", "|---|---|---|", *rows])

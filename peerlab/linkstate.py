"""The link-state database: every member's advert, the sequence rules, and the two-way graph.

Each member owns one :class:`~peerlab.wire.Advert` ``(origin, seq, neighbours, address)`` and
bumps ``seq`` whenever its neighbour set changes. A database keeps the highest ``seq`` per origin.
An edge A-B is part of the graph only if A lists B and B lists A (the two-way check), which keeps
half-dead links and stale adverts out of the routes.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import NamedTuple

import msgspec

from peerlab.wire import Advert, decode_advert, encode_advert


@dataclass(frozen=True, slots=True)
class AdvertRecord:
    """An advert together with its encoded bytes and its neighbours as a set (all immutable)."""

    advert: Advert
    raw: msgspec.Raw
    listed: frozenset[str]

    @classmethod
    def of(cls, advert: Advert) -> AdvertRecord:
        """Build a record by encoding ``advert``."""
        return cls(advert, encode_advert(advert), frozenset(advert.neighbours))


class AdvertCache:
    """Decode each distinct advert once and share the immutable record.

    Many members of one process may share a cache: an advert that reaches every member of a large
    simulated network is then decoded and stored once, not once per member. The cache is bounded;
    when full it starts afresh (records already held by databases stay valid).
    """

    def __init__(self, max_size: int = 1_000_000) -> None:
        self.max_size = max_size
        self._records: dict[bytes, AdvertRecord] = {}
        self._tuples: dict[tuple[str, ...], tuple[str, ...]] = {}
        self.misses = 0

    def intern(self, neighbours: tuple[str, ...]) -> tuple[str, ...]:
        """The shared copy of a neighbour tuple (databases that agree share their tuples)."""
        shared = self._tuples.get(neighbours)
        if shared is None:
            if len(self._tuples) >= self.max_size:
                self._tuples.clear()
            shared = self._tuples[neighbours] = neighbours
        return shared

    def __len__(self) -> int:
        return len(self._records)

    def decode(self, raw: bytes | msgspec.Raw) -> AdvertRecord:
        """The record for an encoded advert; raises ``MalformedMessage`` if it is invalid."""
        key = bytes(raw)
        record = self._records.get(key)
        if record is not None:
            return record
        self.misses += 1
        advert = decode_advert(key)
        record = AdvertRecord(advert, msgspec.Raw(key), frozenset(advert.neighbours))
        if len(self._records) >= self.max_size:
            self._records.clear()
        self._records[key] = record
        return record


class Verdict(enum.Enum):
    """What a database made of an advert it was offered."""

    NEW = "new"  # installed: newer than what we held, or an origin we did not know
    SAME = "same"  # identical to what we hold
    OLD = "old"  # older than what we hold
    SELF_NEWER = "self_newer"  # about us, with a seq at or above ours but not our advert
    SELF = "self"  # about us, and not newer than ours
    REJECTED = "rejected"  # over a cap (database size or neighbours per advert)


class EdgeChange(NamedTuple):
    """One two-way edge that appeared (``added``) or disappeared in the graph."""

    u: str
    v: str
    added: bool


@dataclass(slots=True)
class Outcome:
    """The verdict on an offered advert and the graph edges it changed."""

    verdict: Verdict
    changes: list[EdgeChange]
    reason: str = ""


_SAME = Outcome(Verdict.SAME, [])
_OLD = Outcome(Verdict.OLD, [])
_SELF = Outcome(Verdict.SELF, [])
_SELF_NEWER = Outcome(Verdict.SELF_NEWER, [])


class LinkStateDB:
    """One member's view of the overlay: the freshest advert of every origin it has heard of."""

    def __init__(
        self,
        owner: str,
        address: str,
        *,
        max_entries: int = 100_000,
        max_neighbours: int = 1024,
        cache: AdvertCache | None = None,
    ) -> None:
        self.owner = owner
        self._intern = cache.intern if cache is not None else (lambda t: t)
        self.address = address
        self.max_entries = max_entries
        self.max_neighbours = max_neighbours
        self._records: dict[str, AdvertRecord] = {}
        # neighbour tuples, not sets: one per origin in every member's database adds up
        self._adj: dict[str, tuple[str, ...]] = {}
        self.own = self._install(AdvertRecord.of(Advert(owner, 1, (), address)))[1]

    # --- reading -------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._records)

    def __contains__(self, origin: object) -> bool:
        return origin in self._records

    def __iter__(self) -> Iterator[str]:
        return iter(self._records)

    def get(self, origin: str) -> AdvertRecord | None:
        """The record held for ``origin``, if any."""
        return self._records.get(origin)

    def records(self) -> list[AdvertRecord]:
        """Every record held, in origin order."""
        return [self._records[o] for o in sorted(self._records)]

    @property
    def adjacency(self) -> dict[str, tuple[str, ...]]:
        """The two-way graph: member -> neighbours that list each other. Do not mutate."""
        return self._adj

    def edges(self) -> set[tuple[str, str]]:
        """The two-way edges as sorted pairs."""
        return {(u, v) for u, ns in self._adj.items() for v in ns if u < v}

    # --- writing -------------------------------------------------------------------------

    def originate(self, neighbours: Iterable[str], seq: int | None = None) -> Outcome:
        """Replace our own advert with one listing ``neighbours`` and a higher ``seq``."""
        new_seq = max(self.own.advert.seq + 1, seq or 0)
        advert = Advert(self.owner, new_seq, tuple(sorted(neighbours)), self.address)
        changes, record = self._install(AdvertRecord.of(advert))
        self.own = record
        return Outcome(Verdict.NEW, changes)

    def offer(self, record: AdvertRecord) -> Outcome:
        """Consider an advert heard from a peer; install it if it is news."""
        advert = record.advert
        held = self._records.get(advert.origin)
        if held is not None:
            if held is record:
                return _SAME
            if advert.origin == self.owner:
                own = held.advert
                if advert.seq >= own.seq and advert != own:
                    return _SELF_NEWER
                return _SELF
            if advert.seq < held.advert.seq:
                return _OLD
            if advert.seq == held.advert.seq:
                return _SAME
        elif len(self._records) >= self.max_entries:
            return Outcome(Verdict.REJECTED, [], f"database full ({self.max_entries} origins)")
        if len(advert.neighbours) > self.max_neighbours:
            return Outcome(
                Verdict.REJECTED,
                [],
                f"advert of {advert.origin!r} lists {len(advert.neighbours)} neighbours "
                f"(max {self.max_neighbours})",
            )
        changes, _ = self._install(record)
        return Outcome(Verdict.NEW, changes)

    def remove(self, origin: str) -> list[EdgeChange]:
        """Forget ``origin``'s advert (not our own); returns the edges that disappeared."""
        if origin == self.owner or origin not in self._records:
            return []
        record = self._records.pop(origin)
        changes = []
        for n in sorted(record.listed):
            if n in self._adj.get(origin, ()):
                self._unlink(origin, n)
                changes.append(EdgeChange(origin, n, False))
        self._adj.pop(origin, None)
        return changes

    def _install(self, record: AdvertRecord) -> tuple[list[EdgeChange], AdvertRecord]:
        origin = record.advert.origin
        records = self._records
        old = records.get(origin)
        records[origin] = record
        adj = self._adj
        if origin not in adj:
            adj[origin] = ()
        changes: list[EdgeChange] = []
        listed = record.listed
        if old is not None:
            old_listed = old.listed
            if old_listed == listed:
                return changes, record
            for n in old_listed - listed:
                if n in adj[origin]:
                    self._unlink(origin, n)
                    changes.append((origin, n, False))
            added = listed - old_listed
        else:
            added = listed
        for n in added:
            other = records.get(n)
            if other is not None and n != origin and origin in other.listed:
                intern = self._intern
                adj[origin] = intern(tuple(sorted((*adj[origin], n))))
                adj[n] = intern(tuple(sorted((*adj[n], origin))))
                changes.append((origin, n, True))
        return changes, record

    def _unlink(self, u: str, v: str) -> None:
        adj, intern = self._adj, self._intern
        adj[u] = intern(tuple(x for x in adj[u] if x != v))
        adj[v] = intern(tuple(x for x in adj[v] if x != u))

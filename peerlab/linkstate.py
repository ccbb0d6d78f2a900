"""The link-state database: every member's advert, the ordering rules, and the two-way graph.

Each member owns one :class:`~peerlab.wire.Advert` ``(origin, incarnation, seq, neighbours,
address)``. Every life of a member has an incarnation no earlier life had; within a life the
member bumps ``seq`` whenever its neighbour set changes. Adverts of one origin are ordered by
``(incarnation, seq)`` (its *order*, :func:`order_of`); at equal order, different content is
settled everywhere alike: the advert whose encoded bytes are greater wins, and its origin, on
hearing a version of itself that is not its own, re-originates above it ("fight-back"). After
``MAX_SEQ`` a life goes on in the next incarnation at seq 1.

The top incarnation is reserved. The advert at the very top, ``(MAX_INCARNATION, MAX_SEQ)``,
lists no neighbours and is a *flush*: the only way above an advert its origin can no longer
outrank (OSPF's premature ageing at MaxSequenceNumber). A database that installs a flush of an
origin takes any later advert of that origin below the reserved incarnation, and from then on
refuses that origin's adverts in the reserved incarnation and further flushes of it, until the
origin is forgotten.

An edge A-B is part of the graph only if A lists B and B lists A (the two-way check), which keeps
half-dead links and stale adverts out of the routes. The database keeps no graph of its own: the
check is made where the graph is read (the route search, :meth:`LinkStateDB.edge_changes`), so
installing an advert is a few list stores.
"""

from __future__ import annotations

import enum
import weakref
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import compress, repeat
from operator import is_not
from typing import TYPE_CHECKING, NamedTuple

import msgspec

from peerlab.errors import TooManyMembers
from peerlab.guard import NameBudget
from peerlab.secure import verify_advert
from peerlab.wire import MAX_INCARNATION, MAX_SEQ, Advert, decode_advert, encode_advert

if TYPE_CHECKING:
    from peerlab.identity import Trust

#: The order of the flush, above every other advert.
TOP: int = MAX_INCARNATION << 32 | MAX_SEQ
#: Orders from here up are in the reserved top incarnation.
RESERVED: int = MAX_INCARNATION << 32


def order_of(incarnation: int, seq: int) -> int:
    """``(incarnation, seq)`` as one integer that orders adverts of one origin."""
    return incarnation << 32 | seq


def successor(order: int) -> int:
    """The order right after ``order``: the next seq, or seq 1 of the next incarnation."""
    return order + 1 if order & MAX_SEQ != MAX_SEQ else order + 2


def key(order: int) -> tuple[int, int]:
    """``(incarnation, seq)`` of an order."""
    return order >> 32, order & MAX_SEQ


class MemberIndex:
    """Small integers for member ids, assigned on first sight and never reused.

    Databases and routing work on these numbers (list indexing instead of hashing strings);
    everything that leaves the core speaks member ids again.
    """

    def __init__(self, max_size: int = 1_000_000) -> None:
        self.max_size = max_size
        self.ids: list[str] = []
        self._numbers: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self.ids)

    def number(self, member_id: str) -> int:
        """The number of ``member_id``, assigning the next free one if it is new."""
        n = self._numbers.get(member_id)
        if n is None:
            n = self._numbers[member_id] = len(self.ids)
            self.ids.append(member_id)
        return n

    def get(self, member_id: str) -> int | None:
        """The number of ``member_id`` if it has one."""
        return self._numbers.get(member_id)

    def admit(self, advert: Advert, budget: NameBudget | None = None) -> None:
        """Raise :class:`TooManyMembers` if numbering a peer's advert would pass ``max_size``,
        and :class:`~peerlab.errors.TooManyNames` if its new ids are more than the sending
        peer's ``budget`` has left (which they are taken from).

        Numbers are never reused, so without this a peer inventing ids could grow the index,
        and every database's lists with it, without bound.
        """
        names = {advert.origin, *advert.neighbours}
        new = sum(1 for name in names if name not in self._numbers)
        if len(self.ids) + new > self.max_size:
            raise TooManyMembers(
                f"advert of {advert.origin!r} names {new} new member ids; this process tracks "
                f"at most {self.max_size} and already knows {len(self.ids)}"
            )
        if budget is not None and new:
            budget.take(new, advert.origin)


@dataclass(frozen=True, slots=True)
class AdvertRecord:
    """An advert with its encoded bytes, its :func:`order <order_of>` and its members as numbers.

    ``numbers`` holds the listed neighbours' numbers, sorted, without repeats and without the
    origin itself; ``listed`` holds the same as a set for the two-way check.
    """

    advert: Advert
    raw: msgspec.Raw
    origin: int
    order: int
    numbers: tuple[int, ...]
    listed: frozenset[int]

    @property
    def flush(self) -> bool:
        """Whether this is its origin's flush (the advert at the top order)."""
        return self.order == TOP


class AdvertCache:
    """Decode each distinct advert once and share the immutable record.

    Many members of one process may share a cache: an advert that reaches every member of a large
    simulated network is then decoded and stored once, not once per member. The cache also holds
    the :class:`MemberIndex` its records are numbered in, so every database that takes records
    from one cache must be built on it. The record store is bounded, in records and in the
    neighbours they list together (what a record's memory grows with: a peer sending adverts a
    database will refuse must not fill it); when full it starts afresh (records already held by
    databases stay valid).

    When numbering an advert would pass the index's size, the cache first :meth:`compacts
    <compact>` it: members named only by adverts no database holds (ones refused, or aged out)
    lose their numbers, every database is renumbered, and the advert is numbered after all; a
    peer that named a million members once cannot lock newcomers out for good.
    """

    def __init__(
        self,
        max_size: int = 1_000_000,
        max_members: int = 1_000_000,
        trust: Trust | None = None,
        max_listed: int = 200_000,
    ) -> None:
        self.max_size = max_size
        self.max_members = max_members
        self.max_listed = max_listed
        self._listed = 0  # neighbours listed by the records stored
        #: In secure mode, the network's trust: an advert must be signed by its origin under a
        #: certificate the network vouches for (each distinct advert is verified once).
        self.trust = trust
        self.index = MemberIndex(max_members)
        self._records: dict[bytes, AdvertRecord] = {}
        self._databases: weakref.WeakSet[LinkStateDB] = weakref.WeakSet()
        self.misses = 0
        self.compactions = 0

    def __len__(self) -> int:
        return len(self._records)

    def record(self, advert: Advert) -> AdvertRecord:
        """A record for an advert of our own making (encoded here, not cached)."""
        return self._numbered(advert, encode_advert(advert))

    def decode(self, raw: bytes | msgspec.Raw, budget: NameBudget | None = None) -> AdvertRecord:
        """The record for an encoded advert from a peer.

        Raises ``MalformedMessage`` if it is invalid, ``TooManyMembers`` if it would take the
        index past its size and ``TooManyNames`` if its new ids pass the peer's ``budget``.
        """
        key = bytes(raw)
        record = self._records.get(key)
        if record is not None:
            return record
        self.misses += 1
        advert = decode_advert(key)
        if self.trust is not None:
            verify_advert(advert, self.trust)
        try:
            self.index.admit(advert, budget)
        except TooManyMembers:
            if not self.compact():
                raise
            self.index.admit(advert, budget)  # raises again if the compacted index has no room
        record = self._numbered(advert, msgspec.Raw(key))
        if len(self._records) >= self.max_size or self._listed > self.max_listed:
            self._records.clear()
            self._listed = 0
        self._records[key] = record
        self._listed += len(record.numbers)
        return record

    def decode_all(
        self, raws: Iterable[bytes | msgspec.Raw], budget: NameBudget | None = None
    ) -> list[AdvertRecord]:
        """:meth:`decode` for a batch, with the cache lookups done without a call per advert."""
        keys = list(map(bytes, raws))
        records = list(map(self._records.get, keys))
        if not all(records):
            compactions = self.compactions
            for i, record in enumerate(records):
                if record is None:
                    records[i] = self.decode(keys[i], budget)
            if self.compactions != compactions:  # the batch's earlier records were renumbered
                records = [self.decode(key) for key in keys]
        return records

    def attach(self, db: LinkStateDB) -> None:
        """Take part in compactions: ``db`` holds records of this cache."""
        self._databases.add(db)

    def compact(self) -> int:
        """Number afresh only the members the attached databases need (their owners, and the
        origins and neighbours of the adverts they hold), in the order they were numbered;
        rebuild the records and renumber every database. Returns how many numbers it freed."""
        databases = sorted(self._databases, key=lambda db: db.index.number(db.owner))
        old = self.index
        needed: set[int] = set()
        for db in databases:
            needed.add(db.me)
            for record in db.held_records():
                needed.add(record.origin)
                needed.update(record.numbers)
        freed = len(old) - len(needed)
        if freed <= 0:
            return 0
        self.index = MemberIndex(self.max_members)
        for n in sorted(needed):
            self.index.number(old.ids[n])
        rebuilt: dict[bytes, AdvertRecord] = {}
        for db in databases:
            for record in db.held_records():
                key = bytes(record.raw)
                if key not in rebuilt:
                    rebuilt[key] = self._numbered(record.advert, record.raw)
        self._records = rebuilt
        self._listed = sum(len(record.numbers) for record in rebuilt.values())
        self.compactions += 1
        for db in databases:
            db.renumber(old, rebuilt)
        return freed

    def _numbered(self, advert: Advert, raw: msgspec.Raw) -> AdvertRecord:
        number = self.index.number
        origin = number(advert.origin)
        listed = frozenset(map(number, advert.neighbours)) - {origin}  # no edge to itself
        order = order_of(advert.incarnation, advert.seq)
        return AdvertRecord(advert, raw, origin, order, tuple(sorted(listed)), listed)


class Verdict(enum.Enum):
    """What a database made of an advert it was offered."""

    NEW = "new"  # installed: newer than what we held, or an origin we did not know
    SAME = "same"  # identical to what we hold, or a flush already taken
    OLD = "old"  # older than what we hold (or refused after a flush): the sender needs ours
    SELF_NEWER = "self_newer"  # about us, at or above our order but not our advert
    SELF_FLUSHED = "self_flushed"  # a flush of us
    SELF = "self"  # about us, and not newer than ours
    REJECTED = "rejected"  # over a cap (database size or neighbours per advert)


class EdgeChange(NamedTuple):
    """One two-way edge that appeared (``added``) or disappeared, as member numbers."""

    u: int
    v: int
    added: bool


@dataclass(slots=True)
class Outcome:
    """The verdict on an offered advert and the graph edges it changed."""

    verdict: Verdict
    changes: list[EdgeChange]
    reason: str = ""


class Absorbed(NamedTuple):
    """What a database made of a batch of adverts."""

    fresh: list[AdvertRecord]  # installed, in batch order
    replaced: list[AdvertRecord | None]  # what each of them replaced (None: a new origin)
    others: list[tuple[AdvertRecord, Outcome]]  # neither installed nor already held
    known: list[AdvertRecord]  # the very records already held


_NOBODY: frozenset[int] = frozenset()
_SAME = Outcome(Verdict.SAME, [])
_OLD = Outcome(Verdict.OLD, [])
_SELF = Outcome(Verdict.SELF, [])
_SELF_NEWER = Outcome(Verdict.SELF_NEWER, [])
_SELF_FLUSHED = Outcome(Verdict.SELF_FLUSHED, [])


def _linked(a: AdvertRecord | None, b: AdvertRecord | None, u: int, v: int) -> bool:
    """Whether ``a`` (an advert of u) and ``b`` (of v) list each other."""
    return a is not None and b is not None and v in a.listed and u in b.listed


class LinkStateDB:
    """One member's view of the overlay: the freshest advert of every origin it has heard of.

    Records must come from the database's cache (:meth:`AdvertCache.decode` or
    :meth:`AdvertCache.record`), whose :class:`MemberIndex` numbers the graph.
    """

    def __init__(
        self,
        owner: str,
        address: str,
        *,
        incarnation: int = 0,
        max_entries: int = 100_000,
        max_neighbours: int = 1024,
        max_claims: int = 100_000,
        max_claims_per_peer: int = 50_000,
        max_origins_per_peer: int = 25_000,
        cache: AdvertCache | None = None,
        sign: Callable[[Advert], Advert] | None = None,
    ) -> None:
        self.cache = cache if cache is not None else AdvertCache()
        #: Signs our own adverts (secure mode), if set.
        self.sign = sign
        self.index = self.cache.index
        self._ids = self.index.ids
        self.owner = owner
        self.address = address
        self.max_entries = max_entries
        self.max_neighbours = max_neighbours
        self.max_claims = max_claims
        self.max_claims_per_peer = max_claims_per_peer
        self.max_origins_per_peer = max_origins_per_peer
        #: What a peer may make us hold: the neighbours listed by every advert held, how many
        #: origins each peer introduced (first told us of), by origin number, and how many
        #: neighbours the adverts of the origins each peer introduced list.
        self.claims = 0
        self._introducer: dict[int, str] = {}
        self._introduced: Counter[str] = Counter()
        self._introduced_claims: Counter[str] = Counter()
        #: Called after a compaction renumbered this database (route trees are stale then).
        self.on_renumber: Callable[[], None] | None = None
        # by member number, lists rather than dicts: a large simulated network holds one of each
        # per member, and a list slot costs 8 bytes. Beside each record, its claims as the
        # route search reads them (a lookup saved per member it visits).
        self._held: list[AdvertRecord | None] = []
        self._claimed: list[tuple[int, ...]] = []
        self._listed: list[frozenset[int]] = []
        self._flushed: set[int] = set()  # origins whose flush we took (see the module's doc)
        self.incarnation = incarnation
        self.own = self._record_own(Advert(owner, incarnation, 1, (), address))
        self.me = self.own.origin
        self._grow()
        self._hold(self.me, self.own)
        self._count = 1
        self.cache.attach(self)

    # --- reading -------------------------------------------------------------------------

    def __len__(self) -> int:
        return self._count

    def __contains__(self, origin: object) -> bool:
        return isinstance(origin, str) and self.get(origin) is not None

    def __iter__(self) -> Iterator[str]:
        return map(self._ids.__getitem__, self.held_numbers())

    def get(self, origin: str) -> AdvertRecord | None:
        """The record held for ``origin``, if any."""
        number = self.index.get(origin)
        return None if number is None else self.held(number)

    def held(self, number: int) -> AdvertRecord | None:
        """The record held for the member numbered ``number``, if any."""
        return self._held[number] if number < len(self._held) else None

    def held_numbers(self) -> list[int]:
        """The numbers of the members whose advert is held, ascending."""
        held = self._held
        return list(compress(range(len(held)), map(is_not, held, repeat(None))))

    def held_records(self) -> Iterator[AdvertRecord]:
        """Every record held, in number order."""
        return filter(None, self._held)

    def records(self) -> list[AdvertRecord]:
        """Every record held, in origin order."""
        return sorted(filter(None, self._held), key=lambda r: r.advert.origin)

    @property
    def claimed(self) -> list[tuple[int, ...]]:
        """By member number, the neighbours each held advert lists (empty where none is held).

        With :attr:`listed`, what the route search reads. Do not mutate. Members numbered after
        the last advert was installed may lie beyond the end.
        """
        return self._claimed

    @property
    def listed(self) -> list[frozenset[int]]:
        """:attr:`claimed` as sets, for the two-way check. Do not mutate."""
        return self._listed

    def edges(self) -> set[tuple[str, str]]:
        """The two-way edges as sorted pairs of member ids."""
        ids, listed = self._ids, self._listed
        pairs = set()
        for u, claims in enumerate(self._claimed):
            for v in claims:
                if u < v and u in listed[v]:  # u lists v, and v lists u back
                    a, b = ids[u], ids[v]
                    pairs.add((a, b) if a < b else (b, a))
        return pairs

    def edge_changes(
        self, records: Sequence[AdvertRecord], replaced: Sequence[AdvertRecord | None]
    ) -> Iterator[EdgeChange]:
        """The two-way edges that appeared or went when ``records`` replaced ``replaced``.

        The two are parallel, as :meth:`absorb` returns them; an origin may come more than once
        (its first replaced record is what was held before). Nothing is worked out until the
        changes are taken, and then one at a time, so a caller that needs none, or only the first
        that matters, pays for no more; take them before the database changes again.
        """
        before: dict[int, AdvertRecord | None] = {}
        for record, old in zip(records, replaced, strict=True):
            before.setdefault(record.origin, old)
        yield from self._changes(before)

    # --- writing -------------------------------------------------------------------------

    def renumber(self, old: MemberIndex, records: dict[bytes, AdvertRecord]) -> None:
        """Take the cache's new numbering (a compaction): every record held is replaced by its
        renumbered twin in ``records`` (by encoding), and :attr:`on_renumber` is told."""
        index = self.cache.index
        new = index.number
        held = [(record, bytes(record.raw)) for record in self.held_records()]
        self._introducer = {new(old.ids[n]): peer for n, peer in self._introducer.items()}
        self.index, self._ids = index, index.ids
        self._held, self._claimed, self._listed = [], [], []
        self.claims = 0
        self._introduced_claims = Counter()
        self._grow()
        for record, key in held:
            self._hold(new(record.advert.origin), records[key])
        self.own = self.cache.record(self.own.advert)
        self.me = self.own.origin
        self._hold(self.me, self.own)
        self._flushed = {new(old.ids[n]) for n in self._flushed}
        if self.on_renumber is not None:
            self.on_renumber()

    def originate(self, neighbours: Iterable[str], above: int = 0) -> Outcome:
        """Replace our own advert with one listing ``neighbours``, ordered after both our
        current one and the order ``above`` (an advert of ours heard from a peer).

        Past the reserved incarnation nobody would take it: then it follows our current advert
        instead (receivers of a flush take any order below the reserved incarnation), or starts
        again at this life's incarnation, seq 1.
        """
        order = successor(max(self.own.order, above))
        if order >= RESERVED:
            order = successor(self.own.order)
            if order >= RESERVED:
                order = order_of(self.incarnation, 1)
        incarnation, seq = key(order)
        advert = Advert(self.owner, incarnation, seq, tuple(sorted(neighbours)), self.address)
        record = self._record_own(advert)
        self._grow()
        old, self.own = self.own, record
        self._hold(self.me, record)
        return Outcome(Verdict.NEW, list(self._changes({self.me: old})))

    def flush(self) -> AdvertRecord:
        """Our flush: the advert at the top order, listing nobody (see the module's doc)."""
        incarnation, seq = key(TOP)
        return self._record_own(Advert(self.owner, incarnation, seq, (), self.address))

    def _record_own(self, advert: Advert) -> AdvertRecord:
        """The record of an advert of ours, signed when the database signs its own."""
        return self.cache.record(self.sign(advert) if self.sign is not None else advert)

    def offer(self, record: AdvertRecord, sender: str | None = None) -> Outcome:
        """Consider an advert heard from peer ``sender``; install it if it is news and within
        the budgets (the listed neighbours of all adverts held, and the origins ``sender``
        introduced)."""
        held = self.held(record.origin)
        if held is not None:
            if held is record:
                return _SAME
            if record.origin == self.me:
                if record.flush:
                    return _SELF_FLUSHED
                if record.order >= held.order and bytes(record.raw) != bytes(held.raw):
                    return _SELF_NEWER
                return _SELF
            if record.origin in self._flushed:
                if record.flush:
                    return _SAME if held.flush else _OLD
                if record.order >= RESERVED:
                    return _OLD
            if not held.flush:
                if record.order < held.order:
                    return _OLD
                if record.order == held.order:
                    # different content at equal order: the greater encoding wins everywhere
                    theirs, ours = bytes(record.raw), bytes(held.raw)
                    if theirs == ours:
                        return _SAME
                    if theirs < ours:
                        return _OLD
        elif self._count >= self.max_entries:
            return Outcome(Verdict.REJECTED, [], f"database full ({self.max_entries} origins)")
        problem = self._over_budget(record, held, sender)
        if problem:
            return Outcome(Verdict.REJECTED, [], problem)
        self._grow()
        self._hold(record.origin, record)
        if record.flush:
            self._flushed.add(record.origin)
        if held is None:
            self._count += 1
            if sender is not None:
                self._introduced_by(record.origin, sender)
        return Outcome(Verdict.NEW, list(self._changes({record.origin: held})))

    def _over_budget(
        self, record: AdvertRecord, held: AdvertRecord | None, sender: str | None
    ) -> str:
        """Why holding ``record`` in place of ``held`` would pass a budget, or ``""``."""
        origin = record.advert.origin
        listed = len(record.numbers)
        if listed > self.max_neighbours:
            return f"advert of {origin!r} lists {listed} neighbours (max {self.max_neighbours})"
        more = listed - (len(held.numbers) if held else 0)
        if self.claims + more > self.max_claims:
            return (
                f"advert of {origin!r} would take the neighbours listed by adverts held past "
                f"{self.max_claims}"
            )
        introducer = sender if held is None else self._introducer.get(record.origin)
        if (
            introducer is not None
            and self._introduced_claims[introducer] + more > self.max_claims_per_peer
        ):
            return (
                f"advert of {origin!r} would take the neighbours listed by the members "
                f"{introducer!r} introduced past {self.max_claims_per_peer}"
            )
        if (
            held is None
            and sender is not None
            and self._introduced[sender] >= self.max_origins_per_peer
        ):
            return (
                f"{sender!r} introduced {self.max_origins_per_peer} members already, "
                f"the most one peer may"
            )
        return ""

    def _introduced_by(self, origin: int, sender: str) -> None:
        self._introducer[origin] = sender
        self._introduced[sender] += 1
        self._introduced_claims[sender] += len(self._claimed[origin])

    def absorb(self, records: Sequence[AdvertRecord], sender: str | None = None) -> Absorbed:
        """:meth:`offer` each record of a batch from ``sender``, without working out edge
        changes.

        The very records already held come back in ``known``. The common cases (an origin we
        did not know, a higher order of someone else's advert) install at once; every other case
        goes through :meth:`offer`, and what it neither installs nor finds the same lands in
        ``others``. :meth:`edge_changes` tells, when asked, what the batch did to the graph.
        """
        held, claimed, listed = self._held, self._claimed, self._listed
        me, max_entries, max_neighbours = self.me, self.max_entries, self.max_neighbours
        # the budgets, as far as the common cases can count on them: a quarter of the claims
        # budget left, a peer that has introduced fewer than its share of origins less the
        # batch, and every peer's introduced claims room for all the batch lists (anything
        # nearer the limits goes through offer, which checks exactly)
        introduced_claims = self._introduced_claims
        roomy = (
            (self.max_claims - self.claims) * 4 > self.max_claims
            and (sender is None or self._introduced[sender] + 4096 < self.max_origins_per_peer)
            and max(introduced_claims.values(), default=0)
            + sum(len(record.numbers) for record in records)
            <= self.max_claims_per_peer
        )
        introducer = self._introducer
        added = 0
        self._grow()
        fresh: list[AdvertRecord] = []
        replaced: list[AdvertRecord | None] = []
        others: list[tuple[AdvertRecord, Outcome]] = []
        known: list[AdvertRecord] = []
        room = max_entries - self._count  # stands in for the count inside the loop
        for record in records:
            old = held[record.origin]
            if old is record:
                known.append(record)
                continue
            if (
                roomy
                and (room > 0 if old is None else record.order > old.order)
                and record.order < RESERVED
                and record.origin != me
                and len(record.numbers) <= max_neighbours
            ):
                origin = record.origin
                held[origin] = record
                claimed[origin] = record.numbers
                listed[origin] = record.listed
                fresh.append(record)
                replaced.append(old)
                more = len(record.numbers) - (len(old.numbers) if old is not None else 0)
                added += more
                if old is None:
                    room -= 1
                    if sender is not None:
                        self._introduced_by(origin, sender)
                elif (who := introducer.get(origin)) is not None:
                    introduced_claims[who] += more
            else:
                self._count = max_entries - room
                self.claims += added
                added = 0
                outcome = self.offer(record, sender)
                if outcome.verdict is Verdict.NEW:
                    fresh.append(record)
                    replaced.append(old)
                    room = max_entries - self._count
                elif outcome.verdict is not Verdict.SAME:
                    others.append((record, outcome))
        self._count = max_entries - room
        self.claims += added
        return Absorbed(fresh, replaced, others, known)

    def remove(self, origin: str) -> list[EdgeChange]:
        """Forget ``origin``'s advert (not our own); returns the edges that disappeared."""
        u = self.index.get(origin)
        record = None if u is None or u == self.me else self.held(u)
        if record is None:
            return []
        self._hold(u, None)
        self._flushed.discard(u)
        introducer = self._introducer.pop(u, None)
        if introducer is not None:
            self._introduced[introducer] -= 1
        self._count -= 1
        return list(self._changes({u: record}))

    def _grow(self) -> None:
        """Give every numbered member a slot (numbers are assigned as adverts are decoded)."""
        missing = len(self._ids) - len(self._held)
        if missing > 0:
            self._held.extend([None] * missing)
            self._claimed.extend([()] * missing)
            self._listed.extend([_NOBODY] * missing)

    def _hold(self, number: int, record: AdvertRecord | None) -> None:
        """Put ``record`` (None: nothing) and its claims in member ``number``'s slots."""
        old = self._held[number]
        more = (len(record.numbers) if record else 0) - (len(old.numbers) if old else 0)
        self.claims += more
        introducer = self._introducer.get(number)
        if introducer is not None:
            self._introduced_claims[introducer] += more
        self._held[number] = record
        self._claimed[number] = record.numbers if record is not None else ()
        self._listed[number] = record.listed if record is not None else _NOBODY

    def _changes(self, before: dict[int, AdvertRecord | None]) -> Iterator[EdgeChange]:
        """Edge changes since the origins in ``before`` held those records (None: nothing)."""
        held = self._held
        for u, old in before.items():
            now = held[u]
            if old is None:
                claimed: Iterable[int] = now.numbers if now is not None else ()
            else:
                claimed = sorted(set(old.numbers).union(now.numbers if now is not None else ()))
            for v in claimed:
                if v < u and v in before:
                    continue  # v's turn covers the pair (if neither ever listed the other, no edge)
                then = before[v] if v in before else held[v]
                was, is_ = _linked(old, then, u, v), _linked(now, held[v], u, v)
                if was != is_:
                    yield EdgeChange(u, v, is_)

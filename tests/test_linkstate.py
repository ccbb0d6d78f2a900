import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from peerlab.errors import MalformedMessage, TooManyMembers
from peerlab.linkstate import (
    RESERVED,
    TOP,
    AdvertCache,
    LinkStateDB,
    Outcome,
    Verdict,
    key,
    order_of,
)
from peerlab.wire import MAX_INCARNATION, MAX_SEQ, Advert, encode_advert

CACHE = AdvertCache()


def rec(origin, seq, neighbours, address="", incarnation=1, cache=CACHE):
    return cache.record(Advert(origin, incarnation, seq, tuple(neighbours), address))


def named(db, changes):
    ids = db.index.ids
    return [(ids[u], ids[v], added) for u, v, added in changes]


def test_higher_seq_wins_and_old_news_is_ignored():
    db = LinkStateDB("me", "addr", cache=CACHE)
    assert db.offer(rec("x", 5, ["y"])).verdict is Verdict.NEW
    assert db.offer(rec("x", 4, ["z"])).verdict is Verdict.OLD
    assert db.offer(rec("x", 5, ["y"])).verdict is Verdict.SAME
    assert db.offer(rec("x", 6, [])).verdict is Verdict.NEW
    assert db.get("x").advert.seq == 6


def test_edge_counts_only_when_both_sides_list_each_other():
    db = LinkStateDB("a", "", cache=CACHE)
    db.originate(["b"])
    assert db.edges() == set()
    out = db.offer(rec("b", 1, ["a", "c"]))
    assert named(db, out.changes) == [("b", "a", True)]
    assert db.edges() == {("a", "b")}
    db.offer(rec("c", 1, []))  # c does not list b: no b-c edge
    assert db.edges() == {("a", "b")}
    out = db.offer(rec("b", 2, ["c"]))  # b drops a
    assert named(db, out.changes) == [("b", "a", False)]
    assert db.edges() == set()


def test_newer_advert_about_ourselves_asks_for_fight_back():
    db = LinkStateDB("me", "addr", incarnation=1, cache=CACHE)
    assert key(db.own.order) == (1, 1)
    stale = rec("me", 40, ["old-friend"])
    assert db.offer(stale).verdict is Verdict.SELF_NEWER
    db.originate([], above=stale.order)
    assert key(db.own.order) == (1, 41)
    assert db.offer(stale).verdict is Verdict.SELF
    assert db.offer(db.own).verdict is Verdict.SAME
    same_order = rec("me", 41, ["someone"])  # equal order, other content: fight back too
    assert db.offer(same_order).verdict is Verdict.SELF_NEWER


def test_a_later_life_wins_whatever_the_seq():
    db = LinkStateDB("a", "", cache=CACHE)
    assert db.offer(rec("m", 2, ["b"], incarnation=1)).verdict is Verdict.NEW
    assert db.offer(rec("m", 2, ["n"], incarnation=2)).verdict is Verdict.NEW
    assert db.get("m").advert.neighbours == ("n",)
    assert db.offer(rec("m", 900, ["b"], incarnation=1)).verdict is Verdict.OLD


def test_equal_order_other_content_is_settled_alike_in_any_order():
    x, y = rec("m", 2, ["b"]), rec("m", 2, ["n"])
    winner = max(x, y, key=lambda r: bytes(r.raw))
    for first, second in ((x, y), (y, x)):
        db = LinkStateDB("a", "", cache=CACHE)
        db.offer(first)
        verdict = db.offer(second).verdict
        assert db.get("m") is winner
        assert verdict is (Verdict.NEW if second is winner else Verdict.OLD)


def test_a_life_goes_on_in_the_next_incarnation_after_the_last_seq():
    db = LinkStateDB("c", "", incarnation=7, cache=CACHE)
    db.originate(["d"], above=order_of(7, MAX_SEQ))
    assert key(db.own.order) == (8, 1)
    db.originate(["d"], above=order_of(7, MAX_SEQ - 1))
    assert key(db.own.order) == (8, 2)


def test_nothing_is_originated_in_the_reserved_incarnation():
    db = LinkStateDB("c", "", incarnation=7, cache=CACHE)
    db.originate(["d"], above=order_of(MAX_INCARNATION - 1, MAX_SEQ))  # would be reserved
    assert key(db.own.order) == (7, 2)  # right after its own instead
    db.originate(["d"], above=order_of(MAX_INCARNATION, 5))
    assert key(db.own.order) == (7, 3)
    flush = db.flush()
    assert flush.flush and flush.order == TOP and flush.advert.neighbours == ()


def test_a_flush_voids_the_reserved_incarnation_until_the_origin_is_forgotten():
    cache = AdvertCache()
    db = LinkStateDB("a", "", cache=cache)
    forged = rec("c", 5, ["x"], incarnation=MAX_INCARNATION, cache=cache)
    assert forged.order >= RESERVED
    assert db.offer(forged).verdict is Verdict.NEW
    assert db.offer(rec("c", 3, ["d"], cache=cache)).verdict is Verdict.OLD  # outranked
    flush = rec("c", MAX_SEQ, [], incarnation=MAX_INCARNATION, cache=cache)
    assert flush.flush
    assert db.offer(flush).verdict is Verdict.NEW
    assert db.offer(flush).verdict is Verdict.SAME
    # after the flush, any advert below the reserved incarnation replaces it...
    fresh = rec("c", 3, ["d"], cache=cache)
    assert db.offer(fresh).verdict is Verdict.NEW and db.get("c") is fresh
    # ...and the reserved incarnation, even a flush again, is refused
    assert db.offer(forged).verdict is Verdict.OLD
    assert db.offer(flush).verdict is Verdict.OLD  # the sender should take ours
    assert db.offer(rec("c", 9, [], incarnation=MAX_INCARNATION, cache=cache)).verdict is (
        Verdict.OLD
    )
    assert db.get("c") is fresh
    db.remove("c")  # forgotten: a flush is news again
    assert db.offer(flush).verdict is Verdict.NEW


def test_a_flush_of_ourselves_asks_for_fight_back():
    db = LinkStateDB("c", "", cache=CACHE)
    flush = rec("c", MAX_SEQ, [], incarnation=MAX_INCARNATION)
    assert db.offer(flush).verdict is Verdict.SELF_FLUSHED


def test_caps_reject_without_raising():
    db = LinkStateDB("me", "", max_entries=2, max_neighbours=3, cache=CACHE)
    assert db.offer(rec("x", 1, [])).verdict is Verdict.NEW
    out = db.offer(rec("y", 1, []))
    assert out.verdict is Verdict.REJECTED and "database full" in out.reason
    out = db.offer(rec("x", 2, ["a", "b", "c", "d"]))
    assert out.verdict is Verdict.REJECTED and "4 neighbours (max 3)" in out.reason


def test_a_batch_respects_the_database_cap_and_counts_what_it_holds():
    db = LinkStateDB("me", "", max_entries=3, cache=CACHE)
    batch = [rec("p", 1, []), rec("me", 9, []), rec("q", 1, []), rec("p", 2, []), rec("r", 1, [])]
    absorbed = db.absorb(batch)
    assert [r.advert.origin for r in absorbed.fresh] == ["p", "q", "p"]
    assert [(r.advert.origin, o.verdict) for r, o in absorbed.others] == [
        ("me", Verdict.SELF_NEWER),
        ("r", Verdict.REJECTED),
    ]
    assert len(db) == 3 and sorted(db) == ["me", "p", "q"] and db.get("p").advert.seq == 2


def test_remove_drops_edges():
    db = LinkStateDB("a", "", cache=CACHE)
    db.originate(["b"])
    db.offer(rec("b", 1, ["a"]))
    assert named(db, db.remove("b")) == [("b", "a", False)]
    assert "b" not in db and db.edges() == set()
    assert db.remove("a") == []  # never our own


def test_cache_decodes_once_and_shares():
    cache = AdvertCache()
    raw = rec("x", 1, ["y"]).raw
    first = cache.decode(msgspec.Raw(bytes(raw)))
    second = cache.decode(msgspec.Raw(bytes(raw)))
    assert first is second and cache.misses == 1
    with pytest.raises(MalformedMessage):
        cache.decode(b"\x93\xa1x")


def test_numbers_are_shared_by_databases_on_one_cache():
    cache = AdvertCache()
    a = LinkStateDB("a", "", cache=cache)
    b = LinkStateDB("b", "", cache=cache)
    a.originate(["b"])
    b.originate(["a"])
    a.offer(b.own)
    b.offer(a.own)
    assert a.index is b.index and a.get("b") is b.own and b.get("a") is a.own
    assert a.claimed[b.me] is b.own.numbers and a.listed[b.me] is b.own.listed
    assert a.edges() == b.edges() == {("a", "b")}
    assert sorted(a) == ["a", "b"] and "b" in a and "zz" not in a


def two_way(db):
    """The two-way graph computed from scratch from the records a database holds."""
    listed = {r.advert.origin: set(r.advert.neighbours) for r in db.records()}
    return {(a, b) for a, ns in listed.items() for b in ns if a < b and a in listed.get(b, ())}


ids = st.sampled_from(["a", "b", "c", "d", "e"])
ops = st.lists(
    st.one_of(
        st.tuples(st.just("offer"), ids, st.integers(0, 11), st.lists(ids, max_size=6)),
        st.tuples(st.just("remove"), ids, st.just(0), st.just([])),
        st.tuples(st.just("originate"), st.just("a"), st.just(0), st.lists(ids, max_size=4)),
    ),
    max_size=40,
)


def batches(steps, batched):
    """The steps, with runs of consecutive offers made into one batch when ``batched``."""
    out = []
    for step in steps:
        if batched and step[0] == "offer" and out and out[-1][0] == "batch":
            out[-1][1].append(step)
        elif batched and step[0] == "offer":
            out.append(("batch", [step]))
        else:
            out.append(step)
    return out


@settings(max_examples=300)
@given(ops, st.booleans())
def test_graph_and_reported_changes_follow_any_sequence_of_adverts(steps, batched):
    """Whatever arrives in whatever order and batching, the graph equals the from-scratch one,
    and the reported edge changes replayed from the start give that graph too."""
    cache = AdvertCache()
    db = LinkStateDB("a", "", cache=cache)
    replayed: set[tuple[str, str]] = set()
    ids_of = db.index.ids
    for step in batches(steps, batched):
        if step[0] == "batch":
            records = [
                cache.record(Advert(o, 1 + seq // 4, 1 + seq % 4, tuple(ns), ""))
                for _, o, seq, ns in step[1]
            ]
            absorbed = db.absorb(records)
            changes = list(db.edge_changes(absorbed.fresh, absorbed.replaced))
        elif step[0] == "offer":
            _, origin, seq, neighbours = step
            advert = Advert(origin, 1 + seq // 4, 1 + seq % 4, tuple(neighbours), "")
            changes = db.offer(cache.record(advert)).changes
        elif step[0] == "remove":
            changes = db.remove(step[1])
        else:
            changes = db.originate(step[3]).changes
        for u, v, added in changes:
            pair = tuple(sorted((ids_of[u], ids_of[v])))
            assert (pair in replayed) != added, f"{pair} reported {'added' if added else 'gone'}"
            (replayed.add if added else replayed.discard)(pair)
        assert db.edges() == two_way(db) == replayed
        assert len(db) == len(db.records()) == len(db.held_numbers())
        assert [ids_of[n] for n in db.held_numbers()] == list(db)
        for n, claims in enumerate(db.claimed):  # what the route search reads follows the records
            record = db.held(n)
            assert claims == (record.numbers if record else ())
            assert db.listed[n] == (record.listed if record else frozenset())


def test_decode_all_decodes_each_distinct_advert_once():
    cache = AdvertCache()
    x, y = rec("x", 1, ["y"]).raw, rec("y", 1, ["x"]).raw
    records = cache.decode_all([x, y, x])
    assert [r.advert.origin for r in records] == ["x", "y", "x"]
    assert records[0] is records[2] and cache.misses == 2
    with pytest.raises(MalformedMessage):
        cache.decode_all([x, b"\x93\xa1x"])


def test_the_member_index_is_bounded_and_reclaims_what_no_database_holds():
    cache = AdvertCache(max_members=5)
    db = LinkStateDB("me", "", cache=cache)
    a = cache.decode(rec("a", 1, ["b", "c"]).raw)
    assert db.offer(a).verdict is Verdict.NEW  # me, a, b, c are needed now
    with pytest.raises(TooManyMembers, match=r"names 2 new member ids.*at most 5"):
        cache.decode(rec("d", 1, ["e"]).raw)
    assert cache.compactions == 0 and len(cache.index) == 4
    db.remove("a")  # nobody holds a's advert any more: a, b and c can go
    d = cache.decode(rec("d", 1, ["e"]).raw)
    assert cache.compactions == 1 and cache.index.ids == ["me", "d", "e"]
    assert db.offer(d).verdict is Verdict.NEW  # the database follows the new numbering
    assert db.get("d").advert == d.advert and "a" not in db and db.get("me") is db.own


def test_a_compaction_renumbers_every_database_and_tells_it():
    cache = AdvertCache(max_members=6)
    told = []
    one, two = LinkStateDB("x", "", cache=cache), LinkStateDB("y", "", cache=cache)
    one.on_renumber = lambda: told.append("x")
    one.originate(["y"])
    two.originate(["x"])
    one.offer(two.own)
    two.offer(one.own)
    junk = cache.decode(rec("j", 1, ["k"]).raw)  # numbered, never held
    assert junk.origin == 2
    cache.decode(rec("p", 1, ["q", "r"]).raw)  # no room: j and k are reclaimed
    assert told == ["x"] and cache.compactions == 1
    assert one.edges() == two.edges() == {("x", "y")}
    assert one.get("y").advert == two.own.advert and one.index is cache.index


budget_ops = st.lists(
    st.tuples(
        st.sampled_from(["offer", "remove"]),
        st.sampled_from("abcdefghijkl"),
        st.lists(st.sampled_from("abcdefghijkl"), max_size=3),
    ),
    max_size=40,
)


@settings(max_examples=200)
@given(budget_ops)
def test_a_database_stays_whole_through_compactions(steps):
    """Whatever is offered and forgotten, with an index too small to number every name, the
    database's graph equals the one worked out from the records it holds."""
    cache = AdvertCache(max_members=7)
    db = LinkStateDB("a", "", cache=cache)
    seq = 0
    for op, origin, neighbours in steps:
        if op == "remove":
            db.remove(origin)
        else:
            seq += 1
            advert = Advert(origin, 1, seq, tuple(neighbours), "")
            try:
                db.offer(cache.decode(encode_advert(advert)))
            except TooManyMembers:
                pass  # what the database holds needs every number there is
        assert db.edges() == two_way(db)
        assert len(db) == len(db.records()) and db.own.advert.origin == "a"
        assert [cache.index.ids[n] for n in db.held_numbers()] == list(db)


def test_budgets_refuse_what_would_pass_them_without_raising():
    db = LinkStateDB("me", "", max_claims=5, max_origins_per_peer=2, cache=AdvertCache())
    c = db.cache
    assert db.offer(c.record(Advert("x", 1, 1, ("p", "q", "r"), "")), "z").verdict is Verdict.NEW
    assert db.offer(c.record(Advert("y", 1, 1, ("p",), "")), "z").verdict is Verdict.NEW
    third = db.offer(c.record(Advert("w", 1, 1, (), "")), "z")  # z's third introduction
    assert third.verdict is Verdict.REJECTED and "introduced 2 members already" in third.reason
    assert db.offer(c.record(Advert("w", 1, 1, (), "")), "v").verdict is Verdict.NEW
    over = db.offer(c.record(Advert("x", 1, 2, ("p", "q", "r", "s", "t"), "")), "z")
    assert over.verdict is Verdict.REJECTED and "past 5" in over.reason and db.claims == 4
    db.remove("x")  # its claims, and z's introduction, are free again
    assert db.claims == 1
    assert db.offer(c.record(Advert("u", 1, 1, (), "")), "z").verdict is Verdict.NEW


def test_the_members_one_peer_introduced_may_list_only_its_share_of_neighbours():
    db = LinkStateDB("me", "", max_claims=100, max_claims_per_peer=5, cache=AdvertCache())
    c = db.cache

    def offer(origin: str, seq: int, listed: str, sender: str) -> Outcome:
        return db.offer(c.record(Advert(origin, 1, seq, tuple(listed), "")), sender)

    assert offer("x", 1, "pqr", "z").verdict is Verdict.NEW
    over = offer("y", 1, "pqr", "z")  # 6 neighbours listed by members z introduced
    assert over.verdict is Verdict.REJECTED and "members 'z' introduced past 5" in over.reason
    assert offer("y", 1, "pqr", "v").verdict is Verdict.NEW  # another peer's share
    # a newer advert of x, from anyone, counts against z, which introduced x
    assert offer("x", 2, "pqrst", "v").verdict is Verdict.NEW
    assert offer("x", 3, "pqrstu", "v").verdict is Verdict.REJECTED
    db.remove("x")  # its claims are z's to use again
    assert offer("w", 1, "pqrst", "z").verdict is Verdict.NEW


def test_a_batch_near_a_peer_s_share_is_checked_advert_by_advert():
    db = LinkStateDB("me", "", max_claims=100, max_claims_per_peer=5, cache=AdvertCache())
    c = db.cache
    batch = [c.record(Advert(o, 1, 1, ("p", "q"), "")) for o in "xyz"]
    absorbed = db.absorb(batch, "s")
    assert [r.advert.origin for r in absorbed.fresh] == ["x", "y"]
    assert [(r.advert.origin, o.verdict) for r, o in absorbed.others] == [("z", Verdict.REJECTED)]


def test_the_cache_stores_only_so_many_listed_neighbours():
    cache = AdvertCache(max_listed=10)
    for i in range(4):
        cache.decode(encode_advert(Advert(f"o{i}", 1, 1, tuple(f"n{j}" for j in range(5)), "")))
    assert len(cache) <= 3  # past 10 listed, it started afresh

"""One transport contract, checked against every backend (see peerlab/transport.py)."""

import random

import pytest
from worlds import WORLDS


@pytest.fixture(params=sorted(WORLDS))
def world(request):
    w = WORLDS[request.param]()
    yield w
    w.close()


def pair(world):
    a, ra = world.endpoint("a")
    b, rb = world.endpoint("b")
    world.call(a, lambda: a.connect(b.listen_address))
    assert world.run_until(lambda: ra.made and rb.made)
    return a, ra, b, rb


def test_connect_reports_both_ends(world):
    _a, ra, b, rb = pair(world)
    assert [(o, addr) for _, o, addr in ra.made] == [(True, b.listen_address)]
    assert [o for _, o, _ in rb.made] == [False]
    assert ra.failed == [] and rb.failed == []


def test_ordered_bytes_across_arbitrary_splits(world):
    a, ra, b, rb = pair(world)
    rng = random.Random(5)
    blob = bytes(rng.randrange(256) for _ in range(200_000))
    ca, cb = ra.conns(True)[0], rb.conns(False)[0]
    pos = 0

    def write_some():
        nonlocal pos
        while pos < len(blob):
            n = rng.choice([1, 7, 100, 1500, 65536])
            a.send(ca, blob[pos : pos + n])
            pos += n

    world.call(a, write_some)
    assert world.run_until(lambda: len(rb.received[cb]) >= len(blob), timeout=30)
    assert bytes(rb.received[cb]) == blob
    # and the other way
    world.call(b, lambda: b.send(cb, b"pong" * 1000))
    assert world.run_until(lambda: len(ra.received[ca]) >= 4000)
    assert bytes(ra.received[ca]) == b"pong" * 1000


@pytest.mark.parametrize("closer", ["dialer", "acceptor"])
def test_close_from_either_side(world, closer):
    a, ra, b, rb = pair(world)
    ca, cb = ra.conns(True)[0], rb.conns(False)[0]
    if closer == "dialer":
        world.call(a, lambda: a.close(ca))
        assert world.run_until(lambda: cb in rb.lost)
        assert ca not in ra.lost  # the closing side is not told
    else:
        world.call(b, lambda: b.close(cb))
        assert world.run_until(lambda: ca in ra.lost)
        assert cb not in rb.lost
    # sends on a closed connection are ignored, not errors
    world.call(a, lambda: a.send(ca, b"late"))
    world.call(b, lambda: b.send(cb, b"late"))


def test_close_flushes_queued_data_first(world):
    a, ra, _b, rb = pair(world)
    ca, cb = ra.conns(True)[0], rb.conns(False)[0]
    blob = b"x" * 300_000

    def send_and_close():
        a.send(ca, blob)
        a.close(ca)

    world.call(a, send_and_close)
    assert world.run_until(lambda: cb in rb.lost, timeout=30)
    assert bytes(rb.received[cb]) == blob
    assert rb.order[-1] == ("lost", cb)


def test_connect_to_nobody_fails(world):
    a, ra = world.endpoint("a")
    target = world.nowhere()
    world.call(a, lambda: a.connect(target))
    assert world.run_until(lambda: ra.failed, timeout=10)
    assert ra.failed[0][0] == target and ra.failed[0][1]
    assert ra.made == []


def test_many_concurrent_connections(world):
    hub, rhub = world.endpoint("hub")
    spokes = [world.endpoint(f"s{i}") for i in range(20)]
    for t, _ in spokes:
        world.call(t, lambda t=t: t.connect(hub.listen_address))
    assert world.run_until(lambda: len(rhub.made) == 20 and all(r.made for _, r in spokes))
    for i, (t, r) in enumerate(spokes):
        conn = r.conns(True)[0]
        world.call(t, lambda t=t, conn=conn, i=i: t.send(conn, f"hello from {i}".encode()))
    assert world.run_until(
        lambda: (
            sorted(bytes(v) for v in rhub.received.values())
            == sorted(f"hello from {i}".encode() for i in range(20))
        )
    )


def test_call_later_runs_in_order_and_cancel_works(world):
    a, _ = world.endpoint("a")
    fired = []
    world.call(a, lambda: a.call_later(0.02, lambda: fired.append("late")))
    world.call(a, lambda: a.call_later(0.01, lambda: fired.append("early")))
    handle = world.call(a, lambda: a.call_later(0.015, lambda: fired.append("cancelled")))
    world.call(a, handle.cancel)
    assert world.run_until(lambda: len(fired) == 2)
    assert fired == ["early", "late"]
    t0 = world.call(a, a.now)
    assert world.run_until(lambda: world.call(a, a.now) >= t0 + 0.05)
    assert fired == ["early", "late"]
